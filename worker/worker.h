/*
 * worker.h - one worker process: after fork it owns exactly one libev loop,
 * one h2o server nested in it and one upstream client bound to it.
 *
 * The worker's entry point, and all the master knows of it: what it is
 * handed at fork, and the messages it sends back.
 */
#ifndef ESGATE_WORKER_H
#define ESGATE_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/metrics.h"
#include "lib/ratelimit.h"
#include "lib/scoreboard.h"
#include "lib/tlsticket.h"

/* What the master hands a freshly forked worker. */
struct worker_args {
	const struct config *cfg;
	const int *fds;		/* listening sockets inherited from the master */
	const unsigned char *metrics_only; /* per fd: serves /metrics only */
	struct tls_listener *const *tls; /* per fd: its TLS (in cfg), or NULL for clear text */
	struct tlsticket *tickets; /* session ticket keys made by the master (lib/tlsticket.h) */
	size_t nfds;
	unsigned id;
	unsigned generation;
	struct scoreboard_slot *slot;
	struct scoreboard *sb;
	struct metrics *metrics;
	struct metrics_shard *counts; /* the shard of SLOT: this worker counts there only */
	struct ratelimit *ratelimit;
	int notify_fd;		/* write end of the master's message pipe */
	/* per scoreboard slot (the first NHANDOFF): a datagram socket pair,
	 * [0] reading and [1] sending, that carries accepted connections to
	 * that slot's worker (worker/handoff.h) */
	const int (*handoff)[2];
	size_t nhandoff;
};

/* Runs a worker in the freshly forked child and exits the process; never
 * returns. */
void worker_main(const struct worker_args *args) __attribute__((noreturn));

/* What a worker tells its master, through a pipe: a worker that dropped
 * root may not signal a root master.  One write(2) per message, smaller
 * than PIPE_BUF, so messages from many workers never interleave. */
enum worker_msg_type {
	WORKER_MSG_READY = 1,	 /* accepting connections */
	WORKER_MSG_RETIRING = 2, /* max_requests reached: draining, start my successor */
};

struct worker_msg {
	int32_t pid;
	int32_t type;
};

#endif
