/*
 * bridge.h - libh2o's evloop nested inside one libev loop.
 *
 * libh2o 2.2.5 has no libev backend.  Its own epoll loop keeps one epoll fd;
 * we watch that fd from libev and run h2o's loop with a zero wait whenever
 * it is readable, when one of h2o's timeouts is due, and before libev
 * blocks if h2o was handed work from outside its own run (a response sent
 * from an upstream callback, a socket we accepted); those runs do not ask
 * the kernel for events (worker/h2oepoll.h), libev's poll does.  ev_run() stays the
 * worker's only blocking point.  See doc/DESIGN.md (section 2) for the
 * measurements behind this shape.
 */
#ifndef ESGATE_BRIDGE_H
#define ESGATE_BRIDGE_H

#include <ev.h>
#include <h2o.h>

struct bridge {
	struct ev_loop *loop;
	h2o_evloop_t *h2o;  /* created by bridge_init, after fork */
	int epfd;           /* h2o's private epoll fd (checked at init) */
	ev_io io;           /* epfd readable: h2o has socket events */
	ev_timer timer;     /* next h2o timeout */
	uint64_t timer_wake; /* h2o's time (ms) the timer was armed for */
	ev_prepare prepare; /* flush h2o's deferred work before libev blocks */
	ev_check clock;     /* refresh h2o's clock after libev wakes up */
};

/* Creates the h2o evloop and hooks it into LOOP.  Fails (returns -1 and
 * logs) if the evloop's private layout is not the one we checked, or if
 * h2o's epoll calls do not go through worker/h2oepoll.c as it expects. */
int bridge_init(struct bridge *b, struct ev_loop *loop);
/* h2o_evloop_socket_create() for a file descriptor just opened (accepted)
 * non-blocking (accept4 or socketpair with SOCK_NONBLOCK: h2o's own
 * fcntl to set it is then skipped): every fd handed to h2o goes through
 * here, so that the lazy epoll registrations (worker/h2oepoll.h) forget an
 * earlier file of that number. */
h2o_socket_t *bridge_socket_create(struct bridge *b, int fd, int flags);
/* Runs h2o once without waiting; for callers that queued work in h2o. */
void bridge_kick(struct bridge *b);
#endif
