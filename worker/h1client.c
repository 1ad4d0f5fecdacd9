/*
 * h1client.c - keep-alive HTTP/1.1 connections to the nodes, on the
 * worker's libev loop (see h1client.h).
 *
 * Built for the steady state of a proxy under load, where libcurl spent
 * more CPU than the rest of the worker: a request on a pooled connection
 * costs one send() (sendmsg() when a body follows the head: both in one
 * call), at once, or, if it had to wait for a connection, at the end of
 * the turn that freed one, with the turn's other such requests
 * (h1client_send_soon); one recv() per readable event, and no
 * epoll_ctl, since a connection's read watcher stays started while it is
 * pooled and while its answer comes in.  It stops only while the consumer
 * has paused the transfer.  An idle pooled connection that becomes
 * readable was closed by the node (or is sending garbage): it is closed.
 * Timeouts use ev_now(), libev's cached time, and one ev_timer per
 * h1client_req, lazy: left running when a request ends, kept by the next
 * one, set again when it fires early (no system call, and no heap
 * operation for most requests).
 *
 * A request sent on a reused connection that the node closed at that very
 * moment (EOF, ECONNRESET or EPIPE before any byte of the answer) is sent
 * again, once, on a fresh connection to the same node, if it is idempotent;
 * the node is not blamed and the caller's retry budget is not used: the
 * keep-alive race nginx and curl handle the same way.
 *
 * Answers are read into a per-connection buffer, the head parsed by
 * lib/h1resp.c (or found equal to the node's previous head, its memo: the
 * usual case, one memcmp instead of a parse), and the body handed to the caller straight from that
 * buffer (chunked bodies are decoded in place).  When the caller pauses,
 * the unread bytes stay in the buffer and the read watcher stops; resuming
 * hands them over at once (see h1client_resume) and feeds the watcher an
 * event, so the rest, and the end, come from the loop.  A connection goes back to the pool only after a
 * complete answer that allows keep-alive, with nothing after it and the
 * whole request written; a cancelled request closes its connection (what
 * nginx does without proxy_ignore_client_abort: draining the rest of an
 * answer nobody wants can cost more than a new connection).
 *
 * Callers may cancel from inside their own callbacks: while a connection
 * calls out (its "dispatching" flag), closing it only marks it doomed, and
 * the dispatcher closes it once the callback has returned.  Failures found
 * outside a request's own events (a connect or send error while starting
 * it) are reported from its timer, so no callback runs inside
 * h1client_start().
 *
 * Pipelining (a depth above 1, upstream.pipeline_depth; README,
 * "Pipelining to the nodes").  A connection carries a line: REQ, whose
 * answer comes first, and the requests sent behind it (pipe[]), written in
 * order and in one call.  The requests started for a node within one loop
 * turn join one connection's line, the turn's batch (h1client_batch_open),
 * up to the depth, and the batch goes at the end of the turn with the
 * queued ones (h1client_on_flush); waiters join a connection that an
 * answer frees.  When REQ's answer ends, the bytes after it are the next
 * one's start, and the next request becomes REQ (h1client_complete: NEXT).
 * Only idempotent requests join a line, since a connection that breaks
 * leaves the ones behind its first in doubt: they go again, once
 * (h1client_regroup).  A request that leaves a line after being written
 * (cancelled, timed out) leaves its answer to come, so the connection
 * closes after REQ's (c->orphaned).  Each request keeps its own timer.
 *
 * The end of the file makes it an upstream transport (worker/transport.h):
 * an attempt is an h1client_req with the pool's callbacks, kept on a free
 * list for the next one.
 */
#include "worker/h1client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/log.h"

#define H1CLIENT_BUF (32 * 1024)    /* per connection; larger than H1RESP_HEAD_MAX */
#define H1CLIENT_COMPACT (4 * 1024) /* move unread bytes down when less room than this is left */
#define H1CLIENT_PIPE_MAX 16        /* requests a connection carries at once, at most (config.h) */

enum h1client_state {
	H1CLIENT_CONNECTING,
	H1CLIENT_IDLE,
	H1CLIENT_BUSY, /* a request is attached: being sent, or its answer read */
};

struct h1client_node {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char *host;   /* Host header value */
	size_t host_len;
	char *prefix; /* path prefix, "" for none */
	size_t prefix_len;
	struct h1client_conn *idle;              /* pooled connections, most recently used first */
	unsigned nconns;                         /* open: connecting, idle and busy */
	struct h1client_req *wq_head, **wq_tail; /* requests waiting for a connection, FIFO */
	struct h1resp_memo memo;                 /* the node's last head (its usual one) */
	struct h1client_conn *batch;             /* the connection this turn's requests join */
	double nopipe_until;      /* closed a new line after its first answer: no line till then (0: none) */
	unsigned nopipe_said : 1; /* the log said so once */
};

struct h1client_conn {
	ev_io io;
	struct h1client *h;
	struct h1client_node *node;
	struct h1client_req *req; /* NULL while idle; the one whose answer comes first */
	/* the requests pipelined behind REQ, in the order sent: their answers follow REQ's */
	struct h1client_req *pipe[H1CLIENT_PIPE_MAX - 1];
	unsigned npipe;
	struct h1client_conn *next, **prevp;   /* the idle list */
	struct h1client_conn *snext, **sprevp; /* h1client.sendq: a request to send this turn */
	int fd;
	enum h1client_state state;
	unsigned reused : 1;      /* carried an answer before: the keep-alive race applies */
	unsigned writing : 1;     /* the watcher waits for EV_WRITE too */
	unsigned dispatching : 1; /* inside a caller's callback */
	unsigned doomed : 1;      /* closed while dispatching */
	unsigned keepalive : 1;   /* the current answer allows another request */
	unsigned chunk_done : 1;  /* the chunked body has ended */
	unsigned extra : 1;       /* bytes after the end of the answer */
	unsigned orphaned : 1;    /* a request left after being written: close after REQ's answer */
	unsigned closing : 1;     /* the node's answer said close: the ones behind were not served */
	enum h1resp_body body;
	uint64_t left; /* H1RESP_BODY_LENGTH: bytes still to come */
	struct h1resp_chunked chunked;
	/* buf[off..dec): body bytes not delivered yet; buf[dec..len): bytes
	 * not decoded yet (chunk framing, or the head before it is parsed,
	 * with dec == off then) */
	char *buf;
	size_t off, dec, len;
};

