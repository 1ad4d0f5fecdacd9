/*
 * guard.c - client limits around libh2o 2.2.5 (see guard.h).
 *
 * How the guard stays in front of h2o.  h2o's evloop reads what the kernel
 * has into sock->input, then calls sock->_cb.read; h2o sets that callback
 * with h2o_socket_read_start() and never reads it back.  The guard puts
 * its own function there and calls h2o's from it:
 *   - HTTP/1.1: h2o_accept() leaves http1.c's reqread_on_read in place;
 *     the guard learns that pointer from the first connection, and puts it
 *     back in front of it after every request, because h2o sets it again
 *     when it starts reading the next one (request end -> zero timeout,
 *     which runs after h2o's own on_send_complete).
 *   - HTTP/2: h2o sets http2/connection.c's on_read once per connection
 *     (prior knowledge: from inside reqread_on_read, which the guard is
 *     wrapping, so it takes it over on the way back; Upgrade: h2c: at the
 *     first request).  The frames already read are checked before h2o sees
 *     any of them, the preface's batch included.
 * Each connection's guard also carries one slot for the request handler
 * (guard_slot_of: the auth stage's memo of the connection's credential),
 * freed with the connection.
 * A request body counts against h2_body_buffer from its first DATA until
 * h2o closes its stream (it keeps the body whole until then, answered or
 * not): this file defines h2o_http2_stream_close(), which libh2o calls
 * through its PLT (Debian's build lets it be interposed, as
 * worker/h2odate.c's h2o_mem_link_shared), notes the close and calls
 * libh2o's own, found with dlsym(RTLD_NEXT).  guard_new checks that the
 * dynamic linker's symbol is this one; if not, bodies count only until
 * their END_STREAM, as before (logged).
 * A body past h2o's per-stream cap: h2o resets the stream with
 * REFUSED_STREAM, which tells a client the request was not processed and
 * may be sent again (curl does, five times, then fails with no status).
 * The guard sees the DATA that crosses the cap and, through the same kind
 * of interposition (h2o_http2__encode_rst_stream_frame, while h2o reads
 * that connection), answers 413 with esgate's JSON error instead.  Then,
 * as nginx does, no RST_STREAM NO_ERROR (curl 7.88 and Chrome take it for
 * a failure while they upload): the stream's window is opened to the
 * maximum and the rest of the body is dropped by h2o without the
 * STREAM_CLOSED resets it would send for it (the guard drops those).
 * An HTTP/1.1 client that hangs up while its request is out: h2o 2.2.5
 * does not read the connection meanwhile, so it would notice only when the
 * answer is written, and the upstream request (a long search) would run to
 * its end for nobody.  Every GUARD_GONE_MS while a request is out, the
 * guard asks the kernel the connection's TCP state (TCP_INFO, one system
 * call, nothing registered): once the client's FIN or RST has come, and no
 * write is in flight, the connection is closed as below; the request's
 * disposal cancels the upstream request and logs 499.  As nginx does, a
 * FIN counts even from a client that only shut its sending side.  A
 * request answered within GUARD_GONE_MS costs a timer link and unlink.
 * Closing is h2o's: the guard calls h2o's own read callback with an error,
 * which makes h2o close the connection and free everything it holds (its
 * close_connection is static).  Timers are h2o timeouts, so that they run
 * inside h2o's run, as h2o's own do.
 */
#include "worker/guard.h"

#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <h2o/http2.h> /* before http2_internal.h, which uses its types */
#include <h2o/http2_internal.h>

#include "lib/hpacksize.h"
#include "lib/log.h"

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/guard.c reads libh2o 0.13.5's (h2o 2.2.5) h2o_http2_conn_t and read callbacks; check them before changing versions"
#endif

#define GUARD_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define GUARD_H2_PREFACE_LEN 24
#define GUARD_H2_MAX_FRAME 16384 /* h2o's SETTINGS_MAX_FRAME_SIZE */
#define GUARD_H2_TABLE 4096      /* h2o's SETTINGS_HEADER_TABLE_SIZE */
#define GUARD_DRAIN_MAX (1024 * 1024)
#define GUARD_GONE_MS 250    /* how often a pending HTTP/1.1 request's client is looked at */
#define GUARD_MAX_BODIES 512 /* streams with bodies held per connection (h2o announces 100) */
#define GUARD_MAX_OVER 8     /* streams past h2o's body cap remembered for their 413 */
#define GUARD_ANSWERED 0x80000000u /* over[]: the 413 went out (stream ids have 31 bits) */

enum guard_proto { GUARD_H1, GUARD_H2 };

/* What was refused, for the log (one line per kind every 10 s at most). */
enum guard_kind {
	GUARD_K_PER_ADDRESS = METRICS_LIMIT_PER_ADDRESS,
	GUARD_K_HEAD_SIZE = METRICS_LIMIT_HEAD_SIZE,
	GUARD_K_HEAD_TIMEOUT = METRICS_LIMIT_HEAD_TIMEOUT,
	GUARD_K_H2_HEADERS = METRICS_LIMIT_H2_HEADERS,
	GUARD_K_H2_STREAMS = METRICS_LIMIT_H2_STREAMS,
	GUARD_K_H2_RESETS = METRICS_LIMIT_H2_RESETS,
	GUARD_K_H2_BODY = METRICS_LIMIT_H2_BODY,
	GUARD_K_N = METRICS_LIMIT_COUNT
};

static const char *const guard_kind_text[GUARD_K_N] = {
    "connection(s) over max_connections_per_address",
    "request head(s) over max_header_size (HTTP/1.1)",
    "request head(s) not complete within header_timeout",
    "HTTP/2 header list(s) over max_header_size",
    "HTTP/2 connection(s) over h2_max_streams",
    "HTTP/2 connection(s) over h2_max_resets (rapid reset)",
    "HTTP/2 connection(s) over h2_body_buffer (request bodies held)",
};

struct guard {
	h2o_context_t *ctx;
	const struct config *cfg;
	const struct config_limits *lim;
	struct ratelimit *rl;
	struct metrics_shard *metrics; /* this worker's shard */
	h2o_timeout_t head_timeout;
	h2o_timeout_t gone_timeout; /* GUARD_GONE_MS: HTTP/1.1 clients with a request out */
	h2o_socket_cb h1_read; /* http1.c's reqread_on_read, learnt */
	h2o_socket_cb h2_read; /* http2/connection.c's on_read, learnt */
	h2o_socket_cb tls_handshake; /* socket.c's proceed_handshake, learnt */
	h2o_linklist_t conns;  /* every attached guard_conn (guard_close_idle) */
	int h2_broken;         /* h2o_http2_conn_t is not what this was built for: HTTP/2 unguarded */
	int close_hooked;      /* h2o's stream closes reach guard_stream_closed: ended bodies stay counted */
	int rst_hooked;        /* h2o's RST_STREAM frames pass guard_h2_413: a body past the cap is a 413 */
	uint64_t body_budget;  /* h2_body_buffer, at least entity_max; 0 = none */
	uint64_t entity_max;   /* h2o's per-stream body cap (worker/http.c's max_request_entity_size) */
	uint64_t refused[GUARD_K_N];
	uint64_t logged_at[GUARD_K_N];
	guard_refused_cb on_refused; /* guard_on_refused's */
	void *on_refused_arg;
};

