/*
 * bridge.c - runs libh2o's evloop from inside libev (see bridge.h).
 *
 * The epoll fd of an h2o_evloop_t is a private field placed right after the
 * public struct in 2.2.5 (lib/common/socket/evloop/epoll.c.h:
 * struct st_h2o_evloop_epoll_t { h2o_evloop_t super; int ep; }).  Relying on
 * it is a deliberate risk, fenced twice: the build refuses any other
 * libh2o version, and at start we check that the fd is the one
 * h2o_evloop_create() opened and that the kernel calls it an eventpoll.
 * h2o's registrations in that epoll set are kept lazily by h2oepoll.c;
 * every worker checks at start, on a socket pair, that they work as that
 * file expects (bridge_check_epoll_shim), and that libh2o's answer heads
 * reach h2ofmt.c's formatter (HTTP/1) and h2ohpack.c's encoder (HTTP/2)
 * (bridge_check_fmt).
 */
#include "worker/bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "worker/h2oepoll.h"
#include "worker/h2ofmt.h"
#include "worker/h2ohpack.h"
#include "worker/h2oparse.h"
#include "worker/h2orecycle.h"

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error                                                                                                                 \
    "worker/bridge.c reads a private field of libh2o 0.13.5 (h2o 2.2.5); check the epoll layout before changing versions"
#endif

struct bridge_h2o_epoll {
	h2o_evloop_t super;
	int ep;
};

/* 2.2.5's struct st_h2o_evloop_socket_t (lib/common/socket/evloop.c.h),
 * private too: read to tell whether h2o's list of sockets whose polling
 * changed holds one whose change must reach the kernel before libev
 * blocks (bridge_statechanged_needs_run).  Checked at start on a probe
 * socket (bridge_check_fresh). */
struct bridge_h2o_socket {
	h2o_socket_t super;
	int fd;
	int flags;
	h2o_evloop_t *loop;
	struct {
		size_t cnt;
		h2o_iovec_t *bufs;
		union {
			h2o_iovec_t *alloced_ptr;
			h2o_iovec_t smallbufs[4];
		};
	} wreq;
	struct bridge_h2o_socket *next_pending;
	struct bridge_h2o_socket *next_statechanged;
};

/* How many zero-wait passes prepare may run before letting libev poll:
 * bounds the time one busy connection can keep the loop from others. */
#define BRIDGE_MAX_PASSES 16

/* h2o's clock is wall-clock milliseconds.  libev already read the clock
 * when it woke up (ev_now() is wall-clock time kept from the monotonic
 * clock): reuse it rather than make a call of our own at every turn. */
static uint64_t
bridge_now_ms(struct ev_loop *loop)
{
	return (uint64_t)(ev_now(loop) * 1000.0);
}

/* 1 if a socket on h2o's list of changed polling needs h2o's next run
 * before libev blocks: it reads or writes, and the kernel's registration
 * (kept lazily by worker/h2oepoll.c) does not cover that for this very
 * socket.  The other changes (a read or write stopped, a socket disposed
 * and waiting to be freed) only update h2o's bookkeeping and the lazy
 * table, which h2o's next run does first, whenever it comes: an event
 * the kernel reports meanwhile runs h2o, whose run updates the table
 * before it polls.  A Connection: close request thus costs two runs of
 * h2o's loop fewer (the one after the request is read, for its read stop,
 * and the one after the close, to free the socket). */
static int
bridge_statechanged_needs_run(struct bridge *b)
{
	for (struct bridge_h2o_socket *s = (struct bridge_h2o_socket *)b->h2o->_statechanged.head; s != NULL;
	     s = s->next_statechanged) {
		uint32_t need;

		if (s->flags & H2O_SOCKET_FLAG_IS_DISPOSED)
			continue;
		need = (h2o_socket_is_reading(&s->super) ? EPOLLIN : 0) | (h2o_socket_is_writing(&s->super) ? EPOLLOUT : 0);
		if (need != 0 && !h2oepoll_covers(s->fd, need, s))
			return 1;
	}
	return 0;
}

/* 1 if h2o has work to run now; *NOW: the time; *WAKE: with 0, h2o's
 * next timeout (UINT64_MAX: none), which is not computed (a walk of all
 * of h2o's timeout lists) when there is work of another kind. */
static int
bridge_has_work(struct bridge *b, uint64_t *wake, uint64_t *now)
{
	h2o_evloop_t *h = b->h2o;

	*now = bridge_now_ms(b->loop);
	/* a run within this turn may have read a later time */
	if (h->_now > *now)
		*now = h->_now;
	*wake = *now;
	if (h->_pending_as_client != NULL || h->_pending_as_server != NULL || h2oepoll_pending() ||
	    (h->_statechanged.head != NULL && bridge_statechanged_needs_run(b)))
		return 1;
	*wake = h2o_timeout_get_wake_at(&h->_timeouts);
	return *wake <= *now;
}