struct h1client {
	struct ev_loop *loop;
	ev_prepare flush;            /* sends what the turn gave pooled connections */
	/* those connections, in the order their requests got them (snext, sprevp) */
	struct h1client_conn *sendq, **sendq_tail;
	unsigned max_conns;
	unsigned depth;                          /* requests a connection carries at once: 1 = no pipelining */
	double nopipe_for;                       /* seconds a node that closed a new line is not pipelined to */
	unsigned batching : 1;                   /* a node's batch is open this turn */
	double connect_timeout, request_timeout; /* seconds */
	struct h1client_node **nodes;
	size_t nnodes;
};

enum { H1CLIENT_MORE, H1CLIENT_STOP, H1CLIENT_PAUSED, H1CLIENT_NEXT };

static void h1client_go(struct h1client *h, struct h1client_req *r, int fresh);
static int h1client_conn_send(struct h1client_conn *c);
static void h1client_send_soon(struct h1client_conn *c);
static void h1client_unsend(struct h1client_conn *c);
static void h1client_unpipe(struct h1client_conn *c, struct h1client_req *r);

/*
 * Requests: timers and the end.
 */

/* R's timer is lazy (libev's manual, "Be smart about timeouts"): a
 * request that ends leaves it running, and the next request of the same
 * h1client_req, whose deadline is later, keeps it as it is; when it fires
 * early, its callback sets it again for the rest (h1client_on_timer).  So
 * a pooled request costs no heap operation of libev's, instead of a start
 * and a stop (about 250 instructions); the timer is set anew only to fire
 * earlier than it would. */
static void
h1client_timer_at(struct h1client *h, struct h1client_req *r, double at)
{
	double now = ev_now(h->loop), delay = at - now > 0 ? at - now : 0.0;

	r->timer_at = at;
	if (ev_is_active(&r->timer) && r->armed_at <= at)
		return;
	ev_timer_stop(h->loop, &r->timer);
	ev_timer_set(&r->timer, delay, 0.0);
	ev_timer_start(h->loop, &r->timer);
	r->armed_at = now + delay;
}

static void
h1client_unqueue(struct h1client *h, struct h1client_req *r)
{
	struct h1client_node *n;

	if (r->qprevp == NULL)
		return;
	n = h->nodes[r->node];
	*r->qprevp = r->qnext;
	if (r->qnext != NULL)
		r->qnext->qprevp = r->qprevp;
	else
		n->wq_tail = r->qprevp;
	r->qnext = NULL;
	r->qprevp = NULL;
}

static void
h1client_enqueue(struct h1client *h, struct h1client_req *r)
{
	struct h1client_node *n = h->nodes[r->node];

	r->qnext = NULL;
	r->qprevp = n->wq_tail;
	*n->wq_tail = r;
	n->wq_tail = &r->qnext;
}

static void h1client_conn_close(struct h1client_conn *c, int kick);

/* Takes R off its connection: the answer R waits for comes first on it,
 * so the connection closes (and the requests behind R go elsewhere, see
 * h1client_regroup); or R is one of those behind, and leaves the line. */
static void
h1client_off_conn(struct h1client_req *r)
{
	struct h1client_conn *c = r->conn;

	if (c == NULL)
		return;
	r->conn = NULL;
	if (c->req == r) {
		c->req = NULL;
		h1client_conn_close(c, 1);
	} else {
		h1client_unpipe(c, r);
	}
}

/* Detaches R from its connection (see h1client_off_conn) and from the queue. */
static void
h1client_detach(struct h1client *h, struct h1client_req *r)
{
	ev_timer_stop(h->loop, &r->timer);
	h1client_unqueue(h, r);
	r->active = 0;
	h1client_off_conn(r);
}

/* The end of R with an error, now: the last thing its caller does. */
static void
h1client_fail(struct h1client *h, struct h1client_req *r, enum h1client_error err, const char *why)
{
	h1client_detach(h, r);
	r->cb->on_done(r->arg, err, why);
}

/* The same, reported from R's timer on the next loop turn. */
static void
h1client_fail_later(struct h1client *h, struct h1client_req *r, enum h1client_error err, const char *why)
{
	h1client_unqueue(h, r);
	h1client_off_conn(r);
	r->deferred = err;
	r->deferred_why = why;
	h1client_timer_at(h, r, 0.0);
}

static void
h1client_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct h1client_req *r = w->data;
	struct h1client *h = r->h;
	double left;

	if (!r->active)
		return; /* the lazy timer of a request that ended: nothing to do */
	if (r->deferred == H1CLIENT_OK && (left = r->timer_at - ev_now(loop)) > 1e-3) {
		/* armed for an earlier request of this h1client_req (lazy timer) */
		ev_timer_set(&r->timer, left, 0.0);
		ev_timer_start(loop, &r->timer);
		r->armed_at = r->timer_at;
		return;
	}
	if (r->deferred != H1CLIENT_OK) {
		h1client_fail(h, r, r->deferred, r->deferred_why);
		return;
	}
	/* libev runs this turn's expired timers before its I/O callbacks.  The
	 * timer was armed from the turn's cached time, so a long turn (a large
	 * body through the firewall, or valgrind) can expire it in the same poll
	 * that brought what it waited for: the I/O wins, as in nginx, and the
	 * timer looks again on the next turn unless the I/O re-arms it. */
	if (r->conn != NULL && ev_is_pending(&r->conn->io)) {
		h1client_timer_at(h, r, 0.0);
		return;
	}
	if (r->conn != NULL && r->conn->state == H1CLIENT_CONNECTING)
		h1client_fail(h, r, H1CLIENT_TIMEOUT, "connect timeout");
	else
		h1client_fail(h, r, H1CLIENT_TIMEOUT,
		              r->qprevp != NULL ? "no free connection in time" : "request timeout");
}

/*
 * Connections.
 */

