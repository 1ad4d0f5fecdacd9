/*
 * redis.h - a worker's one connection to Redis, on its own libev loop
 * (hiredis' async API and its libev adapter), for the shared rate-limit
 * store (worker/limiter.h).
 *
 * Created after fork, like everything loop-bound.  It never blocks: the
 * host name is resolved once, when the worker starts (as the upstream's
 * nodes are), connects are non-blocking, and hiredis' adapter has no
 * timeouts, so this adds them on the loop: a connect, or a command that
 * has seen no reply, for longer than "timeout" drops the connection (a
 * dead and a SIGSTOP'ed Redis look the same).  A dropped connection is
 * retried with backoff (100 ms doubling to 1 s), each attempt starting
 * with AUTH, SELECT and SCRIPT LOAD of the one script the owner gave; it
 * is "up" once that script is loaded.  Going down and coming back are
 * logged once each, not per attempt.
 */
#ifndef ESGATE_REDIS_H
#define ESGATE_REDIS_H

#include <ev.h>
#include <stdint.h>

#include "lib/config.h"

struct redis;
struct redisReply;

/* A script's reply: REPLY is NULL when the command failed without one (the
 * connection dropped or timed out, or the client is being freed); an error
 * reply is passed as it is.  TAG is the one given to redis_eval. */
typedef void redis_reply_cb(void *arg, uint64_t tag, const struct redisReply *reply);
/* The connection came up (UP 1: the script is loaded) or went down (0). */
typedef void redis_state_cb(void *arg, int up);

/* Starts connecting to CFG's Redis (which must outlive the client) on
 * LOOP.  SCRIPT is the Lua source that redis_eval runs.  NULL only when
 * out of memory; a Redis that cannot be reached is retried. */
struct redis *redis_new(struct ev_loop *loop, const struct config_redis *cfg, const char *script,
                        redis_reply_cb *on_reply, redis_state_cb *on_state, void *arg);
/* Closes the connection; every command still waiting gets its reply
 * callback with NULL first. */
void redis_free(struct redis *r);

/* 1 when commands can be sent (connected, script loaded). */
int redis_up(const struct redis *r);

/* EVALSHA of the script with one key (KEY, KEYLEN bytes) and NARGS string
 * arguments; hiredis pipelines everything sent in one loop turn into one
 * write.  0, or -1 when not up (no callback then). */
int redis_eval(struct redis *r, uint64_t tag, const char *key, size_t keylen, int nargs, const char *const *args);

/* Counters, for the metrics. */
struct redis_stats {
	uint64_t replies;  /* script replies received (round trips) */
	uint64_t errors;   /* error replies, timeouts, failed connects and lost connections */
	uint64_t connects; /* connections that came up */
};
const struct redis_stats *redis_stats(const struct redis *r);

#endif
