/*
 * proxy.c - relaying a request and streaming its answer (see proxy.h).
 *
 * h2o wants one h2o_send() at a time: the data handed over must stay put
 * until h2o calls the generator's proceed().  So two buffers take turns:
 * one is with h2o, the other collects what the upstream sends meanwhile.
 * When the collecting one is full the upstream transfer is paused, and
 * proceed() resumes it: a 50 MB answer costs PROXY_BUFFER_MAX per buffer,
 * not 50 MB.
 *
 * Bytes that arrive from the upstream client (a libev callback, outside
 * h2o's own loop run) are handed to h2o from its zero timeout, inside its
 * run, never straight from the callback.  libh2o 2.2.5's HTTP/1 write path
 * is not safe otherwise: after a proceed() with nothing to send, a write
 * made outside its run that completes at once, into a socket buffer left
 * nearly full, leaves the socket polled for writability with no write
 * callback, and the next EPOLLOUT aborts the worker in write_pending()
 * (seen in test_streaming's slow reader).  Inside the run, h2o re-reads
 * the socket's state before it polls again.  HTTP/2 defers its own writes
 * the same way.  As a bonus a small answer whose end came with its bytes
 * leaves in one h2o_send(), not two.
 */
#include "worker/proxy.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/status.h"

#define PROXY_BUFFER_MAX (256 * 1024)
/* An answer announcing at most this many bytes is collected in the
 * request's pool (h2o recycles its chunks), sized to fit: no malloc, and
 * no 16 KiB buffer per request in flight. */
#define PROXY_SMALL_MAX (16 * 1024)
#define PROXY_ERROR_MAX (64 * 1024) /* an error document larger than this is replaced whole */

struct proxy_buf {
	char *base;
	size_t len, cap;
	int pooled; /* BASE belongs to the request's pool */
};

struct proxy {
	h2o_generator_t super; /* first: h2o hands it back to us */
	h2o_req_t *req;
	struct exchange *ex;
	uint64_t start_us;
	struct upstream_req *up; /* NULL once done or cancelled */
	struct proxy_buf buf[2];
	int collecting;		 /* index of the buffer being filled */
	unsigned sending : 1;	 /* an h2o_send() waits for proceed() */
	unsigned paused : 1;	 /* the upstream transfer is paused */
	unsigned done : 1;	 /* the upstream answer is complete (or broken) */
	unsigned broken : 1;	 /* it broke after the head went out */
	unsigned started : 1;	 /* h2o_start_response() called */
	unsigned finished : 1;	 /* the final h2o_send() went out */
	unsigned sanitize : 1;	 /* cut upstream error documents down */
	unsigned holding : 1;	 /* collecting an error document to cut down */
	h2o_timeout_entry_t flush; /* proxy_flush() from h2o's run (zero timeout) */
	int64_t content_length;	 /* announced by the upstream, -1 if not */
	int held_status;
	char *held_type;	 /* content-type of the held document */
	char *held_product;	 /* and its X-Elastic-Product */
	char *held_encoding;	 /* and its Content-Encoding (gzip, or NULL) */
};

static void proxy_send_held(struct proxy *p, int complete);

static void
proxy_flush(struct proxy *p)
{
	struct proxy_buf *b = &p->buf[p->collecting];
	h2o_send_state_t state;
	h2o_iovec_t iov;

	if (p->sending || p->finished || !p->started || (b->len == 0 && !p->done))
		return;
	state = !p->done ? H2O_SEND_STATE_IN_PROGRESS : p->broken ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL;
	iov = h2o_iovec_init(b->base, b->len);
	p->collecting ^= 1;
	p->buf[p->collecting].len = 0;
	if (state == H2O_SEND_STATE_IN_PROGRESS)
		p->sending = 1;
	else
		p->finished = 1;
	h2o_send(p->req, &iov, iov.len > 0 ? 1 : 0, state);
}