static void
h1client_watch(struct h1client_conn *c, int events)
{
	struct ev_loop *loop = c->h->loop;

	if (ev_is_active(&c->io) && (c->io.events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(loop, &c->io);
	c->writing = (events & EV_WRITE) != 0;
}

/* Starts the first waiter of node N on a new connection, while the cap allows. */
static void
h1client_kick(struct h1client *h, struct h1client_node *n)
{
	while (n->wq_head != NULL && n->nconns < h->max_conns) {
		struct h1client_req *r = n->wq_head;
		h1client_unqueue(h, r);
		h1client_go(h, r, 1);
	}
}

/* The requests that were pipelined behind the answer of a connection that
 * closed go again, on other connections.  All of them are idempotent (only
 * such requests are pipelined: h1client_pipelinable), so sending one twice
 * is allowed; still, one that had been written goes again only once, as a
 * stale keep-alive request does (h1client_stale), unless the node said
 * "close" on the answer before it, which tells that it served none of them
 * (RFC 9112, 9.6).  One whose own time is up fails as timed out. */
static void
h1client_regroup(struct h1client *h, struct h1client_req **rs, unsigned k, int served_none)
{
	for (unsigned i = 0; i < k; i++) {
		struct h1client_req *r = rs[i];

		r->conn = NULL;
		if (r->deadline - ev_now(h->loop) <= 1e-3) {
			/* its time is up too (the one in front timed out): no new try */
			h1client_fail_later(h, r, H1CLIENT_TIMEOUT, "request timeout");
			continue;
		}
		if (r->sent > 0 && !served_none) {
			if (r->stale_retried) {
				h1client_fail_later(h, r, H1CLIENT_REFUSED, "connection closed before an answer");
				continue;
			}
			r->stale_retried = 1;
		}
		r->sent = 0;
		h1client_go(h, r, !served_none);
	}
}

static void
h1client_conn_close(struct h1client_conn *c, int kick)
{
	struct h1client *h = c->h;
	struct h1client_node *n = c->node;
	struct h1client_req *rs[H1CLIENT_PIPE_MAX - 1];
	unsigned k = c->npipe;
	int served_none = c->closing;

	ev_io_stop(h->loop, &c->io);
	h1client_unsend(c);
	if (n->batch == c)
		n->batch = NULL;
	if (c->dispatching) {
		c->doomed = 1; /* the dispatcher closes it when the callback returns */
		return;
	}
	if (c->prevp != NULL) {
		*c->prevp = c->next;
		if (c->next != NULL)
			c->next->prevp = c->prevp;
	}
	memcpy(rs, c->pipe, k * sizeof(rs[0]));
	close(c->fd);
	free(c->buf);
	free(c);
	n->nconns--;
	if (k > 0)
		h1client_regroup(h, rs, k, served_none);
	if (kick)
		h1client_kick(h, n);
}

/* Whether N, which closed a new line after its first answer, may be
 * pipelined to again: nopipe_for has passed since.  Once a node that keeps
 * no connection alive is pipelined to again, one line of requests goes
 * again; a node that did so only for a while (restarting, or behind a proxy
 * being reloaded) gets its pipelining back. */
static int
h1client_repipe(struct h1client *h, struct h1client_node *n)
{
	if (ev_now(h->loop) < n->nopipe_until)
		return 0;
	n->nopipe_until = 0;
	return 1;
}

/* Whether R may be pipelined: the client pipelines, the node keeps
 * connections alive, and R may be sent twice (a connection that breaks
 * leaves the requests behind its first one in doubt). */
static int
h1client_pipelinable(struct h1client *h, struct h1client_node *n, struct h1client_req *r)
{
	return h->depth > 1 && r->idempotent && (n->nopipe_until == 0 || h1client_repipe(h, n));
}

/* Puts R in the line behind C's requests. */
static void
h1client_pipe_add(struct h1client_conn *c, struct h1client_req *r)
{
	c->pipe[c->npipe++] = r;
	r->conn = c;
	r->sent = 0;
	r->head_seen = 0;
}

/* R leaves the line behind C's first request.  If any of it was written,
 * the node will answer it, in its place in the line: C can no longer tell
 * which answer is whose past its first one, so it closes after that one
 * (nginx closes a connection whose request it gives up on, too). */
static void
h1client_unpipe(struct h1client_conn *c, struct h1client_req *r)
{
	unsigned i = 0;

	while (i < c->npipe && c->pipe[i] != r)
		i++;
	if (i == c->npipe)
		return;
	if (r->sent > 0)
		c->orphaned = 1;
	memmove(&c->pipe[i], &c->pipe[i + 1], (c->npipe - i - 1) * sizeof(c->pipe[0]));
	c->npipe--;
}

/* C's turn batch: the requests of this loop turn for C's node join C's
 * line, up to the depth, and go together at the end of the turn
 * (h1client_on_flush).  Opened only for a connection whose first request
 * may be pipelined, and closed when the turn ends or C closes, so the
 * batch always has a first request that takes company.  Requests of one
 * turn meet the node in one segment, and their answers come back
 * together: the node and this worker are each woken, and each run TCP,
 * once for the lot rather than once a request. */
static void
h1client_batch_open(struct h1client_conn *c)
{
	c->node->batch = c;
	c->h->batching = 1;
}

static void
h1client_attach(struct h1client_conn *c, struct h1client_req *r)
{
	c->req = r;
	r->conn = c;
	r->sent = 0;
	r->head_seen = 0;
	c->state = H1CLIENT_BUSY;
	c->off = c->dec = c->len = 0;
	c->chunk_done = c->extra = c->orphaned = c->closing = 0;
}

/* C finished an answer and may carry another: the first waiter gets it,
 * else the pool. */
static void
h1client_conn_release(struct h1client_conn *c)
{
	struct h1client *h = c->h;
	struct h1client_node *n = c->node;
	struct h1client_req *w;

	c->reused = 1;
	if (c->writing)
		h1client_watch(c, EV_READ);
	if ((w = n->wq_head) != NULL) {
		h1client_unqueue(h, w);
		h1client_attach(c, w);
		if (h1client_pipelinable(h, n, w)) {
			/* the waiters behind it join it, as far as they may */
			while ((w = n->wq_head) != NULL && c->npipe + 1 < h->depth && h1client_pipelinable(h, n, w)) {
				h1client_unqueue(h, w);
				h1client_pipe_add(c, w);
			}
			h1client_batch_open(c);
		}
		h1client_send_soon(c);
		return;
	}
	c->state = H1CLIENT_IDLE;
	c->next = n->idle;
	if (c->next != NULL)
		c->next->prevp = &c->next;
	c->prevp = &n->idle;
	n->idle = c;
}

static void h1client_on_io(struct ev_loop *loop, ev_io *w, int revents);

static struct h1client_conn *
h1client_conn_open(struct h1client *h, struct h1client_node *n)
{
	struct h1client_conn *c;
	int one = 1, fd;

	if ((fd = socket(n->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&n->addr, n->addrlen) != 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->buf = malloc(H1CLIENT_BUF)) == NULL) {
		free(c);
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	c->h = h;
	c->node = n;
	c->fd = fd;
	c->state = H1CLIENT_CONNECTING;
	ev_io_init(&c->io, h1client_on_io, fd, EV_WRITE);
	c->io.data = c;
	ev_io_start(h->loop, &c->io);
	c->writing = 1;
	n->nconns++;
	return c;
}

/* Gives R a connection to its node: a pooled one unless FRESH, else a new
 * one if the cap allows, else a place in the queue. */
static void
h1client_go(struct h1client *h, struct h1client_req *r, int fresh)
{
	struct h1client_node *n = h->nodes[r->node];
	struct h1client_conn *c;
	int pipe = !fresh && h1client_pipelinable(h, n, r);

	if (pipe && (c = n->batch) != NULL && c->npipe + 1 < h->depth) {
		h1client_pipe_add(c, r);
		h1client_timer_at(h, r, r->deadline);
		return;
	}
	if (!fresh && (c = n->idle) != NULL) {
		n->idle = c->next;
		if (c->next != NULL)
			c->next->prevp = &n->idle;
		c->next = NULL;
		c->prevp = NULL;
		h1client_attach(c, r);
		h1client_timer_at(h, r, r->deadline);
		if (pipe) {
			h1client_batch_open(c); /* the turn's next ones join it; all go at its end */
			h1client_send_soon(c);
		} else {
			h1client_conn_send(c);
		}
		return;
	}
	if (n->nconns >= h->max_conns) {
		h1client_enqueue(h, r);
		h1client_timer_at(h, r, r->deadline);
		return;
	}
	if ((c = h1client_conn_open(h, n)) == NULL) {
		log_debug("upstream connect: %s", strerror(errno));
		h1client_fail_later(h, r, H1CLIENT_REFUSED, "cannot connect");
		return;
	}
	h1client_attach(c, r);
	c->state = H1CLIENT_CONNECTING;
	if (pipe)
		h1client_batch_open(c); /* all go once it is connected */
	h1client_timer_at(h, r,
	                  ev_now(h->loop) + h->connect_timeout < r->deadline ? ev_now(h->loop) + h->connect_timeout
	                                                                     : r->deadline);
}

/* The node closed a reused connection under R before answering: once, R
 * goes again on a fresh connection, if it may be sent twice. */
static int
h1client_stale(struct h1client *h, struct h1client_conn *c, struct h1client_req *r)
{
	if (!c->reused || r->head_seen || c->len > 0 || !r->idempotent || r->stale_retried)
		return 0;
	log_debug("upstream keep-alive connection closed by the node; request sent again");
	r->stale_retried = 1;
	c->req = NULL;
	r->conn = NULL;
	h1client_conn_close(c, 0); /* its slot is ours, not the queue's */
	h1client_go(h, r, 1);
	return 1;
}

/* Whether C has bytes of its requests still to write (none of those
 * behind its first one once one of them left: C closes after that one). */
static int
h1client_unsent(const struct h1client_conn *c)
{
	const struct h1client_req *r = c->req;

	if (r->sent < r->head_len + r->body_len)
		return 1;
	if (c->orphaned || c->npipe == 0)
		return 0;
	r = c->pipe[c->npipe - 1]; /* written in order: the last one tells */
	return r->sent < r->head_len + r->body_len;
}

/* Writes what is left of C's requests, in one call.  -1 when C is no
 * longer its first request's (the send failed; the request went again on
 * another connection, or fails later, and so did the ones behind it). */
static int
h1client_conn_send(struct h1client_conn *c)
{
	struct h1client_req *r, *rs[H1CLIENT_PIPE_MAX];
	struct h1client *h = c->h;
	struct iovec iov[2 * H1CLIENT_PIPE_MAX];
	struct msghdr msg;
	unsigned k = 0, last = c->orphaned ? 0 : c->npipe;
	int n = 0;
	ssize_t rc;

	for (unsigned i = 0; i <= last; i++) {
		r = i == 0 ? c->req : c->pipe[i - 1];
		if (r->sent >= r->head_len + r->body_len)
			continue;
		rs[k++] = r;
		if (r->sent < r->head_len) {
			iov[n].iov_base = r->head + r->sent;
			iov[n++].iov_len = r->head_len - r->sent;
		}
		if (r->body_len > 0) {
			size_t skip = r->sent > r->head_len ? r->sent - r->head_len : 0;
			iov[n].iov_base = (char *)(uintptr_t)(r->body + skip);
			iov[n++].iov_len = r->body_len - skip;
		}
	}
	if (n == 0) {
		h1client_watch(c, EV_READ);
		return 0;
	}
	/* One buffer (a request without a body, the usual case): send(), which
	 * the kernel takes as it is, instead of sendmsg(), whose msghdr and
	 * iovec it copies in and checks first (bench/PROFILE.md: 1.7 % of a
	 * worker's CPU under h2load, copy_msghdr_from_user and import_iovec). */
	if (n == 1) {
		do
			rc = send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
		while (rc < 0 && errno == EINTR);
	} else {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)n;
		do
			rc = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		while (rc < 0 && errno == EINTR);
	}
	if (rc < 0 && errno != EAGAIN) {
		r = c->req;
		if (!h1client_stale(h, c, r))
			h1client_fail_later(h, r, H1CLIENT_REFUSED, "send failed");
		return -1;
	}
	for (unsigned i = 0; i < k && rc > 0; i++) {
		size_t want = rs[i]->head_len + rs[i]->body_len - rs[i]->sent;
		size_t took = (size_t)rc < want ? (size_t)rc : want;
		rs[i]->sent += took;
		rc -= (ssize_t)took;
	}
	h1client_watch(c, h1client_unsent(c) ? EV_READ | EV_WRITE : EV_READ);
	return 0;
}

/* A request that waited for a connection (every connection of its node
 * busy: the node is the bottleneck) goes out at the end of the loop turn
 * in which an answer freed one, together with the turn's other such
 * requests, not one by one between the turn's other work (the answers it
 * reads, the heads it parses): the node finds them together, and its
 * answers come back together, so the node and this worker each sleep and
 * are woken less often a request (bench/PROFILE.md: less CPU a request,
 * the two together, under h2load -c16 -m10).  They leave in the order they
 * got their connections, the queue's.  A request that finds an idle
 * connection goes at once, as before: nothing waits when the node has room
 * (unless it may be pipelined: then the turn's batch goes here too).  All
 * is sent within the turn, before the loop polls.  The sender is a prepare
 * watcher of the lowest priority, always started: it runs after the
 * bridge's, whose h2o work can free connections too, in the same pass (a
 * watcher started inside that pass would wait for the next turn, after
 * the poll). */
static void
h1client_send_soon(struct h1client_conn *c)
{
	struct h1client *h = c->h;

	if (c->sprevp != NULL)
		return;
	c->snext = NULL;
	c->sprevp = h->sendq_tail;
	*h->sendq_tail = c;
	h->sendq_tail = &c->snext;
}

static void
h1client_unsend(struct h1client_conn *c)
{
	if (c->sprevp == NULL)
		return;
	*c->sprevp = c->snext;
	if (c->snext != NULL)
		c->snext->sprevp = c->sprevp;
	else
		c->h->sendq_tail = c->sprevp;
	c->snext = NULL;
	c->sprevp = NULL;
}

static void
h1client_on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct h1client *h = w->data;
	struct h1client_conn *c;

	(void)loop;
	(void)revents;
	while ((c = h->sendq) != NULL) {
		h1client_unsend(c);
		if (c->req != NULL && c->state == H1CLIENT_BUSY && h1client_unsent(c))
			h1client_conn_send(c); /* a failure goes elsewhere or fails later: no callback here */
	}
	if (h->batching) {
		/* the turn is over: its batches are closed */
		for (size_t i = 0; i < h->nnodes; i++)
			h->nodes[i]->batch = NULL;
		h->batching = 0;
	}
}

/*
 * Answers.
 */

/* N closed a new connection after the first answer of its line: for
 * nopipe_for, one request a connection. */
static void
h1client_nopipe(struct h1client *h, struct h1client_node *n)
{
	n->nopipe_until = ev_now(h->loop) + h->nopipe_for;
	if (!n->nopipe_said) {
		n->nopipe_said = 1;
		log_warnx("upstream node %.*s closed a new connection after the first answer of its line: one request"
		          " a connection to it for %gs (node_backoff_max), then pipelining again (said once a worker)",
		          (int)n->host_len, n->host, h->nopipe_for);
	}
}

/* The answer is complete: R ends, and C goes on with the next request in
 * its line (NEXT: the bytes after R's answer are the start of that one's),
 * or goes back to the pool, or closes (STOP). */
static int
h1client_complete(struct h1client *h, struct h1client_conn *c, struct h1client_req *r)
{
	int whole = r->sent == r->head_len + r->body_len;
	int reuse = c->keepalive && !c->extra && c->off == c->len && whole && c->npipe == 0;

	/* the timer keeps running (lazy: see h1client_timer_at) */
	r->active = 0;
	c->req = NULL;
	r->conn = NULL;
	if (!c->keepalive) {
		c->closing = 1; /* the ones behind were not served */
		if (!c->reused && c->npipe > 0)
			h1client_nopipe(h, c->node); /* a node that serves one request a connection */
	}
	if (c->npipe > 0 && c->keepalive && whole && !c->orphaned) {
		c->req = c->pipe[0];
		memmove(&c->pipe[0], &c->pipe[1], (c->npipe - 1) * sizeof(c->pipe[0]));
		c->npipe--;
		c->reused = 1;
		c->chunk_done = c->extra = 0;
		c->dec = c->off;
		c->dispatching = 1;
		r->cb->on_done(r->arg, H1CLIENT_OK, NULL);
		c->dispatching = 0;
		if (c->doomed) {
			h1client_conn_close(c, 1);
			return H1CLIENT_STOP;
		}
		return H1CLIENT_NEXT;
	}
	if (reuse)
		h1client_conn_release(c);
	else
		h1client_conn_close(c, 1);
	r->cb->on_done(r->arg, H1CLIENT_OK, NULL);
	return H1CLIENT_STOP;
}

/* Hands buf[off..dec) to the caller. */
static int
h1client_deliver(struct h1client *h, struct h1client_conn *c, struct h1client_req *r)
{
	int rc;

	if (c->dec == c->off)
		return H1CLIENT_MORE;
	c->dispatching = 1;
	rc = r->cb->on_body(r->arg, c->buf + c->off, c->dec - c->off);
	c->dispatching = 0;
	if (c->doomed) {
		h1client_conn_close(c, 1);
		return H1CLIENT_STOP;
	}
	if (rc != 0) {
		r->paused = 1;
		ev_io_stop(h->loop, &c->io);
		return H1CLIENT_PAUSED;
	}
	if (c->body == H1RESP_BODY_LENGTH)
		c->left -= c->dec - c->off;
	c->off = c->dec;
	return H1CLIENT_MORE;
}

/* Makes what is in the buffer progress: the head, then the body.  STOP
 * when R ended (C may be gone), PAUSED, or MORE bytes are needed. */
static int
h1client_process(struct h1client *h, struct h1client_conn *c, struct h1client_req *r)
{
	struct h1resp_head head;
	const char *why;
	long n;
	int rc;

	while (!r->head_seen) {
		if ((n = h1resp_parse_head_memo(&c->node->memo, c->buf + c->off, c->len - c->off, &head, &why)) < 0) {
			log_warnx("upstream answer: %s", why);
			h1client_fail(h, r, H1CLIENT_BAD_ANSWER, why);
			return H1CLIENT_STOP;
		}
		if (n == 0)
			return H1CLIENT_MORE;
		c->off += (size_t)n;
		c->dec = c->off;
		if (head.status == 101) {
			h1client_fail(h, r, H1CLIENT_BAD_ANSWER, "unexpected 101");
			return H1CLIENT_STOP;
		}
		if (head.status < 200)
			continue; /* 100 Continue and the like: the answer follows */
		r->head_seen = 1;
		c->body = h1resp_body_kind(&head, r->head_request);
		c->keepalive = h1resp_keepalive(&head, r->head_request) != 0;
		c->left = head.content_length > 0 ? (uint64_t)head.content_length : 0;
		h1resp_chunked_init(&c->chunked);
		c->dispatching = 1;
		r->cb->on_head(r->arg, &head);
		c->dispatching = 0;
		if (c->doomed) {
			h1client_conn_close(c, 1);
			return H1CLIENT_STOP;
		}
	}
	switch (c->body) {
	case H1RESP_BODY_NONE: c->extra = c->off != c->len; return h1client_complete(h, c, r);
	case H1RESP_BODY_LENGTH: c->dec = c->len - c->off > c->left ? c->off + (size_t)c->left : c->len; break;
	case H1RESP_BODY_CHUNKED:
		if (!c->chunk_done && c->dec < c->len) {
			size_t out, used;
			if ((rc = h1resp_chunked_decode(&c->chunked, c->buf + c->dec, c->len - c->dec, &out, &used,
			                                &why)) < 0) {
				log_warnx("upstream answer: %s", why);
				h1client_fail(h, r, H1CLIENT_BAD_ANSWER, why);
				return H1CLIENT_STOP;
			}
			if (rc == 1) {
				/* what follows the body (the next answer in the line)
				 * moves down to right after the decoded bytes */
				size_t rest = c->len - c->dec - used;
				c->chunk_done = 1;
				c->extra = rest > 0;
				memmove(c->buf + c->dec + out, c->buf + c->dec + used, rest);
				c->len = c->dec + out + rest;
			} else {
				c->len = c->dec + out;
			}
			c->dec += out;
		}
		break;
	case H1RESP_BODY_CLOSE: c->dec = c->len; break;
	}
	if ((rc = h1client_deliver(h, c, r)) != H1CLIENT_MORE)
		return rc;
	if (c->off == c->len)
		c->off = c->dec = c->len = 0;
	if ((c->body == H1RESP_BODY_LENGTH && c->left == 0) || (c->body == H1RESP_BODY_CHUNKED && c->chunk_done)) {
		if (c->body == H1RESP_BODY_LENGTH)
			c->extra = c->len != c->off;
		return h1client_complete(h, c, r);
	}
	return H1CLIENT_MORE;
}

/* The node closed C (or reset it, ERR) with R attached. */
static void
h1client_eof(struct h1client *h, struct h1client_conn *c, struct h1client_req *r, int err)
{
	if (!r->head_seen) {
		if (c->len > 0) {
			h1client_fail(h, r, H1CLIENT_BAD_ANSWER, "incomplete answer head");
			return;
		}
		if (h1client_stale(h, c, r))
			return;
		h1client_fail(h, r, H1CLIENT_REFUSED,
		              err ? "connection reset before an answer" : "connection closed before an answer");
		return;
	}
	if (c->body == H1RESP_BODY_CLOSE) {
		c->keepalive = 0; /* the node ended this answer by closing: nothing behind it was served */
		h1client_complete(h, c, r);
		return;
	}
	h1client_fail(h, r, H1CLIENT_BROKEN, err ? "connection reset mid-answer" : "connection closed mid-answer");
}

static void
h1client_read(struct h1client *h, struct h1client_conn *c, struct h1client_req *r, int readable)
{
	ssize_t n = 0;
	int eof = 0, err = 0, rc;

	if (readable) {
		if (c->off > 0 && H1CLIENT_BUF - c->len < H1CLIENT_COMPACT) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->dec -= c->off;
			c->len -= c->off;
			c->off = 0;
		}
		if (c->len < H1CLIENT_BUF) {
			do
				n = recv(c->fd, c->buf + c->len, H1CLIENT_BUF - c->len, 0);
			while (n < 0 && errno == EINTR);
			if (n > 0)
				c->len += (size_t)n;
			else if (n == 0)
				eof = 1;
			else if (errno != EAGAIN)
				eof = err = errno;
		}
	}
	while ((rc = h1client_process(h, c, r)) == H1CLIENT_NEXT)
		r = c->req; /* the next answer in the line, from the bytes after the last */
	if (rc != H1CLIENT_MORE)
		return;
	if (eof)
		h1client_eof(h, c, r, err);
}