struct guard_conn {
	struct guard *g;
	h2o_linklist_t link;     /* in g->conns from guard_attach to the close */
	h2o_socket_t *sock;
	int fd;
	enum guard_proto proto;
	int in_cb;  /* inside one of our read callbacks: a close only marks */
	int closed; /* h2o closed the socket while in_cb */
	struct ratelimit_addr addr;
	int counted; /* addr holds one of the per-address counts */
	void (*on_close)(void *data);
	void *on_close_data;
	int tls_phase;           /* a TLS connection still in its handshake */
	h2o_socket_cb tls_read;  /* h2o's handshake callbacks we stand in front of */
	h2o_socket_cb tls_write;
	int busy;                /* an HTTP/1.1 request is being answered (no head to time) */
	char *answer;            /* a refusal being written through h2o's TLS, then closed */
	h2o_timeout_entry_t head_timer; /* linked while a request head is incomplete */
	h2o_timeout_entry_t rewrap;     /* an HTTP/1.1 answer was sent: guard the next request */
	h2o_timeout_entry_t gone_timer; /* linked while busy: is the client still there? */
	/* HTTP/2 */
	struct hpacksize *hpack; /* the decoded size of header blocks */
	size_t scanned;          /* bytes at the start of sock->input already checked */
	size_t preface_left;     /* connection preface bytes not yet seen */
	int in_block;            /* inside HEADERS..CONTINUATION without END_HEADERS */
	int settings_queued;     /* our SETTINGS frame is behind h2o's */
	unsigned settings_acks;  /* SETTINGS ACKs from the client (ours is the second) */
	uint32_t max_stream;     /* highest stream id the client opened */
	uint64_t resets;         /* RST_STREAM frames in this window */
	uint64_t reset_window;   /* its start, h2o's clock (ms) */
	struct guard_body *bodies; /* streams whose request body h2o holds */
	size_t nbodies, capbodies;
	uint64_t body_held;      /* the sum of their DATA payloads */
	uint32_t h2o_opened;     /* streams h2o opened before the guard took over (TLS, h2c) */
	uint32_t over[GUARD_MAX_OVER]; /* streams whose body crossed h2o's cap (| GUARD_ANSWERED once answered 413) */
	unsigned nover;          /* entries written to over[], a ring */
	struct guard_slot slot;  /* the request handler's (guard_slot_of) */
	void *req_arg;           /* the HTTP/1 request being served: guard_request_set/take */
	h2o_req_t *req;          /* that request (h2o's) while busy: guard_close_idle */
	uint64_t idle_since;     /* h2o's clock (ms) at the accept or the last answer's end */
};

/* One stream whose request body h2o is buffering (h2o 2.2.5 holds it,
 * whole, in stream->_req_body until the stream closes; its handler runs
 * at END_STREAM).  Counted until h2o closes the stream
 * (guard_stream_closed), an ended body too: its answer may wait for a
 * client that does not read it. */
struct guard_body {
	uint32_t sid;
	int ended;      /* its END_STREAM went to h2o: only the stream's close ends it */
	int late;       /* first seen at a DATA of a stream h2o opened before the guard: ends at END_STREAM */
	uint64_t bytes; /* DATA payload (without padding, as h2o keeps it) since its HEADERS */
};

static void guard_h1_on_read(h2o_socket_t *sock, const char *err);
static void guard_h2_on_read(h2o_socket_t *sock, const char *err);
static void guard_tls_on_read(h2o_socket_t *sock, const char *err);
static void guard_tls_on_write(h2o_socket_t *sock, const char *err);

static void
guard_note(struct guard *g, enum guard_kind k)
{
	uint64_t now = h2o_now(g->ctx->loop);

	/* enum guard_kind is enum metrics_limit, in the same order */
	metrics_inc(&g->metrics->limits_refused[k]);
	g->refused[k]++;
	if (g->logged_at[k] == 0 || now - g->logged_at[k] >= 10000) {
		log_info("refused %llu %s", (unsigned long long)g->refused[k], guard_kind_text[k]);
		g->refused[k] = 0;
		g->logged_at[k] = now;
	}
}

static struct guard_conn *
guard_conn_of(h2o_socket_t *sock);

/* ---- closing ------------------------------------------------------------------ */

static void
guard_on_close(void *data)
{
	struct guard_conn *gc = data;

	h2o_timeout_unlink(&gc->head_timer);
	h2o_timeout_unlink(&gc->rewrap);
	h2o_timeout_unlink(&gc->gone_timer);
	if (h2o_linklist_is_linked(&gc->link))
		h2o_linklist_unlink(&gc->link);
	if (gc->counted)
		ratelimit_conn_leave(gc->g->rl, &gc->addr, h2o_now(gc->g->ctx->loop));
	gc->counted = 0;
	gc->sock = NULL;
	if (gc->on_close != NULL)
		gc->on_close(gc->on_close_data);
	if (gc->slot.free != NULL)
		gc->slot.free(gc->slot.data);
	gc->slot.free = NULL;
	gc->slot.data = NULL;
	if (gc->in_cb) {
		gc->closed = 1; /* freed when the callback returns */
		return;
	}
	free(gc->hpack);
	free(gc->bodies);
	free(gc->answer);
	free(gc);
}

static struct guard_conn *
guard_conn_of(h2o_socket_t *sock)
{
	return sock->on_close.cb == guard_on_close ? sock->on_close.data : NULL;
}

void
guard_on_refused(struct guard *g, guard_refused_cb cb, void *arg)
{
	g->on_refused = cb;
	g->on_refused_arg = arg;
}

/* SOCK's head was answered STATUS in BYTES. */
static void
guard_refused(h2o_socket_t *sock, int status, size_t bytes)
{
	struct guard_conn *gc = guard_conn_of(sock);
	struct sockaddr_storage peer;
	socklen_t len;

	if (gc != NULL && gc->g->on_refused != NULL) {
		len = h2o_socket_getpeername(sock, (struct sockaddr *)&peer);
		gc->g->on_refused(gc->g->on_refused_arg, (struct sockaddr *)&peer, len, status, bytes);
	}
}

/* Calls h2o's read callback CB for GC's socket; 1 if the connection was
 * closed meanwhile (GC is then freed: touch nothing). */
static int
guard_call(struct guard_conn *gc, h2o_socket_cb cb, const char *err)
{
	gc->in_cb++;
	cb(gc->sock, err);
	gc->in_cb--;
	if (gc->closed && gc->in_cb == 0) {
		free(gc->hpack);
		free(gc->bodies);
		free(gc->answer);
		free(gc);
		return 1;
	}
	return gc->closed;
}

/* Reads and drops what the client has already sent (at most 1 MiB): a
 * close with unread input is a reset, which can destroy the answer just
 * written before the client reads it. */
static void
guard_drain(int fd)
{
	static char scratch[65536]; /* TCP's MSG_TRUNC copies nothing into it; valgrind wants a buffer */
	size_t total = 0;
	ssize_t n;

	while (total < GUARD_DRAIN_MAX && (n = recv(fd, scratch, sizeof(scratch), MSG_TRUNC | MSG_DONTWAIT)) > 0)
		total += (size_t)n;
}

/* Writes a complete HTTP/1.1 answer straight to FD (nothing else is being
 * written on it: h2o is waiting for a request head).  Not on a TLS
 * connection (TLS: 0), which is closed without one. */
#define GUARD_ANSWER_MAX 512

/* A complete HTTP/1.1 error answer in MSG (GUARD_ANSWER_MAX bytes): its
 * length, 0 if it did not fit. */
static size_t
guard_answer(char *msg, int status, const char *text, const char *type, const char *reason)
{
	char body[256];
	int blen, mlen;

	blen = snprintf(body, sizeof(body), "{\"error\":{\"type\":\"%s\",\"reason\":\"%s\"},\"status\":%d}\n", type,
	                reason, status);
	mlen = snprintf(msg, GUARD_ANSWER_MAX,
	                "HTTP/1.1 %d %s\r\nServer: esgate\r\nContent-Type: application/json; charset=UTF-8\r\n"
	                "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
	                status, text, blen, body);
	return mlen > 0 && mlen < GUARD_ANSWER_MAX ? (size_t)mlen : 0;
}

