/*
 * master.c - supervision: fork workers, watch them, replace them, reload.
 *
 * Signals (one meaning each; see README and esgate -h):
 *   HUP        re-read and validate the file; on success start a new
 *              generation of workers and drain the old one once the new
 *              one is ready; on failure log every error and change nothing.
 *   TERM, INT  stop now: workers get TERM; exit when all are gone.
 *   QUIT       graceful stop: workers drain for up to graceful_timeout.
 *   USR1       reopen the log file, here and in every worker.
 *   USR2       binary upgrade: exec the binary again, handing it the
 *              listening sockets; it QUITs us once its workers serve, and
 *              we hand the service over (MAINPID=, see notify.h) and drain.
 *   TTIN/TTOU  one worker more / fewer (never below 1), until the next reload.
 * Workers talk back through a pipe (ready, retiring: a worker that dropped
 * root may not signal a root master) and with heartbeats in the shared
 * scoreboard.  The master sleeps in poll(2) on a signalfd and that pipe:
 * signals are read as data, never handled in signal context.
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "master/notify.h"
#include "worker/worker.h"

#define MASTER_BACKOFF_MIN_MS 100
#define MASTER_BACKOFF_MAX_MS 30000
#define MASTER_MIN_UPTIME_MS 2000      /* a worker dying younger than this failed to boot */
#define MASTER_SWITCH_TIMEOUT_MS 10000 /* longest wait for a new generation */
#define MASTER_KILL_GRACE_MS 2000      /* after graceful_timeout, before SIGKILL */
#define MASTER_FAST_STOP_MS 5000       /* TERM, then KILL after this */
#define MASTER_ABORT_GRACE_MS 2000     /* SIGABRT to a hung worker, then SIGKILL */
#define MASTER_MAX_WORKERS 1024
/* scoreboard slots, and as many metrics shards: two generations at once
 * during a reload, and room for the drained ones of a burst of reloads */
#define MASTER_SLOTS (2 * MASTER_MAX_WORKERS + 64)
#define MASTER_HANDOFF_MIN_SLOTS 32 /* hand-off pairs made at least (master_handoff_pairs) */
#define MASTER_RATELIMIT_ENTRIES 65536 /* clients tracked at once, for every route's rate_limit */
#define MASTER_INHERIT_ENV "ESGATE_INHERIT"
#define MASTER_OLD_MASTER_ENV "ESGATE_OLD_MASTER"
#define MASTER_HANDOVER_ENV "ESGATE_HANDOVER"

static void master_touch_access_log(struct master *m);
static void master_stop(struct master *m, enum master_stop how);

static uint64_t
master_now_ms(void)
{
	return scoreboard_now_ms();
}