static void
h1client_connected(struct h1client *h, struct h1client_conn *c)
{
	struct h1client_req *r = c->req;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == EINPROGRESS)
		return;
	if (err != 0) {
		log_debug("upstream connect: %s", strerror(err));
		h1client_fail(h, r, H1CLIENT_REFUSED, "connection refused");
		return;
	}
	c->state = H1CLIENT_BUSY;
	h1client_timer_at(h, r, r->deadline);
	h1client_conn_send(c);
}

static void
h1client_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct h1client_conn *c = w->data;
	struct h1client *h = c->h;
	struct h1client_req *r = c->req;

	if (r == NULL) {
		/* pooled, and readable: closed by the node, or garbage */
		h1client_conn_close(c, 1);
		return;
	}
	if (c->state == H1CLIENT_CONNECTING) {
		h1client_connected(h, c);
		return;
	}
	if ((revents & EV_WRITE) && h1client_unsent(c)) {
		if (h1client_conn_send(c) != 0)
			return; /* it failed, or went again elsewhere */
	}
	if (revents & (EV_READ | EV_CUSTOM))
		h1client_read(h, c, r, (revents & EV_READ) != 0);
}

/*
 * The API.
 */

struct h1client *
h1client_new(struct ev_loop *loop, unsigned max_conns_per_node, unsigned depth, uint64_t connect_timeout_ms,
             uint64_t request_timeout_ms, uint64_t nopipe_ms)
{
	struct h1client *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->loop = loop;
	ev_prepare_init(&h->flush, h1client_on_flush);
	ev_set_priority(&h->flush, EV_MINPRI);
	h->flush.data = h;
	h->sendq_tail = &h->sendq;
	ev_prepare_start(loop, &h->flush);
	ev_unref(loop); /* the watcher alone keeps no loop running */
	h->max_conns = max_conns_per_node > 0 ? max_conns_per_node : 1;
	h->depth = depth < 1 ? 1 : depth > H1CLIENT_PIPE_MAX ? H1CLIENT_PIPE_MAX : depth;
	h->connect_timeout = (double)connect_timeout_ms / 1000.0;
	h->request_timeout = (double)request_timeout_ms / 1000.0;
	h->nopipe_for = (double)nopipe_ms / 1000.0;
	return h;
}