/* One run of h2o's loop.  POLL: libev saw h2o's epoll fd readable, h2o's
 * epoll_wait asks the kernel; otherwise h2o is run for work of its own
 * (deferred callbacks and writes, due timeouts, sockets just accepted,
 * kicks from upstream callbacks) and its zero-wait epoll_wait is answered
 * without a system call (worker/h2oepoll.c): whatever the kernel has ready
 * for h2o keeps its epoll fd readable (level-triggered), and libev polls
 * that fd before it blocks (bridge_on_prepare runs just before), so it
 * is read one libev turn later instead of never, except when one of h2o's
 * timeouts is due (bridge_timeout_due): a request that came in time is
 * read before its timeout runs.  Then the sockets h2o
 * read from without the kernel that still want more are registered. */
/* Within this many ms of a timeout of h2o's that is not its zero one,
 * h2o's run asks the kernel: h2o reads the clock again in its run. */
#define BRIDGE_DUE_SLACK_MS 10

/* 1 if one of h2o's timeouts other than its zero one (a request or
 * keep-alive timeout, the guard's head timeout...) is due or nearly: then
 * h2o's run must see what the kernel has ready before it runs them, or a
 * request that came in time would lose to its timeout (its bytes unread
 * in the kernel, the connection closed over them).  The lists are in
 * linking order, so each one's first entry is its earliest. */
static int
bridge_timeout_due(void *arg)
{
	struct bridge *b = arg;
	h2o_evloop_t *h = b->h2o;
	uint64_t now = bridge_now_ms(b->loop);

	/* Asked from inside h2o's run, just before its epoll_wait: h2o has read
	 * the clock then (adjust_max_wait), while libev's time is that of its
	 * last wake-up, which can be long ago (a stalled or stopped process). */
	if (h->_now > now)
		now = h->_now;
	for (h2o_linklist_t *n = h->_timeouts.next; n != &h->_timeouts; n = n->next) {
		h2o_timeout_t *t = H2O_STRUCT_FROM_MEMBER(h2o_timeout_t, _link, n);
		h2o_timeout_entry_t *e;

		if (t->timeout == 0 || h2o_linklist_is_empty(&t->_entries))
			continue;
		e = H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link, t->_entries.next);
		if (e->registered_at + t->timeout <= now + BRIDGE_DUE_SLACK_MS)
			return 1;
	}
	return 0;
}

static void
bridge_run(struct bridge *b, int poll)
{
	h2oepoll_poll_kernel(poll);
	if (h2o_evloop_run(b->h2o, 0) != 0 && errno != EINTR)
		log_warn("h2o_evloop_run");
	h2oepoll_poll_kernel(1);
	h2oepoll_settle();
}

void
bridge_kick(struct bridge *b)
{
	bridge_run(b, 0);
}

static void
bridge_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	bridge_run(w->data, 1);
}

static void
bridge_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	bridge_run(w->data, 1);
}

/* h2o reads its clock only inside its own run, but our libev callbacks
 * (accept, upstream answers) call into h2o outside of one: with a stale
 * clock, a connection accepted after an idle spell would have its request
 * timeout counted from the last run, and be closed on the spot.  Run first
 * after every wake-up, before any other callback. */
static void
bridge_on_check(struct ev_loop *loop, ev_check *w, int revents)
{
	struct bridge *b = w->data;

	b->h2o->_now = bridge_now_ms(loop);
}

static void
bridge_on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct bridge *b = w->data;
	uint64_t wake, now;
	int work;

	for (int i = 0; (work = bridge_has_work(b, &wake, &now)) && i < BRIDGE_MAX_PASSES; i++)
		bridge_run(b, 0);
	/* Passes left over work (BRIDGE_MAX_PASSES hit): come back at once. */
	if (work)
		wake = now;
	if (wake == UINT64_MAX) {
		ev_timer_stop(loop, &b->timer);
		return;
	}
	/* armed for that very time already (most turns): leave it */
	if (ev_is_active(&b->timer) && b->timer_wake == wake)
		return;
	ev_timer_stop(loop, &b->timer);
	ev_timer_set(&b->timer, wake > now ? (double)(wake - now) / 1000.0 : 0.0, 0.0);
	ev_timer_start(loop, &b->timer);
	b->timer_wake = wake;
}

/* The fd h2o_evloop_create() opened: the lowest fd that was free before the
 * call and is an eventpoll now.  We compare it with the private field. */
static int
bridge_check_epfd(int expected_free, int epfd)
{
	char path[64], target[64];
	ssize_t n;

	if (epfd != expected_free) {
		log_errorx("libh2o evloop layout mismatch: epoll fd field is %d, the new fd is %d", epfd,
		           expected_free);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", epfd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		log_error("readlink %s", path);
		return -1;
	}
	target[n] = '\0';
	if (strcmp(target, "anon_inode:[eventpoll]") != 0) {
		log_errorx("libh2o evloop layout mismatch: fd %d is %s, not an eventpoll", epfd, target);
		return -1;
	}
	return 0;
}

