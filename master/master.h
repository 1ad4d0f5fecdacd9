/*
 * master.h - the master process: owns the configuration, the listening
 * sockets and the workers, and nothing bound to an event loop or to the
 * upstream.  It sleeps in poll(2) on a signalfd and the workers' message
 * pipe: every signal is read as data, never handled in signal context.
 */
#ifndef ESGATE_MASTER_H
#define ESGATE_MASTER_H

#include <stdint.h>
#include <sys/types.h>

#include "lib/config.h"
#include "lib/metrics.h"
#include "lib/ratelimit.h"
#include "lib/scoreboard.h"
#include "master/listener.h"

enum master_child_state {
	MASTER_CHILD_STARTING, /* forked, not ready yet */
	MASTER_CHILD_READY,    /* accepting */
	MASTER_CHILD_DRAINING, /* told to finish and leave (QUIT) */
	MASTER_CHILD_STOPPING, /* told to leave now (TERM) */
};

struct master_child {
	pid_t pid;
	unsigned id;
	unsigned generation;
	enum master_child_state state;
	uint64_t started_ms;
	uint64_t kill_at_ms; /* DRAINING/STOPPING: SIGKILL after this */
	int sb_slot;	     /* its slot in the scoreboard */
};

/* One slot per configured worker of the current generation. */
struct master_slot {
	unsigned failures;     /* boots in a row that died before ready */
	uint64_t respawn_at_ms; /* 0: no respawn pending */
};

enum master_stop { MASTER_RUNNING, MASTER_STOP_GRACEFUL, MASTER_STOP_FAST };

struct tlsticket;

struct master {
	struct config *cfg;
	struct tlsticket *tickets; /* session ticket keys, shared with the workers, kept over reloads */
	uint64_t ticket_next_ms;   /* when the next ticket key is made */
	char *config_path;
	unsigned generation;
	struct listener *listeners;
	size_t nlisteners;
	struct master_child *children;
	size_t nchildren, children_cap;
	struct master_slot *slots;
	size_t nslots;
	int switch_pending;	 /* a new generation waits to replace the old */
	uint64_t switch_deadline_ms;
	enum master_stop stop;
	uint64_t stop_deadline_ms;
	char *pidfile;		 /* the one we wrote, removed at exit */
	int pidfile_fd;		 /* holds the lock that marks us running */
	unsigned nworkers;	 /* target for this generation: workers, then TTIN/TTOU */
	struct scoreboard *sb;
	/* per scoreboard slot, the first nhandoff: the datagram socket pair that
	 * carries accepted connections to its worker (worker/handoff.h), made
	 * before the fork of a worker that may use the slot, kept (both ends)
	 * so that what is queued outlives a worker */
	int (*handoff)[2];
	size_t nhandoff;
	struct metrics *metrics; /* shared with the workers, never reset */
	struct ratelimit *ratelimit; /* per-client token buckets, shared likewise */
	int socket_activated;	 /* listeners came from systemd (LISTEN_FDS) */
	uint64_t watchdog_ms;	 /* systemd watchdog period, 0 if none */
	uint64_t watchdog_next_ms;
	int ready_announced;	 /* READY=1 sent for this generation */
	char last_reload[256];	 /* for STATUS= */
	char upgrade_note[48];	 /* "; binary upgrade from pid N", for STATUS= */
	char problem[160];	 /* e.g. a crash loop, for STATUS= until it recovers */
	char status_sent[768];
	char exe[4096];		 /* our binary's path, for USR2 */
	char *const *argv;
	/* A binary upgrade (USR2), as the old master: */
	pid_t upgrade_pid;	 /* the new master (our child) while it runs */
	int handover_fd;	 /* pipe to it: one byte once it is the main process */
	int handed_over;	 /* we told systemd MAINPID=upgrade_pid, and drain */
	int reload_passed;	 /* a HUP went on to the new master before the handover */
	/* ... and as the new master: */
	pid_t old_master;	 /* the master that exec'ed us, until it is gone */
	int old_master_fd;	 /* pidfd of old_master (-1: polled with kill 0) */
	int takeover_fd;	 /* the other end of its handover_fd, until it speaks */
	int takeover_asked;	 /* we QUIT the old master: hand over, then drain */
	int took_over;		 /* it did: we are systemd's main process */
	int signal_fd;		 /* signalfd of the blocked signals */
	int msg_fd[2];		 /* pipe: workers write struct worker_msg */
};

/* Runs the master until it is stopped; returns the process exit code.
 * Takes ownership of CFG.  ARGV is kept to exec a new binary on USR2. */
int master_run(struct config *cfg, const char *config_path, char *const *argv);

/* The checks a config must pass besides its syntax: the privileges the
 * workers will have.  Returns NULL or a message. */
const char *master_check_privileges(const struct config *cfg);

#endif
