/*
 * worker.h - one worker process: after fork it owns exactly one libev loop,
 * one h2o server nested in it and one upstream client bound to it.
 */
#ifndef ESGATE_WORKER_H
#define ESGATE_WORKER_H

#include <ev.h>
#include <h2o.h>
#include <sys/types.h>

#include "lib/config.h"
#include "worker/bridge.h"
#include "worker/upstream.h"

struct worker;

struct worker_listener {
	int fd;
	ev_io io;
	struct worker *w;
};

struct worker {
	unsigned id;		/* slot number, 1..workers, printed as "worker N" */
	unsigned generation;	/* config generation this worker serves */
	pid_t master;		/* parent pid, to tell it we are ready */
	const struct config *cfg;
	struct ev_loop *loop;	/* the only blocking point of the process */
	struct bridge bridge;	/* h2o's evloop inside loop */
	h2o_globalconf_t h2o_config;
	h2o_context_t h2o_ctx;
	h2o_accept_ctx_t accept_ctx;
	struct worker_listener *listeners;
	size_t nlisteners;
	ev_timer accept_pause;	/* out of fds: accept again in a moment */
	struct upstream *upstream;
	size_t nconns;		/* open client connections */
	int draining;
	ev_timer drain_deadline;
	ev_signal sig_term, sig_int, sig_quit;
};

/* Runs a worker in the freshly forked child and exits the process; never
 * returns.  FDS are the listening sockets inherited from the master. */
void worker_main(const struct config *cfg, const int *fds, size_t nfds, unsigned id, unsigned generation)
	__attribute__((noreturn));

/* The signal a worker sends its master once it accepts connections. */
int worker_ready_signal(void);

#endif