struct bridge_probe {
	int reads;
};

static void
bridge_probe_on_read(h2o_socket_t *sock, const char *err)
{
	struct bridge_probe *p = sock->data;

	p->reads++;
	h2o_buffer_consume(&sock->input, sock->input->size);
}

/* Runs h2o until the probe has been read N times (or gives up). */
static void
bridge_probe_run(struct bridge *b, struct bridge_probe *p, int n)
{
	for (int i = 0; i < 4 && p->reads < n; i++)
		(void)h2o_evloop_run(b->h2o, 0);
}

/* The lazy registrations of h2oepoll.c work only if h2o's epoll calls
 * reach them: a socket pair goes through h2o once, and we check that its
 * reads are seen, that stopping to read costs no epoll_ctl, that a byte
 * arriving while h2o does not read is not handed to it but narrows the
 * registration, and that starting again delivers it. */
/* A probe's end: its socket closed and freed by a run of h2o's loop, the
 * peer end PEER closed. */
static void
bridge_probe_close(struct bridge *b, h2o_socket_t *sock, int peer)
{
	h2o_socket_close(sock);
	(void)h2o_evloop_run(b->h2o, 0); /* frees it */
	close(peer);
}

/* 0, or -1 with the reason WHY a check of libh2o's epoll failed logged. */
static int
bridge_probe_verdict(const char *why)
{
	if (why != NULL) {
		log_errorx("libh2o epoll check failed: %s", why);
		return -1;
	}
	return 0;
}

static int
bridge_check_epoll_shim(struct bridge *b)
{
	const struct h2oepoll_stats *st = h2oepoll_stats();
	struct bridge_probe p = {0};
	h2o_socket_t *sock;
	uint64_t ctl0 = st->ctl, kernel0 = st->ctl_kernel, kernel1;
	const char *why = NULL;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
		log_error("socketpair");
		return -1;
	}
	sock = bridge_socket_create(b, sv[0], 0);
	sock->data = &p;
	h2o_socket_read_start(sock, bridge_probe_on_read);
	if (write(sv[1], "a", 1) != 1)
		why = "cannot write to the probe";
	bridge_probe_run(b, &p, 1);
	if (why == NULL && (st->ctl == ctl0 || st->ctl_kernel == kernel0 || h2oepoll_kernel_events(sv[0]) != EPOLLIN))
		why = "h2o's epoll_ctl does not reach esgate's";
	else if (why == NULL && p.reads != 1)
		why = "h2o's epoll_wait does not hand h2o its event";
	if (why == NULL) {
		h2o_socket_read_stop(sock);
		bridge_probe_run(b, &p, 2);
		kernel1 = st->ctl_kernel;
		if (h2oepoll_kernel_events(sv[0]) != EPOLLIN)
			why = "stopping to read reached the kernel";
		else if (write(sv[1], "b", 1) != 1)
			why = "cannot write to the probe";
		bridge_probe_run(b, &p, 2);
		if (why == NULL && p.reads != 1)
			why = "h2o was handed an event it did not ask for";
		else if (why == NULL && (h2oepoll_kernel_events(sv[0]) != 0 || st->ctl_kernel != kernel1 + 1))
			why = "an event h2o did not ask for did not narrow the registration";
	}
	if (why == NULL) {
		h2o_socket_read_start(sock, bridge_probe_on_read);
		bridge_probe_run(b, &p, 2);
		if (p.reads != 2)
			why = "a byte that arrived while h2o was not reading was lost";
	}
	bridge_probe_close(b, sock, sv[1]);
	return bridge_probe_verdict(why);
}

static void
bridge_probe_on_read_once(h2o_socket_t *sock, const char *err)
{
	bridge_probe_on_read(sock, err);
	h2o_socket_read_stop(sock);
}

/* A socket just accepted (h2oepoll_fresh) with its request already there
 * is read without the kernel: no epoll_ctl, no epoll_wait; if h2o stops
 * reading in that run (the request was whole), it is never registered;
 * if h2o reads on, it is registered after the run and what comes later is
 * handed to h2o.  Checked on two socket pairs, as bridge_run drives h2o. */
