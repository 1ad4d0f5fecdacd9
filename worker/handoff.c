/*
 * handoff.c - passing just-accepted connections to the least loaded worker
 * of the generation (see handoff.h for why, doc/DESIGN.md for the rules).
 *
 * Owns: the choice of a peer (scoreboard slots: connections held, queue
 * not yet read, listeners armed, generation, heartbeat), the datagram that
 * carries a descriptor, the reading of our slot's queue, and taking back
 * what a peer leaves unread.  The worker owns what is done with a
 * connection (its serve callback): the same path as after accept4.
 */
#include "worker/handoff.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"

/* Slack: a worker keeps a new connection unless it holds more than the
 * least loaded peer's connections plus its unread queue, plus 2 and an
 * eighth of that (a burst of 16 then ends 9/7 at worst; 64 keep-alive
 * connections 35/29). */
#define HANDOFF_SLACK(fewest) (2 + (fewest) / 8)
/* Churn: a worker that closed at least as many connections in the last
 * 1-2 HANDOFF_WINDOWs as it holds now serves short connections (Connection:
 * close, a connection per request): what it holds is gone in a moment,
 * so an imbalance corrects itself and passing connections on would only
 * cost system calls (measured without this: 64 connections of wrk,
 * Connection: close, each worker holding 11-18, 25-28 % of them handed
 * over, in both directions).  Long-lived connections (keep-alive, HTTP/2)
 * close rarely: a burst of them is spread. */
#define HANDOFF_WINDOW 0.05 /* s */
#define HANDOFF_REFRESH 0.1	/* s between walks of the scoreboard for peers */
#define HANDOFF_FRESH_MS 2000	/* a peer silent longer is no target */
#define HANDOFF_CHECK 0.2	/* s after a hand-off: unread by a loop that did not turn is taken back */
#define HANDOFF_BATCH 16	/* datagrams read per wake-up */
#define HANDOFF_TAKE_MAX 64	/* taken back from one peer per check */

struct handoff_msg {
	uint32_t generation; /* the sender's (for the log) */
	uint32_t listener;   /* its index in the sender's listeners ... */
	uint32_t addrlen;
	uint32_t _pad;
	uint64_t listeners; /* ... which are these (handoff_listeners_id) */
	struct sockaddr_storage addr;
};

#define HANDOFF_MSG_HEAD offsetof(struct handoff_msg, addr)

static int64_t
handoff_pending(const struct scoreboard_slot *s)
{
	int64_t in = (int64_t)__atomic_load_n(&s->handed_in, __ATOMIC_RELAXED);
	int64_t taken = (int64_t)__atomic_load_n(&s->handed_taken, __ATOMIC_RELAXED);

	/* a slot's counts restart at zero when a new worker claims it, which
	 * may then read datagrams queued before: never below nothing */
	return in > taken ? in - taken : 0;
}

/* The live workers of our generation with a queue we can send to. */
static void
handoff_refresh(struct handoff *h)
{
	h->npeers = 0;
	for (size_t j = 0; j < h->npairs && h->npeers < HANDOFF_PEERS; j++) {
		const struct scoreboard_slot *s = &h->sb->slots[j];

		if (j == h->self_index || __atomic_load_n(&s->pid, __ATOMIC_RELAXED) == 0 ||
		    __atomic_load_n(&s->generation, __ATOMIC_RELAXED) != h->generation)
			continue;
		if (scoreboard_silence_ms(s) > HANDOFF_FRESH_MS)
			continue; /* hung or stopped: the master sees to it */
		h->peers[h->npeers++] = (uint32_t)j;
	}
	h->peers_at = ev_now(h->loop);
}

/* One datagram from slot J's queue: its descriptor into *FD and what came
 * with it into *M.  1 if one was read, 0 when the queue is empty. */
static int
handoff_recv(struct handoff *h, size_t j, int *fd, struct handoff_msg *m)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
	struct cmsghdr *cm;
	ssize_t n;

	for (;;) {
		*fd = -1;
		msg.msg_controllen = sizeof(c.buf);
		n = recvmsg(h->pairs[j][0], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("hand-off queue");
			return 0;
		}
		__atomic_fetch_add(&h->sb->slots[j].handed_taken, 1, __ATOMIC_RELAXED);
		cm = CMSG_FIRSTHDR(&msg);
		if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
		if (*fd < 0)
			continue; /* no descriptor (cut short): nothing to serve */
		if ((size_t)n < HANDOFF_MSG_HEAD || m->listeners != h->listeners || m->listener >= h->nlisteners ||
		    m->addrlen > sizeof(m->addr) || (size_t)n < HANDOFF_MSG_HEAD + m->addrlen) {
			/* queued by a generation with other listening sockets
			 * to a slot now ours (its worker died first): its
			 * listener numbers are not ours */
			log_warnx("hand-off from generation %u closed: not our listeners", (unsigned)m->generation);
			close(*fd);
			continue;
		}
		return 1;
	}
}