void
h1client_free(struct h1client *h)
{
	if (h == NULL)
		return;
	ev_ref(h->loop);
	ev_prepare_stop(h->loop, &h->flush);
	for (size_t i = 0; i < h->nnodes; i++) {
		struct h1client_node *n = h->nodes[i];
		while (n->idle != NULL)
			h1client_conn_close(n->idle, 0);
		free(n->host);
		free(n->prefix);
		free(n);
	}
	free(h->nodes);
	free(h);
}

long
h1client_node_add(struct h1client *h, const struct sockaddr *addr, socklen_t addrlen, const char *host,
                  const char *prefix)
{
	struct h1client_node *n, **p;

	if (addrlen > sizeof(n->addr) || (n = calloc(1, sizeof(*n))) == NULL)
		return -1;
	if ((p = realloc(h->nodes, (h->nnodes + 1) * sizeof(*p))) == NULL) {
		free(n);
		return -1;
	}
	h->nodes = p;
	memcpy(&n->addr, addr, addrlen);
	n->addrlen = addrlen;
	n->host = strdup(host);
	n->prefix = strdup(prefix);
	if (n->host == NULL || n->prefix == NULL) {
		free(n->host);
		free(n->prefix);
		free(n);
		return -1;
	}
	n->host_len = strlen(host);
	n->prefix_len = strlen(prefix);
	n->wq_tail = &n->wq_head;
	h->nodes[h->nnodes] = n;
	return (long)h->nnodes++;
}

