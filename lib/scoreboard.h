/*
 * scoreboard.h - memory shared by the master and its workers.
 *
 * One mmap(MAP_SHARED | MAP_ANONYMOUS) region, created by the master
 * before the first fork: plain counters, not loop-bound state, so sharing
 * it across fork is safe.  Each worker writes only its own slot; the
 * master reads them all (heartbeats, requests served) and owns the
 * allocation of slots.  Never a file on disk: a heartbeat written to a
 * disk-backed /tmp is what makes gunicorn workers time out under I/O load.
 */
#ifndef ESGATE_SCOREBOARD_H
#define ESGATE_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

enum scoreboard_state {
	SCOREBOARD_STARTING = 0,
	SCOREBOARD_READY,
	SCOREBOARD_DRAINING,
	SCOREBOARD_STOPPING,
};

/* Where a worker's limits take their tokens (worker/limiter.h). */
enum scoreboard_store {
	SCOREBOARD_STORE_LOCAL = 0, /* this machine's shared memory: no Redis configured */
	SCOREBOARD_STORE_REDIS,	    /* Redis, answering */
	SCOREBOARD_STORE_FALLBACK,  /* Redis configured and down: the local limit, or 503 */
};

struct scoreboard_slot {
	int32_t pid;		/* 0: free (written by the master) */
	uint32_t id;		/* worker slot number, 1.. */
	uint32_t generation;
	uint32_t state;		/* enum scoreboard_state, written by the master */
	uint64_t started_ms;	/* CLOCK_MONOTONIC ms, by the master at fork */
	uint64_t heartbeat_ms;	/* CLOCK_MONOTONIC ms, by the worker's loop */
	uint64_t requests;	/* requests this worker has started to serve */
	uint32_t ratelimit_store; /* enum scoreboard_store, written by the worker */
	uint32_t _pad;
	/* the worker's own counts of its Redis store (the shared metrics hold
	 * the sums, which never reset): round trips, errors, decisions made
	 * without Redis */
	uint64_t redis_round_trips, redis_errors, redis_fallback;
	/* the hand-off of accepted connections (worker/handoff.c): the client
	 * connections the worker holds and 1 while its listeners are armed
	 * (both written by the worker); descriptors sent to this slot's queue
	 * (added to by the senders) and taken from it (by the worker, or by a
	 * peer taking back what it did not read): the difference is queued;
	 * and its loop's iterations, which a stopped worker does not add to */
	uint32_t conns;
	uint32_t accepting;
	uint64_t handed_in;
	uint64_t handed_taken;
	uint64_t loops;		/* the worker's loop iterations: it runs */
	uint64_t listeners;	/* which listening sockets its listener numbers
				 * name (handoff_listeners_id; 0 until set) */
	char _line[16];		/* two cache lines a slot: no false sharing */
};

struct scoreboard {
	uint32_t nslots;
	uint32_t _pad;
	struct scoreboard_slot slots[];
};

/* Maps a scoreboard of NSLOTS free slots; NULL (errno set) on failure. */
struct scoreboard *scoreboard_create(uint32_t nslots);
void scoreboard_destroy(struct scoreboard *sb);
/* Master: takes a free slot for a worker about to be forked; -1 if full. */
int scoreboard_claim(struct scoreboard *sb, unsigned id, unsigned generation);
/* Master: binds the claimed slot to the forked PID. */
void scoreboard_bind(struct scoreboard *sb, int slot, pid_t pid);
/* Master: frees the slot of a reaped worker. */
void scoreboard_release(struct scoreboard *sb, int slot);

/* Worker: "my loop is alive" (called from a loop timer). */
void scoreboard_beat(struct scoreboard_slot *s);
/* Milliseconds since the slot's last heartbeat. */
uint64_t scoreboard_silence_ms(const struct scoreboard_slot *s);
/* CLOCK_MONOTONIC in milliseconds, the scoreboard's clock. */
uint64_t scoreboard_now_ms(void);

#endif