static void
proxy_on_flush(h2o_timeout_entry_t *entry)
{
	proxy_flush(H2O_STRUCT_FROM_MEMBER(struct proxy, flush, entry));
}

/* Flushes from h2o's run, soon (see the top of this file). */
static void
proxy_flush_later(struct proxy *p)
{
	h2o_context_t *ctx = p->req->conn->ctx;

	if (!h2o_timeout_is_linked(&p->flush))
		h2o_timeout_link(ctx->loop, &ctx->zero_timeout, &p->flush);
}

static void
proxy_on_proceed(h2o_generator_t *self, h2o_req_t *req)
{
	struct proxy *p = (struct proxy *)self;

	p->sending = 0;
	if (p->done) {
		/* The final send may complete the request at once and free P
		 * with its pool: touch nothing after it. */
		proxy_flush(p);
		return;
	}
	proxy_flush(p);
	if (p->paused && p->up != NULL && p->buf[p->collecting].len < PROXY_BUFFER_MAX / 2) {
		p->paused = 0;
		upstream_resume(p->up);
	}
}

static void
proxy_cancel(struct proxy *p)
{
	/* Still waiting on the upstream, or still streaming: the client left. */
	if (p->up != NULL || (p->started && !p->finished))
		p->ex->client_gone = 1;
	if (p->up != NULL) {
		upstream_cancel(p->up);
		p->up = NULL;
	}
}

static void
proxy_on_stop(h2o_generator_t *self, h2o_req_t *req)
{
	proxy_cancel((struct proxy *)self);
}

/* The request's pool is going away: the client closed, or we answered. */
static void
proxy_dispose(void *arg)
{
	struct proxy *p = arg;

	proxy_cancel(p);
	if (h2o_timeout_is_linked(&p->flush))
		h2o_timeout_unlink(&p->flush);
	for (int i = 0; i < 2; i++)
		if (!p->buf[i].pooled)
			free(p->buf[i].base);
}

/* Header values of nearly every Elasticsearch answer: added as they are,
 * not copied into the request's pool. */
static const h2o_iovec_t proxy_known_values[] = {
    {H2O_STRLIT("application/json; charset=UTF-8")},
    {H2O_STRLIT("Elasticsearch")},
    {H2O_STRLIT("application/json")},
    {H2O_STRLIT("gzip")},
};

/* An upstream header for the answer: TOKEN's (content-type and
 * content-encoding are h2o tokens: HPACK's static table names them), else
 * NAME's, with VALUE copied unless it is one of proxy_known_values. */
static void
proxy_header(h2o_req_t *req, h2o_token_t *token, h2o_iovec_t *name, const char *value)
{
	h2o_iovec_t v = {NULL, 0};

	for (size_t i = 0; i < sizeof(proxy_known_values) / sizeof(proxy_known_values[0]); i++)
		if (value[0] == proxy_known_values[i].base[0] && strcmp(value, proxy_known_values[i].base) == 0) {
			v = proxy_known_values[i];
			break;
		}
	if (v.base == NULL)
		v = h2o_strdup(&req->pool, value, SIZE_MAX);
	/* exchange.c reserved room for 8 fields: this does not grow it */
	h2o_vector_reserve(&req->pool, &req->res.headers, req->res.headers.size + 1);
	exchange_header_put(&req->res.headers, token != NULL ? &token->buf : name, v.base, v.len);
}

