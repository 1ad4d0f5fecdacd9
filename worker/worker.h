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
#include "lib/metrics.h"
#include "lib/ratelimit.h"
#include "lib/reqid.h"
#include "lib/scoreboard.h"
#include "worker/access.h"
#include "worker/bridge.h"
#include "worker/upstream.h"

struct worker;
struct cache;
struct cache_route;

struct worker_listener {
	int fd;
	int metrics_only;	/* accepted connections get the /metrics-only host */
	ev_io io;
	struct worker *w;
};

struct worker {
	unsigned id;		/* slot number, 1..workers, printed as "worker N" */
	unsigned generation;	/* config generation this worker serves */
	pid_t master;		/* parent pid: we leave if it goes */
	int notify_fd;		/* write end of the master's pipe */
	const struct config *cfg;
	struct ev_loop *loop;	/* the only blocking point of the process */
	struct bridge bridge;	/* h2o's evloop inside loop */
	h2o_globalconf_t h2o_config;
	h2o_context_t h2o_ctx;
	h2o_accept_ctx_t accept_ctx;
	h2o_accept_ctx_t metrics_accept_ctx; /* for a separate metrics listener */
	h2o_hostconf_t *hosts_main[2], *hosts_metrics[2];
	struct worker_listener *listeners;
	size_t nlisteners;
	ev_timer accept_pause;	/* out of fds: accept again in a moment */
	struct upstream *upstream;
	size_t nconns;		/* open client connections */
	ev_timer idle_trim;	/* no connection for a while: give memory back */
	int draining;
	ev_timer drain_deadline;
	ev_signal sig_term, sig_int, sig_quit, sig_usr1;
	struct scoreboard_slot *slot; /* ours, in memory shared with the master */
	ev_timer heartbeat;
	uint64_t requests;	/* served by this process */
	uint64_t retire_after;	/* max_requests plus jitter; 0 = never */
	ev_timer retire;	/* drain outside the request handler */
	struct reqid_gen reqids;
	struct metrics *metrics;	/* shared with the master and the other workers */
	struct scoreboard *sb;		/* every worker's slot, for /_esgate/status */
	struct ratelimit *ratelimit;	/* token buckets shared by all workers */
	struct access_log access;
	int metric_root, metric_health, metric_metrics, metric_status, metric_unmatched;
	int *route_metric;		/* per configured route */
	struct cache *cache;		/* the micro-cache; NULL when no route caches or coalesces */
	struct cache_route *cache_routes; /* [0]: the cluster info, [1 + i]: routes[i] */
};

/* What the master hands a freshly forked worker. */
struct worker_args {
	const struct config *cfg;
	const int *fds;		/* listening sockets inherited from the master */
	const unsigned char *metrics_only; /* per fd: serves /metrics only */
	size_t nfds;
	unsigned id;
	unsigned generation;
	struct scoreboard_slot *slot;
	struct scoreboard *sb;
	struct metrics *metrics;
	struct ratelimit *ratelimit;
	int notify_fd;		/* write end of the master's message pipe */
};

/* Runs a worker in the freshly forked child and exits the process; never
 * returns. */
void worker_main(const struct worker_args *args) __attribute__((noreturn));

/* Counts one request; past max_requests the worker retires gracefully. */
void worker_count_request(struct worker *w);

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