void
h1client_req_init(struct h1client_req *r)
{
	memset(r, 0, sizeof(*r));
	ev_init(&r->timer, h1client_on_timer);
	r->timer.data = r;
}

void
h1client_req_dispose(struct h1client_req *r)
{
	if (ev_is_active(&r->timer))
		ev_timer_stop(r->h->loop, &r->timer); /* lazy, left running by the last request */
	free(r->head);
	r->head = NULL;
	r->head_cap = 0;
}

static int
h1client_put(struct h1client_req *r, const char *s, size_t len)
{
	if (r->head_len + len > r->head_cap) {
		size_t cap = r->head_cap ? r->head_cap : 512;
		char *p;
		while (cap < r->head_len + len)
			cap *= 2;
		if ((p = realloc(r->head, cap)) == NULL)
			return -1;
		r->head = p;
		r->head_cap = cap;
	}
	if (s != NULL) /* NULL: LEN bytes reserved, for the caller to fill */
		memcpy(r->head + r->head_len, s, len);
	r->head_len += len;
	return 0;
}

int
h1client_start(struct h1client *h, struct h1client_req *r, size_t node, const char *method, const char *path,
               const char *headers, size_t headers_len, const char *body, size_t body_len, int idempotent,
               const struct h1client_callbacks *cb, void *arg)
{
	struct h1client_node *n = h->nodes[node];
	int post = method[0] == 'P' && strcmp(method, "POST") == 0; /* GET: no call */
	char num[32];
	size_t plen = strlen(path);

	/* no space or control byte may split the request line (bytes above
	 * 0x7f go as they came, as libcurl sends them) */
	for (size_t i = 0; i < plen; i++)
		if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] == 0x7f)
			return -1;
	/* the request line, Host and HEADERS in one go: room for all, then
	 * copies (h1client_put for each piece was a capacity check a piece) */
	{
		size_t mlen = strlen(method), hlen = n->host_len;
		size_t need = mlen + 1 + n->prefix_len + plen + 17 + hlen + 2 + headers_len;
		char *d;

		r->head_len = 0;
		if (h1client_put(r, NULL, need) != 0)
			return -1;
		d = r->head;
		memcpy(d, method, mlen);
		d += mlen;
		*d++ = ' ';
		if (n->prefix_len != 0)
			memcpy(d, n->prefix, n->prefix_len);
		d += n->prefix_len;
		memcpy(d, path, plen);
		d += plen;
		memcpy(d, " HTTP/1.1\r\nHost: ", 17);
		d += 17;
		memcpy(d, n->host, hlen);
		d += hlen;
		*d++ = '\r';
		*d++ = '\n';
		if (headers_len != 0)
			memcpy(d, headers, headers_len);
	}
	if (body != NULL || post) {
		int k = snprintf(num, sizeof(num), "Content-Length: %zu\r\n", body != NULL ? body_len : 0);
		if (h1client_put(r, num, (size_t)k) != 0)
			return -1;
	}
	if (h1client_put(r, "\r\n", 2) != 0)
		return -1;
	r->h = h;
	r->cb = cb;
	r->arg = arg;
	r->node = node;
	r->conn = NULL;
	r->body = body;
	r->body_len = body != NULL ? body_len : 0;
	r->sent = 0;
	r->active = 1;
	r->head_request = method[0] == 'H' && strcmp(method, "HEAD") == 0;
	r->idempotent = idempotent != 0;
	r->stale_retried = r->paused = r->head_seen = 0;
	r->deferred = H1CLIENT_OK;
	r->deferred_why = NULL;
	r->qnext = NULL;
	r->qprevp = NULL;
	r->deadline = ev_now(h->loop) + h->request_timeout;
	h1client_go(h, r, 0);
	return 0;
}

