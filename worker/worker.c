/*
 * worker.c - a worker's life: created after fork, it builds its own loop,
 * h2o server and upstream client, accepts on the listeners it inherited,
 * and ends in one of two ways: TERM/INT stop at once, QUIT drains (stop
 * accepting, let in-flight requests finish, GOAWAY to HTTP/2 clients,
 * answer the next HTTP/1.1 request with "Connection: close", close the
 * HTTP/1.1 connections left idle) and exits
 * when the last connection is gone or graceful_timeout has passed.
 */
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/reqid.h"
#include "worker/access.h"
#include "worker/bridge.h"
#include "worker/guard.h"
#include "worker/handoff.h"
#include "worker/h2drain.h"
#include "worker/h2odate.h"
#include "worker/h2oparse.h"
#include "worker/h2orecycle.h"
#include "worker/http.h"
#include "worker/tlsconn.h"
#include "worker/tlswrite.h"
#include "worker/limiter.h"
#include "worker/upstream.h"

/* Connections taken per wake-up of one listener.  One, as nginx does by
 * default (multi_accept off): every worker sharing the listen queue is
 * woken, and taking one each spreads a burst of new connections across
 * the workers instead of piling them on whichever woke first (measured:
 * 46k vs 85k requests per worker with 32 at a time, 110k vs 115k with 1).
 * Not enough where the workers share CPUs with other busy processes (the
 * one scheduled first still takes the burst: wrk's 64 connections 63/1):
 * a worker then passes what it accepts to a less loaded one
 * (worker/handoff.h). */
#define WORKER_ACCEPT_BATCH 1

struct worker;

struct worker_listener {
	int fd;
	h2o_accept_ctx_t *accept_ctx; /* which host its connections get: public, local or metrics,
				       * or tls_accept below */
	h2o_accept_ctx_t tls_accept;  /* a TLS listener's: its SSL_CTX and its hosts */
	/* TCP_NODELAY: 1 set on the listener, which accepted sockets inherit
	 * (Linux copies it; checked on the first one), 0 to set on each, -1
	 * not to (a Unix socket) */
	int nodelay;
	int nodelay_checked; /* the first accepted socket had it */
	ev_io io;
	struct worker *w;
};

/* One worker process: everything it owns lives in worker_main's frame. */
struct worker {
	unsigned id;		/* slot number, 1..workers, printed as "worker N" */
	unsigned generation;	/* config generation this worker serves */
	pid_t master;		/* parent pid: we leave if it goes */
	int notify_fd;		/* write end of the master's pipe */
	const struct config *cfg;
	struct ev_loop *loop;	/* the only blocking point of the process */
	struct bridge bridge;	/* h2o's evloop inside loop */
	struct http http;	/* h2o's configuration, the route tables and the pipeline's environment */
	h2o_context_t h2o_ctx;
	h2o_accept_ctx_t accept_ctx;
	h2o_accept_ctx_t local_accept_ctx;   /* for a public listener bound to a loopback address */
	h2o_accept_ctx_t metrics_accept_ctx; /* for a separate metrics listener */
	struct worker_listener *listeners;
	size_t nlisteners;
	ev_timer accept_pause;	/* out of fds: accept again in a moment */
	struct handoff handoff;	/* new connections to and from the other workers */
	struct upstream *upstream;
	size_t nconns;		/* open client connections */
	int at_capacity;	/* limits.max_connections open: not accepting until one closes */
	struct guard *guard;	/* limits: per address, request heads, HTTP/2 */
	ev_timer idle_trim;	/* no connection for a while: give memory back */
	int draining;
	ev_timer drain_deadline;
	ev_timer drain_goaway;	/* h2o's shutdown (GOAWAY, Connection: close) a moment after draining began */
	ev_timer drain_idle;	/* from then on: closes idle HTTP/1.1 connections */
	ev_signal sig_term, sig_int, sig_quit, sig_usr1;
	struct scoreboard_slot *slot; /* ours, in memory shared with the master */
	ev_timer heartbeat;
	uint64_t requests;	/* served by this process */
	uint64_t retire_after;	/* max_requests plus jitter; 0 = never */
	ev_timer retire;	/* drain outside the request handler */
	struct metrics *metrics;	/* shared with the master and the other workers */
	struct metrics_shard *counts;	/* our shard of it (our scoreboard slot's) */
	struct scoreboard *sb;		/* every worker's slot, for /_esgate/status */
	struct ratelimit *ratelimit;	/* token buckets shared by all workers */
	struct limiter *limiter;	/* takes tokens from those, or from Redis */
	struct access_log access;
};

