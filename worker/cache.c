/*
 * cache.c - the micro-cache and request coalescing (see cache.h).
 *
 * Ownership, since requests, upstream answers and entries end in any
 * order:
 *  - a fetch (one upstream request for one key) is malloc'ed and owned by
 *    the cache; it ends when its upstream request does (on_done), or from
 *    a loop timer when its answer turned out too big;
 *  - a waiter lives in its request's pool; its dispose callback, called
 *    first thing when the request's exchange ends (exchange.h, on_done),
 *    unhooks it from a fetch still running and drops the entry reference
 *    it holds, so neither side ever points at freed memory;
 *  - an entry is reference-counted: the microcache holds one, and every
 *    request sending it holds one until its pool goes, so eviction or a
 *    newer answer never pulls bytes from under h2o.
 * Times are the loop's cached time (ev_now), not a clock call per request.
 */
#include "worker/cache.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/microcache.h"
#include "lib/status.h"
#include "worker/h2ofmt.h"
#include "worker/proxy.h"
#include "worker/upstream.h"

#define CACHE_FETCH_BUCKETS 256
#define CACHE_BIG_ENTRY 1 /* over cache.max_entry_size: remembered, see cache_fetch_scatter */
/* over what all fetches may hold at once: transient (fetches in flight are
 * few: the distinct keys being fetched now) */
#define CACHE_BIG_INFLIGHT 2

struct cache_fetch;

struct cache {
	struct ev_loop *loop;
	struct metrics_shard *metrics; /* this worker's shard */
	struct upstream *upstream;
	struct microcache *mc;
	size_t max_entry;
	size_t max_inflight;                              /* bytes all fetches may collect at once */
	size_t inflight_bytes;                            /* what they hold now */
	struct cache_fetch *fetches[CACHE_FETCH_BUCKETS]; /* coalescing fetches by key */
	struct cache_fetch *all;                          /* every fetch, for cache_free */
	struct microcache_stats seen;                     /* stats already counted in the metrics */
};

struct cache_fetch {
	struct cache *c;
	struct cache_fetch *next;                /* in its bucket, when registered */
	struct cache_fetch *all_prev, *all_next; /* in c->all */
	int registered;                          /* findable by key: the route coalesces */
	unsigned bucket;
	char *key; /* malloc'ed */
	size_t keylen;
	char *path; /* the upstream path and query, malloc'ed */
	int accept_gzip;
	uint64_t ttl_ms;
	int metric;
	struct upstream_req *up; /* NULL once done */
	h2o_linklist_t waiters;  /* struct cache_waiter */
	uint64_t start_us;
	int have_head, status;
	int64_t content_length;
	char *type, *encoding, *product, *node;
	char *body;
	size_t len, cap;
	int too_big;     /* the answer will not be collected (a CACHE_BIG_*): waiters go on their own */
	ev_timer giveup; /* acts on too_big from the loop, outside the upstream client's callbacks */
};

/* One request the cache answers: from an entry, or after a fetch. */
struct cache_waiter {
	h2o_generator_t gen; /* h2o needs one to send an entry it does not copy */
	h2o_linklist_t link; /* in f->waiters while F is set */
	struct cache_fetch *f;
	h2o_req_t *req;
	struct exchange *ex;
	struct microcache_entry *entry; /* held until the pool goes */
	int sanitize;
};

static uint64_t
cache_now_ms(const struct cache *c)
{
	return (uint64_t)(ev_now(c->loop) * 1000.0);
}

static unsigned
cache_bucket(const char *key, size_t len)
{
	return (unsigned)(hash_bytes(0, key, len) % CACHE_FETCH_BUCKETS);
}

/* The micro-cache's evictions and stores since last time, to the shared
 * counters. */
static void
cache_count_stats(struct cache *c)
{
	const struct microcache_stats *st = microcache_stats(c->mc);

	if (st->inserts != c->seen.inserts)
		metrics_count(&c->metrics->cache_stores, st->inserts - c->seen.inserts);
	if (st->evictions != c->seen.evictions)
		metrics_count(&c->metrics->cache_evictions, st->evictions - c->seen.evictions);
	c->seen = *st;
}

struct cache *
cache_new(struct ev_loop *loop, const struct config *cfg, struct metrics_shard *m, struct upstream *u)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->mc = microcache_new(cfg->cache_max_size)) == NULL)
		log_fatal("cannot create the cache");
	c->loop = loop;
	c->metrics = m;
	c->upstream = u;
	c->max_entry = cfg->cache_max_entry;
	c->max_inflight = cfg->cache_max_size;
	return c;
}