void
h1client_cancel(struct h1client_req *r)
{
	if (!r->active)
		return;
	h1client_detach(r->h, r);
}

void
h1client_resume(struct h1client_req *r)
{
	struct h1client_conn *c = r->conn;

	if (!r->active || !r->paused || c == NULL)
		return;
	r->paused = 0;
	ev_io_start(r->h->loop, &c->io);
	/* The held bytes go at once, as libcurl's curl_easy_pause(CONT) does:
	 * the caller resumes from h2o's proceed callback, and data sent from
	 * there is written inside h2o's own loop run.  Sent from a later libev
	 * callback instead, a write that completes at once can leave libh2o
	 * 2.2.5 polling for writability with no write callback set, which its
	 * write_pending() asserts on.  Anything else (the end of the answer,
	 * more bytes) is found from the loop, never from inside the caller. */
	if (h1client_deliver(r->h, c, r) == H1CLIENT_MORE)
		ev_feed_event(r->h->loop, &c->io, EV_CUSTOM);
}

/*
 * The transport (worker/transport.h).
 */

#define H1CLIENT_KEEP 16 /* attempts kept for reuse when the worker is idle */

struct h1client_transport;

/* One attempt (the transport_req the pool sees). */
struct h1client_attempt {
	struct h1client_req req;
	struct h1client_transport *t;
	const struct transport_callbacks *cb;
	void *arg;
	char content_type[128];
	char content_encoding[32];
	char elastic_product[64];
	unsigned in_cb : 1;                     /* calling the pool */
	unsigned cancelled : 1;                 /* by the pool, from inside that call: put away when it returns */
	struct h1client_attempt *next, **prevp; /* the free list, or the active list */
};

struct h1client_transport {
	struct transport base; /* first */
	struct h1client *h;
	struct h1client_attempt *free_attempts, *active;
};

static void
h1client_attempt_put(struct h1client_attempt *a)
{
	struct h1client_transport *t = a->t;

	if (a->prevp != NULL) {
		*a->prevp = a->next;
		if (a->next != NULL)
			a->next->prevp = a->prevp;
		a->prevp = NULL;
	}
	a->cb = NULL;
	a->arg = NULL;
	a->next = t->free_attempts;
	t->free_attempts = a;
}