static int
bridge_check_fresh(struct bridge *b)
{
	const struct h2oepoll_stats *st = h2oepoll_stats();
	const char *why = NULL;

	for (int once = 1; once >= 0 && why == NULL; once--) {
		struct bridge_probe p = {0};
		h2o_socket_t *sock;
		uint64_t kernel0 = st->ctl_kernel;
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
			log_error("socketpair");
			return -1;
		}
		if (write(sv[1], "a", 1) != 1)
			why = "cannot write to the probe";
		sock = bridge_socket_create(b, sv[0], H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
		sock->data = &p;
		h2o_socket_read_start(sock, once ? bridge_probe_on_read_once : bridge_probe_on_read);
		{
			struct bridge_h2o_socket *s = (struct bridge_h2o_socket *)sock;

			if (s->fd != sv[0] || s->loop != b->h2o || (s->flags & H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION) == 0 ||
			    b->h2o->_statechanged.head != (void *)s || s->next_statechanged != NULL ||
			    !bridge_statechanged_needs_run(b))
				why = "libh2o evloop socket layout mismatch";
		}
		bridge_run(b, 0);
		if (why == NULL && p.reads != 1)
			why = "a socket just accepted was not read without the kernel";
		else if (why == NULL && once && (st->ctl_kernel != kernel0 || h2oepoll_kernel_events(sv[0]) != 0))
			why = "a socket read whole at once reached the kernel";
		else if (why == NULL && !once && h2oepoll_kernel_events(sv[0]) != EPOLLIN)
			why = "a socket h2o reads on after its first read is not registered";
		if (why == NULL) {
			bridge_run(b, 0); /* h2o's DEL of the socket read whole */
			if (write(sv[1], "b", 1) != 1)
				why = "cannot write to the probe";
			bridge_probe_run(b, &p, 2);
			if (why == NULL && p.reads != (once ? 1 : 2))
				why = once ? "h2o was handed an event it did not ask for"
				           : "a byte that came after the first read was lost";
			else if (why == NULL && once && h2oepoll_pending())
				why = "a socket read whole stays pending";
		}
		bridge_probe_close(b, sock, sv[1]);
	}
	return bridge_probe_verdict(why);
}

/* libh2o's HTTP/1 answer heads go through worker/h2ofmt.c's __sprintf_chk,
 * its HTTP/2 ones through worker/h2ohpack.c's encoder, its HTTP/1 request
 * heads through worker/h2oparse.c's phr_parse_request, its request pools'
 * chunks through worker/h2orecycle.c's allocator. */
static int
bridge_check_fmt(void)
{
	if (h2ofmt_check() != 0) {
		log_errorx("libh2o's __sprintf_chk calls do not reach worker/h2ofmt.c's, or it formats wrongly");
		return -1;
	}
	if (h2ohpack_check() != 0) {
		log_errorx("libh2o's h2o_hpack_flatten_response calls do not reach worker/h2ohpack.c's");
		return -1;
	}
	if (h2oparse_check() != 0) {
		log_errorx("libh2o's phr_parse_request calls do not reach worker/h2oparse.c's, or libh2o's is missing");
		return -1;
	}
	if (h2orecycle_check() != 0) {
		log_errorx("libh2o's request pool chunks do not come through worker/h2orecycle.c's allocator");
		return -1;
	}
	return 0;
}

h2o_socket_t *
bridge_socket_create(struct bridge *b, int fd, int flags)
{
	h2oepoll_forget(fd);
	h2oepoll_nonblocking(fd);
	if (flags & H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION)
		h2oepoll_fresh(fd);
	return h2o_evloop_socket_create(b->h2o, fd, flags);
}

int
bridge_init(struct bridge *b, struct ev_loop *loop)
{
	int probe;

	memset(b, 0, sizeof(*b));
	b->loop = loop;

	/* Learn which fd number the next open() gets: epoll_create takes it. */
	if ((probe = dup(0)) < 0 && (probe = open("/dev/null", O_RDONLY)) < 0) {
		log_error("open /dev/null");
		return -1;
	}
	close(probe);
	b->h2o = h2o_evloop_create();
	b->epfd = ((struct bridge_h2o_epoll *)b->h2o)->ep;
	if (bridge_check_epfd(probe, b->epfd) != 0 || h2oepoll_attach(b->epfd) != 0 ||
	    bridge_check_epoll_shim(b) != 0 || bridge_check_fresh(b) != 0 || bridge_check_fmt() != 0) {
		h2o_evloop_destroy(b->h2o);
		b->h2o = NULL;
		return -1;
	}

	h2oepoll_poll_check(bridge_timeout_due, b);
	ev_io_init(&b->io, bridge_on_io, b->epfd, EV_READ);
	b->io.data = b;
	ev_io_start(loop, &b->io);
	ev_init(&b->timer, bridge_on_timer);
	b->timer.data = b;
	ev_prepare_init(&b->prepare, bridge_on_prepare);
	b->prepare.data = b;
	ev_prepare_start(loop, &b->prepare);
	ev_check_init(&b->clock, bridge_on_check);
	b->clock.data = b;
	ev_set_priority(&b->clock, EV_MAXPRI);
	ev_check_start(loop, &b->clock);
	return 0;
}