/* The bytes of the answer that reached the socket (0: none). */
static size_t
guard_send_raw(int fd, int tls, int status, const char *text, const char *type, const char *reason)
{
	char msg[GUARD_ANSWER_MAX];
	size_t n;
	ssize_t sent;

	if (tls)
		return 0; /* before the handshake: nothing can be said */
	if ((n = guard_answer(msg, status, text, type, reason)) == 0)
		return 0;
	sent = send(fd, msg, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	return sent > 0 ? (size_t)sent : 0;
}

/* ---- h2o's stream closes ------------------------------------------------------- */

typedef void (*stream_close_fn)(h2o_http2_conn_t *, h2o_http2_stream_t *);
typedef void (*encode_rst_fn)(h2o_buffer_t **, uint32_t, int);

static struct {
	struct guard *g;            /* the worker's guard, from guard_new on */
	stream_close_fn real;       /* libh2o's own, found by guard_new */
	encode_rst_fn rst_real;     /* the same */
	struct guard_conn *reading; /* the HTTP/2 connection h2o is reading (guard_h2_on_read) */
} guard_hook;

static void guard_stream_closed(h2o_http2_conn_t *conn, uint32_t sid);
static int guard_h2_413(struct guard_conn *gc, h2o_buffer_t **buf, uint32_t sid, int refused);

/* libh2o's calls (lib/http2/connection.c and stream.c: a stream answered,
 * reset, or its connection closing, streams first, then the socket), all
 * on HTTP/2 connections, which come after guard_new. */
void
h2o_http2_stream_close(h2o_http2_conn_t *conn, h2o_http2_stream_t *stream)
{
	if (guard_hook.g != NULL && !guard_hook.g->h2_broken)
		guard_stream_closed(conn, stream->stream_id);
	if (guard_hook.real == NULL)
		abort(); /* not reached: guard_new found it before any connection */
	guard_hook.real(conn, stream);
}

/* libh2o's RST_STREAM frames (lib/http2/connection.c's stream_send_error,
 * always into the connection's _write.buf; ERRNUM is the positive code). */
void
h2o_http2__encode_rst_stream_frame(h2o_buffer_t **buf, uint32_t stream_id, int errnum)
{
	struct guard_conn *gc = guard_hook.reading;

	if (gc != NULL && (errnum == -H2O_HTTP2_ERROR_REFUSED_STREAM || errnum == -H2O_HTTP2_ERROR_STREAM_CLOSED) &&
	    guard_h2_413(gc, buf, stream_id, errnum == -H2O_HTTP2_ERROR_REFUSED_STREAM))
		return;
	if (guard_hook.rst_real == NULL)
		abort(); /* not reached: guard_new found it before any connection */
	guard_hook.rst_real(buf, stream_id, errnum);
}

/* Finds libh2o's own h2o_http2_stream_close and
 * h2o_http2__encode_rst_stream_frame (the next definitions after this
 * file's); 0 if libh2o's calls of each land in this file's and its own is
 * there to pass them on to. */
static int
guard_hook_stream_close(struct guard *g)
{
	stream_close_fn found = (stream_close_fn)dlsym(RTLD_DEFAULT, "h2o_http2_stream_close");
	encode_rst_fn rst = (encode_rst_fn)dlsym(RTLD_DEFAULT, "h2o_http2__encode_rst_stream_frame");

	guard_hook.g = g;
	guard_hook.real = (stream_close_fn)dlsym(RTLD_NEXT, "h2o_http2_stream_close");
	guard_hook.rst_real = (encode_rst_fn)dlsym(RTLD_NEXT, "h2o_http2__encode_rst_stream_frame");
	g->rst_hooked = rst == h2o_http2__encode_rst_stream_frame && guard_hook.rst_real != NULL;
	g->close_hooked = found == h2o_http2_stream_close && guard_hook.real != NULL;
	return g->rst_hooked && g->close_hooked ? 0 : -1;
}

/* ---- admission ---------------------------------------------------------------- */

struct guard *
guard_new(h2o_context_t *ctx, const struct config *cfg, struct ratelimit *rl, struct metrics_shard *metrics)
{
	struct guard *g = calloc(1, sizeof(*g));

	if (g == NULL)
		log_fatal("calloc");
	g->ctx = ctx;
	g->cfg = cfg;
	g->lim = &cfg->limits;
	g->rl = rl;
	g->metrics = metrics;
	h2o_timeout_init(ctx->loop, &g->head_timeout, cfg->limits.header_timeout_ms);
	h2o_timeout_init(ctx->loop, &g->gone_timeout, GUARD_GONE_MS);
	h2o_linklist_init_anchor(&g->conns);
	/* the per-stream cap h2o enforces (worker/http.c, http_configure) */
	g->entity_max = ctx->globalconf->max_request_entity_size;
	/* never below what h2o lets one stream hold: one upload alone is never cut */
	g->body_budget = cfg->limits.h2_body_buffer;
	if (g->body_budget != 0 && g->body_budget < g->entity_max)
		g->body_budget = g->entity_max;
	if (guard_hook_stream_close(g) != 0)
		log_errorx("h2o_http2_stream_close or h2o_http2__encode_rst_stream_frame is not esgate's, or"
		           " libh2o's is missing: a request body counts against h2_body_buffer only until its"
		           " END_STREAM, and one past the cap is refused (REFUSED_STREAM), not answered 413");
	return g;
}

struct guard_conn *
guard_admit(struct guard *g, int fd, const struct sockaddr *peer, socklen_t peerlen, int tls)
{
	struct guard_conn *gc = calloc(1, sizeof(*gc));

	if (gc == NULL) {
		close(fd);
		return NULL;
	}
	gc->g = g;
	gc->fd = fd;
	if (g->lim->max_connections_per_address > 0 && peer != NULL &&
	    ratelimit_addr_from_sockaddr(peer, &gc->addr) == 0 &&
	    !ratelimit_cidr_match(g->cfg->trusted_proxies, g->cfg->ntrusted_proxies, &gc->addr)) {
		switch (ratelimit_conn_enter(g->rl, &gc->addr, g->lim->max_connections_per_address,
		                             h2o_now(g->ctx->loop))) {
		case 1:
			gc->counted = 1;
			break;
		case 0: {
			size_t n = guard_send_raw(fd, tls, 503, "Service Unavailable", "too_many_connections",
			                          "this address has max_connections_per_address connections open");

			guard_drain(fd);
			close(fd);
			free(gc);
			guard_note(g, GUARD_K_PER_ADDRESS);
			if (g->on_refused != NULL)
				g->on_refused(g->on_refused_arg, peer, peerlen, 503, n);
			return NULL;
		}
		default:
			break;
		}
	}
	return gc;
}

/* ---- HTTP/1.1 ----------------------------------------------------------------- */

static void
guard_on_head_timeout(h2o_timeout_entry_t *entry)
{
	struct guard_conn *gc = H2O_STRUCT_FROM_MEMBER(struct guard_conn, head_timer, entry);
	struct guard *g = gc->g;

	guard_note(g, GUARD_K_HEAD_TIMEOUT);
	if (gc->proto == GUARD_H1) {
		guard_call(gc, g->h1_read, "request head timeout");
		return;
	}
	{
		h2o_http2_conn_t *conn = gc->sock->data;

		if (conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING) {
			h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open,
			                              H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM,
			                              h2o_iovec_init(H2O_STRLIT("header block timeout")));
			h2o_http2_conn_request_write(conn);
			conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
		}
		guard_call(gc, g->h2_read, "header block timeout");
	}
}

