/*
 * metrics.h - counters shared by the master and every worker, and their
 * Prometheus text rendering.
 *
 * One mmap(MAP_SHARED | MAP_ANONYMOUS) region created by the master before
 * the first fork: plain counters, not loop-bound state.  The counters a
 * request moves are sharded, like the kernel's per-CPU counters: each
 * worker writes only its own shard (struct metrics_shard, whole cache
 * lines), the one of its scoreboard slot, with a plain load and store (one
 * writer, so no locked read-modify-write and no cache line bouncing between
 * CPUs); a scrape, whichever worker serves it, sums the shards.  A shard is
 * never reset: the next worker of the slot (a replacement, a new
 * generation) continues its counts, so every sum stays monotonic across
 * crashes, reloads and TTIN/TTOU.  The two gauges (in_flight, connections)
 * are per shard too, each moved only by the worker that owns it; the master
 * zeroes them when it reaps the worker.  The master's own counts (restarts,
 * reloads) and the route and node name tables are in the region's head:
 * names live in append-only tables, so a counter keeps its series across
 * reloads and sniffing.
 */
#ifndef ESGATE_METRICS_H
#define ESGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_NAME_MAX 128
#define METRICS_MAX_ROUTES 128
#define METRICS_MAX_NODES 128
#define METRICS_NBUCKETS 14 /* latency histogram, plus +Inf */

enum metrics_restart {
	METRICS_RESTART_CRASH,	      /* died on its own */
	METRICS_RESTART_TIMEOUT,      /* no heartbeat */
	METRICS_RESTART_MAX_REQUESTS, /* retired */
	METRICS_RESTART_RELOAD,	      /* replaced by a new generation */
	METRICS_RESTART_COUNT,
};

/* What the micro-cache did with a request (worker/cache.c). */
enum metrics_cache {
	METRICS_CACHE_HIT,	 /* answered from the cache */
	METRICS_CACHE_MISS,	 /* went upstream (and may have filled the cache) */
	METRICS_CACHE_COALESCED, /* shared another request's upstream answer */
	METRICS_CACHE_BYPASS,	 /* on a caching route, but not a cacheable request (HEAD, a body) */
	METRICS_CACHE_COUNT,
};

/* Client authentication (worker/stage_auth.c): attempts by scheme and
 * result, refusals by reason.  Fixed label values, never a principal. */
enum metrics_auth_scheme {
	METRICS_AUTH_NONE,        /* no credentials, or a scheme esgate does not take */
	METRICS_AUTH_APIKEY,
	METRICS_AUTH_JWT,
	METRICS_AUTH_CERT,
	METRICS_AUTH_ANONYMOUS,
	METRICS_AUTH_SCHEME_COUNT,
};
#define METRICS_AUTH_RESULT_COUNT 9 /* lib/auth.h's AUTH_RESULT_COUNT, same order */

enum metrics_denial {
	METRICS_DENY_ROUTE,        /* 403: no grant for the route */
	METRICS_DENY_INDEX,        /* 403: the grant does not cover the index */
	METRICS_DENY_ANONYMOUS,    /* 401: anonymous and no grant names it */
	METRICS_DENY_FILTER,       /* 403: the document filter cannot be filled */
	METRICS_DENY_FAILED_LIMIT, /* 429: too many failed authentications from the address */
	METRICS_DENY_RATE_LIMIT,   /* 429: the principal's own rate limit */
	METRICS_DENY_DLS,          /* 403: a request that would read outside the document filter */
	METRICS_DENY_FLS,          /* 403: a request naming a field outside the field rules */
	METRICS_DENY_COUNT,
};