static void
h1client_copy(char *dst, size_t dstlen, struct h1resp_str s)
{
	size_t n = s.p == NULL ? 0 : s.len < dstlen ? s.len : dstlen - 1;

	if (n > 0)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static void
h1client_t_head(void *arg, const struct h1resp_head *head)
{
	struct h1client_attempt *a = arg;
	struct transport_head th = {.status = head->status, .content_length = head->content_length};

	h1client_copy(a->content_type, sizeof(a->content_type), head->content_type);
	h1client_copy(a->content_encoding, sizeof(a->content_encoding), head->content_encoding);
	h1client_copy(a->elastic_product, sizeof(a->elastic_product), head->elastic_product);
	th.content_type = a->content_type[0] ? a->content_type : NULL;
	th.content_encoding = a->content_encoding[0] ? a->content_encoding : NULL;
	th.elastic_product = a->elastic_product[0] ? a->elastic_product : NULL;
	a->in_cb = 1;
	a->cb->on_head(a->arg, &th);
	a->in_cb = 0;
	if (a->cancelled)
		h1client_attempt_put(a); /* h1client let go in h1client_cancel */
}

static int
h1client_t_body(void *arg, const char *data, size_t len)
{
	struct h1client_attempt *a = arg;
	int rc;

	a->in_cb = 1;
	rc = a->cb->on_body(a->arg, data, len);
	a->in_cb = 0;
	if (a->cancelled) {
		h1client_attempt_put(a);
		return 0; /* h1client let go in h1client_cancel */
	}
	return rc;
}

static void
h1client_t_done(void *arg, enum h1client_error err, const char *why)
{
	static const enum transport_end map[] = {
	    [H1CLIENT_OK] = TRANSPORT_OK,           [H1CLIENT_REFUSED] = TRANSPORT_CONNECT,
	    [H1CLIENT_TIMEOUT] = TRANSPORT_TIMEOUT, [H1CLIENT_BAD_ANSWER] = TRANSPORT_BAD_ANSWER,
	    [H1CLIENT_BROKEN] = TRANSPORT_CONNECT, /* as libcurl's CURLE_PARTIAL_FILE */
	};
	struct h1client_attempt *a = arg;
	const struct transport_callbacks *cb = a->cb;
	void *cbarg = a->arg;

	h1client_attempt_put(a); /* before: the pool may start its next attempt from on_end */
	cb->on_end(cbarg, map[err], why != NULL ? why : "");
}

static const struct h1client_callbacks h1client_t_callbacks = {h1client_t_head, h1client_t_body, h1client_t_done};

static long
h1client_t_node_add(struct transport *tp, const struct transport_node *node)
{
	struct h1client_transport *t = (struct h1client_transport *)tp;
	const struct parse_node *at = node->at;
	char host[300];
	long i;

	if (node->addr == NULL || strcmp(at->scheme, "http") != 0)
		return -1; /* https:// is libcurl's; a name not resolved at start too */
	/* Host: as in the URL; IPv6 literals in brackets, port 80 implied */
	snprintf(host, sizeof(host), "%s%s%s", strchr(at->host, ':') ? "[" : "", at->host,
	         strchr(at->host, ':') ? "]" : "");
	if (at->port != 80)
		snprintf(host + strlen(host), sizeof(host) - strlen(host), ":%u", at->port);
	i = h1client_node_add(t->h, node->addr, node->addrlen, host, at->path);
	return i >= 0 ? i : -2;
}

static struct transport_req *
h1client_t_start(struct transport *tp, long node, const struct transport_request *rq,
                 const struct transport_callbacks *cb, void *arg)
{
	struct h1client_transport *t = (struct h1client_transport *)tp;
	struct h1client_attempt *a = t->free_attempts;

	if (a != NULL) {
		t->free_attempts = a->next;
	} else {
		if ((a = calloc(1, sizeof(*a))) == NULL)
			return NULL;
		a->t = t;
		h1client_req_init(&a->req);
	}
	a->cb = cb;
	a->arg = arg;
	a->in_cb = a->cancelled = 0;
	a->next = t->active;
	if (a->next != NULL)
		a->next->prevp = &a->next;
	a->prevp = &t->active;
	t->active = a;
	if (h1client_start(t->h, &a->req, (size_t)node, rq->method, rq->path, rq->headers, rq->headers_len, rq->body,
	                   rq->body_len, rq->idempotent, &h1client_t_callbacks, a) != 0) {
		h1client_attempt_put(a);
		return NULL;
	}
	return (struct transport_req *)(void *)a;
}

static void
h1client_t_cancel(struct transport_req *tr)
{
	struct h1client_attempt *a = (struct h1client_attempt *)(void *)tr;

	h1client_cancel(&a->req); /* lets go at once, even from inside its callbacks */
	if (a->in_cb)
		a->cancelled = 1; /* put away when the pool returns */
	else
		h1client_attempt_put(a);
}

static void
h1client_t_resume(struct transport_req *tr)
{
	h1client_resume(&((struct h1client_attempt *)(void *)tr)->req);
}

/* Frees the attempts kept for reuse beyond the first KEEP. */
static void
h1client_t_free_attempts(struct h1client_transport *t, size_t keep)
{
	struct h1client_attempt **ap = &t->free_attempts, *a;

	for (size_t n = 0; *ap != NULL && n < keep; n++)
		ap = &(*ap)->next;
	while ((a = *ap) != NULL) {
		*ap = a->next;
		h1client_req_dispose(&a->req);
		free(a);
	}
}

static void
h1client_t_trim(struct transport *tp)
{
	h1client_t_free_attempts((struct h1client_transport *)tp, H1CLIENT_KEEP);
}

static void
h1client_t_free(struct transport *tp)
{
	struct h1client_transport *t = (struct h1client_transport *)tp;
	struct h1client_attempt *a, *next;

	if (t == NULL)
		return;
	/* attempts still waiting for a connection, or in a line behind
	 * another's, first, so that closing the others' connections does not
	 * open new ones for them */
	for (a = t->active; a != NULL; a = next) {
		next = a->next;
		if (a->req.conn == NULL || a->req.conn->req != &a->req) {
			h1client_cancel(&a->req);
			h1client_attempt_put(a);
		}
	}
	while ((a = t->active) != NULL) {
		h1client_cancel(&a->req);
		h1client_attempt_put(a);
	}
	h1client_t_free_attempts(t, 0);
	h1client_free(t->h);
	free(t);
}

static const struct transport_ops h1client_ops = {
    .name = "native",
    .node_add = h1client_t_node_add,
    .start = h1client_t_start,
    .cancel = h1client_t_cancel,
    .resume = h1client_t_resume,
    .trim = h1client_t_trim,
    .free = h1client_t_free,
};

struct transport *
h1client_transport_new(struct ev_loop *loop, unsigned max_conns_per_node, unsigned depth, uint64_t connect_timeout_ms,
                       uint64_t request_timeout_ms, uint64_t nopipe_ms)
{
	struct h1client_transport *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	if ((t->h = h1client_new(loop, max_conns_per_node, depth, connect_timeout_ms, request_timeout_ms, nopipe_ms)) ==
	    NULL) {
		free(t);
		return NULL;
	}
	t->base.ops = &h1client_ops;
	return &t->base;
}