static void
guard_head_timer(struct guard_conn *gc, int on)
{
	if (on && !h2o_timeout_is_linked(&gc->head_timer))
		h2o_timeout_link(gc->g->ctx->loop, &gc->g->head_timeout, &gc->head_timer);
	else if (!on)
		h2o_timeout_unlink(&gc->head_timer);
}

/* 1 if the request head at the start of P (leading empty lines skipped,
 * as h2o's parser does) ends within LIMIT bytes. */
static int
guard_h1_head_complete(const char *p, size_t n, size_t limit)
{
	const char *end, *nl;
	size_t skip = 0;

	while (skip < n && (p[skip] == '\r' || p[skip] == '\n'))
		skip++;
	p += skip;
	n -= skip;
	/* the usual case, one whole request read: it ends with a blank line
	 * (so the first blank line, wherever it is, is within reach) */
	if (n >= 4 && n <= limit + 3 && memcmp(p + n - 4, "\r\n\r\n", 4) == 0)
		return 1;
	end = p + (n < limit + 3 ? n : limit + 3);
	for (const char *q = p; q < end && (nl = memchr(q, '\n', (size_t)(end - q))) != NULL; q = nl + 1) {
		if (nl + 1 < end && nl[1] == '\n')
			return 1;
		if (nl + 2 < end && nl[1] == '\r' && nl[2] == '\n')
			return 1;
	}
	return 0;
}

static void guard_h2_take_over(struct guard_conn *gc);
static int guard_h2_scan(struct guard_conn *gc, h2o_http2_conn_t *conn);
static void guard_h1_refuse(struct guard_conn *gc);

/* A refusal written over TLS: h2o closes the connection now. */
static void
guard_on_answer_written(h2o_socket_t *sock, const char *err)
{
	struct guard_conn *gc = guard_conn_of(sock);

	if (gc != NULL && gc->g->h1_read != NULL)
		guard_call(gc, gc->g->h1_read, err != NULL ? err : "request head too large");
}

static void
guard_h1_on_read(h2o_socket_t *sock, const char *err)
{
	struct guard_conn *gc = guard_conn_of(sock);
	struct guard *g;
	h2o_buffer_t *in = sock->input;

	if (gc == NULL || gc->g->h1_read == NULL) /* cannot happen: we were installed by attach */
		return;
	g = gc->g;
	if (err != NULL || in->size == 0) {
		guard_call(gc, g->h1_read, err);
		return;
	}
	if (in->size >= 14 && memcmp(in->bytes, GUARD_H2_PREFACE, 14) == 0) {
		/* HTTP/2 with prior knowledge: h2o switches over inside this
		 * call and parses every frame already read: check them first */
		gc->proto = GUARD_H2;
		gc->preface_left = GUARD_H2_PREFACE_LEN;
		gc->scanned = 0;
		guard_head_timer(gc, 0);
		if (!g->h2_broken && guard_h2_scan(gc, NULL) != 0) {
			static const uint8_t goaway[] = {0, 0, 0, 4, 0, 0, 0, 0, 0,            /* SETTINGS */
			                                 0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* GOAWAY, last 0 */
			                                 0, 0, 0, 0x0b};                        /* ENHANCE_YOUR_CALM */
			if (sock->ssl == NULL)
				(void)send(gc->fd, goaway, sizeof(goaway), MSG_NOSIGNAL | MSG_DONTWAIT);
			guard_drain(gc->fd);
			guard_call(gc, g->h1_read, "refused HTTP/2 preface batch");
			return;
		}
		{
			size_t before = in->size;

			if (guard_call(gc, g->h1_read, NULL))
				return;
			if (sock->_cb.read == g->h1_read) { /* not switched after all */
				gc->proto = GUARD_H1;
				return;
			}
			gc->scanned -= before - sock->input->size < gc->scanned ? before - sock->input->size : gc->scanned;
			guard_h2_take_over(gc);
		}
		return;
	}
	if (guard_h1_head_complete(in->bytes, in->size, g->lim->max_header_size)) {
		guard_head_timer(gc, 0);
	} else if (in->size > g->lim->max_header_size) {
		guard_h1_refuse(gc);
		return;
	} else {
		guard_head_timer(gc, 1);
	}
	guard_call(gc, g->h1_read, NULL);
}

/* The head at the start of GC's input has no end within max_header_size:
 * 431, then h2o closes the connection (GC may be gone on return). */
static void
guard_h1_refuse(struct guard_conn *gc)
{
	struct guard *g = gc->g;
	h2o_socket_t *sock = gc->sock;
	char reason[96];

	guard_head_timer(gc, 0);
	snprintf(reason, sizeof(reason), "the request head is larger than %llu bytes",
	         (unsigned long long)g->lim->max_header_size);
	guard_note(g, GUARD_K_HEAD_SIZE);
	if (sock->ssl != NULL && sock->_cb.write == NULL && gc->answer == NULL &&
	    (gc->answer = malloc(GUARD_ANSWER_MAX)) != NULL) {
		/* over TLS the answer goes through h2o's writer; closed once written */
		h2o_iovec_t v = h2o_iovec_init(gc->answer, guard_answer(gc->answer, 431, "Request Header Fields Too Large",
		                                                        "request_header_fields_too_large", reason));
		h2o_socket_read_stop(sock);
		guard_drain(gc->fd);
		guard_refused(sock, 431, v.len);
		h2o_socket_write(sock, &v, 1, guard_on_answer_written);
		return;
	}
	guard_refused(sock, 431,
	              guard_send_raw(gc->fd, sock->ssl != NULL, 431, "Request Header Fields Too Large",
	                             "request_header_fields_too_large", reason));
	guard_drain(gc->fd);
	guard_call(gc, g->h1_read, "request head too large");
}

/* h2o set its own read callback again for the next request: back in front. */
static void
guard_on_rewrap(h2o_timeout_entry_t *entry)
{
	struct guard_conn *gc = H2O_STRUCT_FROM_MEMBER(struct guard_conn, rewrap, entry);

	if (gc->sock == NULL)
		return;
	if (gc->proto == GUARD_H1 && gc->sock->_cb.read == gc->g->h1_read)
		gc->sock->_cb.read = guard_h1_on_read;
}

/* GUARD_GONE_MS into an HTTP/1.1 request, and every GUARD_GONE_MS after:
 * if the client has hung up (its FIN or RST came: the connection is no
 * longer ESTABLISHED), close the connection, which cancels the request;
 * else look again later.  Not while h2o writes to it (the write ends or
 * fails by itself), nor on a socket without TCP_INFO (Unix). */
