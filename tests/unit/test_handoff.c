/*
 * test_handoff.c - worker/handoff.c in one process: several workers'
 * hand-off states on one loop and one scoreboard, real datagram pairs,
 * real descriptors.  Who is a target (least loaded, slack, churn,
 * generation, not accepting), what arrives (the descriptor itself, the
 * listener, the client's address), taking back from a peer whose loop
 * does not turn, and a draining worker passing its queue on.
 */
#include <criterion/criterion.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/metrics.h"
#include "lib/scoreboard.h"
#include "worker/handoff.h"

#define NSLOTS 3

struct got {
	int n;
	int fd;
	unsigned listener;
	struct sockaddr_storage addr;
	socklen_t len;
};

static void
record(void *arg, int fd, unsigned listener, const struct sockaddr *addr, socklen_t len)
{
	struct got *g = arg;

	g->n++;
	if (g->fd >= 0)
		close(g->fd);
	g->fd = fd;
	g->listener = listener;
	g->len = len;
	if (addr != NULL)
		memcpy(&g->addr, addr, len);
}

struct rig {
	struct ev_loop *loop;
	struct scoreboard *sb;
	int pairs[NSLOTS][2];
	struct metrics_shard *counts[NSLOTS];
	int slot[NSLOTS];
};

static void
rig_up(struct rig *r)
{
	r->loop = ev_loop_new(EVFLAG_AUTO);
	r->sb = scoreboard_create(8);
	cr_assert_not_null(r->loop);
	cr_assert_not_null(r->sb);
	for (int i = 0; i < NSLOTS; i++) {
		r->slot[i] = scoreboard_claim(r->sb, (unsigned)i + 1, 1);
		cr_assert_eq(r->slot[i], i);
		scoreboard_bind(r->sb, r->slot[i], 1000 + i);
		cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, r->pairs[i]), 0);
		r->counts[i] = aligned_alloc(128, sizeof(struct metrics_shard));
		memset(r->counts[i], 0, sizeof(struct metrics_shard));
		r->sb->slots[i].accepting = 1;
	}
}

static void
rig_down(struct rig *r)
{
	for (int i = 0; i < NSLOTS; i++) {
		close(r->pairs[i][0]);
		close(r->pairs[i][1]);
		free(r->counts[i]);
	}
	scoreboard_destroy(r->sb);
	ev_loop_destroy(r->loop);
}

static void
init(struct rig *r, struct handoff *h, int i, uint32_t generation, struct got *g)
{
	memset(g, 0, sizeof(*g));
	g->fd = -1;
	/* the listeners as one generation numbers them: the same sockets
	 * unless a test gives another generation other ones */
	handoff_init(h, r->loop, r->sb, &r->sb->slots[i], generation, 2, generation == 3 ? 33 : 7,
		     (const int(*)[2])r->pairs, NSLOTS, r->counts[i], record, g);
}

