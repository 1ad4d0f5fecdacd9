/*
 * metrics.c - the shared region, its per-worker shards and the Prometheus
 * exposition (see metrics.h for why the counters are sharded).
 */
#include "metrics.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* Upper bounds of the latency buckets, in microseconds. */
static const uint64_t metrics_bounds_us[METRICS_NBUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000};

static const char *const metrics_cache_names[METRICS_CACHE_COUNT] = {"hit", "miss", "coalesced", "bypass"};
static const char *const metrics_auth_scheme_names[METRICS_AUTH_SCHEME_COUNT] = {"none", "api_key", "jwt",
                                                                                 "client_cert", "anonymous"};
static const char *const metrics_auth_result_names[METRICS_AUTH_RESULT_COUNT] = {
    "ok", "missing", "malformed", "multiple", "scheme", "bad_key", "expired_key", "bad_token", "bad_cert"};
static const char *const metrics_denial_names[METRICS_DENY_COUNT] = {
    "route", "index", "anonymous", "filter", "failed_limit", "rate_limit", "dls", "fls"};
static const char *const metrics_restart_names[METRICS_RESTART_COUNT] = {"crash", "timeout", "max_requests",
									 "reload"};
static const char *const metrics_tls_result_names[METRICS_TLS_RESULT_COUNT] = {"full", "resumed", "failed"};
static const char *const metrics_tls_version_names[METRICS_TLS_VERSION_COUNT] = {"TLSv1.2", "TLSv1.3", "other"};

_Static_assert(sizeof(struct metrics_shard) % 128 == 0, "whole pairs of cache lines per shard");
_Static_assert(offsetof(struct metrics, shards) % 128 == 0, "the first shard on a pair of its own");
_Static_assert(sizeof(struct metrics_shard) % sizeof(uint64_t) == 0, "summed word by word");

static size_t
metrics_size(unsigned nshards)
{
	return sizeof(struct metrics) + (size_t)nshards * sizeof(struct metrics_shard);
}