static void
guard_on_gone_check(h2o_timeout_entry_t *entry)
{
	struct guard_conn *gc = H2O_STRUCT_FROM_MEMBER(struct guard_conn, gone_timer, entry);
	struct guard *g = gc->g;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (gc->sock == NULL || !gc->busy || gc->proto != GUARD_H1 || g->h1_read == NULL)
		return;
	if (getsockopt(gc->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return;
	if (ti.tcpi_state == TCP_ESTABLISHED || h2o_socket_is_writing(gc->sock)) {
		h2o_timeout_link(g->ctx->loop, &g->gone_timeout, &gc->gone_timer);
		return;
	}
	guard_call(gc, g->h1_read, "client closed the connection");
}

void
guard_request_done(void *arg)
{
	struct guard_conn *gc = arg;

	if (gc == NULL || gc->sock == NULL)
		return;
	gc->busy = 0;
	gc->req = NULL;
	h2o_timeout_unlink(&gc->gone_timer);
	gc->idle_since = h2o_now(gc->g->ctx->loop);
	if (!h2o_timeout_is_linked(&gc->rewrap))
		h2o_timeout_link(gc->g->ctx->loop, &gc->g->ctx->zero_timeout, &gc->rewrap);
}

void
guard_attach(struct guard_conn *gc, h2o_socket_t *sock, void (*on_close)(void *data), void *data)
{
	struct guard *g = gc->g;

	gc->sock = sock;
	gc->on_close = on_close;
	gc->on_close_data = data;
	gc->head_timer.cb = guard_on_head_timeout;
	gc->rewrap.cb = guard_on_rewrap;
	gc->gone_timer.cb = guard_on_gone_check;
	h2o_linklist_insert(&g->conns, &gc->link);
	gc->idle_since = h2o_now(g->ctx->loop);
	sock->on_close.cb = guard_on_close;
	sock->on_close.data = gc;
	if (sock->ssl != NULL) {
		/* in its handshake: the guard stands in front of h2o's handshake
		 * callback until h2o hands the socket to HTTP/1.1 or HTTP/2 */
		gc->tls_phase = 1;
		if (g->tls_handshake == NULL)
			g->tls_handshake = sock->_cb.read; /* socket.c's proceed_handshake */
		if (sock->_cb.read != NULL) {
			gc->tls_read = sock->_cb.read;
			sock->_cb.read = guard_tls_on_read;
		}
		return;
	}
	if (g->h1_read == NULL)
		g->h1_read = sock->_cb.read; /* http1.c's reqread_on_read, set by h2o_accept */
	if (sock->_cb.read == g->h1_read) {
		gc->proto = GUARD_H1;
		sock->_cb.read = guard_h1_on_read;
		guard_head_timer(gc, 1); /* the first request: from the connection */
	}
}

/* After one of h2o's handshake callbacks returned: still shaking hands
 * (get in front of what it set for the next read or write), or done, the
 * socket now HTTP/1.1's or HTTP/2's (by ALPN): the guard takes it from
 * there.  What h2o parsed in the very call that ended the handshake (data
 * decrypted with its last bytes) went unchecked (RELIABILITY.md). */
static void
guard_tls_after(struct guard_conn *gc)
{
	struct guard *g = gc->g;
	h2o_socket_t *sock = gc->sock;
	h2o_socket_cb now = sock->_cb.read;
	h2o_iovec_t alpn;

	if (!gc->tls_phase || now == guard_h1_on_read || now == guard_h2_on_read)
		return; /* taken over meanwhile (a request arrived with the handshake) */
	if (now == NULL || now == g->tls_handshake || now == guard_tls_on_read) {
		/* still shaking hands: reading again, or writing first */
		if (now == g->tls_handshake) {
			gc->tls_read = now;
			sock->_cb.read = guard_tls_on_read;
		}
		if (sock->_cb.write != NULL && sock->_cb.write != guard_tls_on_write) {
			gc->tls_write = sock->_cb.write;
			sock->_cb.write = guard_tls_on_write;
		}
		return;
	}
	gc->tls_phase = 0;
	alpn = h2o_socket_ssl_get_selected_protocol(sock);
	if (alpn.len == 2 && memcmp(alpn.base, "h2", 2) == 0) {
		h2o_http2_conn_t *conn = sock->data;

		gc->scanned = 0;
		/* h2o has queued its SETTINGS once it has read the client's preface */
		gc->preface_left = conn != NULL && conn->sock == sock &&
		                           (conn->_write.buf->size != 0 || conn->_write.buf_in_flight != NULL)
		                       ? 0
		                       : GUARD_H2_PREFACE_LEN;
		guard_h2_take_over(gc);
		return;
	}
	if (g->h1_read == NULL)
		g->h1_read = now;
	if (now == g->h1_read) {
		gc->proto = GUARD_H1;
		sock->_cb.read = guard_h1_on_read;
		if (gc->busy)
			return;
		/* h2o may already hold a head that came with the handshake */
		if (!guard_h1_head_complete(sock->input->bytes, sock->input->size, g->lim->max_header_size) &&
		    sock->input->size > g->lim->max_header_size) {
			guard_h1_refuse(gc);
			return;
		}
		guard_head_timer(gc, 1);
	}
}

static void
guard_tls_on_read(h2o_socket_t *sock, const char *err)
{
	struct guard_conn *gc = guard_conn_of(sock);
	h2o_socket_cb cb;

	if (gc == NULL || (cb = gc->tls_read) == NULL)
		return;
	gc->tls_read = NULL;
	if (guard_call(gc, cb, err))
		return;
	guard_tls_after(gc);
}

static void
guard_tls_on_write(h2o_socket_t *sock, const char *err)
{
	struct guard_conn *gc = guard_conn_of(sock);
	h2o_socket_cb cb;

	if (gc == NULL || (cb = gc->tls_write) == NULL)
		return;
	gc->tls_write = NULL;
	if (guard_call(gc, cb, err))
		return;
	guard_tls_after(gc);
}

/* ---- HTTP/2 --------------------------------------------------------------------- */

/* Queues a GOAWAY with ERRNUM behind what h2o has to write, and has h2o
 * close the connection once it is written.  1: GC is gone. */
static int
guard_h2_refuse(struct guard_conn *gc, h2o_http2_conn_t *conn, int errnum, const char *why, enum guard_kind k)
{
	guard_note(gc->g, k);
	guard_drain(gc->fd); /* what the flood has already sent: a close over it would reset the GOAWAY */
	if (conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING) {
		h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open, errnum,
		                              h2o_iovec_init(why, strlen(why)));
		h2o_http2_conn_request_write(conn);
		conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
	}
	return guard_call(gc, gc->g->h2_read, why);
}

/* A limit is broken: -1.  With CONN (h2o's connection made) the GOAWAY is
 * queued and h2o closes the connection (GC is gone); without, the caller
 * answers and closes. */
static int
guard_h2_fail(struct guard_conn *gc, h2o_http2_conn_t *conn, int errnum, const char *why, enum guard_kind k)
{
	if (conn != NULL)
		guard_h2_refuse(gc, conn, errnum, why, k);
	else
		guard_note(gc->g, k);
	return -1;
}

/* Our SETTINGS, after h2o's (whose max_concurrent_streams it overrides):
 * the header list size, and the streams when fewer than h2o's 100. */
static void
guard_h2_settings(struct guard_conn *gc, h2o_http2_conn_t *conn)
{
	const struct config_limits *lim = gc->g->lim;
	uint8_t f[9 + 12];
	size_t n = 9;
	h2o_iovec_t v;

	if (lim->h2_max_streams < 100) {
		uint32_t s = (uint32_t)lim->h2_max_streams;
		uint8_t e[6] = {0, 3, (uint8_t)(s >> 24), (uint8_t)(s >> 16), (uint8_t)(s >> 8), (uint8_t)s};
		memcpy(f + n, e, 6);
		n += 6;
	}
	{
		uint32_t s = (uint32_t)lim->max_header_size;
		uint8_t e[6] = {0, 6, (uint8_t)(s >> 24), (uint8_t)(s >> 16), (uint8_t)(s >> 8), (uint8_t)s};
		memcpy(f + n, e, 6);
		n += 6;
	}
	h2o_http2_encode_frame_header(f, n - 9, H2O_HTTP2_FRAME_TYPE_SETTINGS, 0, 0);
	v = h2o_buffer_reserve(&conn->_write.buf, n);
	memcpy(v.base, f, n);
	conn->_write.buf->size += n;
	h2o_http2_conn_request_write(conn);
	gc->settings_queued = 1;
}

/* ---- request bodies (h2_body_buffer) ----------------------------------------- */

static struct guard_body *
guard_body_find(struct guard_conn *gc, uint32_t sid)
{
	for (size_t i = 0; i < gc->nbodies; i++)
		if (gc->bodies[i].sid == sid)
			return &gc->bodies[i];
	return NULL;
}

static void
guard_body_end(struct guard_conn *gc, struct guard_body *b)
{
	gc->body_held -= b->bytes;
	*b = gc->bodies[--gc->nbodies];
}

/* The body's END_STREAM: h2o runs the handler and keeps the body until the
 * stream closes (guard_stream_closed), when the close reaches the guard. */
static void
guard_body_ended(struct guard_conn *gc, struct guard_body *b)
{
	if (gc->g->close_hooked && !b->late)
		b->ended = 1;
	else
		guard_body_end(gc, b);
}

/* h2o closes stream SID of CONN (the connection's socket is still open:
 * h2o closes the streams first). */
static void
guard_stream_closed(h2o_http2_conn_t *conn, uint32_t sid)
{
	struct guard_conn *gc;
	struct guard_body *b;

	if (conn->sock == NULL || (gc = guard_conn_of(conn->sock)) == NULL || gc->proto != GUARD_H2)
		return;
	if ((b = guard_body_find(gc, sid)) != NULL)
		guard_body_end(gc, b);
}

/* An HPACK literal header field without indexing, its name from the static
 * table (index NAME, RFC 7541 6.2.2 and Appendix A): no table changes. */
static uint8_t *
guard_hpack_literal(uint8_t *dst, unsigned name, const char *value, size_t len)
{
	if (name < 15) {
		*dst++ = (uint8_t)name;
	} else {
		*dst++ = 0x0f;
		*dst++ = (uint8_t)(name - 15); /* every index used here is under 15 + 127 */
	}
	*dst++ = (uint8_t)len; /* values here are under 127 bytes, not Huffman-coded */
	memcpy(dst, value, len);
	return dst + len;
}

/* The slot of over[] that holds stream SID (answered or not), or -1. */
static int
guard_over_find(struct guard_conn *gc, uint32_t sid)
{
	unsigned n = gc->nover < GUARD_MAX_OVER ? gc->nover : GUARD_MAX_OVER;

	for (unsigned i = 0; i < n; i++)
		if ((gc->over[i] & ~GUARD_ANSWERED) == sid)
			return (int)i;
	return -1;
}

/* h2o is resetting stream SID of GC's connection (into BUF), REFUSED if
 * REFUSED_STREAM, else STREAM_CLOSED.  1 if the frame is not to go out:
 * SID's body crossed h2o's cap (the guard saw it) and the refusal has been
 * written as a 413 with esgate's JSON error, END_STREAM, and a
 * WINDOW_UPDATE that opens the stream's window to the maximum; or, once
 * that is done, a STREAM_CLOSED for the rest of SID's body, which h2o
 * drops.  0 to let h2o's frame go. */
static int
guard_h2_413(struct guard_conn *gc, h2o_buffer_t **buf, uint32_t sid, int refused)
{
	static const char body[] =
	    "{\"error\":{\"type\":\"request_too_large\",\"reason\":\"request body too large for this route\"},"
	    "\"status\":413}";
	h2o_http2_conn_t *conn = gc->sock->data;
	const h2o_iovec_t *server = &gc->g->ctx->globalconf->server_name;
	uint8_t block[128], *p = block;
	char clen[8];
	size_t blen, dlen = sizeof(body) - 1;
	uint32_t grow;
	int with_body, k;
	h2o_iovec_t v;

	if (!gc->g->rst_hooked || buf != &conn->_write.buf)
		return 0;
	if ((k = guard_over_find(gc, sid)) < 0 || (gc->over[k] & GUARD_ANSWERED) != (refused ? 0 : GUARD_ANSWERED))
		return 0;
	if (!refused)
		return 1; /* the rest of an answered body: h2o drops it, the client is not told */
	gc->over[k] |= GUARD_ANSWERED;
	/* the answer's DATA takes from the connection's window and the stream's,
	 * which is still its initial one: nothing has been sent on it */
	with_body = h2o_http2_window_get_window(&conn->_write.window) >= (ssize_t)dlen &&
	            conn->peer_settings.initial_window_size >= dlen;
	p = guard_hpack_literal(p, 8, "413", 3);                /* :status */
	p = guard_hpack_literal(p, 31, "application/json", 16); /* content-type */
	p = guard_hpack_literal(p, 28, clen, (size_t)snprintf(clen, sizeof(clen), "%zu", with_body ? dlen : 0));
	if (server->len > 0 && server->len < 64)
		p = guard_hpack_literal(p, 54, server->base, server->len); /* server */
	blen = (size_t)(p - block);
	v = h2o_buffer_reserve(buf, 9 + blen + (with_body ? 9 + dlen : 0) + 9 + 4);
	p = (uint8_t *)v.base;
	p = h2o_http2_encode_frame_header(p, blen, H2O_HTTP2_FRAME_TYPE_HEADERS,
	                                  H2O_HTTP2_FRAME_FLAG_END_HEADERS | (with_body ? 0 : H2O_HTTP2_FRAME_FLAG_END_STREAM),
	                                  (int32_t)sid);
	memcpy(p, block, blen);
	p += blen;
	if (with_body) {
		p = h2o_http2_encode_frame_header(p, dlen, H2O_HTTP2_FRAME_TYPE_DATA, H2O_HTTP2_FRAME_FLAG_END_STREAM,
		                                  (int32_t)sid);
		memcpy(p, body, dlen);
		p += dlen;
		h2o_http2_window_consume_window(&conn->_write.window, dlen);
	}
	/* the client's window for SID is at most the one h2o announced (h2o's
	 * updates keep it there): open it to 2^31 - 1, so that the client can
	 * finish sending what h2o now drops (nginx's answer to Chrome) */
	grow = 0x7fffffffu - H2O_HTTP2_SETTINGS_HOST.initial_window_size;
	p = h2o_http2_encode_frame_header(p, 4, H2O_HTTP2_FRAME_TYPE_WINDOW_UPDATE, 0, (int32_t)sid);
	*p++ = (uint8_t)(grow >> 24);
	*p++ = (uint8_t)(grow >> 16);
	*p++ = (uint8_t)(grow >> 8);
	*p++ = (uint8_t)grow;
	(*buf)->size += (size_t)(p - (uint8_t *)v.base);
	guard_refused(gc->sock, 413, (size_t)(p - (uint8_t *)v.base)); /* no handler saw the stream */
	return 1;
}

/* A stream opened without END_STREAM: a body follows.  0, or -1 past
 * GUARD_MAX_BODIES such streams (the client is told 100 at most; a stream
 * h2o answers early, e.g. 400 for a bad header, leaves at its close, or
 * at its END_STREAM without the close hook). */
static int
guard_body_open(struct guard_conn *gc, uint32_t sid)
{
	if (gc->nbodies == gc->capbodies) {
		size_t cap = gc->capbodies ? gc->capbodies * 2 : 16;
		struct guard_body *nb;

		if (cap > GUARD_MAX_BODIES)
			return gc->g->body_budget != 0 ? -1 : 0; /* uncounted without a budget */
		if ((nb = realloc(gc->bodies, cap * sizeof(*nb))) == NULL)
			return 0; /* uncounted, as h2o would fail to buffer it too */
		gc->bodies = nb;
		gc->capbodies = cap;
	}
	gc->bodies[gc->nbodies].sid = sid;
	gc->bodies[gc->nbodies].ended = 0;
	gc->bodies[gc->nbodies].late = 0;
	gc->bodies[gc->nbodies].bytes = 0;
	gc->nbodies++;
	return 0;
}

/* Checks the complete frames of sock->input past GC->scanned.  CONN is
 * h2o's connection (NULL before h2o has made it: the preface's batch).
 * 0 if h2o may go on; else the connection has been refused (GOAWAY queued
 * when CONN is known) and the caller must close it. */
static int
guard_h2_scan(struct guard_conn *gc, h2o_http2_conn_t *conn)
{
	struct guard *g = gc->g;
	const struct config_limits *lim = g->lim;
	const uint8_t *buf = (const uint8_t *)gc->sock->input->bytes;
	size_t size = gc->sock->input->size, pos = gc->scanned;
	uint32_t open = conn != NULL ? conn->num_streams.pull.open : 0;
	uint64_t now = h2o_now(g->ctx->loop);
	struct guard_body *b;

	if (gc->preface_left > 0) {
		size_t take = size - pos < gc->preface_left ? size - pos : gc->preface_left;
		pos += take;
		gc->preface_left -= take;
		if (gc->preface_left > 0) {
			gc->scanned = pos;
			return 0;
		}
	}
	if (gc->hpack == NULL) {
		if ((gc->hpack = malloc(sizeof(*gc->hpack))) == NULL)
			return 0;
		hpacksize_init(gc->hpack, GUARD_H2_TABLE);
		if (conn != NULL) {
			/* guarding a connection h2o has been decoding (TLS, h2c):
			 * start from its table, as it stands between two batches */
			h2o_hpack_header_table_t *t = &conn->_input_header_table;

			gc->hpack->capacity = t->hpack_capacity <= GUARD_H2_TABLE ? (uint32_t)t->hpack_capacity
			                                                          : GUARD_H2_TABLE;
			for (size_t i = t->num_entries; i-- > 0;) {
				h2o_hpack_header_table_entry_t *e = h2o_hpack_header_table_get(t, i);
				hpacksize_table_add(gc->hpack, (uint32_t)e->name->len, (uint32_t)e->value->len);
			}
		}
	}
	while (size - pos >= 9) {
		const uint8_t *h = buf + pos, *payload = h + 9;
		uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
		uint8_t type = h[3], flags = h[4];
		uint32_t sid = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) & 0x7fffffff;
		const uint8_t *frag = payload;
		size_t fraglen = len;
		uint64_t decoded;

		if (len > GUARD_H2_MAX_FRAME)
			break; /* h2o refuses it (FRAME_SIZE_ERROR) */
		if (size - pos < 9 + (size_t)len)
			break; /* not all here yet */
		pos += 9 + len;
		switch (type) {
		case H2O_HTTP2_FRAME_TYPE_DATA:
			if ((b = guard_body_find(gc, sid)) == NULL) {
				/* a stream h2o opened before the guard was in front of it */
				if (sid == 0 || sid > gc->h2o_opened || (flags & H2O_HTTP2_FRAME_FLAG_END_STREAM) ||
				    guard_over_find(gc, sid) >= 0)
					break; /* no body being buffered: h2o drops it */
				if (guard_body_open(gc, sid) != 0) {
					gc->scanned = pos;
					return guard_h2_fail(gc, conn, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM,
					                     "too many request bodies", GUARD_K_H2_BODY);
				}
				if ((b = guard_body_find(gc, sid)) == NULL)
					break; /* no limit, or no memory */
				b->late = 1;
			}
			if (b->ended)
				break; /* DATA after END_STREAM: h2o refuses it (STREAM_CLOSED) */
			if (flags & H2O_HTTP2_FRAME_FLAG_PADDED) { /* h2o keeps the data, not the padding */
				if (fraglen < 1 || payload[0] >= fraglen)
					goto Done; /* malformed: h2o ends the connection */
				fraglen -= 1 + payload[0];
			}
			if (b->bytes + fraglen > g->entity_max) {
				/* h2o resets the stream (REFUSED_STREAM) and frees it: a 413 instead */
				gc->over[gc->nover++ % GUARD_MAX_OVER] = sid;
				guard_body_end(gc, b);
				break;
			}
			b->bytes += fraglen;
			gc->body_held += fraglen;
			if (flags & H2O_HTTP2_FRAME_FLAG_END_STREAM)
				guard_body_ended(gc, b); /* h2o runs the handler */
			if (g->body_budget != 0 && gc->body_held > g->body_budget) {
				gc->scanned = pos;
				return guard_h2_fail(gc, conn, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM,
				                     "request bodies over h2_body_buffer", GUARD_K_H2_BODY);
			}
			break;
		case H2O_HTTP2_FRAME_TYPE_HEADERS:
			if ((flags & H2O_HTTP2_FRAME_FLAG_END_STREAM) && (b = guard_body_find(gc, sid)) != NULL &&
			    !b->ended)
				guard_body_ended(gc, b); /* trailers: the body is complete */
			if (flags & H2O_HTTP2_FRAME_FLAG_PADDED) {
				if (fraglen < 1 || payload[0] >= fraglen)
					goto Done; /* malformed: h2o says so */
				fraglen -= 1 + payload[0];
				frag++;
			}
			if (flags & H2O_HTTP2_FRAME_FLAG_PRIORITY) {
				if (fraglen < 5)
					goto Done;
				frag += 5;
				fraglen -= 5;
			}
			if (sid > gc->max_stream) {
				gc->max_stream = sid;
				if (!(flags & H2O_HTTP2_FRAME_FLAG_END_STREAM) && guard_body_open(gc, sid) != 0) {
					gc->scanned = pos;
					return guard_h2_fail(gc, conn, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM,
					                     "too many request bodies", GUARD_K_H2_BODY);
				}
				/* past h2o's own 100 it refuses the stream itself */
				if (++open > lim->h2_max_streams && gc->settings_acks >= 2 && lim->h2_max_streams < 100) {
					gc->scanned = pos;
					return guard_h2_fail(gc, conn, H2O_HTTP2_ERROR_PROTOCOL, "too many streams",
					                     GUARD_K_H2_STREAMS);
				}
			}
			gc->in_block = 1;
			/* FALLTHROUGH */
		case H2O_HTTP2_FRAME_TYPE_CONTINUATION:
			if (!gc->in_block)
				goto Done; /* a stray CONTINUATION: h2o refuses it */
			decoded = hpacksize_feed(gc->hpack, frag, fraglen, lim->max_header_size);
			if (flags & H2O_HTTP2_FRAME_FLAG_END_HEADERS) {
				decoded = hpacksize_end(gc->hpack);
				gc->in_block = 0;
			}
			if (decoded == UINT64_MAX)
				goto Done; /* malformed: h2o refuses it (COMPRESSION_ERROR) */
			if (decoded > lim->max_header_size) {
				gc->scanned = pos;
				return guard_h2_fail(gc, conn, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM, "header list too large",
				                     GUARD_K_H2_HEADERS);
			}
			guard_head_timer(gc, gc->in_block);
			break;
		case H2O_HTTP2_FRAME_TYPE_RST_STREAM:
			if (sid > 0 && sid <= gc->max_stream && open > 0)
				open--;
			if ((b = guard_body_find(gc, sid)) != NULL)
				guard_body_end(gc, b); /* h2o frees it */
			if (lim->h2_max_resets == 0)
				break;
			if (now - gc->reset_window >= lim->h2_reset_interval_ms) {
				gc->reset_window = now;
				gc->resets = 0;
			}
			if (++gc->resets > lim->h2_max_resets) {
				gc->scanned = pos;
				return guard_h2_fail(gc, conn, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM, "too many resets",
				                     GUARD_K_H2_RESETS);
			}
			break;
		case H2O_HTTP2_FRAME_TYPE_SETTINGS:
			if (flags & H2O_HTTP2_FRAME_FLAG_ACK)
				gc->settings_acks++;
			break;
		default:
			break;
		}
	}
Done:
	gc->scanned = pos;
	return 0;
}

