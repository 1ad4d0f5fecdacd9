/*
 * h1client.h - the worker's native HTTP/1.1 client for http:// nodes: an
 * upstream transport (worker/transport.h, h1client_transport_new) under
 * upstream.c, which keeps the node pool, retries and the consumer API (see
 * upstream.h); it replaced libcurl on the hot path.
 *
 * One h1client per worker, on the worker's libev loop.  Each node has a
 * keep-alive connection pool capped at max_connections_per_node; requests
 * beyond the cap wait in a FIFO queue.  With a depth of 1, one request per
 * connection at a time; with more, idempotent requests are pipelined, up to
 * the depth a connection (see h1client.c): each still gets its own
 * callbacks, its own answer and its own timeout, and a request sent again
 * after a connection broke under it is never sent a third time.  Callbacks
 * come from the loop, never from inside h1client_start().
 */
#ifndef ESGATE_H1CLIENT_H
#define ESGATE_H1CLIENT_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/h1resp.h"
#include "worker/transport.h"

enum h1client_error {
	H1CLIENT_OK = 0,
	H1CLIENT_REFUSED,    /* connect failed, or reset/closed before any byte of the answer */
	H1CLIENT_TIMEOUT,    /* connect timeout, or request timeout (waiting for a connection included) */
	H1CLIENT_BAD_ANSWER, /* not a well-formed HTTP/1.1 answer */
	H1CLIENT_BROKEN,     /* the connection broke after the head: a truncated body */
};

struct h1client_callbacks {
	/* The final head (1xx answers are skipped); HEAD points into a buffer
	 * valid during the call only. */
	void (*on_head)(void *arg, const struct h1resp_head *head);
	/* Body bytes: return 0 when taken, 1 to pause (the bytes are kept and
	 * come again after h1client_resume). */
	int (*on_body)(void *arg, const char *data, size_t len);
	/* The end; the request is detached from every connection by then and
	 * may be started again.  WHY is a static text for logs. */
	void (*on_done)(void *arg, enum h1client_error err, const char *why);
};

struct h1client;
struct h1client_conn;

/* One request as h1client sees it; embedded in the caller's request
 * (upstream.c's), initialised once with h1client_req_init and reused. */
struct h1client_req {
	struct h1client *h;
	const struct h1client_callbacks *cb;
	void *arg;
	size_t node;
	struct h1client_conn *conn; /* NULL while waiting or idle */
	ev_timer timer;             /* connect and request timeouts; a deferred failure */
	double deadline;            /* ev_now() based end of the request timeout */
	double timer_at;            /* when the timer's callback has something to do (ev_now() based) */
	double armed_at;            /* when the timer, while active, fires: <= timer_at (lazy timer) */
	char *head;                 /* the request head, built once per attempt */
	size_t head_len, head_cap;
	const char *body; /* the caller's, kept until on_done */
	size_t body_len;
	size_t sent; /* bytes of head and body written */
	unsigned active : 1;
	unsigned head_request : 1;
	unsigned idempotent : 1;
	unsigned stale_retried : 1; /* resent once after a reused connection closed under it */
	unsigned paused : 1;
	unsigned head_seen : 1;
	enum h1client_error deferred; /* failure reported from the timer */
	const char *deferred_why;
	struct h1client_req *qnext, **qprevp; /* the node's wait queue */
};

/* Creates the client on LOOP with these limits (times in milliseconds;
 * DEPTH: requests a connection carries at once, 1..16, 1 = no pipelining;
 * NOPIPE_MS: how long a node that closed a new connection after the first
 * answer of its line gets one request a connection). */
struct h1client *h1client_new(struct ev_loop *loop, unsigned max_conns_per_node, unsigned depth,
                              uint64_t connect_timeout_ms, uint64_t request_timeout_ms, uint64_t nopipe_ms);
/* Closes every connection; requests must have been cancelled first. */
void h1client_free(struct h1client *h);

/* Adds a node at ADDR; HOST is the Host header value ("10.0.0.1:9200") and
 * PREFIX the node URL's path prefix ("" or "/es").  Returns its index, or
 * -1 (no memory). */
long h1client_node_add(struct h1client *h, const struct sockaddr *addr, socklen_t addrlen, const char *host,
                       const char *prefix);

void h1client_req_init(struct h1client_req *r);
/* Frees R's buffers; R must not be active. */
void h1client_req_dispose(struct h1client_req *r);

/* Starts R (not active) on NODE: METHOD PATH (prefix added) with the
 * header lines HEADERS ("Name: value\r\n"..., may be empty) and BODY
 * (NULL for none; not copied, must outlive the request).  -1 if the request
 * cannot be written (a byte not allowed in a request line); otherwise the
 * callbacks follow, from the loop. */
int h1client_start(struct h1client *h, struct h1client_req *r, size_t node, const char *method, const char *path,
                   const char *headers, size_t headers_len, const char *body, size_t body_len, int idempotent,
                   const struct h1client_callbacks *cb, void *arg);
/* Abandons an active R (no callback follows); its connection is closed.
 * Safe from inside R's own callbacks. */
void h1client_cancel(struct h1client_req *r);
/* Resumes R after on_body returned 1. */
void h1client_resume(struct h1client_req *r);

/* The client as a transport (worker/transport.h): it takes the http://
 * nodes that have an address, and keeps its attempts (an h1client_req
 * each) for reuse.  NULL if out of memory. */
struct transport *h1client_transport_new(struct ev_loop *loop, unsigned max_conns_per_node, unsigned depth,
                                         uint64_t connect_timeout_ms, uint64_t request_timeout_ms, uint64_t nopipe_ms);

#endif
