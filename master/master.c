/*
 * master.c - supervision: fork workers, reap them, replace them, reload.
 *
 * Signals (one meaning each; see README):
 *   HUP        re-read and validate the file; on success start a new
 *              generation of workers and drain the old one once the new
 *              one is ready; on failure log every error and change nothing.
 *   TERM, INT  stop now: workers get TERM; exit when all are gone.
 *   QUIT       graceful stop: workers drain for up to graceful_timeout.
 * Workers tell the master they are ready with a queued real-time signal.
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "worker/worker.h"

#define MASTER_BACKOFF_MIN_MS 100
#define MASTER_BACKOFF_MAX_MS 30000
#define MASTER_SWITCH_TIMEOUT_MS 10000 /* longest wait for a new generation */
#define MASTER_KILL_GRACE_MS 2000      /* after graceful_timeout, before SIGKILL */
#define MASTER_FAST_STOP_MS 5000       /* TERM, then KILL after this */

static uint64_t
master_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
master_signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGTTIN);
	sigaddset(set, SIGTTOU);
	sigaddset(set, SIGWINCH);
	sigaddset(set, worker_ready_signal());
}

static struct master_child *
master_find(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < m->nchildren; i++)
		if (m->children[i].pid == pid)
			return &m->children[i];
	return NULL;
}

static int
master_spawn(struct master *m, unsigned id)
{
	struct master_child *c;
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
	if ((pid = fork()) < 0) {
		log_error("fork");
		return -1;
	}
	if (pid == 0) {
		int *fds = calloc(m->nlisteners + 1, sizeof(*fds));
		if (fds == NULL)
			log_fatal("calloc");
		for (size_t i = 0; i < m->nlisteners; i++)
			fds[i] = m->listeners[i].fd;
		worker_main(m->cfg, fds, m->nlisteners, id, m->generation);
	}
	c = &m->children[m->nchildren++];
	memset(c, 0, sizeof(*c));
	c->pid = pid;
	c->id = id;
	c->generation = m->generation;
	c->state = MASTER_CHILD_STARTING;
	c->started_ms = master_now_ms();
	log_info("worker %u (pid %d) started, generation %u", id, (int)pid, m->generation);
	return 0;
}

static void
master_signal_child(struct master_child *c, int sig, enum master_child_state state, uint64_t kill_at)
{
	if (kill(c->pid, sig) != 0 && errno != ESRCH)
		log_warn("kill %d", (int)c->pid);
	c->state = state;
	c->kill_at_ms = kill_at;
}

/* Is slot ID of the current generation served by a live worker? */
static int
master_slot_alive(struct master *m, unsigned id)
{
	for (size_t i = 0; i < m->nchildren; i++) {
		struct master_child *c = &m->children[i];
		if (c->generation == m->generation && c->id == id &&
		    (c->state == MASTER_CHILD_STARTING || c->state == MASTER_CHILD_READY))
			return 1;
	}
	return 0;
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

/* Drains every worker of an older generation. */
static void
master_switch_generation(struct master *m)
{
	uint64_t kill_at = master_now_ms() + m->cfg->graceful_timeout_ms + MASTER_KILL_GRACE_MS;
	unsigned n = 0;

	for (size_t i = 0; i < m->nchildren; i++) {
		struct master_child *c = &m->children[i];
		if (c->generation < m->generation &&
		    (c->state == MASTER_CHILD_STARTING || c->state == MASTER_CHILD_READY)) {
			master_signal_child(c, SIGQUIT, MASTER_CHILD_DRAINING, kill_at);
			n++;
		}
	}
	m->switch_pending = 0;
	log_info("generation %u serving; draining %u old worker(s)", m->generation, n);
}

static void
master_on_ready(struct master *m, pid_t pid)
{
	struct master_child *c = master_find(m, pid);

	if (c == NULL || c->state != MASTER_CHILD_STARTING)
		return;
	c->state = MASTER_CHILD_READY;
	if (c->generation == m->generation && c->id <= m->nslots)
		m->slots[c->id - 1].failures = 0;
	log_debug("worker %u (pid %d) ready", c->id, (int)pid);
	if (m->switch_pending && c->generation == m->generation &&
	    master_count(m, m->generation, MASTER_CHILD_READY) >= m->cfg->workers)
		master_switch_generation(m);
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
		if (expected && WTERMSIG(status) == SIGKILL)
			log_warnx("worker %u (pid %d) killed after the graceful timeout", c->id, (int)c->pid);
		else
			log_errorx("worker %u (pid %d) killed by signal %d (%s)%s", c->id, (int)c->pid,
				   WTERMSIG(status), strsignal(WTERMSIG(status)),
				   WCOREDUMP(status) ? ", core dumped" : "");
	}
}