/* TLS handshakes on the HTTPS listeners (worker/tlsconn.c). */
enum metrics_tls_result {
	METRICS_TLS_FULL,    /* done, with a full handshake */
	METRICS_TLS_RESUMED, /* done, resuming a session (a ticket) */
	METRICS_TLS_FAILED,  /* refused by esgate: a fatal alert sent during the handshake */
	METRICS_TLS_RESULT_COUNT,
};
enum metrics_tls_version {
	METRICS_TLS_12,
	METRICS_TLS_13,
	METRICS_TLS_OTHER, /* a failed handshake with an older or no agreed version */
	METRICS_TLS_VERSION_COUNT,
};

/* What limits: refused (worker/guard.c), the label of
 * esgate_limits_refused_total. */
enum metrics_limit {
	METRICS_LIMIT_PER_ADDRESS,  /* max_connections_per_address: 503, closed */
	METRICS_LIMIT_HEAD_SIZE,    /* max_header_size over HTTP/1.1: 431, closed */
	METRICS_LIMIT_HEAD_TIMEOUT, /* header_timeout: closed */
	METRICS_LIMIT_H2_HEADERS,   /* max_header_size over HTTP/2: GOAWAY */
	METRICS_LIMIT_H2_STREAMS,   /* h2_max_streams: GOAWAY */
	METRICS_LIMIT_H2_RESETS,    /* h2_max_resets: GOAWAY */
	METRICS_LIMIT_H2_BODY,      /* h2_body_buffer: GOAWAY */
	METRICS_LIMIT_COUNT,
};

struct metrics_name {
	uint32_t state; /* 0 free, 1 being written, 2 ready */
	char name[METRICS_NAME_MAX];
};

/* One worker's counters (or, for a slot never used, zeros).  Every field is
 * a 64-bit word: the sum over shards is taken word by word. */
struct metrics_shard {
	int64_t in_flight;   /* requests this worker is serving now */
	int64_t connections; /* client connections it has open now */
	uint64_t duration_bucket[METRICS_NBUCKETS + 1];
	uint64_t duration_sum_us;
	uint64_t upstream_retries;
	uint64_t route_requests[METRICS_MAX_ROUTES][5]; /* by status class 1xx..5xx */
	uint64_t node_requests[METRICS_MAX_NODES];
	uint64_t node_errors[METRICS_MAX_NODES];
	uint64_t route_cache[METRICS_MAX_ROUTES][METRICS_CACHE_COUNT];
	uint64_t cache_stores;	  /* answers stored in a worker's micro-cache */
	uint64_t cache_evictions; /* entries dropped for room before their time */
	uint64_t route_ratelimited[METRICS_MAX_ROUTES]; /* requests refused with 429 by rate_limit */
	/* Per node: time from an attempt's start to its answer's head (or its
	 * failure), in the same buckets as the requests'. */
	uint64_t node_duration_bucket[METRICS_MAX_NODES][METRICS_NBUCKETS + 1];
	uint64_t node_duration_sum_us[METRICS_MAX_NODES];
	uint64_t auth_attempts[METRICS_AUTH_SCHEME_COUNT][METRICS_AUTH_RESULT_COUNT];
	uint64_t auth_denied[METRICS_DENY_COUNT];
	uint64_t auth_jwt_cache[2]; /* verified-token cache lookups: hits, misses */
	/* rate_limit: {redis} (worker/limiter.h); each worker's state is in
	 * its scoreboard slot */
	uint64_t redis_round_trips; /* script answers */
	uint64_t redis_errors;	    /* refused connects, lost connections, timeouts, error replies */
	uint64_t redis_fallback;    /* limit decisions made without Redis while it was down */
	uint64_t tls_handshakes[METRICS_TLS_RESULT_COUNT][METRICS_TLS_VERSION_COUNT];
	uint64_t limits_refused[METRICS_LIMIT_COUNT];
	/* new client connections (worker/handoff.h): accepted from a listener,
	 * passed to a less loaded worker (or on, by a draining one), received
	 * from one (read from our queue and served or passed on), taken back
	 * from a worker that left them unread: passed - received - taken back
	 * is still queued or was closed unserved */
	uint64_t conn_accepted;
	uint64_t conn_handed_off;
	uint64_t conn_handoff_received;
	uint64_t conn_taken_back;
} __attribute__((aligned(128))); /* whole pairs of cache lines (the adjacent-line prefetcher
                                   * fetches pairs): no false sharing between workers */