static void
cache_waiter_dispose(void *arg)
{
	struct cache_waiter *cw = arg;

	if (cw->f != NULL) {
		/* the client left while waiting: the fetch goes on for the others */
		h2o_linklist_unlink(&cw->link);
		cw->f = NULL;
		cw->ex->client_gone = 1;
	}
	microcache_release(cw->entry);
	cw->entry = NULL;
}

static void
cache_gen_proceed(h2o_generator_t *self, h2o_req_t *req)
{
	/* the whole body went in one final send: nothing more to give */
}

static void
cache_gen_stop(h2o_generator_t *self, h2o_req_t *req)
{
}

static struct cache_waiter *
cache_waiter_new(h2o_req_t *req, struct exchange *ex, const struct cache_route *cr)
{
	/* in the pool; the exchange's end calls its dispose (one request has
	 * at most one waiter) */
	struct cache_waiter *cw = h2o_mem_alloc_pool(&req->pool, sizeof(*cw));

	memset(cw, 0, sizeof(*cw));
	ex->on_done = cache_waiter_dispose;
	ex->on_done_arg = cw;
	cw->gen.proceed = cache_gen_proceed;
	cw->gen.stop = cache_gen_stop;
	cw->req = req;
	cw->ex = ex;
	cw->sanitize = cr->sanitize;
	return cw;
}

/* A header name that is not an h2o token, as h2o_header_t wants it: one
 * copy for every request (h2o_add_header_by_str would put a new one in
 * each request's pool; x-elastic-product's is exchange.c's).  h2o only
 * reads it. */
static h2o_iovec_t cache_name_x_cache = {H2O_STRLIT("x-cache")};

static void
cache_mark(h2o_req_t *req, struct exchange *ex, const char *what)
{
	ex->cache = what;
	h2o_vector_reserve(&req->pool, &req->res.headers, req->res.headers.size + 1);
	exchange_header_put(&req->res.headers, &cache_name_x_cache, what, strlen(what));
}

/* Sends entry E (the waiter takes a reference) without copying its body:
 * the reference keeps it until the request's pool goes.  The head's fields
 * come from the entry as they are (lengths measured when it was made),
 * added in one go: X-Cache: HIT (if HIT; a fetch's waiters were marked
 * when they came), Content-Type, Content-Encoding, X-Elastic-Product,
 * then Age (AGE, if its base is not NULL). */
static void
cache_send_entry(struct cache_waiter *cw, struct microcache_entry *e, int hit, h2o_iovec_t age)
{
	h2o_req_t *req = cw->req;
	h2o_headers_t *hs = &req->res.headers;
	h2o_iovec_t body = h2o_iovec_init(e->body, e->body_len);

	microcache_entry_ref(e);
	cw->entry = e;
	req->res.status = e->status;
	req->res.reason = status_reason(e->status);
	req->res.content_length = e->body_len;
	h2o_vector_reserve(&req->pool, hs, hs->size + 5);
	if (hit) {
		cw->ex->cache = "HIT";
		exchange_header_put(hs, &cache_name_x_cache, H2O_STRLIT("HIT"));
	}
	if (e->content_type != NULL)
		exchange_header_put(hs, (h2o_iovec_t *)&H2O_TOKEN_CONTENT_TYPE->buf, e->content_type, e->content_type_len);
	if (e->content_encoding != NULL)
		exchange_header_put(hs, (h2o_iovec_t *)&H2O_TOKEN_CONTENT_ENCODING->buf, e->content_encoding,
		                 e->content_encoding_len);
	if (e->elastic_product != NULL)
		exchange_header_put(hs, &exchange_name_elastic_product, e->elastic_product, e->elastic_product_len);
	if (age.base != NULL)
		exchange_header_put(hs, (h2o_iovec_t *)&H2O_TOKEN_AGE->buf, age.base, age.len);
	h2o_start_response(req, &cw->gen);
	h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL); /* may complete REQ and free CW: nothing after */
}

/* The fetch's bookkeeping, before it is freed. */
static void
cache_fetch_detach(struct cache_fetch *f)
{
	struct cache *c = f->c;

	if (f->registered) {
		struct cache_fetch **pp = &c->fetches[f->bucket];
		while (*pp != f)
			pp = &(*pp)->next;
		*pp = f->next;
		f->registered = 0;
	}
	if (f->all_prev != NULL)
		f->all_prev->all_next = f->all_next;
	else
		c->all = f->all_next;
	if (f->all_next != NULL)
		f->all_next->all_prev = f->all_prev;
	f->all_prev = f->all_next = NULL;
}

