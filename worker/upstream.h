/*
 * upstream.h - the worker's one Elasticsearch client.
 *
 * Created after fork, bound to the worker's libev loop: a libcurl multi
 * handle driven by libev watchers (socket and timer callbacks), so its
 * connection pool, its timers and its sockets belong to exactly one loop in
 * exactly one process.  Nothing here may exist in the master.
 */
#ifndef ESGATE_UPSTREAM_H
#define ESGATE_UPSTREAM_H

#include <ev.h>
#include <stddef.h>

#include "lib/config.h"

enum upstream_error {
	UPSTREAM_OK = 0,     /* an HTTP answer came back, whatever its status */
	UPSTREAM_REFUSED,    /* could not connect, or reset before an answer: 502 */
	UPSTREAM_TIMEOUT,    /* connect or request timeout: 504 */
	UPSTREAM_BAD_ANSWER, /* malformed or oversized answer: 502 */
};

struct upstream_response {
	enum upstream_error error;
	const char *reason;	  /* human text for errors, never secrets */
	int status;		  /* HTTP status when error == UPSTREAM_OK */
	const char *body;	  /* owned by the client; valid during the callback */
	size_t body_len;
	const char *content_type; /* NULL if absent */
	const char *elastic_product; /* X-Elastic-Product, NULL if absent */
	const char *node;	  /* URL of the node that answered or failed */
};

typedef void (*upstream_cb)(void *arg, const struct upstream_response *res);

struct upstream;
struct upstream_req;

/* Creates the client on LOOP for CFG (which must outlive it).  NULL and a
 * log line on failure. */
struct upstream *upstream_new(struct ev_loop *loop, const struct config_upstream *cfg);
/* Frees the client; cancels every request without calling back. */
void upstream_free(struct upstream *u);

/* Starts METHOD PATH (path and query, starting with '/') on the next node.
 * CB is called exactly once, later, from the loop, unless the request is
 * cancelled first.  BODY may be NULL. */
struct upstream_req *upstream_request(struct upstream *u, const char *method, const char *path, const char *body,
				      size_t body_len, upstream_cb cb, void *arg);
/* Abandons a request whose callback has not run yet (the client went away). */
void upstream_cancel(struct upstream_req *r);
/* Requests started and not finished yet. */
size_t upstream_inflight(const struct upstream *u);

#endif
