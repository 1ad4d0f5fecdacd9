/*
 * limiter.c - token buckets in this machine's shared memory or, with
 * "rate_limit: {redis}", in Redis through local views reconciled every
 * sync_interval (see limiter.h for the design and its accuracy).
 *
 * The views are a small open-addressing table in the worker's own memory
 * (no lock: one loop).  A slot in use for a key has a generation, and the
 * script call carries slot and generation as its tag, so an answer that
 * comes after its slot was forgotten (the connection dropped, the slot
 * reused) is ignored.  At most one call per bucket is in flight; what is
 * spent meanwhile waits for the next turn.
 */
#include "worker/limiter.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/hash.h"
#include "lib/log.h"
#include "lib/scoreboard.h"
#include "worker/redis.h"

#define LIMITER_SLOTS 8192 /* buckets one worker keeps a view of; a power of two */
#define LIMITER_PROBE 8
#define LIMITER_STALE 1.0  /* seconds: a view older than this is asked again at once */

/*
 * In Redis, a bucket is a hash {v: tokens, t: ms} at PREFIX + hex(key).
 * ARGV: rate a second, burst, tokens spent.  The clock is Redis' (TIME), so
 * the instances' clocks never meet.  The bucket may go below zero: what was
 * spent was spent, and the client pays it back.  It expires once it would
 * be full again.
 */