static void
guard_h2_on_read(h2o_socket_t *sock, const char *err)
{
	struct guard_conn *gc = guard_conn_of(sock);
	struct guard *g;
	h2o_http2_conn_t *conn;
	size_t before;
	int closed;

	if (gc == NULL)
		return;
	g = gc->g;
	conn = sock->data;
	if (err != NULL) {
		guard_call(gc, g->h2_read, err);
		return;
	}
	/* streams h2o opened that the guard never saw (parsed after a take-over
	 * made in the middle of h2o's batch): their DATA is counted too */
	if (conn->pull_stream_ids.max_open > gc->max_stream && conn->pull_stream_ids.max_open > gc->h2o_opened)
		gc->h2o_opened = conn->pull_stream_ids.max_open;
	if (guard_h2_scan(gc, conn) != 0)
		return; /* refused: h2o is closing it (GC may be gone) */
	before = sock->input->size;
	guard_hook.reading = gc;
	closed = guard_call(gc, g->h2_read, NULL);
	guard_hook.reading = NULL;
	if (closed)
		return;
	gc->scanned -= before - sock->input->size < gc->scanned ? before - sock->input->size : gc->scanned;
	if (!gc->settings_queued && gc->preface_left == 0)
		guard_h2_settings(gc, conn);
}

