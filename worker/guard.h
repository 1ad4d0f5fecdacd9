/*
 * guard.h - what one client may make a worker hold ("limits:"), enforced
 * around libh2o 2.2.5, which has no hook for any of it.
 *
 * esgate owns the accept path and the loop, so each accepted connection
 * gets a guard that sits between h2o's event loop and h2o's protocol
 * code: it takes the socket's read callback (h2o_socket_t._cb.read, the
 * public struct's field) and looks at the bytes h2o has just read before
 * h2o parses them.  Over HTTP/1.1 it bounds the request head (answering
 * 431 and closing once it is larger than limits.max_header_size with no
 * end in sight) and the time to receive it; over HTTP/2 it reads the frame
 * headers and the HPACK representations (lib/hpacksize.h) and bounds the
 * decoded header list, the streams, the resets per interval (rapid reset),
 * the request-body bytes a connection's streams hold, from their first
 * DATA until h2o closes the stream (limits.h2_body_buffer: h2o holds each
 * body whole before the handler runs and until its answer is sent; the
 * guard interposes h2o_http2_stream_close to see the close) and the time an unfinished header block may stay open.  The HTTP/2 part
 * reads libh2o's h2o_http2_conn_t (http2_internal.h) to queue GOAWAY and
 * SETTINGS frames: build-time version check, and a check at each
 * connection that the struct is what it expects (doc/DESIGN.md).
 */
#ifndef ESGATE_GUARD_H
#define ESGATE_GUARD_H

#include <h2o.h>
#include <sys/socket.h>

#include "lib/config.h"
#include "lib/metrics.h"
#include "lib/ratelimit.h"

struct guard;

/* One per worker, after h2o_context_init.  CFG's limits and
 * trusted_proxies, RL the shared table (per-address counts), METRICS where
 * refusals are counted (esgate_limits_refused_total). */
struct guard *guard_new(h2o_context_t *ctx, const struct config *cfg, struct ratelimit *rl, struct metrics_shard *metrics);

/* A request the guard answers itself, which no handler sees (431: an
 * HTTP/1.1 head over max_header_size, the connection closed after it;
 * 413: an HTTP/2 stream's body past h2o's cap; 503: a connection over
 * max_connections_per_address, answered at its accept): the guard reports
 * it to CB(ARG, PEER, PEERLEN, STATUS, BYTES), PEER the client's address
 * and BYTES the answer's length (0: none written).  The worker's CB is
 * exchange_refused (the access log, the metrics); worker/h2oparse.h
 * reports the 400s to a head libh2o cannot parse the same way. */
typedef void (*guard_refused_cb)(void *arg, const struct sockaddr *peer, socklen_t peerlen, int status, size_t bytes);
void guard_on_refused(struct guard *g, guard_refused_cb cb, void *arg);

/* Called by the worker for each connection it has just accepted (FD,
 * from PEER of PEERLEN bytes, on a TLS listener or not), before anything else: the
 * connection's guard, or NULL when the client already has
 * max_connections_per_address open (FD has then been answered 503, or
 * over TLS only closed, since no handshake has been made). */
struct guard_conn *guard_admit(struct guard *g, int fd, const struct sockaddr *peer, socklen_t peerlen, int tls);

/* After h2o_accept(SOCK), SOCK made from the admitted FD: guards the
 * connection.  The guard takes SOCK's on_close; ON_CLOSE(DATA) is called
 * in its place. */
void guard_attach(struct guard_conn *gc, h2o_socket_t *sock, void (*on_close)(void *data), void *data);

/* From the request handler, for each request: an HTTP/1.1 connection is
 * guarded again once its answer is sent (h2o resets its read callback for
 * the next request); a connection upgraded to HTTP/2 (Upgrade: h2c) is
 * guarded from its first request.  Returns the guarded HTTP/1 connection,
 * which the caller hands to guard_request_done when REQ's pool goes (the
 * exchange's end: worker/exchange.h's conn_done), or NULL: nothing to
 * call. */
struct guard_conn *guard_on_request(h2o_req_t *req);
void guard_request_done(void *gc);
/* The HTTP/1 request GC is serving (one at a time): ARG, until
 * guard_request_take(REQ) hands it back, once, and forgets it; NULL if
 * none was set for REQ's connection since, or REQ is not HTTP/1 on a
 * guarded connection.  worker/http.c ends its exchanges this way, from
 * h2o's dispose of the request, which libh2o 2.2.5's HTTP/1 code always
 * runs before it closes the socket (lib/http1.c: init_request,
 * close_connection). */
void guard_request_set(struct guard_conn *gc, void *arg);
void *guard_request_take(h2o_req_t *req);

/* The worker's drain, from its GOAWAY step on (after
 * h2o_context_request_shutdown), called again and again: ends every
 * HTTP/1.1 connection that has been between requests (no request being
 * answered, nothing of the next one read) for MIN_IDLE_MS, as nginx and
 * HAProxy end idle ones on a graceful stop, so that an idle keep-alive
 * client does not hold the old worker until graceful_timeout.  Each such
 * socket is shut down for reading; libh2o's HTTP/1.1 code then reads the
 * end of input and closes the connection itself, in the loop's next run.
 * A connection answering a request is told to close once answered
 * ("Connection: close"); one still in its TLS handshake and HTTP/2 ones
 * are left alone (HTTP/2 has its GOAWAY).  MIN_IDLE_MS spares a client
 * that is busy on its connection (its next request just on its way; it
 * gets "Connection: close"): only one quiet for that long can be closed
 * as it sends (doc/DESIGN.md).  Returns how many were shut down. */
size_t guard_close_idle(struct guard *g, uint64_t min_idle_ms);

/* A slot the request handler may hang its own state of a connection on
 * (the authentication stage's memo of the last credential verified on
 * it, lib/auth.h): DATA, and FREE, which the guard calls with DATA when
 * the connection closes.  The slot of the connection REQ came on, or NULL
 * if it has none (not a guarded connection). */
struct guard_slot {
	void *data;
	void (*free)(void *data);
};
struct guard_slot *guard_slot_of(h2o_req_t *req);

#endif
