/*
 * http.h - the worker's HTTP face: libh2o's configuration, and the one
 * handler per host that opens each request's exchange and runs it through
 * the request pipeline (worker/pipeline.h).
 */
#ifndef ESGATE_HTTP_H
#define ESGATE_HTTP_H

#include <h2o.h>

#include "worker/exchange.h"
#include "worker/router.h"

struct http {
	struct exchange_env env; /* what requests use of the worker */
	struct router *router;   /* the route tables, and the cache */
	h2o_globalconf_t h2o_config;
	/* the public listeners', the loopback ones', a metrics listener's */
	h2o_hostconf_t *hosts_main[2], *hosts_local[2], *hosts_metrics[2];
	/* per cfg->listen entry I with tls.hsts: [4I] its public host, [4I+2] its
	 * loopback one (each followed by NULL); all NULL for the others */
	h2o_hostconf_t **hosts_hsts;
	/* Called for every request (max_requests is counted by the worker). */
	void (*on_request)(void *arg);
	void *on_request_arg;
};

/* Fills H's h2o configuration (limits, timeouts, one handler per host)
 * and builds the route tables from H->env.cfg.  H->env must be filled (its
 * upstream client created) and H->on_request set.  Once, after fork. */
void http_configure(struct http *h);
/* The hosts a connection accepted on the TLS listener T, on a loopback
 * address (LOCAL) or not, is served by: the public (or loopback)
 * listeners', or one of the same routes that adds T's
 * Strict-Transport-Security header. */
h2o_hostconf_t **http_hosts(struct http *h, const struct tls_listener *t, int local);
/* Frees the route tables and the cache, whose upstream requests are
 * cancelled: before upstream_free(). */
void http_free(struct http *h);

#endif
