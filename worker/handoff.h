/*
 * handoff.h - a worker passes a connection it has just accepted to the
 * least loaded worker of its generation.
 *
 * Why: one accept per wake-up does not spread new connections where the
 * workers share CPUs with other busy processes (the bench's 2 CPUs: wrk's
 * 64 connections split 63/1, h2load's 16 all on one worker, which then
 * carried every HTTP/2 request).  Pausing the busier worker's listeners
 * (commit 401bf1f, reverted) balanced long connections but cost short ones
 * up to 78 %: both workers paused at once.  So nobody ever stops accepting;
 * instead, as HAProxy hands an accepted connection to its least loaded
 * thread, a worker holding more than the least loaded peer plus a slack
 * sends the descriptor (SCM_RIGHTS) to that peer, before any TLS or HTTP
 * work, and the peer serves it as if it had accepted it.
 *
 * The channels: one AF_UNIX datagram socket pair per scoreboard slot,
 * made by the master before forking (master.c) and inherited by every
 * worker it forks after; the master keeps both ends, so what is queued to
 * a slot outlives a crashed worker and is read by the next worker of that
 * slot.  Each datagram carries one descriptor, the sender's generation,
 * the listener it came from (its index, and which sockets the sender's
 * indexes name) and the client's address.  A worker reads only
 * its own slot's queue, except to take back what a peer has not read
 * while its loop did not turn once in HANDOFF_CHECK (stopped, stuck or
 * unscheduled): the sender then serves the connection itself, and sends
 * that peer nothing more until its loop turns again.  A draining worker
 * (reload, TTOU, max_requests) serves nothing from its queue: what
 * reaches it goes on to a live worker with the same listening sockets,
 * of the newest generation (handoff_drain).  See doc/DESIGN.md,
 * "Spreading connections".
 */
#ifndef ESGATE_HANDOFF_H
#define ESGATE_HANDOFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "lib/metrics.h"
#include "lib/scoreboard.h"

/* Serves FD, accepted on the listener of index LISTENER, from client ADDR
 * (LEN 0: unknown): the worker's own path after accept4. */
typedef void (*handoff_serve_cb)(void *arg, int fd, unsigned listener, const struct sockaddr *addr,
				 socklen_t len);

#define HANDOFF_PEERS 64 /* other workers of the generation looked at */
#define HANDOFF_NOT_SUSPECT UINT64_MAX

struct handoff {
	struct ev_loop *loop;
	struct scoreboard *sb;
	struct scoreboard_slot *self;
	uint32_t self_index; /* our slot */
	uint32_t generation;
	unsigned nlisteners; /* a datagram naming another is refused */
	uint64_t listeners;  /* handoff_listeners_id of ours: a datagram with another is refused */
	int draining;	     /* what reaches us goes on to a live worker */
	const int (*pairs)[2]; /* per slot: [0] the queue's reading end, [1] its sending end */
	size_t npairs;	       /* slots that have one (the others are never targets) */
	struct metrics_shard *counts;
	handoff_serve_cb serve;
	void *serve_arg;
	ev_io io;	 /* our slot's queue */
	ev_timer check;	 /* a while after a hand-off: was it read? */
	ev_tstamp peers_at;
	uint32_t peers[HANDOFF_PEERS]; /* slots of the live workers of our generation, but us */
	uint64_t *loops_seen;	/* per slot: its loop count at our last hand-off or check */
	uint64_t *suspect_loops; /* per slot: its loop count when it left a hand-off unread
				  * (HANDOFF_NOT_SUSPECT: none) */
	int32_t *suspect_pid;	/* per slot: the worker that did (a new one in the slot counts from 0) */
	unsigned char *watch;	/* per slot: sent to since its last check */
	ev_prepare tick;	/* counts our loop's iterations (slot->loops) */
	uint64_t closes;	/* our client connections closed (handoff_closed) */
	uint64_t closes_mark;	/* closes when this window began */
	uint64_t closes_before;	/* closes when the window before it began */
	ev_tstamp window_at;	/* when this window began */
	size_t npeers;
};

/* Names the listening sockets FDS (N of them, in order) by their inode
 * numbers: two workers with the same id number the same sockets alike,
 * whatever their generations; never 0. */
uint64_t handoff_listeners_id(const int *fds, size_t n);

/* Sets H up and starts reading our slot's queue (if we have a pair);
 * LISTENERS is handoff_listeners_id of ours, published in our slot. */
void handoff_init(struct handoff *h, struct ev_loop *loop, struct scoreboard *sb, struct scoreboard_slot *self,
		  uint32_t generation, unsigned nlisteners, uint64_t listeners, const int (*pairs)[2], size_t npairs,
		  struct metrics_shard *counts, handoff_serve_cb serve, void *serve_arg);

/* Just accepted FD (from listener LISTENER, client ADDR of LEN) while
 * holding MINE connections: 1 if it went to a less loaded peer (FD closed
 * here), 0 if it is still ours to serve. */
int handoff_offer(struct handoff *h, size_t mine, int fd, unsigned listener, const struct sockaddr *addr,
		  socklen_t len);

/* One of our client connections closed. */
static inline void
handoff_closed(struct handoff *h)
{
	h->closes++;
}

/* Draining (our slot already says we do not accept): from now on what is
 * queued to us, and what we take back, goes on to the heir (a live,
 * accepting worker with our listeners, newest generation first, then
 * least loaded) instead of being served here; served here only when no
 * worker is left to take it (a graceful stop). */
void handoff_drain(struct handoff *h);

/* Leaving: what is still queued for us goes to the heir, or is closed. */
void handoff_leave(struct handoff *h);

#endif