static void
master_signal_set(sigset_t *set)
{
	static const int sigs[] = {SIGCHLD, SIGHUP,  SIGTERM, SIGINT,	SIGQUIT,
				   SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH};

	sigemptyset(set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(set, sigs[i]);
}

const char *
master_check_privileges(const struct config *cfg)
{
	if (geteuid() == 0 && cfg->user == NULL && !cfg->allow_root)
		return "refusing to run workers as root: set \"user\" (e.g. nobody) or \"allow_root: true\"";
	return NULL;
}

/* The pipes and pidfd of a binary upgrade; -1 each once closed. */
static void
master_close_upgrade_fds(struct master *m)
{
	int *fds[] = {&m->handover_fd, &m->takeover_fd, &m->old_master_fd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

static struct master_child *
master_find(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < m->nchildren; i++)
		if (m->children[i].pid == pid)
			return &m->children[i];
	return NULL;
}

/*
 * The hand-off queues (worker/handoff.h): one AF_UNIX datagram pair per
 * scoreboard slot a worker may take.  A worker sees the pairs that existed
 * when it was forked, and a slot's pair must be the same in every worker,
 * so they are made ahead and never remade: for the lowest 4 x workers + 4
 * slots, and at least MASTER_HANDOFF_MIN_SLOTS (a slot claimed is the
 * lowest free one: that covers a reload's two generations of the
 * configured count, a worker being replaced and a few TTINs), grown only
 * when a reload raises "workers" past that, never shrunk (the master's
 * descriptors do not move with reloads, TTIN/TTOU or crashes:
 * test_chaos checks that).
 * A worker in a slot without a pair neither sends nor gets connections;
 * it still accepts.  SOCK_CLOEXEC: a new binary (USR2) makes its own.
 */
static void
master_handoff_pairs(struct master *m)
{
	size_t want = 4 * (size_t)m->cfg->workers + 4;

	if (want < MASTER_HANDOFF_MIN_SLOTS)
		want = MASTER_HANDOFF_MIN_SLOTS;

	if (want > MASTER_SLOTS)
		want = MASTER_SLOTS;
	if (want <= m->nhandoff)
		return;
	{
		int(*p)[2] = realloc(m->handoff, want * sizeof(*p));
		if (p == NULL) {
			log_error("realloc");
			return;
		}
		m->handoff = p;
	}
	while (m->nhandoff < want) {
		int *pair = m->handoff[m->nhandoff];
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
			log_warn("socketpair: slots from %zu on get no connections handed over", m->nhandoff);
			return;
		}
		m->nhandoff++;
	}
}

static void
master_close_handoff_pairs(struct master *m)
{
	for (size_t i = 0; i < m->nhandoff; i++) {
		close(m->handoff[i][0]);
		close(m->handoff[i][1]);
	}
	free(m->handoff);
	m->handoff = NULL;
	m->nhandoff = 0;
}

static int
master_spawn(struct master *m, unsigned id)
{
	struct master_child *c;
	struct metrics_shard *counts;
	int slot;
	pid_t pid;

	if (m->nchildren == m->children_cap) {
		size_t cap = m->children_cap ? m->children_cap * 2 : 16;
		struct master_child *p = realloc(m->children, cap * sizeof(*p));
		if (p == NULL) {
			log_error("realloc");
			return -1;
		}
		m->children = p;
		m->children_cap = cap;
	}
	if ((slot = scoreboard_claim(m->sb, id, m->generation)) < 0) {
		log_errorx("no free scoreboard slot for worker %u", id);
		return -1;
	}
	/* the slot's metrics shard: a slot has one live worker at a time, so
	 * the shard has one writer; it keeps the counts of the slot's earlier
	 * workers */
	counts = metrics_shard_claim(m->metrics, (unsigned)slot);
	master_handoff_pairs(m);
	if ((pid = fork()) < 0) {
		log_error("fork");
		scoreboard_release(m->sb, slot);
		return -1;
	}
	if (pid == 0) {
		struct worker_args a = {.cfg = m->cfg,
					.nfds = m->nlisteners,
					.id = id,
					.generation = m->generation,
					.slot = &m->sb->slots[slot]};
		int *fds = calloc(m->nlisteners + 1, sizeof(*fds));
		unsigned char *mo = calloc(m->nlisteners + 1, 1);
		struct tls_listener **tls = calloc(m->nlisteners + 1, sizeof(*tls));
		if (fds == NULL || mo == NULL || tls == NULL)
			log_fatal("calloc");
		for (size_t i = 0; i < m->nlisteners; i++) {
			fds[i] = m->listeners[i].fd;
			mo[i] = (unsigned char)m->listeners[i].metrics_only;
			/* The Nth socket is the Nth "listen" entry, also when
			 * systemd passed the sockets (LISTEN_FDS, in order). */
			tls[i] = i < m->cfg->nlisten ? m->cfg->listen[i].tls : NULL;
		}
		a.fds = fds;
		a.metrics_only = mo;
		a.tls = tls;
		a.tickets = m->tickets;
		a.sb = m->sb;
		a.metrics = m->metrics;
		a.counts = counts;
		a.ratelimit = m->ratelimit;
		a.handoff = (const int(*)[2])m->handoff;
		a.nhandoff = m->nhandoff;
		if (m->pidfile_fd >= 0)
			close(m->pidfile_fd); /* the lock is the master's */
		close(m->msg_fd[0]);
		close(m->signal_fd);
		master_close_upgrade_fds(m); /* the master's own business */
		a.notify_fd = m->msg_fd[1];
		worker_main(&a);
	}
	scoreboard_bind(m->sb, slot, pid);
	c = &m->children[m->nchildren++];
	memset(c, 0, sizeof(*c));
	c->pid = pid;
	c->id = id;
	c->generation = m->generation;
	c->state = MASTER_CHILD_STARTING;
	c->started_ms = master_now_ms();
	c->sb_slot = slot;
	m->metrics->workers_alive = (uint32_t)m->nchildren;
	log_info("worker %u (pid %d) started, generation %u", id, (int)pid, m->generation);
	return 0;
}

static void
master_set_state(struct master *m, struct master_child *c, enum master_child_state state)
{
	c->state = state;
	__atomic_store_n(&m->sb->slots[c->sb_slot].state, (uint32_t)state, __ATOMIC_RELAXED);
}

static void
master_signal_child(struct master *m, struct master_child *c, int sig, enum master_child_state state,
		    uint64_t kill_at)
{
	if (kill(c->pid, sig) != 0 && errno != ESRCH)
		log_warn("kill %d", (int)c->pid);
	master_set_state(m, c, state);
	c->kill_at_ms = kill_at;
}

static int
master_serving(const struct master_child *c)
{
	return c->state == MASTER_CHILD_STARTING || c->state == MASTER_CHILD_READY;
}

/* The live worker of the current generation in slot ID, or NULL. */
static struct master_child *
master_slot_child(struct master *m, unsigned id)
{
	for (size_t i = 0; i < m->nchildren; i++) {
		struct master_child *c = &m->children[i];
		if (c->generation == m->generation && c->id == id && master_serving(c))
			return c;
	}
	return NULL;
}

static unsigned
master_count(struct master *m, unsigned generation, enum master_child_state state)
{
	unsigned n = 0;
	for (size_t i = 0; i < m->nchildren; i++)
		if (m->children[i].generation == generation && m->children[i].state == state)
			n++;
	return n;
}

static void
master_update_status(struct master *m)
{
	char status[768];

	unsigned ready = master_count(m, m->generation, MASTER_CHILD_READY);

	if (ready >= m->nworkers)
		m->problem[0] = '\0'; /* whatever failed has recovered */
	snprintf(status, sizeof(status), "generation %u: %u of %u worker(s) ready; last reload: %s%s%s%s",
	         m->generation, ready, m->nworkers, m->last_reload, m->upgrade_note, m->problem[0] ? "; " : "",
	         m->problem);
	if (strcmp(status, m->status_sent) == 0)
		return;
	snprintf(m->status_sent, sizeof(m->status_sent), "%s", status);
	notify_status(status);
}

/* The old master told systemd that we are the main process: speak. */
static void
master_took_over(struct master *m)
{
	log_info("binary upgrade: the old master (pid %d) handed the service over; main process now",
	         (int)m->old_master);
	notify_set_main(1);
	m->took_over = 1;
	snprintf(m->upgrade_note, sizeof(m->upgrade_note), "; binary upgrade from pid %d", (int)m->old_master);
	snprintf(m->status_sent, sizeof(m->status_sent), "generation %u: %u worker(s) serving; last reload: %s%s",
	         m->generation, m->nworkers, m->last_reload, m->upgrade_note);
	m->watchdog_next_ms = 0;
	if (m->stop != MASTER_RUNNING)
		notify_stopping(m->stop == MASTER_STOP_GRACEFUL ? "draining" : "stopping");
	else if (m->ready_announced)
		notify_ready(m->status_sent);
	else
		notify_reloading("reloading"); /* a HUP came meanwhile: READY=1 once it serves */
	m->status_sent[0] = '\0';
}

/* The current generation serves: announce it, and retire whatever came
 * before it (older workers, or the master that exec'ed us).  A new master
 * of a binary upgrade asks the old one to hand the service over (QUIT);
 * it announces READY=1 once the old master has told systemd MAINPID=,
 * in master_took_over(). */
static void
master_generation_ready(struct master *m)
{
	if (m->ready_announced || m->stop != MASTER_RUNNING)
		return;
	m->ready_announced = 1;
	m->status_sent[0] = '\0';
	snprintf(m->status_sent, sizeof(m->status_sent), "generation %u: %u worker(s) serving; last reload: %s%s",
	         m->generation, m->nworkers, m->last_reload, m->upgrade_note);
	if (m->old_master > 0 && !m->takeover_asked) {
		log_info("binary upgrade: serving; asking the old master (pid %d) to hand over and drain",
		         (int)m->old_master);
		if (kill(m->old_master, SIGQUIT) != 0)
			log_warn("kill %d", (int)m->old_master);
		m->takeover_asked = 1;
		if (m->takeover_fd < 0) /* an old master that cannot hand over */
			master_took_over(m);
		return;
	}
	notify_ready(m->status_sent);
}

/* The old master, asked by the new one: hand the service over to it
 * (MAINPID=, while we are still the main process, which systemd needs),
 * say so on the pipe, then drain in silence. */
static void
master_hand_over(struct master *m)
{
	char one = 1;

	log_info("binary upgrade: the new master (pid %d) serves; handing the service over and draining",
	         (int)m->upgrade_pid);
	notify_handover(m->upgrade_pid);
	m->handed_over = 1;
	if (m->handover_fd >= 0) {
		if (write(m->handover_fd, &one, 1) != 1)
			log_warn("binary upgrade: cannot tell the new master (pid %d) it took over",
			         (int)m->upgrade_pid);
		close(m->handover_fd);
		m->handover_fd = -1;
	}
	master_stop(m, MASTER_STOP_GRACEFUL);
}

/* Drains every worker of an older generation. */
static void
master_switch_generation(struct master *m)
{
	uint64_t kill_at = master_now_ms() + m->cfg->graceful_timeout_ms + MASTER_KILL_GRACE_MS;
	unsigned n = 0;

	for (size_t i = 0; i < m->nchildren; i++) {
		struct master_child *c = &m->children[i];
		if (c->generation < m->generation && master_serving(c)) {
			master_signal_child(m, c, SIGQUIT, MASTER_CHILD_DRAINING, kill_at);
			metrics_inc(&m->metrics->restarts[METRICS_RESTART_RELOAD]);
			n++;
		}
	}
	m->switch_pending = 0;
	log_info("generation %u serving; draining %u old worker(s)", m->generation, n);
	master_generation_ready(m);
}

static void
master_on_ready(struct master *m, pid_t pid)
{
	struct master_child *c = master_find(m, pid);

	if (c == NULL || c->state != MASTER_CHILD_STARTING)
		return;
	master_set_state(m, c, MASTER_CHILD_READY);
	log_debug("worker %u (pid %d) ready", c->id, (int)pid);
	if (c->generation != m->generation || master_count(m, m->generation, MASTER_CHILD_READY) < m->nworkers)
		return;
	if (m->switch_pending)
		master_switch_generation(m);
	else
		master_generation_ready(m);
}

/* A worker reached max_requests and drains itself: start its successor. */
static void
master_on_retire(struct master *m, pid_t pid)
{
	struct master_child *c = master_find(m, pid);

	if (c == NULL || !master_serving(c))
		return;
	log_info("worker %u (pid %d) retiring (max_requests); starting its replacement", c->id, (int)pid);
	master_set_state(m, c, MASTER_CHILD_DRAINING);
	metrics_inc(&m->metrics->restarts[METRICS_RESTART_MAX_REQUESTS]);
	c->kill_at_ms = master_now_ms() + m->cfg->graceful_timeout_ms + MASTER_KILL_GRACE_MS;
	if (c->generation == m->generation && c->id <= m->nslots)
		m->slots[c->id - 1].respawn_at_ms = master_now_ms();
}

static void
master_log_exit(struct master_child *c, int status)
{
	int expected = c->state == MASTER_CHILD_DRAINING || c->state == MASTER_CHILD_STOPPING;

	if (WIFEXITED(status)) {
		if (expected && WEXITSTATUS(status) == 0)
			log_info("worker %u (pid %d) exited", c->id, (int)c->pid);
		else
			log_errorx("worker %u (pid %d) exited with status %d", c->id, (int)c->pid,
				   WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		if (expected && (WTERMSIG(status) == SIGKILL || WTERMSIG(status) == SIGABRT))
			log_warnx("worker %u (pid %d) killed by signal %d (%s) after its deadline", c->id,
				  (int)c->pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
		else
			log_errorx("worker %u (pid %d) killed by signal %d (%s)%s", c->id, (int)c->pid,
				   WTERMSIG(status), strsignal(WTERMSIG(status)),
				   WCOREDUMP(status) ? ", core dumped" : "");
	}
}

/* Schedules the replacement of a worker of the current generation that
 * died on its own; one that dies young backs off, exponentially, capped. */
static void
master_schedule_respawn(struct master *m, const struct master_child *c)
{
	struct master_slot *s = &m->slots[c->id - 1];
	uint64_t now = master_now_ms(), delay = 0;

	metrics_inc(&m->metrics->restarts[METRICS_RESTART_CRASH]);
	if (c->state == MASTER_CHILD_STARTING || now - c->started_ms < MASTER_MIN_UPTIME_MS) {
		delay = (uint64_t)MASTER_BACKOFF_MIN_MS << (s->failures < 9 ? s->failures : 9);
		if (delay > MASTER_BACKOFF_MAX_MS)
			delay = MASTER_BACKOFF_MAX_MS;
		s->failures++;
		log_errorx("worker %u died %s %u time(s) in a row; next start in %llu ms", c->id,
			   c->state == MASTER_CHILD_STARTING ? "while starting" : "young", s->failures,
			   (unsigned long long)delay);
		if (s->failures >= 3)
			snprintf(m->problem, sizeof(m->problem),
				 "worker %u crashes at start (%u times in a row), retrying in %llu ms", c->id,
				 s->failures, (unsigned long long)delay);
	} else {
		s->failures = 0;
	}
	s->respawn_at_ms = now + delay;
}

static void master_reload(struct master *m);

/* The new master of our USR2 exited.  Before the handover that is a
 * failed upgrade: we keep serving, and do the reload a HUP asked for
 * meanwhile.  After it, or while we stop, it is only logged. */
static void
master_upgrade_ended(struct master *m, int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	pid_t pid = m->upgrade_pid;

	m->upgrade_pid = 0;
	if (m->handover_fd >= 0) {
		close(m->handover_fd);
		m->handover_fd = -1;
	}
	if (m->handed_over || m->stop != MASTER_RUNNING) {
		log_info("the new master (pid %d) exited with status %d", (int)pid, code);
		return;
	}
	log_errorx("binary upgrade failed: the new master (pid %d) exited with status %d; still serving", (int)pid,
	           code);
	if (m->reload_passed) {
		m->reload_passed = 0;
		log_info("doing the reload that was passed to it");
		master_reload(m);
	} else {
		m->status_sent[0] = '\0'; /* our STATUS= stands again */
	}
}

static void
master_reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct master_child *c = master_find(m, pid);
		if (pid == m->upgrade_pid) {
			master_upgrade_ended(m, status);
			continue;
		}
		if (c == NULL)
			continue;
		master_log_exit(c, status);
		if (m->stop == MASTER_RUNNING && c->generation == m->generation && master_serving(c) &&
		    c->id <= m->nslots)
			master_schedule_respawn(m, c);
		/* A worker that died mid-request never counted its gauges down. */
		metrics_shard_release(m->metrics, (unsigned)c->sb_slot);
		scoreboard_release(m->sb, c->sb_slot);
		*c = m->children[--m->nchildren];
		m->metrics->workers_alive = (uint32_t)m->nchildren;
	}
}

static void
master_signal_all(struct master *m, int sig, enum master_child_state state, uint64_t kill_at)
{
	for (size_t i = 0; i < m->nchildren; i++)
		if (m->children[i].state != MASTER_CHILD_STOPPING || sig == SIGKILL)
			master_signal_child(m, &m->children[i], sig, state, kill_at);
}

static void
master_close_listeners(struct master *m)
{
	for (size_t i = 0; i < m->nlisteners; i++)
		listener_close(&m->listeners[i]);
	free(m->listeners);
	m->listeners = NULL;
	m->nlisteners = 0;
}

static void
master_stop(struct master *m, enum master_stop how)
{
	uint64_t now = master_now_ms();

	if (how == MASTER_STOP_GRACEFUL && m->stop != MASTER_RUNNING)
		return;
	if (how == MASTER_STOP_FAST && m->stop == MASTER_STOP_FAST)
		return;
	m->stop = how;
	notify_stopping(how == MASTER_STOP_GRACEFUL ? "draining" : "stopping");
	/* No connection may queue for nobody: ours is the last copy once the
	 * workers close theirs.  (A new master that took over keeps its own,
	 * and the socket files are its.) */
	if (!m->handed_over)
		master_close_listeners(m);
	else
		for (size_t i = 0; i < m->nlisteners; i++) {
			close(m->listeners[i].fd);
			m->listeners[i].fd = -1;
			free(m->listeners[i].path);
			m->listeners[i].path = NULL;
		}
	/* A stop during a binary upgrade stops the whole service: the new
	 * master that has not taken over yet stops too (and we wait for it);
	 * the old master that still drains is hurried along by a fast stop. */
	if (m->upgrade_pid != 0 && !m->handed_over &&
	    kill(m->upgrade_pid, how == MASTER_STOP_GRACEFUL ? SIGQUIT : SIGTERM) == 0)
		log_info("passed the stop on to the new master (pid %d)", (int)m->upgrade_pid);
	if (m->old_master > 0 && m->took_over && how == MASTER_STOP_FAST && kill(m->old_master, SIGTERM) == 0)
		log_info("passed the stop on to the old master (pid %d), still draining", (int)m->old_master);
	if (how == MASTER_STOP_GRACEFUL) {
		log_info("graceful stop: draining %zu worker(s) for up to %llu ms", m->nchildren,
			 (unsigned long long)m->cfg->graceful_timeout_ms);
		m->stop_deadline_ms = now + m->cfg->graceful_timeout_ms + MASTER_KILL_GRACE_MS;
		master_signal_all(m, SIGQUIT, MASTER_CHILD_DRAINING, m->stop_deadline_ms);
	} else {
		log_info("stopping %zu worker(s)", m->nchildren);
		m->stop_deadline_ms = now + MASTER_FAST_STOP_MS;
		master_signal_all(m, SIGTERM, MASTER_CHILD_STOPPING, m->stop_deadline_ms);
	}
}

/*
 * The pidfile.  It is written to a temporary name and renamed into place,
 * so a reader never sees it half written, and it stays locked (flock) for
 * the master's life: a second instance finds the lock taken and refuses
 * to start, while a pidfile left by a dead master is simply replaced.
 */
static int
master_write_pidfile(struct master *m, const char *path)
{
	char tmp[PATH_MAX], buf[32];
	int fd, len;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			int other = n > 0 ? (buf[n] = '\0', atoi(buf)) : 0;
			close(fd);
			if (other != m->old_master || other == 0) {
				log_errorx("esgate is already running (pid %d, pidfile %s)", other, path);
				return -1;
			}
		} else {
			close(fd);
		}
	}
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		log_error("cannot write pidfile %s", tmp);
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 || write(fd, buf, (size_t)len) != len || rename(tmp, path) != 0) {
		log_error("cannot write pidfile %s", path);
		close(fd);
		unlink(tmp);
		return -1;
	}
	m->pidfile = strdup(path);
	m->pidfile_fd = fd;
	return 0;
}