static const char limiter_script[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local rate = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local spent = tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local b = redis.call('HMGET', KEYS[1], 'v', 't')\n"
    "local v = burst\n"
    "if b[1] and b[2] then\n"
    "  v = tonumber(b[1]) + math.max(0, now - tonumber(b[2])) * rate / 1000\n"
    "  if v > burst then v = burst end\n"
    "end\n"
    "v = v - spent\n"
    "redis.call('HSET', KEYS[1], 'v', string.format('%.6f', v), 't', string.format('%d', now))\n"
    "redis.call('PEXPIRE', KEYS[1], math.ceil((burst - v) * 1000 / rate) + 1000)\n"
    "return string.format('%.6f', v)\n";

struct limiter_entry {
	uint8_t keylen; /* 0: free */
	uint8_t key[RATELIMIT_KEY_MAX];
	uint8_t dirty;	  /* in l->dirty */
	uint8_t inflight; /* a call is out; its tokens are in SENT */
	uint32_t gen;
	double rate, burst; /* of the last take, for the call */
	double view;	    /* tokens in Redis at VIEW_AT; NAN until the first answer */
	ev_tstamp view_at;
	double pending; /* taken here since the last call */
	double sent;	/* taken here, in the call in flight */
	ev_tstamp used_at;
};

struct limiter {
	struct ev_loop *loop;
	const struct config_redis *cfg; /* NULL: no Redis */
	struct ratelimit *shm;
	struct redis *redis;
	int shared;	     /* Redis up, or still on its first attempt */
	uint64_t seed;
	struct limiter_entry *slots;
	uint32_t *dirty;     /* slots with tokens to send */
	size_t ndirty;
	ev_timer sync;
	uint64_t fallback;
	struct metrics_shard *metrics; /* this worker's shard */
	struct scoreboard_slot *slot;
	uint64_t replies_seen, errors_seen; /* of redis_stats, already added to metrics */
};

/* Redis' counters since the last call into the shared metrics. */
static void
limiter_count(struct limiter *l)
{
	const struct redis_stats *st = redis_stats(l->redis);

	if (st->replies != l->replies_seen) {
		metrics_count(&l->metrics->redis_round_trips, st->replies - l->replies_seen);
		__atomic_store_n(&l->slot->redis_round_trips, st->replies, __ATOMIC_RELAXED);
		l->replies_seen = st->replies;
	}
	if (st->errors != l->errors_seen) {
		metrics_count(&l->metrics->redis_errors, st->errors - l->errors_seen);
		__atomic_store_n(&l->slot->redis_errors, st->errors, __ATOMIC_RELAXED);
		l->errors_seen = st->errors;
	}
}

static void
limiter_set_shared(struct limiter *l, int shared)
{
	l->shared = shared;
	__atomic_store_n(&l->slot->ratelimit_store, shared ? SCOREBOARD_STORE_REDIS : SCOREBOARD_STORE_FALLBACK,
	                 __ATOMIC_RELAXED);
}

static void
limiter_forget(struct limiter *l)
{
	for (size_t i = 0; i < LIMITER_SLOTS; i++) {
		struct limiter_entry *e = &l->slots[i];

		e->keylen = 0;
		e->dirty = e->inflight = 0;
		e->gen++;
	}
	l->ndirty = 0;
	ev_timer_stop(l->loop, &l->sync);
}

static void
limiter_arm(struct limiter *l)
{
	if (l->ndirty > 0 && !ev_is_active(&l->sync)) {
		ev_timer_set(&l->sync, (double)l->cfg->sync_ms / 1000.0, 0.0);
		ev_timer_start(l->loop, &l->sync);
	}
}

static void
limiter_on_state(void *arg, int up)
{
	struct limiter *l = arg;

	limiter_count(l);
	if (up) {
		limiter_set_shared(l, 1);
		limiter_arm(l);
		return;
	}
	/* what was spent locally and not sent is lost: at most a sync's worth */
	limiter_set_shared(l, 0);
	limiter_forget(l);
}

static void
limiter_on_reply(void *arg, uint64_t tag, const redisReply *reply)
{
	struct limiter *l = arg;
	uint32_t slot = (uint32_t)(tag & 0xffffffffu);
	struct limiter_entry *e;
	char *end;
	double v;

	if (slot >= LIMITER_SLOTS)
		return;
	e = &l->slots[slot];
	if (l->redis != NULL)
		limiter_count(l); /* NULL while being freed */
	if (e->gen != (uint32_t)(tag >> 32) || !e->inflight)
		return; /* forgotten since */
	e->inflight = 0;
	e->sent = 0;
	if (reply == NULL || reply->type != REDIS_REPLY_STRING)
		return; /* the connection is being dropped; the view is forgotten with it */
	v = strtod(reply->str, &end);
	if (end == reply->str)
		return;
	e->view = v;
	e->view_at = ev_now(l->loop);
	if (e->pending > 0 && !e->dirty) {
		e->dirty = 1;
		l->dirty[l->ndirty++] = slot;
	}
	limiter_arm(l);
}

/* One script call per bucket with tokens spent; the buckets whose call is
 * still out wait for the next turn. */
static void
limiter_on_sync(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct limiter *l = t->data;
	size_t keep = 0;
	char key[256], rate[32], burst[32], spent[32];
	size_t plen = strlen(l->cfg->prefix);
	const char *args[3] = {rate, burst, spent};

	if (plen > sizeof(key) - 2 * RATELIMIT_KEY_MAX)
		plen = sizeof(key) - 2 * RATELIMIT_KEY_MAX;
	memcpy(key, l->cfg->prefix, plen);
	for (size_t i = 0; i < l->ndirty; i++) {
		uint32_t slot = l->dirty[i];
		struct limiter_entry *e = &l->slots[slot];
		size_t klen = plen;

		if (e->inflight || !redis_up(l->redis)) {
			l->dirty[keep++] = slot;
			continue;
		}
		for (size_t j = 0; j < e->keylen; j++)
			klen += (size_t)snprintf(key + klen, 3, "%02x", e->key[j]);
		snprintf(rate, sizeof(rate), "%.9g", e->rate);
		snprintf(burst, sizeof(burst), "%.9g", e->burst);
		snprintf(spent, sizeof(spent), "%.9g", e->pending);
		if (redis_eval(l->redis, (uint64_t)e->gen << 32 | slot, key, klen, 3, args) != 0) {
			l->dirty[keep++] = slot;
			continue;
		}
		e->inflight = 1;
		e->sent = e->pending;
		e->pending = 0;
		e->dirty = 0;
	}
	l->ndirty = keep;
	if (redis_up(l->redis))
		limiter_arm(l);
}

/* The view of KEY: found, a free slot, or the one idle longest with
 * nothing to send; NULL if all are busy. */
static struct limiter_entry *
limiter_lookup(struct limiter *l, const void *key, size_t keylen, uint32_t *slotp)
{
	uint64_t h = hash_bytes(l->seed, key, keylen);
	struct limiter_entry *victim = NULL;
	uint32_t vslot = 0;

	for (uint32_t i = 0; i < LIMITER_PROBE; i++) {
		uint32_t slot = (uint32_t)(h + i) & (LIMITER_SLOTS - 1);
		struct limiter_entry *e = &l->slots[slot];

		if (e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
			*slotp = slot;
			return e;
		}
		if (e->keylen == 0) {
			victim = e;
			vslot = slot;
			break;
		}
		if (!e->dirty && !e->inflight && (victim == NULL || e->used_at < victim->used_at)) {
			victim = e;
			vslot = slot;
		}
	}
	if (victim == NULL)
		return NULL;
	victim->keylen = (uint8_t)keylen;
	memcpy(victim->key, key, keylen);
	victim->gen++;
	victim->view = NAN;
	victim->pending = victim->sent = 0;
	*slotp = vslot;
	return victim;
}

/* This machine's buckets decide: no Redis, Redis down with "fail: open",
 * or no room for a view. */
static int
limiter_local(struct limiter *l, const void *key, size_t keylen, double rate_per_s, double burst, uint64_t n,
              int take, double *retry_after_s)
{
	int rc;

	if (take)
		rc = ratelimit_take_n(l->shm, key, keylen, rate_per_s, burst, n, scoreboard_now_ms(), retry_after_s);
	else
		rc = ratelimit_peek(l->shm, key, keylen, rate_per_s, burst, scoreboard_now_ms(), retry_after_s);
	return rc == 0 ? LIMITER_REFUSE : LIMITER_ALLOW;
}

/* A bucket with something to send (or to ask).  SOON: a bucket this
 * worker has never heard of, or not for LIMITER_STALE, goes at the next
 * loop turn rather than after sync_interval: until the answer, the worker
 * decides blind (on a full bucket, or on an old view). */
static void
limiter_mark(struct limiter *l, struct limiter_entry *e, uint32_t slot, int soon)
{
	if (!e->dirty) {
		e->dirty = 1;
		l->dirty[l->ndirty++] = slot;
	}
	if (soon && !e->inflight && redis_up(l->redis)) {
		ev_timer_stop(l->loop, &l->sync);
		ev_timer_set(&l->sync, 0.0, 0.0);
		ev_timer_start(l->loop, &l->sync);
		return;
	}
	limiter_arm(l);
}

/* limiter_take (TAKE 1) and limiter_peek (TAKE 0, N 1). */
static int
limiter_decide(struct limiter *l, const void *key, size_t keylen, double rate_per_s, double burst, uint64_t n,
               int take, double *retry_after_s)
{
	struct limiter_entry *e;
	uint32_t slot;
	double avail, need = (double)n;
	ev_tstamp now;
	int ask;

	if (keylen == 0 || keylen > RATELIMIT_KEY_MAX || n == 0)
		return LIMITER_ALLOW;
	if (l->redis == NULL)
		return limiter_local(l, key, keylen, rate_per_s, burst, n, take, retry_after_s);
	if (!l->shared) {
		l->fallback++;
		metrics_inc(&l->metrics->redis_fallback);
		__atomic_store_n(&l->slot->redis_fallback, l->fallback, __ATOMIC_RELAXED);
		if (l->cfg->fail_closed)
			return LIMITER_UNAVAILABLE;
		return limiter_local(l, key, keylen, rate_per_s, burst, n, take, retry_after_s);
	}
	if (burst < 1)
		burst = 1;
	if (need > burst) {
		if (retry_after_s != NULL)
			*retry_after_s = INFINITY;
		return LIMITER_REFUSE;
	}
	if ((e = limiter_lookup(l, key, keylen, &slot)) == NULL) {
		/* every slot of the probe is waiting for Redis: this one
		 * request is decided by this machine alone */
		l->fallback++;
		metrics_inc(&l->metrics->redis_fallback);
		__atomic_store_n(&l->slot->redis_fallback, l->fallback, __ATOMIC_RELAXED);
		return limiter_local(l, key, keylen, rate_per_s, burst, n, take, retry_after_s);
	}
	now = ev_now(l->loop);
	e->used_at = now;
	e->rate = rate_per_s;
	e->burst = burst;
	ask = isnan(e->view) || now - e->view_at > LIMITER_STALE;
	if (isnan(e->view))
		avail = burst; /* not heard of yet: a new bucket is full */
	else {
		avail = e->view + rate_per_s * (now - e->view_at);
		if (avail > burst)
			avail = burst;
	}
	if (ask && !take && !e->inflight)
		limiter_mark(l, e, slot, 1); /* ask, spending nothing */
	avail -= e->pending + e->sent;
	if (avail < need) {
		if (retry_after_s != NULL)
			*retry_after_s = (need - avail) / rate_per_s;
		return LIMITER_REFUSE;
	}
	if (take) {
		e->pending += need;
		limiter_mark(l, e, slot, ask);
	}
	if (retry_after_s != NULL)
		*retry_after_s = 0;
	return LIMITER_ALLOW;
}

int
limiter_take(struct limiter *l, const void *key, size_t keylen, double rate_per_s, double burst, uint64_t n,
             double *retry_after_s)
{
	return limiter_decide(l, key, keylen, rate_per_s, burst, n, 1, retry_after_s);
}

int
limiter_peek(struct limiter *l, const void *key, size_t keylen, double rate_per_s, double burst,
             double *retry_after_s)
{
	/* the shared memory table alone (no Redis): straight to it, as
	 * limiter_decide() and limiter_local() would (the failed-attempts
	 * limit asks this on every request with credentials) */
	if (l->redis == NULL && keylen > 0 && keylen <= RATELIMIT_KEY_MAX)
		return ratelimit_peek(l->shm, key, keylen, rate_per_s, burst, scoreboard_now_ms(), retry_after_s) == 0
		           ? LIMITER_REFUSE
		           : LIMITER_ALLOW;
	return limiter_decide(l, key, keylen, rate_per_s, burst, 1, 0, retry_after_s);
}

uint64_t
limiter_hash(const struct limiter *l, const void *key, size_t keylen)
{
	return ratelimit_hash(l->shm, key, keylen);
}

int
limiter_peek_hashed(struct limiter *l, const void *key, size_t keylen, uint64_t hash, double rate_per_s,
                    double burst, double *retry_after_s)
{
	if (l->redis == NULL && keylen > 0 && keylen <= RATELIMIT_KEY_MAX) {
		/* the clock read only when the answer depends on it (an address
		 * that has failed lately): a client that never failed has no bucket */
		int r = ratelimit_peek_hashed(l->shm, key, keylen, hash, rate_per_s, burst, RATELIMIT_NOW_UNREAD,
		                              retry_after_s);

		if (r == RATELIMIT_PEEK_CLOCK)
			r = ratelimit_peek_hashed(l->shm, key, keylen, hash, rate_per_s, burst, scoreboard_now_ms(),
			                          retry_after_s);
		return r == 0 ? LIMITER_REFUSE : LIMITER_ALLOW;
	}
	return limiter_decide(l, key, keylen, rate_per_s, burst, 1, 0, retry_after_s);
}

struct limiter *
limiter_new(struct ev_loop *loop, const struct config *cfg, struct ratelimit *shm, struct metrics_shard *metrics,
            struct scoreboard_slot *slot)
{
	struct limiter *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->loop = loop;
	l->shm = shm;
	l->metrics = metrics;
	l->slot = slot;
	l->shared = 1;
	__atomic_store_n(&slot->ratelimit_store, SCOREBOARD_STORE_LOCAL, __ATOMIC_RELAXED);
	if (cfg->redis.address == NULL)
		return l;
	/* shared while the first connection is being made */
	__atomic_store_n(&slot->ratelimit_store, SCOREBOARD_STORE_REDIS, __ATOMIC_RELAXED);
	l->cfg = &cfg->redis;
	if (getrandom(&l->seed, sizeof(l->seed), 0) != sizeof(l->seed))
		l->seed = (uint64_t)scoreboard_now_ms() * 0x9e3779b97f4a7c15ULL;
	l->slots = calloc(LIMITER_SLOTS, sizeof(*l->slots));
	l->dirty = calloc(LIMITER_SLOTS, sizeof(*l->dirty));
	if (l->slots == NULL || l->dirty == NULL) {
		limiter_free(l);
		return NULL;
	}
	ev_init(&l->sync, limiter_on_sync);
	l->sync.data = l;
	if ((l->redis = redis_new(loop, l->cfg, limiter_script, limiter_on_reply, limiter_on_state, l)) == NULL) {
		limiter_free(l);
		return NULL;
	}
	return l;
}

void
limiter_free(struct limiter *l)
{
	if (l == NULL)
		return;
	if (l->redis != NULL) {
		struct redis *r = l->redis;

		ev_timer_stop(l->loop, &l->sync);
		limiter_count(l);
		l->redis = NULL;
		redis_free(r); /* hands its NULL answers to us: still here */
	}
	free(l->slots);
	free(l->dirty);
	free(l);
}

void
limiter_stats(const struct limiter *l, struct limiter_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->shared = l->shared;
	out->fallback = l->fallback;
	if (l->redis != NULL) {
		out->replies = redis_stats(l->redis)->replies;
		out->errors = redis_stats(l->redis)->errors;
	}
}