static void
proxy_on_head(void *arg, const struct upstream_head *head)
{
	struct proxy *p = arg;
	h2o_req_t *req = p->req;

	p->ex->upstream_node = h2o_strdup(&req->pool, head->node, SIZE_MAX).base;
	p->content_length = head->content_length;
	if (p->sanitize && head->status >= 400 &&
	    (head->content_encoding == NULL || strcasecmp(head->content_encoding, "gzip") == 0)) {
		/* Hold the document until it is complete, then cut it down. */
		p->holding = 1;
		p->held_status = head->status;
		if (head->content_type != NULL)
			p->held_type = h2o_strdup(&req->pool, head->content_type, SIZE_MAX).base;
		if (head->elastic_product != NULL)
			p->held_product = h2o_strdup(&req->pool, head->elastic_product, SIZE_MAX).base;
		if (head->content_encoding != NULL)
			p->held_encoding = h2o_strdup(&req->pool, head->content_encoding, SIZE_MAX).base;
		return;
	}
	req->res.status = head->status;
	req->res.reason = status_reason(head->status);
	if (head->content_length >= 0)
		req->res.content_length = (size_t)head->content_length;
	if (head->content_type != NULL)
		proxy_header(req, H2O_TOKEN_CONTENT_TYPE, NULL, head->content_type);
	if (head->content_encoding != NULL)
		proxy_header(req, H2O_TOKEN_CONTENT_ENCODING, NULL, head->content_encoding);
	if (head->elastic_product != NULL)
		proxy_header(req, NULL, &exchange_name_elastic_product, head->elastic_product);
	p->started = 1;
	h2o_start_response(req, &p->super);
}

static int
proxy_on_body(void *arg, const char *data, size_t len)
{
	struct proxy *p = arg;
	struct proxy_buf *b = &p->buf[p->collecting];

	if (p->holding && b->len + len > PROXY_ERROR_MAX)
		return 0; /* too big to be an error document: dropped, replaced whole */
	if (b->len > 0 && b->len + len > PROXY_BUFFER_MAX) {
		p->paused = 1;
		return 1;
	}
	if (b->cap == 0 && p->content_length >= 0 && (size_t)p->content_length <= PROXY_SMALL_MAX &&
	    len <= (size_t)p->content_length) {
		/* small and announced: the whole answer fits; the pool frees it */
		b->cap = (size_t)p->content_length;
		b->base = h2o_mem_alloc_pool(&p->req->pool, b->cap > 0 ? b->cap : 1);
		b->pooled = 1;
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap && !b->pooled ? b->cap : 16 * 1024;
		char *nb;
		while (cap < b->len + len)
			cap *= 2;
		if (b->pooled) {
			/* the upstream sent more than it announced: a malloc'ed
			 * buffer from here on (the pool keeps the old one) */
			if ((nb = malloc(cap)) != NULL && b->len > 0)
				memcpy(nb, b->base, b->len);
		} else {
			nb = realloc(b->base, cap);
		}
		if (nb == NULL) {
			p->paused = 1; /* try again once h2o took the other buffer */
			return 1;
		}
		b->base = nb;
		b->cap = cap;
		b->pooled = 0;
	}
	memcpy(b->base + b->len, data, len);
	b->len += len;
	proxy_flush_later(p);
	return 0;
}

static void
proxy_on_done(void *arg, const struct upstream_result *res)
{
	struct proxy *p = arg;

	p->up = NULL;
	p->ex->upstream_us = exchange_since_us(p->ex->env, p->start_us);
	if (p->ex->upstream_node == NULL && res->node != NULL)
		p->ex->upstream_node = h2o_strdup(&p->req->pool, res->node, SIZE_MAX).base;
	if (p->holding) {
		proxy_send_held(p, res->error == UPSTREAM_OK);
		return;
	}
	if (!p->started) {
		exchange_send_upstream_error(p->req, res);
		p->finished = 1;
		return;
	}
	p->done = 1;
	if (res->error != UPSTREAM_OK) {
		/* Too late for an error status: cut the response short, so the
		 * client sees a broken answer rather than a truncated "success". */
		log_warnx("upstream %s broke mid-answer: %s", res->node, res->reason);
		p->broken = 1;
	}
	proxy_flush_later(p);
}

/* An upstream error document, cut down to what a client may see: a JSON
 * object without "error" (e.g. a missing document's {"found":false}) goes
 * as it came; an Elasticsearch error keeps its type and reason only; any
 * other body (HTML from a proxy, stack traces) is replaced. */
/* Inflates a held gzip document (the client asked for gzip, so the
 * cluster compressed its error too) into a malloc'ed buffer. */