/* The socket now runs h2o's HTTP/2 code: get in front of it.  h2o's
 * connection is checked to be the struct this was built for. */
static void
guard_h2_take_over(struct guard_conn *gc)
{
	struct guard *g = gc->g;
	h2o_socket_t *sock = gc->sock;
	h2o_http2_conn_t *conn = sock->data;

	gc->proto = GUARD_H2;
	if (g->h2_broken)
		return;
	if (conn == NULL || conn->sock != sock || conn->super.ctx != g->ctx) {
		log_errorx("libh2o's h2o_http2_conn_t is not laid out as in 2.2.5: HTTP/2 connections go unguarded");
		g->h2_broken = 1;
		return;
	}
	if (g->h2_read == NULL)
		g->h2_read = sock->_cb.read;
	if (sock->_cb.read != g->h2_read)
		return;
	sock->_cb.read = guard_h2_on_read;
	gc->h2o_opened = conn->pull_stream_ids.max_open;
	if (!gc->settings_queued && gc->preface_left == 0)
		guard_h2_settings(gc, conn);
}

/* ---- draining ----------------------------------------------------------------- */

/* An HTTP/1.1 connection between requests: h2o waits for a request head
 * (reading), has nothing of one (input empty: not even a partial head or
 * body), is answering none (busy, req_arg) and writing nothing, and has
 * been so since at least NOW - MIN_IDLE. */