static void
master_remove_pidfile(struct master *m)
{
	char buf[32];
	ssize_t n;
	int fd;

	if (m->pidfile == NULL)
		return;
	/* Only our own: a successor (USR2) may have written it already. */
	if ((fd = open(m->pidfile, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (atoi(buf) == (int)getpid())
				unlink(m->pidfile);
		}
	}
	if (m->pidfile_fd >= 0)
		close(m->pidfile_fd);
	m->pidfile_fd = -1;
	free(m->pidfile);
	m->pidfile = NULL;
}

/* Opens NEW's listeners, reusing every socket whose spelling is unchanged.
 * On failure nothing changes. */
static int
master_rebind(struct master *m, const struct config *new, struct listener **out)
{
	struct listener *ls = calloc(new->nlisten, sizeof(*ls));
	int *taken = calloc(m->nlisteners + 1, sizeof(*taken));
	size_t i, j;

	if (ls == NULL || taken == NULL) {
		free(ls);
		free(taken);
		log_error("calloc");
		return -1;
	}
	for (i = 0; i < new->nlisten; i++) {
		ls[i].fd = -1;
		for (j = 0; j < m->nlisteners; j++)
			if (!taken[j] && strcmp(m->listeners[j].spec, new->listen[i].spec) == 0)
				break;
		if (j < m->nlisteners) {
			taken[j] = 1;
			ls[i] = m->listeners[j];
			ls[i].metrics_only = new->listen[i].metrics_only;
			continue;
		}
		if (listener_open(&new->listen[i], &ls[i]) != 0)
			goto fail;
		ls[i].metrics_only = new->listen[i].metrics_only;
		log_info("listening on %s%s", ls[i].name, new->listen[i].tls != NULL ? " (TLS)" : "");
	}
	/* Commit: close what the new file no longer names. */
	for (j = 0; j < m->nlisteners; j++)
		if (!taken[j]) {
			log_info("closing %s", m->listeners[j].name);
			listener_close(&m->listeners[j]);
		}
	free(taken);
	*out = ls;
	return 0;
fail:
	for (size_t k = 0; k < i; k++) {
		int reused = 0;
		for (j = 0; j < m->nlisteners; j++)
			if (taken[j] && m->listeners[j].fd == ls[k].fd)
				reused = 1;
		if (!reused)
			listener_close(&ls[k]);
	}
	free(ls);
	free(taken);
	return -1;
}

static void
master_resize_slots(struct master *m, unsigned n)
{
	struct master_slot *p = realloc(m->slots, (n ? n : 1) * sizeof(*p));

	if (p == NULL)
		log_fatal("realloc");
	for (size_t i = m->nslots; i < n; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].respawn_at_ms = 1; /* due now */
	}
	m->slots = p;
	m->nslots = n;
	m->nworkers = n;
}

