/*
 * h2oepoll.h - libh2o's epoll registrations, kept lazily by esgate.
 *
 * libh2o 2.2.5's epoll backend mirrors every "start/stop reading" of a
 * socket into the kernel at once: its HTTP/1 code stops reading a client
 * socket while it answers and starts again after, which costs an
 * EPOLL_CTL_DEL and an EPOLL_CTL_ADD per keep-alive request.  esgate
 * interposes epoll_ctl() and epoll_wait() (libh2o calls both through the
 * dynamic linker) for h2o's epoll fd only: a registration h2o drops is kept
 * in the kernel until an event shows up that h2o did not ask for, and only
 * then narrowed to what h2o wants (libev's lazy modification).  Every other
 * epoll fd (libev's own) goes straight through.  fcntl() is interposed too,
 * for the O_NONBLOCK h2o sets on sockets accepted non-blocking already.  The correctness argument
 * is in doc/DESIGN.md, section 2.
 */
#ifndef ESGATE_H2OEPOLL_H
#define ESGATE_H2OEPOLL_H

#include <stdint.h>

struct h2oepoll_stats {
	uint64_t ctl;           /* epoll_ctl calls h2o made on its epoll fd */
	uint64_t ctl_kernel;    /* of those and of the narrowing, calls that reached the kernel */
	uint64_t wait;          /* epoll_wait calls h2o made */
	uint64_t dropped;       /* events h2o did not ask for (each narrowed the registration) */
	uint64_t fcntl_skipped; /* h2o's fcntl(F_SETFL, O_NONBLOCK) on sockets that were already */
	uint64_t synth;         /* first reads of accepted sockets handed to h2o without the kernel */
	uint64_t synth_registered; /* of those, registered in the kernel after (h2o read on) */
	uint64_t wait_skipped;  /* h2o's zero-wait epoll_wait answered without the kernel */
};

/* From now on, epoll calls on EPFD (h2o's) are kept lazily.  -1 on
 * allocation failure (logged). */
int h2oepoll_attach(int epfd);
/* FD is a new file (just accepted, or about to be handed to h2o): whatever
 * the table remembers of an earlier file with that number is forgotten.
 * Every fd handed to h2o goes through this first (bridge_socket_create). */
void h2oepoll_forget(int fd);
/* FD was opened non-blocking (accept4 with SOCK_NONBLOCK) and has no other
 * status flag: h2o's fcntl(FD, F_SETFL, O_NONBLOCK) is then answered
 * without a system call, until FD is closed. */
void h2oepoll_nonblocking(int fd);
/* FD was just accepted: h2o's first read registration of it (EPOLLIN
 * alone) does not reach the kernel; h2o is handed EPOLLIN in its next
 * epoll_wait and reads, and only if it still reads after that run is the
 * socket registered (h2oepoll_settle). */
void h2oepoll_fresh(int fd);
/* After every run of h2o's loop: registers in the kernel the sockets of
 * h2oepoll_fresh() that h2o read from in that run and still reads. */
void h2oepoll_settle(void);
/* 1: sockets of h2oepoll_fresh() wait to be handed to h2o (run it). */
int h2oepoll_pending(void);
/* 0: h2o's epoll_wait with a zero timeout returns no kernel events
 * without a system call (the bridge runs h2o for work of its own, and
 * libev polls h2o's epoll fd before blocking); 1: it asks the kernel. */
void h2oepoll_poll_kernel(int yes);
/* FN(ARG), asked at each such call (inside h2o's run, h2o's clock just
 * read): 1 makes it ask the kernel after all (one of h2o's timeouts is due:
 * what came in time is read before the timeout runs). */
void h2oepoll_poll_check(int (*fn)(void *arg), void *arg);
/* 1 if the kernel's registration of FD holds EVENTS for h2o's socket PTR
 * (what h2o asks for is reported even if h2o's own bookkeeping has not
 * caught up yet). */
int h2oepoll_covers(int fd, uint32_t events, const void *ptr);
/* What the kernel holds for FD in h2o's epoll set (0: not registered). */
uint32_t h2oepoll_kernel_events(int fd);
const struct h2oepoll_stats *h2oepoll_stats(void);
#endif