static void
cache_fetch_free(struct cache_fetch *f)
{
	f->c->inflight_bytes -= f->cap;
	ev_timer_stop(f->c->loop, &f->giveup);
	free(f->key);
	free(f->path);
	free(f->type);
	free(f->encoding);
	free(f->product);
	free(f->node);
	free(f->body);
	free(f);
}

/* The next waiter, unhooked: once it is answered its pool may go at any
 * moment, and its dispose callback must find nothing to unlink. */
static struct cache_waiter *
cache_fetch_pop(struct cache_fetch *f)
{
	struct cache_waiter *cw;

	if (h2o_linklist_is_empty(&f->waiters))
		return NULL;
	cw = H2O_STRUCT_FROM_MEMBER(struct cache_waiter, link, f->waiters.next);
	h2o_linklist_unlink(&cw->link);
	cw->f = NULL;
	return cw;
}

static void
cache_note_upstream(struct cache_fetch *f, struct cache_waiter *cw)
{
	if (f->node != NULL)
		cw->ex->upstream_node = h2o_strdup(&cw->req->pool, f->node, SIZE_MAX).base;
	cw->ex->upstream_us = exchange_since_us(cw->ex->env, f->start_us);
}

/* The answer is too big to collect: every waiter makes its own, streamed
 * upstream request, as without the cache.  Called from the loop, never
 * from inside the upstream client's callbacks, since it starts requests. */
static void
cache_fetch_scatter(struct cache_fetch *f)
{
	struct cache_waiter *cw;

	if (f->up != NULL) {
		upstream_cancel(f->up);
		f->up = NULL;
	}
	cache_fetch_detach(f);
	if (f->too_big == CACHE_BIG_ENTRY && f->ttl_ms > 0) {
		/* Varnish's "hit-for-miss": for the TTL, requests for this key go
		 * straight to their own streamed request instead of starting a
		 * fetch that would be given up again.  A status-0 entry is the mark. */
		struct microcache_entry *mark = microcache_entry_new(f->key, f->keylen, 0, NULL, NULL, NULL, NULL, 0);
		if (mark != NULL) {
			cache_count_stats(f->c);
			if (microcache_put(f->c->mc, mark, cache_now_ms(f->c), f->ttl_ms) == 0)
				f->c->seen.inserts++; /* a mark is not a stored answer */
			cache_count_stats(f->c);      /* what it evicted is counted */
			microcache_release(mark);
		}
	}
	while ((cw = cache_fetch_pop(f)) != NULL) {
		struct upstream_request rq = {.method = "GET",
		                              .path = h2o_strdup(&cw->req->pool, f->path, SIZE_MAX).base,
		                              .opaque_id = exchange_opaque_id(cw->ex),
		                              .accept_gzip = f->accept_gzip};
		proxy_start(f->c->upstream, cw->req, &rq, cw->ex, cw->sanitize);
	}
	cache_fetch_free(f);
}

static void
cache_on_giveup(struct ev_loop *loop, ev_timer *t, int revents)
{
	cache_fetch_scatter(t->data);
}

static void
cache_fetch_too_big(struct cache_fetch *f, int why)
{
	struct cache *c = f->c;

	if (f->too_big)
		return;
	f->too_big = why;
	if (f->registered) {
		/* unfindable at once: new arrivals must not join a lost cause */
		struct cache_fetch **pp = &c->fetches[f->bucket];
		while (*pp != f)
			pp = &(*pp)->next;
		*pp = f->next;
		f->registered = 0;
	}
	ev_timer_set(&f->giveup, 0.0, 0.0);
	ev_timer_start(f->c->loop, &f->giveup);
}

static char *
cache_strdup(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		log_fatal("strdup");
	return d;
}

static void
cache_on_head(void *arg, const struct upstream_head *head)
{
	struct cache_fetch *f = arg;

	f->have_head = 1;
	f->status = head->status;
	f->content_length = head->content_length;
	f->type = cache_strdup(head->content_type);
	f->encoding = cache_strdup(head->content_encoding);
	f->product = cache_strdup(head->elastic_product);
	f->node = cache_strdup(head->node);
	if (head->content_length >= 0 && (uint64_t)head->content_length > f->c->max_entry)
		cache_fetch_too_big(f, CACHE_BIG_ENTRY);
}

