/*
 * h2drain.c - the start of a worker's drain for its HTTP/2 connections
 * (see h2drain.h).  Owns this one decision, made inside libh2o 2.2.5's
 * HTTP/2 connection list, so that the rest of the worker never reads
 * h2o's internal structs.
 *
 * libh2o's graceful shutdown (lib/http2/connection.c) follows RFC 9113
 * 6.8: every HTTP/2 connection gets GOAWAY with last-stream-id 2^31-1 at
 * once ("start no new stream"), then a second later a GOAWAY naming the
 * last stream it opened, and is closed when those are answered.  A
 * connection whose TLS handshake (or h2c preface) has just ended has had
 * h2o's SETTINGS and nothing else; its client (curl 7.88 with nghttp2
 * 1.52, Debian 12's) has its first request on the way, which the first
 * GOAWAY covers.  esgate answers it (traced on 4d00df8: access log 200
 * for each failed transfer; strace: the answer written after the request
 * was read, then the client's EOF), but curl gives that request up the
 * moment the GOAWAY arrives and reports "(52) Empty reply from server":
 * its Curl_retry_request() retries a request that got nothing only on a
 * connection it reused, never on a new one.  On 4d00df8, with 4 loops of
 * `curl --http2` (3 URLs, one new TLS connection per run) across 30 HUPs:
 * 4 to 11 such failures per ~700-1,400 runs, every one the first request
 * of its run (tests/integration/test_h2_drain.py).
 *
 * The worker sends its GOAWAY WORKER_GOAWAY_DELAY (250 ms) after it
 * stopped accepting (worker.c), which lets a fresh connection's first
 * request in first; a connection that still has no stream then (a slow
 * handshake, a client that waits) is left out of the first GOAWAY here:
 * it serves the requests it gets for another second, as one whose
 * handshake ends after the first GOAWAY always did, and h2o's second
 * GOAWAY (the real last stream, then the close once answered) ends it.
 * The RFC's first GOAWAY is a SHOULD; a client that opened no stream
 * loses nothing by not getting it.
 *
 * The connections are told apart by h2o_http2_conn_t's state and
 * pull_stream_ids.max_open (http2_internal.h): build-time version check
 * below; initiate_graceful_shutdown() skips a connection whose state is
 * HALF_CLOSED or later, which is how one is held back (its state is put
 * back before anything else runs).
 */
#include "worker/h2drain.h"

#include <stdlib.h>

#include <h2o/http2.h> /* before http2_internal.h, which uses its types */
#include <h2o/http2_internal.h>

#include "lib/log.h"

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/h2drain.c reads libh2o 0.13.5's (h2o 2.2.5) h2o_http2_conn_t; check it before changing versions"
#endif

static int
h2drain_fresh(const h2o_http2_conn_t *conn)
{
	return conn->state == H2O_HTTP2_CONN_STATE_OPEN && conn->pull_stream_ids.max_open == 0;
}

size_t
h2drain_request_shutdown(h2o_context_t *ctx)
{
	h2o_linklist_t *node;
	h2o_http2_conn_t **held = NULL;
	size_t n = 0, i;

	for (node = ctx->http2._conns.next; node != &ctx->http2._conns; node = node->next)
		n += h2drain_fresh(H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node));
	if (n != 0 && (held = calloc(n, sizeof(*held))) == NULL) {
		log_warn("HTTP/2 drain: every connection gets GOAWAY now");
		n = 0;
	}
	i = 0;
	for (node = ctx->http2._conns.next; node != &ctx->http2._conns && i < n; node = node->next) {
		h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node);
		if (h2drain_fresh(conn)) {
			conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
			held[i++] = conn;
		}
	}
	h2o_context_request_shutdown(ctx);
	for (i = 0; i < n; i++)
		held[i]->state = H2O_HTTP2_CONN_STATE_OPEN;
	free(held);
	return n;
}
