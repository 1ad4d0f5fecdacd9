/*
 * transport.h - what the node pool (worker/upstream.c) asks of a way to
 * carry a request to a node, and what that reports back.
 *
 * Two transports implement it, each in its own file: the native HTTP/1.1
 * client (worker/h1client.c: http:// nodes, less CPU per request) and
 * libcurl's multi interface (worker/curlclient.c: https:// nodes, and every
 * node with "http_client: curl").  The pool above them keeps the nodes,
 * the retry policy, the sniffing and the consumer's API, and knows no
 * transport: it offers each node to the transports in turn, and runs each
 * attempt of a request through the one that took the request's node.
 *
 * One attempt is one request on one node, from start to its one end.  A
 * transport:
 *   - never calls back from inside start(); callbacks come from the loop;
 *   - calls on_head at most once, with the final head (1xx skipped), before
 *     any body byte, and before on_end(TRANSPORT_OK);
 *   - delivers body bytes to on_body, which takes them (returns 0) or
 *     pauses the transfer (returns 1: the bytes are not taken, and come
 *     again after resume());
 *   - ends with exactly one on_end, after which it has let go of the
 *     attempt (the pool may start another one from inside on_end);
 *   - takes cancel() at any time, from inside the attempt's own callbacks
 *     too: nothing is called back after it, and the attempt's request
 *     (method, path, headers, body) is no longer read.
 * Every transport is created after fork, on the worker's loop, and lives
 * in exactly one process.
 */
#ifndef ESGATE_TRANSPORT_H
#define ESGATE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/parse.h"

/* How an attempt ended. */
enum transport_end {
	TRANSPORT_OK,         /* a whole answer, whatever its status */
	TRANSPORT_TIMEOUT,    /* connect or request timeout */
	TRANSPORT_CONNECT,    /* no connection, reset, closed before or during the answer */
	TRANSPORT_BAD_ANSWER, /* a malformed answer, or another transport error */
};

/* The final head of an answer; strings NUL-terminated, NULL when absent,
 * valid during the call only. */
struct transport_head {
	int status;
	int64_t content_length; /* -1 when unknown */
	const char *content_type;
	const char *content_encoding;
	const char *elastic_product; /* X-Elastic-Product */
};

struct transport_callbacks {
	void (*on_head)(void *arg, const struct transport_head *head);
	int (*on_body)(void *arg, const char *data, size_t len);
	/* WHY is a short static text for logs, "" when there is nothing to say. */
	void (*on_end)(void *arg, enum transport_end end, const char *why);
};

/* A node as the pool offers it. */
struct transport_node {
	const char *url;             /* as configured or sniffed, no trailing '/' */
	const struct parse_node *at; /* URL's scheme, host, port and path prefix */
	const struct sockaddr *addr; /* resolved at worker start; NULL for a sniffed host name, which
	                              * is left to a transport that resolves names itself */
	socklen_t addrlen;
	int resolved_name; /* ADDR is a host name's address (not a literal in the URL) */
};

/* One attempt's request. */
struct transport_request {
	const char *method;  /* GET, HEAD or POST */
	const char *path;    /* path and query, starting with '/' (the node's prefix is added) */
	const char *headers; /* "Name: value\r\n"..., without Host, Content-Length or the end line */
	size_t headers_len;
	const char *body; /* NULL for none; valid until the attempt ends or is cancelled */
	size_t body_len;
	int idempotent; /* may be sent twice (a transport may resend it once on a stale connection) */
};

struct transport;
struct transport_req; /* one attempt, owned by its transport */

struct transport_ops {
	const char *name;
	/* Takes NODE if this transport serves it: returns the node's index in
	 * it; -1 if it does not serve such a node; -2 if out of memory. */
	long (*node_add)(struct transport *t, const struct transport_node *node);
	/* Starts an attempt on node NODE (an index from node_add).  NULL if it
	 * cannot start (no callback follows). */
	struct transport_req *(*start)(struct transport *t, long node, const struct transport_request *rq,
	                               const struct transport_callbacks *cb, void *arg);
	/* Abandons R: no callback follows. */
	void (*cancel)(struct transport_req *r);
	/* Goes on with R after its on_body returned 1; nothing if it had not. */
	void (*resume)(struct transport_req *r);
	/* The worker is idle: frees what is kept for reuse beyond a few. */
	void (*trim)(struct transport *t);
	/* Abandons every attempt still running, without callbacks, closes the
	 * connections and frees T. */
	void (*free)(struct transport *t);
};

struct transport {
	const struct transport_ops *ops;
};

#endif
