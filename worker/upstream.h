/*
 * upstream.h - the worker's one Elasticsearch client.
 *
 * Created after fork, bound to the worker's libev loop, over two
 * transports (worker/transport.h): the native HTTP/1.1 client for http://
 * nodes (worker/h1client.c) and libcurl's multi interface for https://
 * ones (worker/curlclient.c), both driven by libev watchers, so their
 * connection pools, timers and sockets belong to exactly one loop in
 * exactly one process.  Nothing here may exist in the master.
 *
 * It behaves like the official Elasticsearch clients: a round-robin node
 * pool; a node is dead after a connection error, a timeout, a 429 or a 5xx
 * for min(node_backoff * 2^(n-1), node_backoff_max), then tried again; if
 * every node is dead the one that comes back first is forced; retries
 * (max_retries) go to the next node on connection errors and
 * 429/502/503/504 (timeouts only with retry_on_timeout), for read-only
 * requests only.  Optional sniffing adds the cluster's HTTP nodes.
 *
 * Answers are streamed: the head once it is final (no retry will follow),
 * then body chunks, with back-pressure (the consumer may pause the
 * transfer, and resumes it when its client has taken the data).
 */
#ifndef ESGATE_UPSTREAM_H
#define ESGATE_UPSTREAM_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/metrics.h"

enum upstream_error {
	UPSTREAM_OK = 0,     /* an HTTP answer came back, whatever its status */
	UPSTREAM_REFUSED,    /* could not connect, or reset before an answer: 502 */
	UPSTREAM_TIMEOUT,    /* connect or request timeout: 504 */
	UPSTREAM_BAD_ANSWER, /* malformed answer, or broken mid-body: 502 */
};

struct upstream_head {
	int status;
	int64_t content_length;	     /* -1 when unknown */
	const char *content_type;    /* NULL if absent */
	const char *content_encoding; /* NULL if absent */
	const char *elastic_product; /* X-Elastic-Product, NULL if absent */
	const char *node;	     /* URL of the node that answers */
};

struct upstream_result {
	enum upstream_error error;
	const char *reason;	/* short text for clients: never secrets, never node names */
	const char *node;	/* last node tried */
	unsigned attempts;
};

struct upstream_callbacks {
	/* The answer's head; no retry will follow it.  Called at most once. */
	void (*on_head)(void *arg, const struct upstream_head *head);
	/* Body bytes.  Return 0 when taken, 1 to pause: the bytes are NOT
	 * taken and come again after upstream_resume(). */
	int (*on_body)(void *arg, const char *data, size_t len);
	/* The end: error is UPSTREAM_OK once the whole body was delivered. */
	void (*on_done)(void *arg, const struct upstream_result *res);
};

struct upstream_request {
	const char *method; /* GET, HEAD or POST */
	const char *path;   /* path and query, starting with '/' */
	const char *body;   /* NULL for none; copied */
	size_t body_len;
	const char *opaque_id; /* sent as X-Opaque-Id; NULL for none */
	int accept_gzip;       /* the client accepts gzip: ask for it and pass it through */
};

struct upstream;
struct upstream_req;

/* Creates the client on LOOP for CFG (which must outlive it); resolves
 * node names now, and sniffs if configured.  NULL and a log line on failure. */
struct upstream *upstream_new(struct ev_loop *loop, const struct config_upstream *cfg, struct metrics *metrics,
                              struct metrics_shard *counts);
/* Frees the client; cancels every request without calling back. */
void upstream_free(struct upstream *u);

/* Starts a request.  Callbacks run later, from the loop, until on_done or
 * upstream_cancel.  NULL if it cannot start. */
struct upstream_req *upstream_send(struct upstream *u, const struct upstream_request *rq,
				   const struct upstream_callbacks *cb, void *arg);
/* Abandons a request (the client went away); no callback follows. */
void upstream_cancel(struct upstream_req *r);
/* Resumes a transfer paused by on_body. */
void upstream_resume(struct upstream_req *r);
/* Frees what the client keeps for reuse beyond a few (the worker is idle:
 * a burst's worth of request structures need not stay resident). */
void upstream_trim(struct upstream *u);
/* Requests started and not finished yet. */
size_t upstream_inflight(const struct upstream *u);
/* Nodes in the pool (configured and sniffed), and how many are alive now. */
size_t upstream_nodes(const struct upstream *u, size_t *alive);

/* Is METHOD PATH safe to send twice? GET and HEAD, and the read-only
 * POSTs (_search, _count, _msearch, _mget). */
int upstream_is_idempotent(const char *method, const char *path);

#endif