struct metrics {
	uint64_t started_unix;
	/* the master's own counts: it is their only writer */
	uint64_t restarts[METRICS_RESTART_COUNT];
	uint64_t reloads_ok, reloads_failed;
	uint32_t workers_alive;
	uint32_t generation;
	uint32_t nshards;     /* shards[] has this many (the scoreboard's slots) */
	uint32_t shards_used; /* 1 + the highest shard ever claimed: what a scrape sums */
	struct metrics_name route_names[METRICS_MAX_ROUTES];
	struct metrics_name node_names[METRICS_MAX_NODES];
	uint32_t node_up[METRICS_MAX_NODES]; /* as last seen by any worker */
	struct metrics_shard shards[];
};

/* Maps a zeroed region of NSHARDS shards (address space only: a shard's
 * pages are touched when a worker of its slot counts); NULL (errno set) on
 * failure. */
struct metrics *metrics_create(unsigned nshards);
void metrics_destroy(struct metrics *m);

/* Master, before forking the worker of scoreboard slot I: its shard, which
 * scrapes sum from now on; NULL if I is out of range. */
struct metrics_shard *metrics_shard_claim(struct metrics *m, unsigned i);
/* Master, once the worker of shard I is reaped: its gauges (what it was
 * serving when it died) back to zero.  Its counters stay, for the next. */
void metrics_shard_release(struct metrics *m, unsigned i);
/* The sum of the shards in use into *SUM (gauges included). */
void metrics_sum(const struct metrics *m, struct metrics_shard *sum);

/* Index of the route or node NAME, added if new; -1 when the table is
 * full (the caller then counts nowhere).  Safe from any process. */
int metrics_route(struct metrics *m, const char *name);
int metrics_node(struct metrics *m, const char *name);
void metrics_node_state(struct metrics *m, int node, int up);

/* Counting, by the one writer of the word: a shard's worker, or the master
 * for its own counts.  A relaxed load and store, never a locked
 * read-modify-write: no other process writes the word. */
static inline void
metrics_count(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
static inline void
metrics_inc(uint64_t *counter)
{
	metrics_count(counter, 1);
}
static inline void
metrics_add(int64_t *gauge, int64_t delta)
{
	__atomic_store_n(gauge, __atomic_load_n(gauge, __ATOMIC_RELAXED) + delta, __ATOMIC_RELAXED);
}

/* One finished request: route index (or -1), HTTP status, duration. */
void metrics_request(struct metrics_shard *s, int route, int status, uint64_t duration_us);
/* One attempt on NODE finished (its head came, or it failed) after
 * DURATION_US; ERROR: a connection error, timeout, 429 or 5xx. */
void metrics_upstream(struct metrics_shard *s, int node, int error, uint64_t duration_us);
/* A request on route ROUTE (or -1) refused by its rate_limit. */
void metrics_ratelimited(struct metrics_shard *s, int route);
/* One request the micro-cache saw on route ROUTE (or -1). */
void metrics_cache(struct metrics_shard *s, int route, enum metrics_cache what);

/* One authentication attempt: SCHEME, and RESULT (an enum auth_result). */
void metrics_auth(struct metrics_shard *s, enum metrics_auth_scheme scheme, unsigned result);
/* One request refused by the authentication stage or the filters, for REASON. */
void metrics_auth_denied(struct metrics_shard *s, enum metrics_denial reason);

/* Renders every metric in the Prometheus text format (0.0.4) into a
 * malloc'ed, NUL-terminated buffer; *LEN gets its length.  NULL when out
 * of memory. */
char *metrics_render(const struct metrics *m, size_t *len);

#endif
