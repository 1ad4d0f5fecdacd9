/*
 * limiter.h - the one place every limit takes its tokens (a route's
 * rate_limit, and whatever else limits clients: authentication failures,
 * principals), whichever store keeps the buckets.
 *
 * Without "rate_limit: {redis}" the buckets are this machine's, in memory
 * shared by its workers (lib/ratelimit.h), and limiter_take is
 * ratelimit_take_n.  With it, a fleet of instances shares them through
 * Redis (worker/redis.h) without a round trip per request: each worker
 * decides locally against the last state of the bucket Redis told it
 * (refilled locally at the rate since), and every "sync_interval" sends,
 * for each bucket it took tokens from, one script call that debits them in
 * Redis and answers what is left (the calls of one turn go in one write).
 * A bucket it has not heard of yet, or not for a second, is asked at the
 * next loop turn instead; the request that found it so is still decided
 * at once (on a full bucket, or the old view refilled).
 *
 * Accuracy: a worker spends on what Redis last told it was there (plus
 * the refill since), and learns what the others spent meanwhile at its
 * next call.  With N workers across the fleet serving one client: at
 * worst, all hit in the same few ms while the bucket is full, each spends
 * it: up to N · burst at once instead of burst (measured: 30-40 for a
 * burst of 10, N = 4).  Under steady pressure the fleet holds the rate on
 * average, about a token per worker ahead (each spends one before hearing
 * of the others'), plus what is spent and not yet sent: N · rate ·
 * (sync_interval + round trip).  Every token spent is debited in Redis,
 * where the bucket may go below zero, so any excess is paid back: the
 * fleet refuses the client until it is.  Over T seconds, once a burst's
 * excess is paid back, a client gets about burst + rate · T + N · (2 +
 * rate · (sync_interval + round trip)) at most.
 *
 * When Redis is unreachable or slower than its timeout, "fail: open" falls
 * back to this machine's shared-memory buckets (the local limit) and
 * "fail: closed" refuses (LIMITER_UNAVAILABLE: 503); a request never waits
 * for Redis either way.  The local buckets of the Redis store are
 * forgotten when the connection drops, and shared limiting resumes when
 * it is back.
 */
#ifndef ESGATE_LIMITER_H
#define ESGATE_LIMITER_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/metrics.h"
#include "lib/ratelimit.h"
#include "lib/scoreboard.h"

struct limiter;

#define LIMITER_REFUSE 0
#define LIMITER_ALLOW 1
#define LIMITER_UNAVAILABLE (-1) /* the shared store is down and "fail: closed" */

/* After fork, on the worker's LOOP: SHM is the machine's buckets; CFG
 * (outliving the limiter) says whether Redis keeps them instead.  Redis'
 * round trips, errors and fallback decisions are added to METRICS, and
 * the state of the store (enum scoreboard_store) written to SLOT.  NULL
 * when out of memory. */
struct limiter *limiter_new(struct ev_loop *loop, const struct config *cfg, struct ratelimit *shm,
                            struct metrics_shard *metrics, struct scoreboard_slot *slot);
void limiter_free(struct limiter *l);

/*
 * Takes N tokens (>= 1), all or none, from the bucket of KEY (KEYLEN bytes,
 * 1..RATELIMIT_KEY_MAX, e.g. from ratelimit_key(); the same key names the
 * same bucket on every instance), which refills at RATE_PER_S (> 0) up to
 * BURST (>= 1).  LIMITER_ALLOW, LIMITER_REFUSE with *RETRY_AFTER_S (if not
 * NULL) the seconds until the tokens may be there (infinite when N is over
 * BURST), or LIMITER_UNAVAILABLE.  A bad KEYLEN is allowed.
 */
int limiter_take(struct limiter *l, const void *key, size_t keylen, double rate_per_s, double burst, uint64_t n,
                 double *retry_after_s);

/*
 * Whether limiter_take() of one token would be allowed now, taking nothing:
 * for a limit on failures (the auth stage's failed authentications), asked
 * before the attempt, a token taken only when it fails.  The same results;
 * a bucket this worker has no view of yet is asked of Redis for the next
 * time (this time it counts as full).
 */
int limiter_peek(struct limiter *l, const void *key, size_t keylen, double rate_per_s, double burst,
                 double *retry_after_s);
/* The same with HASH, limiter_hash() of KEY found before (used only by the
 * shared memory table: without Redis). */
uint64_t limiter_hash(const struct limiter *l, const void *key, size_t keylen);
int limiter_peek_hashed(struct limiter *l, const void *key, size_t keylen, uint64_t hash, double rate_per_s,
                        double burst, double *retry_after_s);

/* What /metrics and the status page say of this worker's store. */
struct limiter_stats {
	int shared;	   /* 1: no Redis configured or Redis answering; 0: falling back */
	uint64_t replies;  /* Redis round trips (script answers) */
	uint64_t errors;   /* Redis errors: refused connects, lost connections, timeouts, error replies */
	uint64_t fallback; /* requests decided without Redis while it was down */
};
void limiter_stats(const struct limiter *l, struct limiter_stats *out);

#endif