static int
cache_on_body(void *arg, const char *data, size_t len)
{
	struct cache_fetch *f = arg;
	struct cache *c = f->c;

	if (f->too_big)
		return 1; /* paused for good: the giveup timer cancels it */
	if (f->len + len > c->max_entry) {
		cache_fetch_too_big(f, CACHE_BIG_ENTRY);
		return 1;
	}
	if (f->len + len > f->cap) {
		size_t cap = f->content_length >= 0 && (size_t)f->content_length >= f->len + len
		                 ? (size_t)f->content_length
		             : f->cap > 0 ? f->cap * 2
		                          : 4096;
		char *nb;
		while (cap < f->len + len)
			cap *= 2;
		if (cap > c->max_entry)
			cap = c->max_entry;
		/* what all fetches collect at once is capped too: a burst of
		 * distinct keys must not grow a worker past its budget */
		if (c->inflight_bytes - f->cap + cap > c->max_inflight || (nb = realloc(f->body, cap)) == NULL) {
			cache_fetch_too_big(f, CACHE_BIG_INFLIGHT);
			return 1;
		}
		c->inflight_bytes = c->inflight_bytes - f->cap + cap;
		f->body = nb;
		f->cap = cap;
	}
	memcpy(f->body + f->len, data, len);
	f->len += len;
	return 0;
}

static void
cache_answer(struct cache_fetch *f, struct cache_waiter *cw, struct microcache_entry *e)
{
	cache_note_upstream(f, cw);
	if (f->status >= 400 && cw->sanitize && (f->encoding == NULL || strcmp(f->encoding, "gzip") == 0))
		proxy_send_document(cw->req, f->status, f->type, f->product, f->encoding, e->body, e->body_len, 1);
	else
		cache_send_entry(cw, e, 0, h2o_iovec_init(NULL, 0));
}

static void
cache_on_done(void *arg, const struct upstream_result *res)
{
	struct cache_fetch *f = arg;
	struct cache *c = f->c;
	struct microcache_entry *e = NULL;
	struct cache_waiter *cw;

	f->up = NULL;
	if (f->too_big)
		return; /* the giveup timer, already started, scatters the waiters */
	/* New arrivals from here on look in the cache, or start afresh. */
	cache_fetch_detach(f);
	if (res->error == UPSTREAM_OK && f->have_head)
		e = microcache_entry_new(f->key, f->keylen, f->status, f->type, f->encoding, f->product, f->body,
		                         f->len);
	if (e != NULL && f->status == 200 && f->ttl_ms > 0) {
		microcache_put(c->mc, e, cache_now_ms(c), f->ttl_ms);
		cache_count_stats(c);
	}
	while ((cw = cache_fetch_pop(f)) != NULL) {
		if (e != NULL) {
			cache_answer(f, cw, e);
			continue;
		}
		cache_note_upstream(f, cw);
		if (cw->ex->upstream_node == NULL && res->node != NULL)
			cw->ex->upstream_node = h2o_strdup(&cw->req->pool, res->node, SIZE_MAX).base;
		exchange_send_upstream_error(cw->req, res);
	}
	microcache_release(e);
	cache_fetch_free(f);
}

static const struct upstream_callbacks cache_callbacks = {cache_on_head, cache_on_body, cache_on_done};

static struct cache_fetch *
cache_fetch_find(struct cache *c, const char *key, size_t keylen, unsigned bucket)
{
	struct cache_fetch *f;

	for (f = c->fetches[bucket]; f != NULL; f = f->next)
		if (f->keylen == keylen && memcmp(f->key, key, keylen) == 0)
			return f;
	return NULL;
}

/* The key's prefix, "ROUTE g " or "ROUTE - " (gzip accepted or not),
 * written at D; returns its length (at most CACHE_KEY_PREFIX_MAX). */
#define CACHE_KEY_PREFIX_MAX 16
static size_t
cache_key_prefix(char *d, unsigned route, int accept_gzip)
{
	char *p = h2ofmt_uint(d, route);

	*p++ = ' ';
	*p++ = accept_gzip ? 'g' : '-';
	*p++ = ' ';
	return (size_t)(p - d);
}

/* The Age value of an entry stored at STORED_MS, at NOW_MS: whole seconds.
 * Under 10 s (a micro-cache's usual life) a digit of a constant string,
 * else written into REQ's pool. */
static h2o_iovec_t
cache_age(h2o_req_t *req, uint64_t now_ms, uint64_t stored_ms)
{
	static const char digits[] = "0123456789";
	uint64_t age = now_ms > stored_ms ? (now_ms - stored_ms) / 1000 : 0;
	char *d;

	if (age < 10)
		return h2o_iovec_init(digits + age, 1);
	d = h2o_mem_alloc_pool(&req->pool, 24);
	return h2o_iovec_init(d, (size_t)(h2ofmt_uint(d, age) - d));
}