static void
master_reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct master_child *c = master_find(m, pid);
		if (c == NULL)
			continue;
		master_log_exit(c, status);
		if (m->stop == MASTER_RUNNING && c->generation == m->generation &&
		    (c->state == MASTER_CHILD_STARTING || c->state == MASTER_CHILD_READY) && c->id <= m->nslots) {
			struct master_slot *s = &m->slots[c->id - 1];
			uint64_t delay = 0;
			if (c->state == MASTER_CHILD_STARTING) {
				/* Died while booting: back off, exponentially, capped. */
				delay = (uint64_t)MASTER_BACKOFF_MIN_MS << (s->failures < 9 ? s->failures : 9);
				if (delay > MASTER_BACKOFF_MAX_MS)
					delay = MASTER_BACKOFF_MAX_MS;
				s->failures++;
				log_errorx("worker %u failed to start %u time(s) in a row; next try in %llu ms", c->id,
					   s->failures, (unsigned long long)delay);
			}
			s->respawn_at_ms = master_now_ms() + delay;
		}
		*c = m->children[--m->nchildren];
	}
}

static void
master_signal_all(struct master *m, int sig, enum master_child_state state, uint64_t kill_at)
{
	for (size_t i = 0; i < m->nchildren; i++)
		if (m->children[i].state != MASTER_CHILD_STOPPING || sig == SIGKILL)
			master_signal_child(&m->children[i], sig, state, kill_at);
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
	/* No new connections queue for nobody: ours is the last copy once the
	 * workers close theirs. */
	master_close_listeners(m);
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

static int
master_write_pidfile(struct master *m, const char *path)
{
	char tmp[4096], buf[32];
	int fd, len;

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		log_error("cannot write pidfile %s", tmp);
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)len) != len || close(fd) != 0 || rename(tmp, path) != 0) {
		log_error("cannot write pidfile %s", path);
		unlink(tmp);
		return -1;
	}
	m->pidfile = strdup(path);
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
	/* Only our own: a successor may have written it already. */
	if ((fd = open(m->pidfile, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (atoi(buf) == (int)getpid())
				unlink(m->pidfile);
		}
	}
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
			continue;
		}
		if (listener_open(&new->listen[i], &ls[i]) != 0)
			goto fail;
		log_info("listening on %s", ls[i].name);
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
master_reset_slots(struct master *m)
{
	free(m->slots);
	m->nslots = m->cfg->workers;
	m->slots = calloc(m->nslots, sizeof(*m->slots));
	if (m->slots == NULL)
		log_fatal("calloc");
	for (size_t i = 0; i < m->nslots; i++)
		m->slots[i].respawn_at_ms = 1; /* due now */
}