static int
guard_h1_idle(const struct guard_conn *gc, uint64_t now, uint64_t min_idle)
{
	h2o_socket_t *sock = gc->sock;

	return sock != NULL && !gc->tls_phase && gc->proto == GUARD_H1 && !gc->busy && gc->req_arg == NULL &&
	       gc->answer == NULL && h2o_socket_is_reading(sock) && !h2o_socket_is_writing(sock) &&
	       sock->input->size == 0 && now - gc->idle_since >= min_idle;
}

size_t
guard_close_idle(struct guard *g, uint64_t min_idle_ms)
{
	uint64_t now = h2o_now(g->ctx->loop);
	size_t n = 0;

	for (h2o_linklist_t *node = g->conns.next; node != &g->conns; node = node->next) {
		struct guard_conn *gc = H2O_STRUCT_FROM_MEMBER(struct guard_conn, link, node);

		/* only the receiving half: h2o's next read sees the end of
		 * input (Linux hands over what was queued before it first)
		 * and its own HTTP/1.1 code closes the connection (a TLS one
		 * with its close_notify); nothing is closed here, so the walk
		 * is safe */
		if (guard_h1_idle(gc, now, min_idle_ms) && shutdown(gc->fd, SHUT_RD) == 0)
			n++;
		else if (gc->sock != NULL && gc->proto == GUARD_H1 && gc->busy && gc->req != NULL)
			/* libh2o 2.2.5 decides keep-alive when it parses a
			 * request (lib/http1.c's fixup_request: not after the
			 * shutdown request); one parsed before it is answered
			 * "Connection: close" (or, if its head is already out,
			 * closed once answered) instead of staying open */
			gc->req->http1_is_persistent = 0;
	}
	return n;
}

struct guard_slot *
guard_slot_of(h2o_req_t *req)
{
	h2o_socket_t *sock;
	struct guard_conn *gc;

	if (req->conn->callbacks->get_socket == NULL || (sock = req->conn->callbacks->get_socket(req->conn)) == NULL ||
	    (gc = guard_conn_of(sock)) == NULL)
		return NULL;
	return &gc->slot;
}

void
guard_request_set(struct guard_conn *gc, void *arg)
{
	gc->req_arg = arg;
}

void *
guard_request_take(h2o_req_t *req)
{
	h2o_socket_t *sock;
	struct guard_conn *gc;
	void *arg;

	if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL ||
	    (sock = req->conn->callbacks->get_socket(req->conn)) == NULL || (gc = guard_conn_of(sock)) == NULL)
		return NULL;
	arg = gc->req_arg;
	gc->req_arg = NULL;
	gc->req = NULL;
	return arg;
}

struct guard_conn *
guard_on_request(h2o_req_t *req)
{
	h2o_socket_t *sock;
	struct guard_conn *gc;

	if (req->conn->callbacks->get_socket == NULL || (sock = req->conn->callbacks->get_socket(req->conn)) == NULL ||
	    (gc = guard_conn_of(sock)) == NULL)
		return NULL;
	if (req->version >= 0x200) {
		/* TLS (ALPN h2), or Upgrade: h2c (h2o set its HTTP/2 callback
		 * after the 101, before the client's preface) */
		if (gc->proto == GUARD_H1 && sock->_cb.read != guard_h1_on_read && sock->_cb.read != gc->g->h1_read) {
			gc->preface_left = sock->ssl != NULL ? 0 : GUARD_H2_PREFACE_LEN;
			gc->scanned = 0;
			guard_h2_take_over(gc);
		}
		return NULL;
	}
	if (gc->g->h1_read == NULL && sock->_cb.read != guard_h1_on_read)
		gc->g->h1_read = sock->_cb.read; /* TLS only so far: h2o's reqread_on_read, as it reads no more */
	/* after this request, h2o sets its own read callback for the next:
	 * the caller calls guard_request_done(gc) when the request's pool goes
	 * (the exchange's end, which already has a shared allocation for it:
	 * no second malloc, pool link and free a request) */
	gc->busy = 1;
	gc->req = req;
	gc->tls_phase = 0; /* a request was read: no handshake any more (review probe) */
	guard_head_timer(gc, 0);
	if (!h2o_timeout_is_linked(&gc->gone_timer))
		h2o_timeout_link(gc->g->ctx->loop, &gc->g->gone_timeout, &gc->gone_timer);
	return gc;
}