void
cache_serve(struct cache *c, h2o_req_t *req, struct exchange *ex, const struct cache_route *cr, const char *path,
            int accept_gzip)
{
	struct microcache_entry *e = NULL;
	struct cache_fetch *f = NULL;
	struct cache_waiter *cw;
	size_t pathlen = strlen(path);
	char prefix[CACHE_KEY_PREFIX_MAX], stack_key[256], *key;
	size_t n = cache_key_prefix(prefix, cr->id, accept_gzip);
	size_t keylen = n + pathlen;
	unsigned bucket;
	uint64_t now = cache_now_ms(c);

	/* the key is only used in here (a fetch keeps its own copy) */
	key = keylen <= sizeof(stack_key) ? stack_key : h2o_mem_alloc_pool(&req->pool, keylen);
	memcpy(key, prefix, n);
	memcpy(key + n, path, pathlen);

	if (cr->ttl_ms > 0 && (e = microcache_get(c->mc, key, keylen, now)) != NULL && e->status == 0) {
		/* known too big to keep: its own streamed request at once */
		struct upstream_request rq = {
		    .method = "GET", .path = path, .opaque_id = exchange_opaque_id(ex), .accept_gzip = accept_gzip};
		microcache_release(e);
		metrics_cache(c->metrics, cr->metric, METRICS_CACHE_MISS);
		cache_mark(req, ex, "MISS");
		proxy_start(c->upstream, req, &rq, ex, cr->sanitize);
		return;
	}
	if (e != NULL) {
		metrics_cache(c->metrics, cr->metric, METRICS_CACHE_HIT);
		cw = cache_waiter_new(req, ex, cr);
		cache_send_entry(cw, e, 1, cache_age(req, now, e->stored_ms));
		microcache_release(e); /* the waiter holds its own */
		return;
	}
	cw = cache_waiter_new(req, ex, cr);
	bucket = cache_bucket(key, keylen); /* not for hits: only fetches are found by it */
	if (cr->coalesce && (f = cache_fetch_find(c, key, keylen, bucket)) != NULL && !f->too_big) {
		metrics_cache(c->metrics, cr->metric, METRICS_CACHE_COALESCED);
		cache_mark(req, ex, "COALESCED");
		cw->f = f;
		h2o_linklist_insert(&f->waiters, &cw->link);
		return;
	}
	metrics_cache(c->metrics, cr->metric, METRICS_CACHE_MISS);
	cache_mark(req, ex, "MISS");
	if ((f = calloc(1, sizeof(*f))) == NULL || (f->key = malloc(keylen)) == NULL) {
		free(f);
		exchange_send_error(req, 502, "bad_gateway", "out of memory");
		return;
	}
	f->c = c;
	memcpy(f->key, key, keylen);
	f->keylen = keylen;
	if ((f->path = strdup(path)) == NULL) {
		free(f->key);
		free(f);
		exchange_send_error(req, 502, "bad_gateway", "out of memory");
		return;
	}
	f->accept_gzip = accept_gzip;
	f->ttl_ms = cr->ttl_ms;
	f->metric = cr->metric;
	f->content_length = -1;
	f->start_us = exchange_now_us(ex->env);
	f->bucket = bucket;
	h2o_linklist_init_anchor(&f->waiters);
	ev_init(&f->giveup, cache_on_giveup);
	f->giveup.data = f;
	{
		struct upstream_request rq = {
		    .method = "GET", .path = f->path, .opaque_id = exchange_opaque_id(ex), .accept_gzip = accept_gzip};
		if ((f->up = upstream_send(c->upstream, &rq, &cache_callbacks, f)) == NULL) {
			free(f->path);
			free(f->key);
			free(f);
			exchange_send_error(req, 502, "bad_gateway", "cannot start upstream request");
			return;
		}
	}
	if (cr->coalesce) {
		f->registered = 1;
		f->next = c->fetches[bucket];
		c->fetches[bucket] = f;
	}
	f->all_next = c->all;
	if (c->all != NULL)
		c->all->all_prev = f;
	c->all = f;
	cw->f = f;
	h2o_linklist_insert(&f->waiters, &cw->link);
}

void
cache_bypass(struct cache *c, h2o_req_t *req, struct exchange *ex, const struct cache_route *cr)
{
	metrics_cache(c->metrics, cr->metric, METRICS_CACHE_BYPASS);
	cache_mark(req, ex, "BYPASS");
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	while (c->all != NULL) {
		struct cache_fetch *f = c->all;
		struct cache_waiter *cw;
		if (f->up != NULL)
			upstream_cancel(f->up);
		f->up = NULL;
		cache_fetch_detach(f);
		while ((cw = cache_fetch_pop(f)) != NULL)
			;
		cache_fetch_free(f);
	}
	microcache_free(c->mc);
	free(c);
}