static void
worker_tell_master(struct worker *w, enum worker_msg_type type)
{
	struct worker_msg msg = {.pid = (int32_t)getpid(), .type = (int32_t)type};

	if (write(w->notify_fd, &msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		log_warn("cannot notify the master");
}

static void worker_start_accepting(struct worker *w);

static void
worker_check_drained(struct worker *w)
{
	if (w->draining && w->nconns == 0)
		ev_break(w->loop, EVBREAK_ALL);
}

static void
worker_on_conn_close(void *data)
{
	struct worker *w = data;

	w->nconns--;
	__atomic_store_n(&w->slot->conns, (uint32_t)w->nconns, __ATOMIC_RELAXED);
	handoff_closed(&w->handoff);
	metrics_add(&w->counts->connections, -1);
	if (w->at_capacity && w->nconns < w->cfg->limits.max_connections) {
		w->at_capacity = 0;
		worker_start_accepting(w);
	}
	if (w->nconns == 0 && !w->draining)
		ev_timer_again(w->loop, &w->idle_trim);
	worker_check_drained(w);
}

/*
 * The last client left a second ago: hand the heap's free pages back to the
 * kernel.  A burst (thousands of connections, a large answer) leaves glibc's
 * heap holding memory that nothing uses but that stays resident; without
 * this a worker's RSS is the high-water mark of every burst it ever saw.
 * malloc_trim() walks the heap (a millisecond for a few MB), which is why it
 * waits for an idle worker rather than running on every close.
 */
static void
worker_on_idle_trim(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	ev_timer_stop(loop, t);
	if (w->nconns == 0) {
		if (w->upstream != NULL)
			upstream_trim(w->upstream);
		h2orecycle_trim();
		malloc_trim(0);
	}
}

static void
worker_stop_accepting(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		ev_io_stop(w->loop, &w->listeners[i].io);
	__atomic_store_n(&w->slot->accepting, 0, __ATOMIC_RELAXED); /* no hand-offs to us */
}

/* TCP_NODELAY on an accepted socket FD of L: one system call per listener
 * rather than one per connection where the listener's setting is inherited. */
static void
worker_nodelay(struct worker_listener *l, int fd)
{
	static const int one = 1;
	int v = 0;
	socklen_t len = sizeof(v);

	if (l->nodelay == 1) {
		if (l->nodelay_checked)
			return;
		l->nodelay_checked = 1;
		if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 && v != 0)
			return;
		l->nodelay = 0; /* not inherited here: each connection then */
	}
	if (l->nodelay == 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* 1 if max_connections are open: then the worker stops accepting and
 * leaves the rest queued for the other workers, as HAProxy's maxconn does,
 * until one of its connections closes; its slot says it does not accept,
 * so nothing more is handed to it either. */
static int
worker_full(struct worker *w)
{
	if (w->nconns < w->cfg->limits.max_connections)
		return 0;
	if (!w->at_capacity)
		log_warnx("max_connections (%llu) open: not accepting until one closes",
		          (unsigned long long)w->cfg->limits.max_connections);
	w->at_capacity = 1;
	worker_stop_accepting(w);
	return 1;
}

/* A request head refused before any request existed (worker/guard.h,
 * worker/h2oparse.h): logged and counted as the requests are. */
static void
worker_on_refused(void *env, const struct sockaddr *peer, socklen_t peerlen, int status, size_t bytes)
{
	exchange_refused(env, peer, peerlen, status, bytes);
}

/* A new connection FD of listener L, from PEER: accepted here or handed
 * over by another worker (worker/handoff.h). */
static void
worker_serve(struct worker *w, struct worker_listener *l, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
	struct guard_conn *gc;
	h2o_socket_t *sock;

	if ((gc = guard_admit(w->guard, fd, peer, peerlen, l->accept_ctx->ssl_ctx != NULL)) == NULL)
		return; /* refused (answered and closed) */
	worker_nodelay(l, fd);
	sock = bridge_socket_create(&w->bridge, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
	if (w->nconns++ == 0)
		ev_timer_stop(w->loop, &w->idle_trim); /* not idle after all */
	__atomic_store_n(&w->slot->conns, (uint32_t)w->nconns, __ATOMIC_RELAXED);
	metrics_add(&w->counts->connections, 1);
	sock->on_close.cb = worker_on_conn_close;
	sock->on_close.data = w;
	h2o_accept(l->accept_ctx, sock);
	guard_attach(gc, sock, worker_on_conn_close, w);
	/* now, not at the next accept: a peer must stop handing us more (a
	 * hand-off that raced with this still comes in, one over the limit) */
	(void)worker_full(w);
}

static void
worker_serve_handed(void *arg, int fd, unsigned listener, const struct sockaddr *peer, socklen_t peerlen)
{
	struct worker *w = arg;

	worker_serve(w, &w->listeners[listener], fd, peer, peerlen);
}

static void
worker_on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker_listener *l = io->data;
	struct worker *w = l->w;

	for (int i = 0; i < WORKER_ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t peerlen = sizeof(peer);
		int fd;

		if (worker_full(w))
			return;
		fd = accept4(l->fd, (struct sockaddr *)&peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return; /* another worker took it */
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Leave the connections queued for a second rather than spin. */
				log_warn("accept");
				worker_stop_accepting(w);
				ev_timer_set(&w->accept_pause, 1.0, 0.0);
				ev_timer_start(loop, &w->accept_pause);
				return;
			}
			log_warn("accept");
			return;
		}
		metrics_inc(&w->counts->conn_accepted);
		if (handoff_offer(&w->handoff, w->nconns, fd, (unsigned)(l - w->listeners),
		                  peerlen > 0 ? (struct sockaddr *)&peer : NULL, peerlen))
			continue; /* a less loaded worker serves it */
		worker_serve(w, l, fd, peerlen > 0 ? (struct sockaddr *)&peer : NULL, peerlen);
	}
}

/* 1 if FD is bound to a loopback address (127.0.0.0/8, ::1, or
 * ::ffff:127.0.0.0/104): only this machine reaches it.  Asked of the
 * socket itself, so that listeners from systemd or an upgrade count as
 * what they are.  A Unix socket does not count: it is usually where a
 * front proxy hands on every client. */
static int
worker_listener_is_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

static void
worker_start_accepting(struct worker *w)
{
	if (w->draining || w->at_capacity)
		return;
	for (size_t i = 0; i < w->nlisteners; i++)
		ev_io_start(w->loop, &w->listeners[i].io);
	__atomic_store_n(&w->slot->accepting, 1, __ATOMIC_RELAXED);
}

static void
worker_on_accept_pause(struct ev_loop *loop, ev_timer *t, int revents)
{
	worker_start_accepting(t->data);
}

static void
worker_on_drain_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	log_warnx("graceful timeout: closing %zu connection(s) still open", w->nconns);
	ev_break(loop, EVBREAK_ALL);
}

/*
 * Draining, an HTTP/1.1 keep-alive connection that is idle is closed
 * (worker/guard.h), as nginx and HAProxy do, rather than left to its
 * client's next request or keep-alive timeout, which would hold the old
 * worker for up to graceful_timeout.  Only one idle for WORKER_IDLE_CLOSE
 * (since its last answer, or its accept): a client busy on it sends its
 * next request within microseconds of the last answer, and had it closed
 * then, that request would find the connection gone without an answer
 * (RFC 9112 9.3.1 lets a client retry it, but Python's http.client, for
 * one, does not); left open, it gets "Connection: close" instead.  Swept
 * every WORKER_IDLE_SWEEP from the GOAWAY step to the exit.
 */
#define WORKER_IDLE_CLOSE_MS 1000
#define WORKER_IDLE_SWEEP 0.1

static void
worker_on_drain_idle(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;
	size_t n;

	if ((n = guard_close_idle(w->guard, WORKER_IDLE_CLOSE_MS)) != 0)
		log_info("closing %zu idle HTTP/1.1 connection(s)", n);
}

/* The drain's second step: tell h2o (HTTP/2 GOAWAY; HTTP/1.1 answers
 * "Connection: close" from now on). */
static void
worker_on_drain_goaway(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;
	size_t held;

	/* GOAWAY now to the HTTP/2 connections that have opened a stream; one
	 * that has not yet (a handshake still under way) gets h2o's second
	 * GOAWAY, a second later (worker/h2drain.c) */
	if ((held = h2drain_request_shutdown(&w->h2o_ctx)) != 0)
		log_info("%zu HTTP/2 connection(s) with no stream yet: GOAWAY in a second", held);
	/* HTTP/1.1 connections between requests end from now on, not when
	 * their client's keep-alive timeout does */
	ev_timer_set(&w->drain_idle, 0.0, WORKER_IDLE_SWEEP);
	ev_timer_again(w->loop, &w->drain_idle);
	worker_on_drain_idle(loop, &w->drain_idle, revents);
}

/* Not accepting any more, the worker waits this long before its GOAWAY: a
 * connection it accepted just before the drain, whose handshake (TLS)
 * or preface ends at that moment, would otherwise get a GOAWAY right
 * behind the server's SETTINGS, while the client's first request is on
 * its way; esgate answers that request, but curl 7.88 gives it up when
 * the GOAWAY arrives and retries only on a reused connection, so the
 * first request of a new one fails ("Empty reply": worker/h2drain.c has
 * the trace).  A quarter of a second lets the first request of a fresh
 * connection in (one still without a stream then is held back from the
 * GOAWAY by h2drain); it only delays the old worker's exit, never the new
 * generation. */
#define WORKER_GOAWAY_DELAY 0.25

static void
worker_drain(struct worker *w)
{
	if (w->draining)
		return;
	w->draining = 1;
	worker_stop_accepting(w);
	/* what was handed to us and not yet read goes to a live worker, not
	 * to this one, which is going away (nor does what comes later) */
	handoff_drain(&w->handoff);
	ev_timer_stop(w->loop, &w->accept_pause);
	/* Our copies of the listeners go now; the master and the new
	 * generation keep theirs, so nothing queued is lost. */
	for (size_t i = 0; i < w->nlisteners; i++) {
		close(w->listeners[i].fd);
		w->listeners[i].fd = -1;
	}
	/* Said once the listeners are closed, so that the line means this
	 * worker takes no new connection (test_stop connects after it) */
	log_info("draining %zu connection(s)", w->nconns);
	ev_timer_set(&w->drain_goaway, WORKER_GOAWAY_DELAY, 0.0);
	ev_timer_start(w->loop, &w->drain_goaway);
	ev_timer_set(&w->drain_deadline, (double)w->cfg->graceful_timeout_ms / 1000.0, 0.0);
	ev_timer_start(w->loop, &w->drain_deadline);
	worker_check_drained(w);
}

static void
worker_on_retire(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;
	log_info("served %llu requests (max_requests): retiring", (unsigned long long)w->requests);
	worker_tell_master(w, WORKER_MSG_RETIRING);
	worker_drain(w);
}

/* Counts one request (http.h's on_request); past max_requests the worker
 * retires gracefully. */
static void
worker_count_request(void *arg)
{
	struct worker *w = arg;

	w->requests++;
	__atomic_store_n(&w->slot->requests, w->requests, __ATOMIC_RELAXED);
	if (w->retire_after != 0 && w->requests == w->retire_after && !w->draining)
		ev_timer_start(w->loop, &w->retire);
}

static void
worker_on_heartbeat(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	scoreboard_beat(w->slot);
}

static void
worker_on_signal(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct worker *w = s->data;

	if (s->signum == SIGQUIT) {
		worker_drain(w);
		return;
	}
	if (s->signum == SIGUSR1) {
		if (log_reopen() != 0)
			log_warn("cannot reopen the log file");
		if (access_reopen(&w->access) != 0)
			log_warn("cannot reopen the access log %s", w->cfg->access_log);
		return;
	}
	log_info("%s: stopping now", strsignal(s->signum));
	ev_break(loop, EVBREAK_ALL);
}

static void
worker_signal_start(struct worker *w, ev_signal *s, int signum)
{
	ev_signal_init(s, worker_on_signal, signum);
	s->data = w;
	ev_signal_start(w->loop, s);
}

static void
worker_setup_signals(struct worker *w)
{
	sigset_t all;

	signal(SIGPIPE, SIG_IGN); /* h2o writes with plain writev */
	signal(SIGHUP, SIG_IGN);  /* the master's business */
	signal(SIGUSR2, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	signal(SIGWINCH, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	worker_signal_start(w, &w->sig_term, SIGTERM);
	worker_signal_start(w, &w->sig_int, SIGINT);
	worker_signal_start(w, &w->sig_quit, SIGQUIT);
	worker_signal_start(w, &w->sig_usr1, SIGUSR1);
	/* The master forked us with every signal blocked; what arrived in
	 * between is delivered now, to the watchers above. */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

/* Root in the master (to bind), never in a worker unless asked for. */
static void
worker_drop_privileges(const struct config *cfg)
{
	if (geteuid() != 0)
		return;
	if (cfg->user == NULL) {
		if (!cfg->allow_root)
			log_fatalx("refusing to run as root: set \"user\" or \"allow_root: true\"");
		return;
	}
	/* Supplementary groups, then gid, then uid: each step needs the
	 * privilege the next one drops. */
	if (initgroups(cfg->user, (gid_t)cfg->gid) != 0)
		log_fatal("initgroups %s", cfg->user);
	if (setgid((gid_t)cfg->gid) != 0)
		log_fatal("setgid %u", cfg->gid);
	if (setuid((uid_t)cfg->uid) != 0)
		log_fatal("setuid %u", cfg->uid);
	if (cfg->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		log_fatalx("could regain root after switching to %s", cfg->user);
}

void
worker_main(const struct worker_args *a)
{
	const struct config *cfg = a->cfg;
	struct worker w;
	char role[32];

	memset(&w, 0, sizeof(w));
	w.id = a->id;
	w.generation = a->generation;
	w.master = getppid();
	w.cfg = cfg;
	w.slot = a->slot;
	w.sb = a->sb;
	w.metrics = a->metrics;
	w.counts = a->counts;
	w.ratelimit = a->ratelimit;
	w.notify_fd = a->notify_fd;
	snprintf(role, sizeof(role), "worker %u", a->id);
	log_init(role);

	/* Opened while still root: the file may be root's.  Reopening after
	 * rotation works because the master creates the new file for us. */
	if (access_open(&w.access, cfg->access_log, cfg->access_log_json) != 0)
		log_fatal("cannot open the access log %s", cfg->access_log);
	worker_drop_privileges(cfg);
	/* A master killed with -9 must not leave orphans serving an old
	 * config.  Set after the uid change, which clears it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != w.master)
		exit(0);
	if (cfg->max_requests > 0) {
		srandom((unsigned)getpid() ^ (unsigned)scoreboard_now_ms());
		w.retire_after = cfg->max_requests +
				 (cfg->max_requests_jitter ? (uint64_t)random() % (cfg->max_requests_jitter + 1) : 0);
	}

	/* Everything loop-bound is born here, after fork, in this process. */
	if ((w.loop = ev_loop_new(EVFLAG_AUTO)) == NULL)
		log_fatalx("cannot create the event loop");
	worker_setup_signals(&w);
	if (bridge_init(&w.bridge, w.loop) != 0)
		log_fatalx("cannot nest libh2o in libev");
	if ((w.upstream = upstream_new(w.loop, &cfg->upstream, w.metrics, w.counts)) == NULL)
		log_fatalx("cannot create the upstream client");
	if ((w.limiter = limiter_new(w.loop, cfg, w.ratelimit, w.counts, w.slot)) == NULL)
		log_fatalx("cannot create the rate limiter");
	w.http.env = (struct exchange_env){.cfg = cfg,
					   .loop = w.loop,
					   .metrics = w.metrics,
					   .counts = w.counts,
					   .slot = w.slot,
					   .sb = w.sb,
					   .ratelimit = w.ratelimit,
					   .limiter = w.limiter,
					   .upstream = w.upstream,
					   .access = &w.access,
					   .worker_id = w.id};
	w.http.on_request = worker_count_request;
	w.http.on_request_arg = &w;
	http_configure(&w.http);
	h2o_context_init(&w.h2o_ctx, w.bridge.h2o, &w.http.h2o_config);
	if (h2odate_attach(&w.h2o_ctx) != 0)
		log_fatalx("libh2o's h2o_mem_link_shared calls do not reach worker/h2odate.c's, or libh2o's is missing");
	w.guard = guard_new(&w.h2o_ctx, cfg, w.ratelimit, w.counts);
	guard_on_refused(w.guard, worker_on_refused, &w.http.env);
	h2oparse_on_refused(worker_on_refused, &w.http.env);
	w.accept_ctx.ctx = &w.h2o_ctx;
	w.accept_ctx.hosts = w.http.hosts_main;
	w.local_accept_ctx.ctx = &w.h2o_ctx;
	w.local_accept_ctx.hosts = w.http.hosts_local;
	w.metrics_accept_ctx.ctx = &w.h2o_ctx;
	w.metrics_accept_ctx.hosts = w.http.hosts_metrics;

	w.listeners = calloc(a->nfds, sizeof(*w.listeners));
	if (w.listeners == NULL)
		log_fatal("calloc");
	w.nlisteners = a->nfds;
	for (size_t i = 0; i < a->nfds; i++) {
		struct tls_listener *tls = a->tls != NULL ? a->tls[i] : NULL;

		w.listeners[i].fd = a->fds[i];
		if (a->metrics_only != NULL && a->metrics_only[i])
			w.listeners[i].accept_ctx = &w.metrics_accept_ctx;
		else if (worker_listener_is_loopback(a->fds[i]))
			w.listeners[i].accept_ctx = &w.local_accept_ctx;
		else
			w.listeners[i].accept_ctx = &w.accept_ctx;
		if (tls != NULL && tls->ctx != NULL && w.listeners[i].accept_ctx != &w.metrics_accept_ctx) {
			/* libh2o runs the handshake and dispatches on ALPN: h2,
			 * then http/1.1 (h2o_alpn_protocols' order, the server's
			 * preference).  The SSL_CTX was built by the master; this
			 * worker's copy of it gets the ALPN callback. */
			h2o_ssl_register_alpn_protocols(tls->ctx, h2o_alpn_protocols);
			{
				static int checked;
				/* warns if answers go out a record per buffer; when
				 * they do not, TLS 1.3 tickets go with the first
				 * answer (lib/tlsticket.h) */
				if (!checked++)
					tlsticket_defer(tlswrite_check() == 0);
			}
			/* tickets made and read with the master's keys: a client
			 * resumes on any worker, and after a reload */
			tlsticket_use(a->tickets, tls->ctx, 2 * cfg->tls_ticket_rotation_ms / 1000);
			tlsconn_count(tls->ctx, w.counts);
			w.listeners[i].tls_accept.ctx = &w.h2o_ctx;
			w.listeners[i].tls_accept.hosts =
			    http_hosts(&w.http, tls, w.listeners[i].accept_ctx == &w.local_accept_ctx);
			w.listeners[i].tls_accept.ssl_ctx = tls->ctx;
			w.listeners[i].accept_ctx = &w.listeners[i].tls_accept;
		}
		w.listeners[i].w = &w;
		{
			static const int one = 1;
			/* fails on a Unix socket: nothing to set then */
			w.listeners[i].nodelay =
			    setsockopt(a->fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 ? 1 : -1;
		}
		ev_io_init(&w.listeners[i].io, worker_on_accept, a->fds[i], EV_READ);
		w.listeners[i].io.data = &w.listeners[i];
	}
	ev_init(&w.accept_pause, worker_on_accept_pause);
	w.accept_pause.data = &w;
	ev_init(&w.drain_deadline, worker_on_drain_deadline);
	w.drain_deadline.data = &w;
	ev_init(&w.drain_goaway, worker_on_drain_goaway);
	w.drain_goaway.data = &w;
	ev_init(&w.drain_idle, worker_on_drain_idle);
	w.drain_idle.data = &w;
	ev_timer_init(&w.retire, worker_on_retire, 0.0, 0.0);
	ev_timer_init(&w.idle_trim, worker_on_idle_trim, 0.0, 1.0);
	w.idle_trim.data = &w;
	w.retire.data = &w;
	/* The master kills a worker whose heartbeat is older than "timeout";
	 * beat several times per period so one slow iteration is not fatal. */
	double beat = (double)cfg->timeout_ms / 4000.0;
	ev_timer_init(&w.heartbeat, worker_on_heartbeat, 0.0, beat < 1.0 ? beat : 1.0);
	w.heartbeat.data = &w;
	ev_timer_start(w.loop, &w.heartbeat);
	scoreboard_beat(w.slot);
	handoff_init(&w.handoff, w.loop, w.sb, w.slot, w.generation, (unsigned)w.nlisteners,
		     handoff_listeners_id(a->fds, a->nfds), a->handoff, a->nhandoff, w.counts, worker_serve_handed, &w);
	worker_start_accepting(&w);

	log_info("generation %u serving (libev %s backend)", w.generation,
		 (ev_backend(w.loop) & EVBACKEND_EPOLL) ? "epoll" : "other");
	worker_tell_master(&w, WORKER_MSG_READY);

	ev_run(w.loop, 0);

	/* Leave.  The upstream client goes first so its pooled connections
	 * close cleanly.  h2o is not torn down: h2o_context_dispose() asserts
	 * that every timeout list is empty, which a draining HTTP/2 or an
	 * idle HTTP/1.1 connection never guarantees (h2o's own server skips it
	 * too).  The kernel closes what is left; this stack frame, which holds
	 * everything, is still live when exit() runs, so nothing is leaked. */
	worker_stop_accepting(&w);
	handoff_leave(&w.handoff); /* what was still queued for us goes to the heir */
	http_free(&w.http); /* the cache cancels the upstream requests it owns */
	upstream_free(w.upstream);
	w.upstream = NULL;
	limiter_free(w.limiter);
	w.limiter = NULL;
	log_info("exiting");
	exit(0);
}