static char *
proxy_gunzip(const char *in, size_t len, size_t *outlen)
{
	z_stream z;
	char *out = malloc(PROXY_ERROR_MAX);
	int rc;

	if (out == NULL)
		return NULL;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		free(out);
		return NULL;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = PROXY_ERROR_MAX;
	rc = inflate(&z, Z_FINISH);
	*outlen = PROXY_ERROR_MAX - z.avail_out;
	inflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	return out;
}

/* An upstream error document (status >= 400), cut down as said above;
 * COMPLETE 0: it broke before its end, and is replaced whole. */
void
proxy_send_document(h2o_req_t *req, int status, const char *type, const char *product, const char *encoding,
		    const char *body, size_t len, int complete)
{
	char *plain = NULL;
	size_t plain_len = 0;
	json_t *doc = NULL, *err;
	const char *etype = NULL, *reason = NULL;

	if (body == NULL)
		body = "";
	if (complete && encoding != NULL)
		plain = proxy_gunzip(body, len, &plain_len);
	if (complete && (encoding == NULL || plain != NULL))
		doc = plain != NULL ? json_loadb(plain, plain_len, 0, NULL) : json_loadb(body, len, 0, NULL);
	free(plain);

	if (json_is_object(doc) && (err = json_object_get(doc, "error")) == NULL) {
		req->res.status = status;
		req->res.reason = status_reason(status);
		req->res.content_length = len;
		if (type != NULL)
			exchange_header_add_copy(req, H2O_STRLIT("content-type"), type);
		if (product != NULL)
			exchange_header_add_copy(req, H2O_STRLIT("x-elastic-product"), product);
		if (encoding != NULL)
			exchange_header_add_copy(req, H2O_STRLIT("content-encoding"), encoding);
		h2o_send_inline(req, body, len);
		json_decref(doc);
		return;
	}
	if (json_is_object(doc) && json_is_object(err = json_object_get(doc, "error"))) {
		etype = json_string_value(json_object_get(err, "type"));
		reason = json_string_value(json_object_get(err, "reason"));
	}
	exchange_send_error(req, status, etype != NULL ? etype : "upstream_error",
			reason != NULL ? reason : "the cluster refused the request");
	json_decref(doc);
}

static void
proxy_send_held(struct proxy *p, int complete)
{
	struct proxy_buf *b = &p->buf[p->collecting];

	p->finished = 1;
	proxy_send_document(p->req, p->held_status, p->held_type, p->held_product, p->held_encoding, b->base, b->len,
			    complete);
}

static const struct upstream_callbacks proxy_callbacks = {proxy_on_head, proxy_on_body, proxy_on_done};

void
proxy_start(struct upstream *u, h2o_req_t *req, const struct upstream_request *rq, struct exchange *ex,
	    int sanitize_errors)
{
	struct proxy *p;

	if (ex->on_done == NULL) {
		/* in the pool, ended first thing when the exchange ends (exchange.h,
		 * on_done), before the metrics and the access log as a shared
		 * object's dispose would be: a malloc, a free and a pool link less
		 * a request */
		p = h2o_mem_alloc_pool(&req->pool, sizeof(*p));
		ex->on_done = proxy_dispose;
		ex->on_done_arg = p;
	} else {
		p = h2o_mem_alloc_shared(&req->pool, sizeof(*p), proxy_dispose);
	}
	memset(p, 0, sizeof(*p));
	p->super.proceed = proxy_on_proceed;
	p->super.stop = proxy_on_stop;
	p->req = req;
	p->ex = ex;
	p->sanitize = sanitize_errors != 0;
	p->start_us = exchange_now_us(ex->env);
	p->content_length = -1;
	p->flush.cb = proxy_on_flush;
	if ((p->up = upstream_send(u, rq, &proxy_callbacks, p)) == NULL)
		exchange_send_error(req, 502, "bad_gateway", "cannot start upstream request");
}