static void
master_reset_slots(struct master *m)
{
	m->nslots = 0;
	master_resize_slots(m, m->cfg->workers);
}

static void
master_reload_failed(struct master *m, const char *why)
{
	log_errorx("reload failed: still running generation %u with the previous configuration", m->generation);
	metrics_inc(&m->metrics->reloads_failed);
	snprintf(m->last_reload, sizeof(m->last_reload), "failed: %s", why);
	m->status_sent[0] = '\0';
	snprintf(m->status_sent, sizeof(m->status_sent), "generation %u: %u worker(s) serving; last reload: %s%s",
	         m->generation, m->nworkers, m->last_reload, m->upgrade_note);
	notify_ready(m->status_sent);
}

static void
master_reload(struct master *m)
{
	struct config_errors errs = {0};
	struct config *new;
	struct listener *ls;
	const char *why;

	if (m->stop != MASTER_RUNNING)
		return;
	log_info("reloading %s", m->config_path);
	notify_reloading("reloading");
	if ((new = config_load(m->config_path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			log_errorx("%s", errs.msgs[i]);
		master_reload_failed(m, errs.n > 0 ? errs.msgs[0] : "bad configuration");
		config_errors_free(&errs);
		return;
	}
	for (size_t i = 0; i < new->warnings.n; i++)
		log_warnx("%s", new->warnings.msgs[i]);
	if ((why = master_check_privileges(new)) != NULL) {
		log_errorx("%s: %s", m->config_path, why);
		config_free(new);
		master_reload_failed(m, why);
		return;
	}
	if (m->socket_activated) {
		ls = m->listeners; /* systemd owns the addresses */
	} else if (master_rebind(m, new, &ls) != 0) {
		config_free(new);
		master_reload_failed(m, "cannot listen on a new address");
		return;
	} else {
		free(m->listeners);
		m->nlisteners = new->nlisten;
	}
	m->listeners = ls;
	config_free(m->cfg);
	m->cfg = new;
	log_set_level((enum log_level)new->log_level);
	m->generation++;
	metrics_inc(&m->metrics->reloads_ok);
	m->metrics->generation = m->generation;
	master_touch_access_log(m);
	master_reset_slots(m);
	m->switch_pending = 1;
	m->ready_announced = 0;
	m->switch_deadline_ms = master_now_ms() + MASTER_SWITCH_TIMEOUT_MS;
	snprintf(m->last_reload, sizeof(m->last_reload), "ok (generation %u)", m->generation);
	log_info("configuration OK: starting generation %u with %u worker(s)", m->generation, new->workers);
}

/* Creates the access log file and gives it to the workers' user, so that
 * unprivileged workers can open it again after a rotation. */
static void
master_touch_access_log(struct master *m)
{
	const struct config *cfg = m->cfg;
	int fd;

	if (cfg->access_log == NULL || strcmp(cfg->access_log, "-") == 0)
		return;
	if ((fd = open(cfg->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		log_warn("cannot create the access log %s", cfg->access_log);
		return;
	}
	if (geteuid() == 0 && cfg->user != NULL && fchown(fd, (uid_t)cfg->uid, (gid_t)cfg->gid) != 0)
		log_warn("cannot give the access log %s to %s", cfg->access_log, cfg->user);
	close(fd);
}

static void
master_more_workers(struct master *m)
{
	if (m->nworkers >= MASTER_MAX_WORKERS) {
		log_warnx("TTIN: already %u workers, the most allowed", m->nworkers);
		return;
	}
	master_resize_slots(m, m->nworkers + 1);
	log_info("TTIN: %u worker(s)", m->nworkers);
}

static void
master_fewer_workers(struct master *m)
{
	struct master_child *c;

	if (m->nworkers <= 1) {
		log_warnx("TTOU: keeping the last worker");
		return;
	}
	if ((c = master_slot_child(m, m->nworkers)) != NULL)
		master_signal_child(m, c, SIGQUIT, MASTER_CHILD_DRAINING,
				    master_now_ms() + m->cfg->graceful_timeout_ms + MASTER_KILL_GRACE_MS);
	master_resize_slots(m, m->nworkers - 1);
	log_info("TTOU: %u worker(s)", m->nworkers);
}

static void
master_reopen_logs(struct master *m)
{
	if (log_reopen() != 0)
		log_warn("cannot reopen the log file %s", m->cfg->log_file);
	master_touch_access_log(m);
	for (size_t i = 0; i < m->nchildren; i++)
		kill(m->children[i].pid, SIGUSR1);
	log_info("USR1: log file reopened");
}

/*
 * USR2: start the binary again (it may have been replaced on disk), handing
 * it the listening sockets by number in the environment.  It binds nothing
 * that we already listen on, starts its workers, and QUITs us once they
 * serve.  If it fails to start, we reap it and carry on serving.
 */
static void
master_upgrade(struct master *m)
{
	char *env = NULL, item[300], pid[32];
	size_t len = 0;
	pid_t child;
	int hp[2];

	if (m->upgrade_pid != 0 || m->stop != MASTER_RUNNING || m->old_master != 0) {
		log_warnx("USR2: an upgrade is already in progress, ignored");
		return;
	}
	for (size_t i = 0; i < m->nlisteners; i++) {
		int n = snprintf(item, sizeof(item), "%d=%s\n", m->listeners[i].fd, m->listeners[i].spec);
		char *p = realloc(env, len + (size_t)n + 1);
		if (p == NULL) {
			free(env);
			log_error("realloc");
			return;
		}
		env = p;
		memcpy(env + len, item, (size_t)n + 1);
		len += (size_t)n;
	}
	if (pipe2(hp, O_CLOEXEC) != 0) {
		log_error("USR2: pipe");
		free(env);
		return;
	}
	if ((child = fork()) < 0) {
		log_error("fork");
		free(env);
		close(hp[0]);
		close(hp[1]);
		return;
	}
	if (child == 0) {
		for (size_t i = 0; i < m->nlisteners; i++)
			fcntl(m->listeners[i].fd, F_SETFD, 0); /* survive exec */
		fcntl(hp[0], F_SETFD, 0);
		setenv(MASTER_INHERIT_ENV, env != NULL ? env : "", 1);
		snprintf(pid, sizeof(pid), "%d", (int)getppid());
		setenv(MASTER_OLD_MASTER_ENV, pid, 1);
		snprintf(pid, sizeof(pid), "%d", hp[0]);
		setenv(MASTER_HANDOVER_ENV, pid, 1);
		/* systemd's watchdog will expect our pings once we are the
		 * main process: sd_watchdog_enabled() checks WATCHDOG_PID. */
		if (getenv("WATCHDOG_USEC") != NULL) {
			snprintf(pid, sizeof(pid), "%d", (int)getpid());
			setenv("WATCHDOG_PID", pid, 1);
		}
		/* The signals stay blocked across exec: one sent to the new
		 * master before it reads them (a HUP passed on, a stop) waits
		 * for its signalfd instead of killing it. */
		execv(m->exe, m->argv);
		log_fatal("USR2: cannot exec %s", m->exe);
	}
	free(env);
	close(hp[0]);
	m->handover_fd = hp[1];
	m->upgrade_pid = child;
	m->handed_over = 0;
	m->reload_passed = 0;
	log_info("USR2: started the new binary %s as pid %d", m->exe, (int)child);
}

/* Listening sockets from an old master (USR2) or from systemd. */
static int
master_adopt_listeners(struct master *m)
{
	const char *inherit = getenv(MASTER_INHERIT_ENV), *old = getenv(MASTER_OLD_MASTER_ENV);
	int n;

	if (inherit != NULL) {
		const char *p = inherit, *handover = getenv(MASTER_HANDOVER_ENV);
		m->old_master = old != NULL ? (pid_t)atoi(old) : 0;
		/* Silent towards systemd until the old master hands over. */
		if (m->old_master > 0) {
			notify_set_main(0);
			if (handover != NULL && (m->takeover_fd = atoi(handover)) > 2)
				fcntl(m->takeover_fd, F_SETFD, FD_CLOEXEC);
			else
				m->takeover_fd = -1;
			m->old_master_fd = (int)syscall(SYS_pidfd_open, m->old_master, 0);
			if (m->old_master_fd >= 0)
				fcntl(m->old_master_fd, F_SETFD, FD_CLOEXEC);
		}
		while (*p != '\0') {
			const char *eq = strchr(p, '='), *nl = strchr(p, '\n');
			struct listener *l, *ls;
			if (eq == NULL || nl == NULL || eq > nl)
				break;
			ls = realloc(m->listeners, (m->nlisteners + 1) * sizeof(*ls));
			if (ls == NULL)
				log_fatal("realloc");
			m->listeners = ls;
			l = &m->listeners[m->nlisteners++];
			memset(l, 0, sizeof(*l));
			l->fd = atoi(p);
			l->spec = strndup(eq + 1, (size_t)(nl - eq - 1));
			fcntl(l->fd, F_SETFD, FD_CLOEXEC);
			listener_describe(l);
			if (strncmp(l->spec, "systemd:", 8) == 0)
				m->socket_activated = 1;
			log_info("inherited %s (fd %d) from the old master", l->name, l->fd);
			p = nl + 1;
		}
		unsetenv(MASTER_INHERIT_ENV);
		unsetenv(MASTER_OLD_MASTER_ENV);
		unsetenv(MASTER_HANDOVER_ENV);
		return 0;
	}
	if ((n = sd_listen_fds(1)) <= 0)
		return 0;
	m->listeners = calloc((size_t)n, sizeof(*m->listeners));
	if (m->listeners == NULL)
		log_fatal("calloc");
	for (int i = 0; i < n; i++) {
		struct listener *l = &m->listeners[m->nlisteners++];
		char spec[32];
		l->fd = SD_LISTEN_FDS_START + i;
		snprintf(spec, sizeof(spec), "systemd:%d", i);
		l->spec = strdup(spec);
		fcntl(l->fd, F_SETFD, FD_CLOEXEC);
		fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
		listener_describe(l);
		log_info("listening on %s (socket from systemd)", l->name);
	}
	m->socket_activated = 1;
	log_info("socket activation: %d socket(s) from systemd replace \"listen\"", n);
	return 0;
}

/* Work that is due: respawns, hung workers, the generation switch, kills
 * past deadline, the watchdog.  Returns the milliseconds until the next
 * thing is due. */
static uint64_t
master_tick(struct master *m)
{
	uint64_t now = master_now_ms(), next = 1000;
	int healthy = 1;

#define MASTER_DUE(at)                                                                                             \
	do {                                                                                                       \
		if ((at) > now && (at)-now < next)                                                                 \
			next = (at)-now;                                                                           \
	} while (0)

	if (m->stop == MASTER_RUNNING) {
		for (unsigned id = 1; id <= m->nslots; id++) {
			struct master_slot *s = &m->slots[id - 1];
			if (s->respawn_at_ms == 0)
				continue;
			if (s->respawn_at_ms <= now) {
				if (master_slot_child(m, id) == NULL && master_spawn(m, id) != 0) {
					s->respawn_at_ms = now + MASTER_BACKOFF_MIN_MS;
					continue;
				}
				s->respawn_at_ms = 0;
			} else {
				MASTER_DUE(s->respawn_at_ms);
			}
		}
		if (m->switch_pending) {
			if (now >= m->switch_deadline_ms) {
				unsigned ready = master_count(m, m->generation, MASTER_CHILD_READY);
				if (ready > 0) {
					log_warnx("generation %u: only %u of %u worker(s) ready in time", m->generation,
						  ready, m->nworkers);
					master_switch_generation(m);
				} else {
					log_errorx("generation %u: no worker ready yet; the old generation keeps "
						   "serving",
						   m->generation);
					m->switch_deadline_ms = now + MASTER_SWITCH_TIMEOUT_MS;
				}
			}
			MASTER_DUE(m->switch_deadline_ms);
		}
	}
	for (size_t i = 0; i < m->nchildren; i++) {
		struct master_child *c = &m->children[i];
		uint64_t silence = scoreboard_silence_ms(&m->sb->slots[c->sb_slot]);
		if (master_serving(c) && silence >= m->cfg->timeout_ms) {
			log_errorx("worker %u (pid %d) timed out: no heartbeat for %llu ms; SIGABRT", c->id,
				   (int)c->pid, (unsigned long long)silence);
			master_signal_child(m, c, SIGABRT, MASTER_CHILD_STOPPING, now + MASTER_ABORT_GRACE_MS);
			metrics_inc(&m->metrics->restarts[METRICS_RESTART_TIMEOUT]);
			if (m->stop == MASTER_RUNNING && c->generation == m->generation && c->id <= m->nslots)
				m->slots[c->id - 1].respawn_at_ms = now;
			healthy = 0;
			next = 0;
		} else if (master_serving(c)) {
			MASTER_DUE(now + m->cfg->timeout_ms - silence);
		}
		if (master_serving(c))
			continue;
		if (c->kill_at_ms <= now) {
			log_warnx("worker %u (pid %d) still running after its deadline: SIGKILL", c->id, (int)c->pid);
			kill(c->pid, SIGKILL);
			c->kill_at_ms = now + MASTER_FAST_STOP_MS;
		}
		MASTER_DUE(c->kill_at_ms);
	}
	/* The watchdog is fed only while workers serve and none is hung:
	 * systemd then restarts a master that cannot keep any worker up (a
	 * failed reload whose old generation still serves is not that). */
	if (m->tickets != NULL && m->stop == MASTER_RUNNING) {
		if (now >= m->ticket_next_ms) {
			if (tlsticket_rotate(m->tickets) != 0)
				log_warnx("no random bytes for a new session ticket key: the current one stays");
			else
				log_debug("session ticket key %u made", m->tickets->made);
			m->ticket_next_ms = now + m->cfg->tls_ticket_rotation_ms;
		}
		MASTER_DUE(m->ticket_next_ms);
	}
	if (m->watchdog_ms > 0 && m->stop == MASTER_RUNNING) {
		unsigned ready = 0;
		for (size_t i = 0; i < m->nchildren; i++)
			ready += m->children[i].state == MASTER_CHILD_READY;
		if (now >= m->watchdog_next_ms && healthy && ready > 0) {
			notify_watchdog();
			m->watchdog_next_ms = now + m->watchdog_ms / 2;
		}
		MASTER_DUE(m->watchdog_next_ms > now ? m->watchdog_next_ms : now + 100);
	}
	if (m->old_master > 0 && m->old_master_fd < 0)
		MASTER_DUE(now + 200); /* no pidfd: master_run() polls it */
#undef MASTER_DUE
	return next;
}

/* HUP.  During a binary upgrade the new master's generation is the one
 * that will serve, so the reload is its to do: before the handover we
 * still answer systemd (RELOADING=1; the new master's READY=1 ends it),
 * after it we pass the signal on in silence.  If the new master fails,
 * master_upgrade_ended() does the reload here. */
static void
master_on_hup(struct master *m)
{
	if (m->upgrade_pid != 0 && (m->handed_over || m->stop == MASTER_RUNNING)) {
		if (!m->handed_over && !m->reload_passed) {
			notify_reloading("reloading (binary upgrade in progress)");
			m->reload_passed = 1;
		}
		log_info("HUP: passed on to the new master (pid %d)", (int)m->upgrade_pid);
		if (kill(m->upgrade_pid, SIGHUP) != 0)
			log_warn("kill %d", (int)m->upgrade_pid);
		return;
	}
	master_reload(m);
}

/* Whether PID runs in our own cgroup (e.g. systemd's ExecStop= of our
 * service): /proc/PID/cgroup reads the same. */
static int
master_same_cgroup(pid_t pid)
{
	char path[64], mine[1024], theirs[1024];
	ssize_t a, b;
	int fd;

	if ((fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	a = read(fd, mine, sizeof(mine));
	close(fd);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	b = read(fd, theirs, sizeof(theirs));
	close(fd);
	return a > 0 && a == b && memcmp(mine, theirs, (size_t)a) == 0;
}

/* A stop signal that the service manager sent us after we handed the
 * service over (from systemd itself, our parent, or its ExecStop=, which
 * runs in our cgroup) was meant for the service: its main process changed
 * while the signal was on its way.  Pass it on.  One from anyone else
 * (an operator hurrying the drain) is ours alone. */
static void
master_pass_stop(struct master *m, const struct signalfd_siginfo *si, int sig)
{
	pid_t from = (pid_t)si->ssi_pid;

	if (!m->handed_over || m->upgrade_pid == 0 || from == m->upgrade_pid ||
	    (from != getppid() && !master_same_cgroup(from)))
		return;
	log_info("%s from the service manager after the handover: passed on to the new master (pid %d)",
		 strsignal(sig), (int)m->upgrade_pid);
	kill(m->upgrade_pid, sig);
}

static void
master_on_signal(struct master *m, const struct signalfd_siginfo *si)
{
	int sig = (int)si->ssi_signo;

	switch (sig) {
	case SIGCHLD:
		break; /* reaped below, always */
	case SIGHUP: master_on_hup(m); break;
	case SIGTERM:
	case SIGINT:
		log_info("%s: stopping now", strsignal(sig));
		master_pass_stop(m, si, SIGTERM);
		master_stop(m, MASTER_STOP_FAST);
		break;
	case SIGQUIT:
		if (m->upgrade_pid != 0 && si->ssi_pid == (uint32_t)m->upgrade_pid && !m->handed_over &&
		    m->stop == MASTER_RUNNING) {
			master_hand_over(m);
			break;
		}
		master_pass_stop(m, si, SIGQUIT);
		master_stop(m, MASTER_STOP_GRACEFUL);
		break;
	case SIGUSR1:
		master_reopen_logs(m);
		break;
	case SIGUSR2:
		master_upgrade(m);
		break;
	case SIGTTIN:
		if (m->stop == MASTER_RUNNING)
			master_more_workers(m);
		break;
	case SIGTTOU:
		if (m->stop == MASTER_RUNNING)
			master_fewer_workers(m);
		break;
	default:
		log_debug("%s: ignored", strsignal(sig));
		break;
	}
}

static void
master_read_signals(struct master *m)
{
	struct signalfd_siginfo si;

	while (read(m->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		master_on_signal(m, &si);
}

/* The old master wrote its byte (it told systemd MAINPID=us) or closed
 * the pipe without it (it died, or stopped instead). */
static void
master_read_takeover(struct master *m)
{
	char c;
	ssize_t n = read(m->takeover_fd, &c, 1);

	close(m->takeover_fd);
	m->takeover_fd = -1;
	if (n == 1)
		master_took_over(m);
	else
		log_warnx("binary upgrade: the old master (pid %d) went away without handing over", (int)m->old_master);
}

static void
master_old_master_gone(struct master *m)
{
	log_info("the old master (pid %d) is gone", (int)m->old_master);
	m->old_master = 0;
	if (m->old_master_fd >= 0) {
		close(m->old_master_fd);
		m->old_master_fd = -1;
	}
}

/* Whether a stopping master may exit as far as a binary upgrade goes: the
 * old one waits for a new one that never took over (it stops with us),
 * and a new one that took over waits for the old one to finish draining,
 * so that systemd, which sees the main process go, does not kill the old
 * one's workers in the middle of their last requests. */
static int
master_upgrade_settled(const struct master *m)
{
	if (m->upgrade_pid != 0 && !m->handed_over)
		return 0;
	return !(m->took_over && m->old_master > 0);
}

static void
master_read_messages(struct master *m)
{
	struct worker_msg msg[64];
	ssize_t n;

	while ((n = read(m->msg_fd[0], msg, sizeof(msg))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
			if (msg[i].type == WORKER_MSG_READY)
				master_on_ready(m, (pid_t)msg[i].pid);
			else if (msg[i].type == WORKER_MSG_RETIRING)
				master_on_retire(m, (pid_t)msg[i].pid);
		}
	}
}

int
master_run(struct config *cfg, const char *config_path, char *const *argv)
{
	struct master m;
	sigset_t set;
	struct pollfd pfd[4];
	const char *why;
	ssize_t n;
	int rc = 1;

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.config_path = strdup(config_path);
	m.generation = 1;
	m.pidfile_fd = -1;
	m.handover_fd = m.takeover_fd = m.old_master_fd = -1;
	m.argv = argv;
	snprintf(m.last_reload, sizeof(m.last_reload), "none");
	log_init("master");
	if ((n = readlink("/proc/self/exe", m.exe, sizeof(m.exe) - 1)) > 0)
		m.exe[n] = '\0';

	/* Signals are only ever read from the signalfd below; the workers
	 * inherit the mask and open it once their loop watches them. */
	master_signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	m.signal_fd = m.msg_fd[0] = m.msg_fd[1] = -1;
	if ((m.signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    pipe2(m.msg_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
		log_error("cannot set up signal and message channels");
		goto out;
	}

	if ((why = master_check_privileges(cfg)) != NULL) {
		log_errorx("%s: %s", config_path, why);
		goto out;
	}
	if (cfg->user != NULL && geteuid() != 0)
		log_warnx("\"user\" ignored: the master does not run as root");
	if (cfg->log_file != NULL &&
	    log_open_file(cfg->log_file, geteuid() == 0 && cfg->user ? (int)cfg->uid : -1,
			  geteuid() == 0 && cfg->user ? (int)cfg->gid : -1) != 0) {
		log_error("cannot open the log file %s", cfg->log_file);
		goto out;
	}
	if ((m.sb = scoreboard_create(MASTER_SLOTS)) == NULL ||
	    (m.metrics = metrics_create(MASTER_SLOTS)) == NULL || (m.ratelimit = ratelimit_create(MASTER_RATELIMIT_ENTRIES)) == NULL ||
	    (m.tickets = tlsticket_create()) == NULL) {
		log_error("cannot map the shared memory");
		goto out;
	}
	m.ticket_next_ms = master_now_ms() + cfg->tls_ticket_rotation_ms;
	m.metrics->generation = m.generation;
	master_touch_access_log(&m);
	master_adopt_listeners(&m);
	/* Before binding: a second instance should say "already running",
	 * not "address in use". */
	if (cfg->pidfile != NULL && master_write_pidfile(&m, cfg->pidfile) != 0)
		goto out;
	if (!m.socket_activated) {
		struct listener *ls;
		if (master_rebind(&m, cfg, &ls) != 0)
			goto out;
		free(m.listeners);
		m.listeners = ls;
		m.nlisteners = cfg->nlisten;
	}
	if ((m.watchdog_ms = notify_watchdog_usec() / 1000) > 0)
		log_info("systemd watchdog every %llu ms", (unsigned long long)m.watchdog_ms);
	master_reset_slots(&m);
	log_info("esgate %s started: %u worker(s), generation %u", ESGATE_VERSION, cfg->workers, m.generation);

	for (;;) {
		uint64_t wait_ms = master_tick(&m);

		if (m.stop != MASTER_RUNNING && m.nchildren == 0 && master_upgrade_settled(&m))
			break;
		master_update_status(&m);
		pfd[0] = (struct pollfd){.fd = m.signal_fd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = m.msg_fd[0], .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = m.takeover_fd, .events = POLLIN}; /* ignored while -1 */
		pfd[3] = (struct pollfd){.fd = m.old_master_fd, .events = POLLIN};
		if (poll(pfd, 4, (int)wait_ms) < 0 && errno != EINTR)
			log_warn("poll");
		/* Messages first: a worker's "ready" is older than its death. */
		master_read_messages(&m);
		if (pfd[2].revents != 0)
			master_read_takeover(&m);
		master_read_signals(&m);
		master_reap(&m);
		if (pfd[3].revents != 0 ||
		    (m.old_master > 0 && m.old_master_fd < 0 && kill(m.old_master, 0) != 0 && errno == ESRCH))
			master_old_master_gone(&m);
	}
	log_info("exiting");
	rc = 0;
out:
	master_close_upgrade_fds(&m);
	master_close_handoff_pairs(&m);
	master_close_listeners(&m);
	master_remove_pidfile(&m);
	scoreboard_destroy(m.sb);
	metrics_destroy(m.metrics);
	tlsticket_destroy(m.tickets);
	ratelimit_destroy(m.ratelimit);
	if (m.signal_fd >= 0)
		close(m.signal_fd);
	if (m.msg_fd[0] >= 0) {
		close(m.msg_fd[0]);
		close(m.msg_fd[1]);
	}
	free(m.children);
	free(m.slots);
	free(m.config_path);
	config_free(m.cfg);
	return rc;
}