static int handoff_pass_on(struct handoff *h, int fd, const struct handoff_msg *m);

/* FD, read from a queue with M: served here, or passed on to the heir
 * while we drain. */
static void
handoff_serve(struct handoff *h, int fd, const struct handoff_msg *m)
{
	if (h->draining && handoff_pass_on(h, fd, m))
		return;
	h->serve(h->serve_arg, fd, m->listener, m->addrlen > 0 ? (const struct sockaddr *)&m->addr : NULL,
		 (socklen_t)m->addrlen);
}

static void
handoff_on_queue(struct ev_loop *loop, ev_io *io, int revents)
{
	struct handoff *h = io->data;
	struct handoff_msg m;
	int fd;

	for (int i = 0; i < HANDOFF_BATCH && handoff_recv(h, h->self_index, &fd, &m); i++) {
		metrics_inc(&h->counts->conn_handoff_received);
		handoff_serve(h, fd, &m);
	}
}

/* Our loop turns: peers waiting for us to read see that we run. */
static void
handoff_on_tick(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct handoff *h = p->data;

	__atomic_store_n(&h->self->loops, __atomic_load_n(&h->self->loops, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* Takes what is queued to slot J and serves it here. */
static void
handoff_take_back(struct handoff *h, uint32_t j)
{
	struct handoff_msg m;
	int fd;

	for (int k = 0; k < HANDOFF_TAKE_MAX && handoff_recv(h, j, &fd, &m); k++) {
		metrics_inc(&h->counts->conn_taken_back);
		handoff_serve(h, fd, &m);
	}
}

/* HANDOFF_CHECK after a hand-off, each slot we sent to: one whose worker
 * is gone (reaped before it read) or whose loop has not turned once since
 * (stopped, stuck, or not scheduled) gets its queue taken back and served
 * here, and a live one is sent nothing more until its loop turns again.
 * A peer that runs reads its queue: it is left to it. */
static void
handoff_on_check(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct handoff *h = t->data;
	int again = 0;

	for (uint32_t j = 0; j < h->npairs; j++) {
		struct scoreboard_slot *s = &h->sb->slots[j];
		uint64_t loops;

		if (!h->watch[j])
			continue;
		if (__atomic_load_n(&s->pid, __ATOMIC_RELAXED) == 0) {
			handoff_take_back(h, j); /* its next worker may be long in coming */
			h->watch[j] = 0;
			continue;
		}
		loops = __atomic_load_n(&s->loops, __ATOMIC_RELAXED);
		if (handoff_pending(s) == 0) {
			h->watch[j] = 0;
			continue;
		}
		if (loops != h->loops_seen[j]) {
			h->loops_seen[j] = loops; /* it runs: it reads what is queued */
			again = 1;
			continue;
		}
		h->suspect_loops[j] = loops;
		h->suspect_pid[j] = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
		handoff_take_back(h, j);
		h->watch[j] = 0;
	}
	if (again) {
		ev_timer_set(t, HANDOFF_CHECK, 0.0);
		ev_timer_start(loop, t);
	}
}

uint64_t
handoff_listeners_id(const int *fds, size_t n)
{
	uint64_t id = 0xcbf29ce484222325ULL ^ n; /* FNV-1a over the inode numbers, in order */

	for (size_t i = 0; i < n; i++) {
		struct stat st;
		uint64_t ino = fstat(fds[i], &st) == 0 ? (uint64_t)st.st_ino : 0;

		for (int b = 0; b < 8; b++) {
			id ^= (ino >> (8 * b)) & 0xff;
			id *= 0x100000001b3ULL;
		}
	}
	return id != 0 ? id : 1;
}

void
handoff_init(struct handoff *h, struct ev_loop *loop, struct scoreboard *sb, struct scoreboard_slot *self,
	     uint32_t generation, unsigned nlisteners, uint64_t listeners, const int (*pairs)[2], size_t npairs,
	     struct metrics_shard *counts, handoff_serve_cb serve, void *serve_arg)
{
	memset(h, 0, sizeof(*h));
	h->loop = loop;
	h->sb = sb;
	h->self = self;
	h->self_index = (uint32_t)(self - sb->slots);
	h->generation = generation;
	h->nlisteners = nlisteners;
	h->listeners = listeners;
	__atomic_store_n(&self->listeners, listeners, __ATOMIC_RELAXED);
	h->counts = counts;
	h->serve = serve;
	h->serve_arg = serve_arg;
	ev_init(&h->check, handoff_on_check);
	h->check.data = h;
	if (pairs == NULL || h->self_index >= npairs)
		return; /* no queue of ours: we neither send nor receive */
	h->loops_seen = calloc(npairs, sizeof(*h->loops_seen));
	h->suspect_loops = calloc(npairs, sizeof(*h->suspect_loops));
	h->suspect_pid = calloc(npairs, sizeof(*h->suspect_pid));
	h->watch = calloc(npairs, sizeof(*h->watch));
	if (h->loops_seen == NULL || h->suspect_loops == NULL || h->suspect_pid == NULL || h->watch == NULL) {
		log_warn("calloc");
		free(h->loops_seen);
		free(h->suspect_loops);
		free(h->suspect_pid);
		free(h->watch);
		h->loops_seen = h->suspect_loops = NULL;
		h->suspect_pid = NULL;
		h->watch = NULL;
		return;
	}
	for (size_t j = 0; j < npairs; j++)
		h->suspect_loops[j] = HANDOFF_NOT_SUSPECT;
	ev_prepare_init(&h->tick, handoff_on_tick);
	h->tick.data = h;
	ev_prepare_start(loop, &h->tick);
	h->pairs = pairs;
	h->npairs = npairs;
	ev_io_init(&h->io, handoff_on_queue, pairs[h->self_index][0], EV_READ);
	h->io.data = h;
	ev_io_start(loop, &h->io);
}

/* Sends FD to slot J's queue; 1 if it went. */
static int
handoff_send(struct handoff *h, uint32_t j, int fd, unsigned listener, const struct sockaddr *addr, socklen_t len)
{
	struct scoreboard_slot *s = &h->sb->slots[j];
	struct handoff_msg m;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cm;
	uint64_t in;
	ssize_t n;

	if (addr == NULL || len > sizeof(m.addr))
		len = 0;
	m.generation = h->generation;
	m.listener = listener;
	m.addrlen = (uint32_t)len;
	m._pad = 0;
	m.listeners = h->listeners;
	if (len > 0)
		memcpy(&m.addr, addr, len);
	iov = (struct iovec){.iov_base = &m, .iov_len = HANDOFF_MSG_HEAD + len};
	memset(&c, 0, sizeof(c));
	msg = (struct msghdr){.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	/* counted before it is sent, so that a peer reading at once never
	 * sees more taken than sent */
	in = __atomic_fetch_add(&s->handed_in, 1, __ATOMIC_RELAXED);
	if (in <= __atomic_load_n(&s->handed_taken, __ATOMIC_RELAXED) || !h->watch[j])
		h->loops_seen[j] = __atomic_load_n(&s->loops, __ATOMIC_RELAXED); /* a check from here */
	do
		n = sendmsg(h->pairs[j][1], &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* EAGAIN: its queue is full; anything else: keep it too */
		__atomic_fetch_sub(&s->handed_in, 1, __ATOMIC_RELAXED);
		return 0;
	}
	close(fd);
	h->watch[j] = 1;
	metrics_inc(&h->counts->conn_handed_off);
	if (!ev_is_active(&h->check)) {
		ev_timer_set(&h->check, HANDOFF_CHECK, 0.0);
		ev_timer_start(h->loop, &h->check);
	}
	return 1;
}

/* 1 if the worker in slot J left a hand-off unread and its loop has not
 * turned since; a mark is cleared once it has, or once another worker
 * holds the slot (its loop count starts again from 0: a new worker
 * stopped at the count its predecessor was marked at is no suspect). */
static int
handoff_suspect(struct handoff *h, uint32_t j)
{
	const struct scoreboard_slot *s = &h->sb->slots[j];

	if (h->suspect_loops[j] == HANDOFF_NOT_SUSPECT)
		return 0;
	if (__atomic_load_n(&s->pid, __ATOMIC_RELAXED) == h->suspect_pid[j] &&
	    __atomic_load_n(&s->loops, __ATOMIC_RELAXED) == h->suspect_loops[j])
		return 1;
	h->suspect_loops[j] = HANDOFF_NOT_SUSPECT;
	return 0;
}

/* The least loaded target among the peers (connections + what is queued
 * to it): its slot index, its load into *LOAD; -1 if none may take one
 * (none alive and accepting in our generation, or each suspect). */
static int64_t
handoff_pick(struct handoff *h, int64_t *load)
{
	int64_t fewest = -1, best = -1;

	for (size_t i = 0; i < h->npeers; i++) {
		uint32_t j = h->peers[i];
		const struct scoreboard_slot *s = &h->sb->slots[j];
		int64_t l;

		if (__atomic_load_n(&s->pid, __ATOMIC_RELAXED) == 0 ||
		    __atomic_load_n(&s->generation, __ATOMIC_RELAXED) != h->generation ||
		    __atomic_load_n(&s->accepting, __ATOMIC_RELAXED) == 0)
			continue;
		if (handoff_suspect(h, j))
			continue; /* left a hand-off unread, and has not run since */
		l = (int64_t)__atomic_load_n(&s->conns, __ATOMIC_RELAXED) + handoff_pending(s);
		if (fewest < 0 || l < fewest) {
			fewest = l;
			best = j;
		}
	}
	*load = fewest;
	return best;
}

/* The heir of a draining worker: the live, accepting worker with our
 * listening sockets (so our listener numbers), of the newest generation
 * (a reload's: its predecessors drain too), then the least loaded; its
 * slot index, or -1 if none.  Any generation: this runs only while we
 * drain or leave, never on the accept path. */
static int64_t
handoff_heir(struct handoff *h)
{
	int64_t best = -1, fewest = 0;
	uint32_t newest = 0;

	for (uint32_t j = 0; j < h->npairs; j++) {
		const struct scoreboard_slot *s = &h->sb->slots[j];
		uint32_t g;
		int64_t l;

		if (j == h->self_index || __atomic_load_n(&s->pid, __ATOMIC_RELAXED) == 0 ||
		    __atomic_load_n(&s->accepting, __ATOMIC_RELAXED) == 0 ||
		    __atomic_load_n(&s->listeners, __ATOMIC_RELAXED) != h->listeners ||
		    scoreboard_silence_ms(s) > HANDOFF_FRESH_MS)
			continue;
		if (handoff_suspect(h, j))
			continue; /* left a hand-off unread, and has not run since */
		g = __atomic_load_n(&s->generation, __ATOMIC_RELAXED);
		l = (int64_t)__atomic_load_n(&s->conns, __ATOMIC_RELAXED) + handoff_pending(s);
		if (best < 0 || (int32_t)(g - newest) > 0 || (g == newest && l < fewest)) {
			best = j;
			newest = g;
			fewest = l;
		}
	}
	return best;
}

/* Draining: FD (read from a queue with M) goes to the heir; 1 if it went
 * (FD closed here). */
static int
handoff_pass_on(struct handoff *h, int fd, const struct handoff_msg *m)
{
	int64_t heir = handoff_heir(h);

	return heir >= 0 && handoff_send(h, (uint32_t)heir, fd, m->listener,
	                                 m->addrlen > 0 ? (const struct sockaddr *)&m->addr : NULL,
	                                 (socklen_t)m->addrlen);
}

int
handoff_offer(struct handoff *h, size_t mine, int fd, unsigned listener, const struct sockaddr *addr, socklen_t len)
{
	int64_t fewest, best;

	if (h->npairs == 0)
		return 0;
	if (ev_now(h->loop) - h->window_at >= HANDOFF_WINDOW) {
		/* a new window: the closes counted from the start of the one
		 * before (none after a longer quiet) */
		h->closes_before = ev_now(h->loop) - h->window_at < 2 * HANDOFF_WINDOW ? h->closes_mark : h->closes;
		h->closes_mark = h->closes;
		h->window_at = ev_now(h->loop);
	}
	if (h->closes - h->closes_before >= mine && h->closes != h->closes_before)
		return 0; /* churning: keep it */
	if (h->peers_at == 0 || ev_now(h->loop) - h->peers_at > HANDOFF_REFRESH)
		handoff_refresh(h);
	if ((best = handoff_pick(h, &fewest)) < 0 || (int64_t)mine <= fewest + HANDOFF_SLACK(fewest))
		return 0;
	return handoff_send(h, (uint32_t)best, fd, listener, addr, len);
}

void
handoff_drain(struct handoff *h)
{
	struct handoff_msg m;
	int fd;

	if (h->npairs == 0 || h->draining)
		return;
	h->draining = 1;
	/* what is queued now goes on at once; what a sender that raced with
	 * our slot's "not accepting" queues later, the ev_io passes on */
	while (handoff_recv(h, h->self_index, &fd, &m)) {
		metrics_inc(&h->counts->conn_handoff_received);
		handoff_serve(h, fd, &m);
	}
}

void
handoff_leave(struct handoff *h)
{
	struct handoff_msg m;
	int fd;

	if (h->npairs == 0)
		return;
	h->draining = 1;
	ev_io_stop(h->loop, &h->io);
	ev_prepare_stop(h->loop, &h->tick);
	/* no longer a target (our slot says not accepting); what came before
	 * that goes to the heir, whatever the slack and churn */
	while (handoff_recv(h, h->self_index, &fd, &m)) {
		if (handoff_pass_on(h, fd, &m))
			metrics_inc(&h->counts->conn_handoff_received);
		else
			close(fd); /* not counted: handed off, never received */
	}
	ev_timer_stop(h->loop, &h->check); /* after the sends, which arm it */
	free(h->loops_seen);
	free(h->suspect_loops);
	free(h->suspect_pid);
	free(h->watch);
	h->loops_seen = h->suspect_loops = NULL;
	h->suspect_pid = NULL;
	h->watch = NULL;
	h->npairs = 0;
}