struct metrics *
metrics_create(unsigned nshards)
{
	/* MAP_NORESERVE: the shards of slots never used are address space
	 * only, neither committed nor touched (a scrape reads shards_used of
	 * them). */
	struct metrics *m = mmap(NULL, metrics_size(nshards), PROT_READ | PROT_WRITE,
	                         MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	m->started_unix = (uint64_t)time(NULL);
	m->nshards = nshards;
	return m;
}

void
metrics_destroy(struct metrics *m)
{
	if (m != NULL)
		munmap(m, metrics_size(m->nshards));
}

struct metrics_shard *
metrics_shard_claim(struct metrics *m, unsigned i)
{
	if (i >= m->nshards)
		return NULL;
	if (i >= __atomic_load_n(&m->shards_used, __ATOMIC_RELAXED))
		__atomic_store_n(&m->shards_used, i + 1, __ATOMIC_RELEASE);
	return &m->shards[i];
}

void
metrics_shard_release(struct metrics *m, unsigned i)
{
	if (i >= m->nshards)
		return;
	/* the worker is gone: nobody else writes these words now */
	__atomic_store_n(&m->shards[i].in_flight, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&m->shards[i].connections, 0, __ATOMIC_RELAXED);
}

void
metrics_sum(const struct metrics *m, struct metrics_shard *sum)
{
	uint32_t n = __atomic_load_n(&m->shards_used, __ATOMIC_ACQUIRE);
	uint64_t *out = (uint64_t *)sum;
	const size_t words = sizeof(*sum) / sizeof(uint64_t);

	memset(sum, 0, sizeof(*sum));
	if (n > m->nshards)
		n = m->nshards;
	for (uint32_t i = 0; i < n; i++) {
		const uint64_t *in = (const uint64_t *)&m->shards[i];
		/* gauges are int64_t: two's complement sums the same way */
		for (size_t w = 0; w < words; w++)
			out[w] += __atomic_load_n(&in[w], __ATOMIC_RELAXED);
	}
}

/* Find-or-add in an append-only table shared by processes: an entry is
 * claimed with a compare-and-swap, written, then published; a reader
 * meeting an entry being written waits for it, so no name is added twice. */
static int
metrics_name_index(struct metrics_name *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t st = __atomic_load_n(&t[i].state, __ATOMIC_ACQUIRE);
		uint32_t free_state = 0;
		while (st == 1) {
			sched_yield();
			st = __atomic_load_n(&t[i].state, __ATOMIC_ACQUIRE);
		}
		if (st == 2) {
			if (strncmp(t[i].name, name, METRICS_NAME_MAX - 1) == 0)
				return (int)i;
			continue;
		}
		if (__atomic_compare_exchange_n(&t[i].state, &free_state, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			snprintf(t[i].name, sizeof(t[i].name), "%s", name);
			__atomic_store_n(&t[i].state, 2, __ATOMIC_RELEASE);
			return (int)i;
		}
		i--; /* lost the race for this entry: look at it again */
	}
	return -1;
}

int
metrics_route(struct metrics *m, const char *name)
{
	return metrics_name_index(m->route_names, METRICS_MAX_ROUTES, name);
}

int
metrics_node(struct metrics *m, const char *name)
{
	return metrics_name_index(m->node_names, METRICS_MAX_NODES, name);
}

/* The latency bucket of DURATION_US (METRICS_NBUCKETS: +Inf). */
static size_t
metrics_bucket(uint64_t duration_us)
{
	size_t b = 0;

	while (b < METRICS_NBUCKETS && duration_us > metrics_bounds_us[b])
		b++;
	return b;
}

void
metrics_request(struct metrics_shard *s, int route, int status, uint64_t duration_us)
{
	if (route >= 0 && route < METRICS_MAX_ROUTES && status >= 100 && status < 600)
		metrics_inc(&s->route_requests[route][status / 100 - 1]);
	metrics_inc(&s->duration_bucket[metrics_bucket(duration_us)]); /* per bucket; cumulated when rendered */
	metrics_count(&s->duration_sum_us, duration_us);
}

void
metrics_upstream(struct metrics_shard *s, int node, int error, uint64_t duration_us)
{
	if (node < 0 || node >= METRICS_MAX_NODES)
		return;
	metrics_inc(&s->node_requests[node]);
	if (error)
		metrics_inc(&s->node_errors[node]);
	metrics_inc(&s->node_duration_bucket[node][metrics_bucket(duration_us)]);
	metrics_count(&s->node_duration_sum_us[node], duration_us);
}

void
metrics_ratelimited(struct metrics_shard *s, int route)
{
	if (route >= 0 && route < METRICS_MAX_ROUTES)
		metrics_inc(&s->route_ratelimited[route]);
}

void
metrics_node_state(struct metrics *m, int node, int up)
{
	if (node >= 0 && node < METRICS_MAX_NODES)
		__atomic_store_n(&m->node_up[node], (uint32_t)up, __ATOMIC_RELAXED);
}

void
metrics_cache(struct metrics_shard *s, int route, enum metrics_cache what)
{
	if (route >= 0 && route < METRICS_MAX_ROUTES && what < METRICS_CACHE_COUNT)
		metrics_inc(&s->route_cache[route][what]);
}

/* A growing output buffer. */
struct metrics_out {
	char *buf;
	size_t len, cap;
	int failed;
};

static void metrics_printf(struct metrics_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
metrics_printf(struct metrics_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n;
		char *p = realloc(o->buf, cap);
		if (p == NULL) {
			o->failed = 1;
			return;
		}
		o->buf = p;
		o->cap = cap;
	}
}

/* A label value, escaped as the text format wants (\\, \", \n). */
static const char *
metrics_label(const char *s, char *out, size_t outlen)
{
	size_t j = 0;

	for (size_t i = 0; s[i] != '\0' && j + 2 < outlen; i++) {
		if (s[i] == '\\' || s[i] == '"') {
			out[j++] = '\\';
			out[j++] = s[i];
		} else if (s[i] == '\n') {
			out[j++] = '\\';
			out[j++] = 'n';
		} else {
			out[j++] = s[i];
		}
	}
	out[j] = '\0';
	return out;
}

void
metrics_auth(struct metrics_shard *s, enum metrics_auth_scheme scheme, unsigned result)
{
	if ((unsigned)scheme < METRICS_AUTH_SCHEME_COUNT && result < METRICS_AUTH_RESULT_COUNT)
		metrics_inc(&s->auth_attempts[scheme][result]);
}

void
metrics_auth_denied(struct metrics_shard *s, enum metrics_denial reason)
{
	if ((unsigned)reason < METRICS_DENY_COUNT)
		metrics_inc(&s->auth_denied[reason]);
}

static uint64_t
metrics_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void
metrics_header(struct metrics_out *o, const char *name, const char *type, const char *help)
{
	metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *
metrics_render(const struct metrics *m, size_t *len)
{
	struct metrics_out o = {.cap = 8192};
	char label[2 * METRICS_NAME_MAX + 1];
	uint64_t cum = 0;
	struct metrics_shard *t = aligned_alloc(_Alignof(struct metrics_shard), sizeof(*t)); /* the workers' sums */

	if (t == NULL || (o.buf = malloc(o.cap)) == NULL) {
		free(t);
		return NULL;
	}
	o.buf[0] = '\0';
	metrics_sum(m, t);

	metrics_header(&o, "esgate_requests_total", "counter", "HTTP requests answered, by route and status class.");
	for (size_t i = 0; i < METRICS_MAX_ROUTES; i++) {
		if (__atomic_load_n(&m->route_names[i].state, __ATOMIC_ACQUIRE) != 2)
			continue;
		metrics_label(m->route_names[i].name, label, sizeof(label));
		for (int c = 0; c < 5; c++)
			metrics_printf(&o, "esgate_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n", label, c + 1,
				       (unsigned long long)(t->route_requests[i][c]));
	}
	metrics_header(&o, "esgate_request_duration_seconds", "histogram",
		       "Time from the request's arrival to its last byte sent.");
	for (size_t b = 0; b <= METRICS_NBUCKETS; b++) {
		cum += (t->duration_bucket[b]);
		if (b < METRICS_NBUCKETS)
			metrics_printf(&o, "esgate_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
				       (double)metrics_bounds_us[b] / 1e6, (unsigned long long)cum);
		else
			metrics_printf(&o, "esgate_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
				       (unsigned long long)cum);
	}
	metrics_printf(&o, "esgate_request_duration_seconds_sum %.6f\n",
		       (double)(t->duration_sum_us) / 1e6);
	/* _count equals the +Inf bucket, whatever was added in between */
	metrics_printf(&o, "esgate_request_duration_seconds_count %llu\n", (unsigned long long)cum);

	metrics_header(&o, "esgate_requests_in_flight", "gauge", "Requests being served now.");
	metrics_printf(&o, "esgate_requests_in_flight %lld\n",
		       (long long)t->in_flight);
	metrics_header(&o, "esgate_connections_open", "gauge", "Client connections open now.");
	metrics_printf(&o, "esgate_connections_open %lld\n",
		       (long long)t->connections);
	metrics_header(&o, "esgate_connections_accepted_total", "counter",
		       "Client connections accepted from the listeners.");
	metrics_printf(&o, "esgate_connections_accepted_total %llu\n", (unsigned long long)t->conn_accepted);
	metrics_header(&o, "esgate_connections_handed_off_total", "counter",
		       "Accepted connections passed to a less loaded worker before any TLS or HTTP work.");
	metrics_printf(&o, "esgate_connections_handed_off_total %llu\n", (unsigned long long)t->conn_handed_off);
	metrics_header(&o, "esgate_connections_handoff_received_total", "counter",
		       "Passed connections read by the worker they were passed to (served there, or passed on "
		       "while it drains); handed off - received - taken back is still queued or was closed unserved.");
	metrics_printf(&o, "esgate_connections_handoff_received_total %llu\n",
		       (unsigned long long)t->conn_handoff_received);
	metrics_header(&o, "esgate_connections_taken_back_total", "counter",
		       "Passed connections that their worker left unread (stopped, stuck or not scheduled) and another served.");
	metrics_printf(&o, "esgate_connections_taken_back_total %llu\n", (unsigned long long)t->conn_taken_back);

	metrics_header(&o, "esgate_upstream_requests_total", "counter", "Requests sent to each Elasticsearch node.");
	for (size_t i = 0; i < METRICS_MAX_NODES; i++)
		if (__atomic_load_n(&m->node_names[i].state, __ATOMIC_ACQUIRE) == 2)
			metrics_printf(&o, "esgate_upstream_requests_total{node=\"%s\"} %llu\n",
				       metrics_label(m->node_names[i].name, label, sizeof(label)),
				       (unsigned long long)(t->node_requests[i]));
	metrics_header(&o, "esgate_upstream_errors_total", "counter",
		       "Failed requests to each node: connection errors, timeouts, 429 and 5xx.");
	for (size_t i = 0; i < METRICS_MAX_NODES; i++)
		if (__atomic_load_n(&m->node_names[i].state, __ATOMIC_ACQUIRE) == 2)
			metrics_printf(&o, "esgate_upstream_errors_total{node=\"%s\"} %llu\n",
				       metrics_label(m->node_names[i].name, label, sizeof(label)),
				       (unsigned long long)(t->node_errors[i]));
	metrics_header(&o, "esgate_upstream_node_up", "gauge", "1 if the node is in use, 0 while it is marked dead.");
	for (size_t i = 0; i < METRICS_MAX_NODES; i++)
		if (__atomic_load_n(&m->node_names[i].state, __ATOMIC_ACQUIRE) == 2)
			metrics_printf(&o, "esgate_upstream_node_up{node=\"%s\"} %u\n",
				       metrics_label(m->node_names[i].name, label, sizeof(label)),
				       (unsigned)__atomic_load_n(&m->node_up[i], __ATOMIC_RELAXED));
	metrics_header(&o, "esgate_upstream_duration_seconds", "histogram",
		       "Time from an attempt on a node to the head of its answer, or to its failure.");
	for (size_t i = 0; i < METRICS_MAX_NODES; i++) {
		uint64_t ncum = 0;
		if (__atomic_load_n(&m->node_names[i].state, __ATOMIC_ACQUIRE) != 2)
			continue;
		metrics_label(m->node_names[i].name, label, sizeof(label));
		for (size_t b = 0; b <= METRICS_NBUCKETS; b++) {
			ncum += (t->node_duration_bucket[i][b]);
			if (b < METRICS_NBUCKETS)
				metrics_printf(&o, "esgate_upstream_duration_seconds_bucket{node=\"%s\",le=\"%g\"} %llu\n", label,
					       (double)metrics_bounds_us[b] / 1e6, (unsigned long long)ncum);
			else
				metrics_printf(&o, "esgate_upstream_duration_seconds_bucket{node=\"%s\",le=\"+Inf\"} %llu\n",
					       label, (unsigned long long)ncum);
		}
		metrics_printf(&o, "esgate_upstream_duration_seconds_sum{node=\"%s\"} %.6f\n", label,
			       (double)(t->node_duration_sum_us[i]) / 1e6);
		metrics_printf(&o, "esgate_upstream_duration_seconds_count{node=\"%s\"} %llu\n", label,
			       (unsigned long long)ncum);
	}
	metrics_header(&o, "esgate_upstream_retries_total", "counter", "Requests retried on another node.");
	metrics_printf(&o, "esgate_upstream_retries_total %llu\n",
		       (unsigned long long)(t->upstream_retries));

	metrics_header(&o, "esgate_cache_requests_total", "counter",
		       "Requests on routes with a cache_ttl or coalescing, by route and what the cache did.");
	for (size_t i = 0; i < METRICS_MAX_ROUTES; i++) {
		uint64_t any = 0;
		if (__atomic_load_n(&m->route_names[i].state, __ATOMIC_ACQUIRE) != 2)
			continue;
		for (int c = 0; c < METRICS_CACHE_COUNT; c++)
			any |= (t->route_cache[i][c]);
		if (any == 0)
			continue; /* a route that never cached has no series */
		metrics_label(m->route_names[i].name, label, sizeof(label));
		for (int c = 0; c < METRICS_CACHE_COUNT; c++)
			metrics_printf(&o, "esgate_cache_requests_total{route=\"%s\",result=\"%s\"} %llu\n", label,
				       metrics_cache_names[c], (unsigned long long)(t->route_cache[i][c]));
	}
	metrics_header(&o, "esgate_ratelimit_refused_total", "counter",
		       "Requests refused with 429 by a route's rate_limit, by route.");
	for (size_t i = 0; i < METRICS_MAX_ROUTES; i++) {
		if (__atomic_load_n(&m->route_names[i].state, __ATOMIC_ACQUIRE) != 2 ||
		    (t->route_ratelimited[i]) == 0)
			continue; /* a route that never refused has no series */
		metrics_printf(&o, "esgate_ratelimit_refused_total{route=\"%s\"} %llu\n",
			       metrics_label(m->route_names[i].name, label, sizeof(label)),
			       (unsigned long long)(t->route_ratelimited[i]));
	}
	metrics_header(&o, "esgate_cache_stores_total", "counter", "Answers stored in a worker's micro-cache.");
	metrics_printf(&o, "esgate_cache_stores_total %llu\n", (unsigned long long)(t->cache_stores));
	metrics_header(&o, "esgate_cache_evictions_total", "counter",
		       "Micro-cache entries dropped for room before their time (cache.max_size).");
	metrics_printf(&o, "esgate_cache_evictions_total %llu\n", (unsigned long long)(t->cache_evictions));

	metrics_header(&o, "esgate_auth_attempts_total", "counter",
		       "Client authentications on routes with an auth rule, by scheme and result.");
	for (int sc = 0; sc < METRICS_AUTH_SCHEME_COUNT; sc++)
		for (int r = 0; r < METRICS_AUTH_RESULT_COUNT; r++)
			if ((t->auth_attempts[sc][r]) != 0)
				metrics_printf(&o, "esgate_auth_attempts_total{scheme=\"%s\",result=\"%s\"} %llu\n",
					       metrics_auth_scheme_names[sc], metrics_auth_result_names[r],
					       (unsigned long long)(t->auth_attempts[sc][r]));
	metrics_header(&o, "esgate_auth_denied_total", "counter",
		       "Requests refused by authorization, the failed-authentication limit, a principal's rate limit "
		       "or the document and field rules, by reason.");
	for (int r = 0; r < METRICS_DENY_COUNT; r++)
		metrics_printf(&o, "esgate_auth_denied_total{reason=\"%s\"} %llu\n", metrics_denial_names[r],
			       (unsigned long long)(t->auth_denied[r]));
	metrics_header(&o, "esgate_auth_jwt_cache_total", "counter",
		       "Lookups in the workers' caches of verified tokens, by result.");
	metrics_printf(&o, "esgate_auth_jwt_cache_total{result=\"hit\"} %llu\n",
		       (unsigned long long)(t->auth_jwt_cache[0]));
	metrics_printf(&o, "esgate_auth_jwt_cache_total{result=\"miss\"} %llu\n",
		       (unsigned long long)(t->auth_jwt_cache[1]));

	metrics_header(&o, "esgate_ratelimit_redis_round_trips_total", "counter",
		       "Script calls answered by the rate limits' Redis (rate_limit: {redis}), all workers.");
	metrics_printf(&o, "esgate_ratelimit_redis_round_trips_total %llu\n",
		       (unsigned long long)(t->redis_round_trips));
	metrics_header(&o, "esgate_ratelimit_redis_errors_total", "counter",
		       "Refused connects, lost connections, timeouts and error replies of the rate limits' Redis.");
	metrics_printf(&o, "esgate_ratelimit_redis_errors_total %llu\n",
		       (unsigned long long)(t->redis_errors));
	metrics_header(&o, "esgate_ratelimit_redis_fallback_total", "counter",
		       "Limit decisions made without Redis while it was down (the local limit, or 503 with fail: closed).");
	metrics_printf(&o, "esgate_ratelimit_redis_fallback_total %llu\n",
		       (unsigned long long)(t->redis_fallback));

	metrics_header(&o, "esgate_tls_handshakes_total", "counter",
		       "TLS handshakes on the HTTPS listeners, by result (full, resumed with a ticket, or refused "
		       "with a fatal alert) and protocol version.");
	for (int r = 0; r < METRICS_TLS_RESULT_COUNT; r++)
		for (int v = 0; v < METRICS_TLS_VERSION_COUNT; v++)
			if (r == METRICS_TLS_FAILED || v != METRICS_TLS_OTHER) /* only failures have no version */
				metrics_printf(&o, "esgate_tls_handshakes_total{result=\"%s\",version=\"%s\"} %llu\n",
					       metrics_tls_result_names[r], metrics_tls_version_names[v],
					       (unsigned long long)(t->tls_handshakes[r][v]));

	{
		static const char *const names[METRICS_LIMIT_COUNT] = {
		    "max_connections_per_address", "max_header_size", "header_timeout",
		    "h2_max_header_list",          "h2_max_streams",  "h2_max_resets",
		    "h2_body_buffer"};

		metrics_header(&o, "esgate_limits_refused_total", "counter",
			       "Clients refused by a limits: setting (connections, request heads, HTTP/2 header lists, "
			       "streams, resets and request bodies held), by limit.");
		for (int l = 0; l < METRICS_LIMIT_COUNT; l++)
			metrics_printf(&o, "esgate_limits_refused_total{limit=\"%s\"} %llu\n", names[l],
				       (unsigned long long)(t->limits_refused[l]));
	}

	metrics_header(&o, "esgate_workers", "gauge", "Worker processes alive.");
	metrics_printf(&o, "esgate_workers %u\n", (unsigned)__atomic_load_n(&m->workers_alive, __ATOMIC_RELAXED));
	metrics_header(&o, "esgate_worker_restarts_total", "counter", "Workers replaced, by reason.");
	for (int r = 0; r < METRICS_RESTART_COUNT; r++)
		metrics_printf(&o, "esgate_worker_restarts_total{reason=\"%s\"} %llu\n", metrics_restart_names[r],
			       (unsigned long long)metrics_load(&m->restarts[r]));
	metrics_header(&o, "esgate_reloads_total", "counter", "Configuration reloads, by result.");
	metrics_printf(&o, "esgate_reloads_total{result=\"ok\"} %llu\n",
		       (unsigned long long)metrics_load(&m->reloads_ok));
	metrics_printf(&o, "esgate_reloads_total{result=\"failed\"} %llu\n",
		       (unsigned long long)metrics_load(&m->reloads_failed));
	metrics_header(&o, "esgate_generation", "gauge", "Configuration generation serving.");
	metrics_printf(&o, "esgate_generation %u\n", (unsigned)__atomic_load_n(&m->generation, __ATOMIC_RELAXED));
	metrics_header(&o, "esgate_start_time_seconds", "gauge", "When the master started, in Unix time.");
	metrics_printf(&o, "esgate_start_time_seconds %llu\n", (unsigned long long)m->started_unix);

	free(t);
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}
