/*
 * master.h - the master process: owns the configuration, the listening
 * sockets and the workers, and nothing bound to an event loop or to the
 * upstream.  It sleeps in sigtimedwait(2): every signal is read as data in
 * the main loop, never handled in signal context.
 */
#ifndef ESGATE_MASTER_H
#define ESGATE_MASTER_H

#include <stdint.h>
#include <sys/types.h>

#include "lib/config.h"
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
};

/* One slot per configured worker of the current generation. */
struct master_slot {
	unsigned failures;     /* boots in a row that died before ready */
	uint64_t respawn_at_ms; /* 0: no respawn pending */
};

enum master_stop { MASTER_RUNNING, MASTER_STOP_GRACEFUL, MASTER_STOP_FAST };

struct master {
	struct config *cfg;
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
};

/* Runs the master until it is stopped; returns the process exit code.
 * Takes ownership of CFG. */
int master_run(struct config *cfg, const char *config_path);

#endif