static void
master_reload(struct master *m)
{
	struct config_errors errs = {0};
	struct config *new;
	struct listener *ls;

	if (m->stop != MASTER_RUNNING)
		return;
	log_info("reloading %s", m->config_path);
	if ((new = config_load(m->config_path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			log_errorx("%s", errs.msgs[i]);
		config_errors_free(&errs);
		log_errorx("reload failed: still running generation %u with the previous configuration",
			   m->generation);
		return;
	}
	if (master_rebind(m, new, &ls) != 0) {
		config_free(new);
		log_errorx("reload failed: still running generation %u with the previous configuration",
			   m->generation);
		return;
	}
	free(m->listeners);
	m->listeners = ls;
	m->nlisteners = new->nlisten;
	config_free(m->cfg);
	m->cfg = new;
	log_set_level((enum log_level)new->log_level);
	m->generation++;
	master_reset_slots(m);
	m->switch_pending = 1;
	m->switch_deadline_ms = master_now_ms() + MASTER_SWITCH_TIMEOUT_MS;
	log_info("configuration OK: starting generation %u with %u worker(s)", m->generation, new->workers);
}

/* Work that is due: respawns, the generation switch, kills past deadline.
 * Returns the milliseconds until the next thing is due. */
static uint64_t
master_tick(struct master *m)
{
	uint64_t now = master_now_ms(), next = 1000;

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
				if (!master_slot_alive(m, id) && master_spawn(m, id) != 0) {
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
				if (master_count(m, m->generation, MASTER_CHILD_READY) > 0) {
					log_warnx("generation %u: only %u of %u worker(s) ready in time", m->generation,
						  master_count(m, m->generation, MASTER_CHILD_READY), m->cfg->workers);
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
		if (c->state != MASTER_CHILD_DRAINING && c->state != MASTER_CHILD_STOPPING)
			continue;
		if (c->kill_at_ms <= now) {
			log_warnx("worker %u (pid %d) still running after its deadline: SIGKILL", c->id, (int)c->pid);
			kill(c->pid, SIGKILL);
			c->kill_at_ms = now + MASTER_FAST_STOP_MS;
		}
		MASTER_DUE(c->kill_at_ms);
	}
#undef MASTER_DUE
	return next;
}

static void
master_on_signal(struct master *m, const siginfo_t *si)
{
	int sig = si->si_signo;

	if (sig == worker_ready_signal()) {
		master_on_ready(m, si->si_pid);
		return;
	}
	switch (sig) {
	case SIGCHLD:
		break; /* reaped below, always */
	case SIGHUP:
		master_reload(m);
		break;
	case SIGTERM:
	case SIGINT:
		log_info("%s: stopping now", strsignal(sig));
		master_stop(m, MASTER_STOP_FAST);
		break;
	case SIGQUIT:
		master_stop(m, MASTER_STOP_GRACEFUL);
		break;
	default:
		log_warnx("%s: not supported yet, ignored", strsignal(sig));
		break;
	}
}

int
master_run(struct config *cfg, const char *config_path)
{
	struct master m;
	sigset_t set;
	siginfo_t si;
	struct timespec ts;

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.config_path = strdup(config_path);
	m.generation = 1;
	log_init("master");

	/* Signals are only ever read by sigtimedwait below; the workers
	 * inherit the mask and open it once their loop watches them. */
	master_signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	m.listeners = calloc(cfg->nlisten, sizeof(*m.listeners));
	if (m.listeners == NULL)
		log_fatal("calloc");
	for (size_t i = 0; i < cfg->nlisten; i++, m.nlisteners++) {
		if (listener_open(&cfg->listen[i], &m.listeners[i]) != 0) {
			master_close_listeners(&m);
			return 1;
		}
		log_info("listening on %s", m.listeners[i].name);
	}
	if (cfg->pidfile != NULL && master_write_pidfile(&m, cfg->pidfile) != 0) {
		master_close_listeners(&m);
		return 1;
	}
	master_reset_slots(&m);
	log_info("esgate %s started: %u worker(s), generation %u", ESGATE_VERSION, cfg->workers, m.generation);

	for (;;) {
		uint64_t wait_ms = master_tick(&m);
		int sig;

		if (m.stop != MASTER_RUNNING && m.nchildren == 0)
			break;
		ts.tv_sec = (time_t)(wait_ms / 1000);
		ts.tv_nsec = (long)(wait_ms % 1000) * 1000000;
		sig = sigtimedwait(&set, &si, &ts);
		if (sig > 0)
			master_on_signal(&m, &si);
		else if (errno != EAGAIN && errno != EINTR)
			log_warn("sigtimedwait");
		master_reap(&m);
	}
	master_close_listeners(&m);
	master_remove_pidfile(&m);
	log_info("exiting");
	free(m.children);
	free(m.slots);
	free(m.config_path);
	config_free(m.cfg);
	return 0;
}