/* a connected stream pair: [0] stands for the accepted socket */
static void
conn(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void
on_stop(struct ev_loop *loop, ev_timer *t, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

/* runs the loop for SECONDS */
static void
run_for(struct rig *r, double seconds)
{
	ev_timer t;

	ev_timer_init(&t, on_stop, seconds, 0.0);
	ev_timer_start(r->loop, &t);
	ev_run(r->loop, 0);
	ev_timer_stop(r->loop, &t);
}

Test(handoff, the_least_loaded_peer_gets_the_descriptor_listener_and_address)
{
	struct rig r;
	struct handoff a, c;
	struct got ga, gc;
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(1234), .sin_addr = {htonl(0x0a000007)}};
	int sv[2];
	char buf[8];

	rig_up(&r);
	init(&r, &a, 0, 1, &ga);
	init(&r, &c, 2, 1, &gc);
	r.sb->slots[1].conns = 5;
	r.sb->slots[2].conns = 1;
	conn(sv);
	cr_assert_eq(handoff_offer(&a, 10, sv[0], 1, (struct sockaddr *)&peer, sizeof(peer)), 1);
	cr_assert_eq(r.sb->slots[2].handed_in, 1, "counted in the target's slot");
	cr_assert_eq(r.counts[0]->conn_handed_off, 1);
	run_for(&r, 0.05);
	cr_assert_eq(gc.n, 1, "served by the receiver");
	cr_assert_eq(ga.n, 0);
	cr_assert_eq(gc.listener, 1);
	cr_assert_eq(gc.len, sizeof(peer));
	cr_assert_eq(((struct sockaddr_in *)&gc.addr)->sin_port, htons(1234));
	cr_assert_eq(r.sb->slots[2].handed_taken, 1);
	cr_assert_eq(r.counts[2]->conn_handoff_received, 1);
	/* the very connection: what the client writes, the receiver reads */
	cr_assert_eq(write(sv[1], "ping", 4), 4);
	cr_assert_eq(read(gc.fd, buf, sizeof(buf)), 4);
	cr_assert_eq(memcmp(buf, "ping", 4), 0);
	close(gc.fd);
	close(sv[1]);
	handoff_leave(&a);
	handoff_leave(&c);
	rig_down(&r);
}

Test(handoff, kept_within_the_slack_when_churning_and_with_no_target)
{
	struct rig r;
	struct handoff a;
	struct got ga;
	int sv[2];

	rig_up(&r);
	init(&r, &a, 0, 1, &ga);
	r.sb->slots[1].conns = 4;
	r.sb->slots[2].conns = 4;
	conn(sv);
	cr_assert_eq(handoff_offer(&a, 6, sv[0], 0, NULL, 0), 0, "6 <= 4 + 2: within the slack");
	cr_assert_eq(handoff_offer(&a, 7, sv[0], 0, NULL, 0), 1, "7 > 4 + 2");
	conn(sv);
	r.sb->slots[1].accepting = 0; /* draining, or at max_connections */
	r.sb->slots[2].generation = 2; /* another generation */
	cr_assert_eq(handoff_offer(&a, 50, sv[0], 0, NULL, 0), 0, "no target");
	r.sb->slots[1].accepting = 1;
	r.sb->slots[2].generation = 1;
	/* 20 connections closed in this window, 10 held: churning */
	for (int i = 0; i < 20; i++)
		handoff_closed(&a);
	cr_assert_eq(handoff_offer(&a, 10, sv[0], 0, NULL, 0), 0, "churning: kept");
	cr_assert_eq(handoff_offer(&a, 21, sv[0], 0, NULL, 0), 1, "more held than closed: spread");
	handoff_leave(&a);
	rig_down(&r);
}

Test(handoff, a_peer_whose_loop_does_not_turn_has_its_queue_taken_back)
{
	struct rig r;
	struct handoff a;
	struct got ga;
	int sv[2];

	rig_up(&r);
	init(&r, &a, 0, 1, &ga); /* slots 1 and 2 read nothing: "stopped" */
	r.sb->slots[1].conns = 9;
	conn(sv);
	cr_assert_eq(handoff_offer(&a, 10, sv[0], 1, NULL, 0), 1);
	run_for(&r, 0.35);
	cr_assert_eq(ga.n, 1, "taken back and served by the sender");
	cr_assert_eq(ga.listener, 1);
	cr_assert_eq(r.counts[0]->conn_taken_back, 1);
	cr_assert_eq(r.sb->slots[2].handed_taken, 1);
	close(ga.fd);
	ga.fd = -1;
	close(sv[1]);
	conn(sv);
	r.sb->slots[1].conns = 29;
	cr_assert_eq(handoff_offer(&a, 30, sv[0], 1, NULL, 0), 0, "suspect while its loop stands still (slot 1 within the slack)");
	r.sb->slots[2].loops++; /* it runs again */
	cr_assert_eq(handoff_offer(&a, 30, sv[0], 1, NULL, 0), 1, "a target again");
	close(sv[1]);
	handoff_leave(&a);
	rig_down(&r);
}

Test(handoff, a_new_worker_in_a_suspect_slot_is_a_target)
{
	struct rig r;
	struct handoff a;
	struct got ga;
	int sv[2];

	rig_up(&r);
	init(&r, &a, 0, 1, &ga); /* slots 1 and 2 read nothing: "stopped" */
	r.sb->slots[1].conns = 29;
	conn(sv);
	cr_assert_eq(handoff_offer(&a, 30, sv[0], 1, NULL, 0), 1);
	run_for(&r, 0.35);
	cr_assert_eq(ga.n, 1, "taken back from slot 2");
	close(ga.fd);
	ga.fd = -1;
	close(sv[1]);
	/* its worker goes (TTOU), a new one takes the slot (TTIN): its loop
	 * count starts from 0 again, the count slot 2 was marked at */
	scoreboard_release(r.sb, 2);
	cr_assert_eq(scoreboard_claim(r.sb, 3, 1), 2);
	scoreboard_bind(r.sb, 2, 2002);
	r.sb->slots[2].accepting = 1;
	cr_assert_eq(r.sb->slots[2].loops, 0);
	conn(sv);
	cr_assert_eq(handoff_offer(&a, 30, sv[0], 1, NULL, 0), 1, "the new worker is no suspect");
	close(sv[1]);
	handoff_leave(&a);
	rig_down(&r);
}

Test(handoff, a_datagram_naming_other_listening_sockets_is_closed_not_served)
{
	struct rig r;
	struct handoff a, c;
	struct got ga, gc;
	int sv[2];
	char b;

	rig_up(&r);
	init(&r, &a, 0, 3, &ga); /* sender of generation 3, other listeners ... */
	init(&r, &c, 2, 1, &gc); /* ... to a slot now read by generation 1 */
	r.sb->slots[1].accepting = 0;
	r.sb->slots[2].generation = 3;
	conn(sv);
	cr_assert_eq(handoff_offer(&a, 10, sv[0], 1, NULL, 0), 1);
	run_for(&r, 0.05);
	cr_assert_eq(gc.n, 0);
	cr_assert_eq(recv(sv[1], &b, 1, MSG_DONTWAIT), 0, "every copy closed: the client sees the end");
	close(sv[1]);
	handoff_leave(&a);
	handoff_leave(&c);
	rig_down(&r);
}

Test(handoff, a_datagram_of_another_generation_with_our_listening_sockets_is_served)
{
	struct rig r;
	struct handoff a, c;
	struct got ga, gc;
	int sv[2];

	rig_up(&r);
	init(&r, &a, 0, 2, &ga); /* sender of generation 2 (the same sockets) ... */
	init(&r, &c, 2, 1, &gc); /* ... to a slot now read by generation 1 */
	r.sb->slots[1].accepting = 0;
	r.sb->slots[2].generation = 2;
	conn(sv);
	cr_assert_eq(handoff_offer(&a, 10, sv[0], 1, NULL, 0), 1);
	run_for(&r, 0.05);
	cr_assert_eq(gc.n, 1);
	cr_assert_eq(gc.listener, 1);
	close(gc.fd);
	close(sv[1]);
	handoff_leave(&a);
	handoff_leave(&c);
	rig_down(&r);
}

Test(handoff, a_draining_worker_passes_its_queue_on_to_the_newest_generation)
{
	struct rig r;
	struct handoff a, b, c;
	struct got ga, gb, gc;
	int sv[2], sv2[2];

	rig_up(&r);
	init(&r, &a, 0, 1, &ga);
	init(&r, &b, 1, 1, &gb); /* the one that drains */
	r.sb->slots[2].conns = 9;
	conn(sv);
	cr_assert_eq(handoff_offer(&a, 10, sv[0], 1, NULL, 0), 1, "to slot 1, the least loaded");
	cr_assert_eq(r.sb->slots[1].handed_in, 1);
	/* slot 1 drains before it read it (its slot first says it does not
	 * accept); slot 2 is a newer generation's, busier than slot 0 */
	init(&r, &c, 2, 2, &gc);
	r.sb->slots[2].generation = 2;
	r.sb->slots[2].conns = 9;
	r.sb->slots[1].accepting = 0;
	handoff_drain(&b);
	cr_assert_eq(gb.n, 0, "not served by the draining worker");
	cr_assert_eq(r.sb->slots[2].handed_in, 1, "passed on to the newest generation");
	run_for(&r, 0.05);
	cr_assert_eq(gc.n, 1);
	cr_assert_eq(gc.listener, 1);
	close(gc.fd);
	gc.fd = -1;
	close(sv[1]);
	/* one that raced with the drain: passed on when it arrives; with no
	 * newer generation, to the peer of ours */
	r.sb->slots[2].accepting = 0;
	conn(sv2);
	r.sb->slots[1].accepting = 1; /* as the sender saw it */
	cr_assert_eq(handoff_offer(&a, 10, sv2[0], 0, NULL, 0), 1);
	r.sb->slots[1].accepting = 0;
	run_for(&r, 0.05);
	cr_assert_eq(gb.n, 0);
	cr_assert_eq(ga.n, 1, "back to the only live worker");
	close(ga.fd);
	ga.fd = -1;
	close(sv2[1]);
	/* no live worker at all (a graceful stop): the draining one serves */
	r.sb->slots[0].accepting = 0;
	conn(sv2);
	r.sb->slots[1].accepting = 1;
	cr_assert_eq(handoff_offer(&a, 10, sv2[0], 0, NULL, 0), 1);
	r.sb->slots[1].accepting = 0;
	run_for(&r, 0.05);
	cr_assert_eq(gb.n, 1, "served where it is rather than lost");
	close(gb.fd);
	close(sv2[1]);
	handoff_leave(&a);
	handoff_leave(&b);
	handoff_leave(&c);
	rig_down(&r);
}

Test(handoff, what_was_queued_to_a_worker_that_died_is_taken_back)
{
	struct rig r;
	struct handoff a;
	struct got ga;
	int sv[2];

	rig_up(&r);
	init(&r, &a, 0, 1, &ga);
	r.sb->slots[1].accepting = 0;
	conn(sv);
	cr_assert_eq(handoff_offer(&a, 10, sv[0], 0, NULL, 0), 1);
	scoreboard_release(r.sb, 2); /* reaped before it read: its counts are gone */
	run_for(&r, 0.35);
	cr_assert_eq(ga.n, 1, "taken back from the dead worker's queue");
	close(ga.fd);
	close(sv[1]);
	handoff_leave(&a);
	rig_down(&r);
}
