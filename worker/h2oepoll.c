/*
 * h2oepoll.c - libh2o's epoll registrations, kept lazily (see h2oepoll.h).
 *
 * This file defines epoll_ctl() and epoll_wait().  The executable's
 * definitions come first in the dynamic linker's search order, so libh2o's
 * (and libev's) calls land here; we pass them on to the next definition
 * (libc's, or a sanitizer's interceptor in front of it) through
 * dlsym(RTLD_NEXT).  Calls on any epoll fd but h2o's go straight through.
 *
 * For h2o's epoll fd we keep, per file descriptor, what h2o asked for
 * (`want`, 0 once h2o has deleted it) and what the kernel holds (`kernel`).
 * The kernel's set is always a superset of h2o's:
 *   - ADD/MOD reach the kernel only when h2o wants an event the kernel does
 *     not have, or the entry belongs to another h2o socket (`ptr` changed);
 *   - DEL never reaches the kernel: h2o's bookkeeping forgets the socket,
 *     ours keeps the registration;
 *   - epoll_wait() hands h2o only the events it asked for (with h2o's own
 *     data.ptr; the kernel holds the fd number), and an event h2o did not
 *     ask for narrows the kernel's registration to exactly h2o's (MOD, or
 *     DEL) on the spot and is not passed on.  Registrations are
 *     level-triggered as h2o made them, so narrowing loses nothing: what
 *     h2o asks for again later is reported again.
 * A keep-alive request thus costs no epoll_ctl: h2o's DEL after reading a
 * request and ADD once the answer is written both stay here.  Closing an
 * fd removes its registration in the kernel (the worker never shares its
 * client sockets), and h2oepoll_forget() clears the table's entry when the
 * number is handed to h2o again.
 *
 * Two more things spare a Connection: close request the kernel's epoll:
 *   - a socket just accepted (h2oepoll_fresh) is not registered at h2o's
 *     first ADD; h2o's next epoll_wait hands it EPOLLIN, h2o reads, and
 *     after that run h2oepoll_settle() registers it only if h2o still
 *     reads (the request was not whole, or not there);
 *   - while the bridge runs h2o for work of its own, not because libev
 *     saw h2o's epoll fd readable (h2oepoll_poll_kernel(0)), h2o's
 *     zero-wait epoll_wait returns no kernel events without a system
 *     call: what is ready keeps h2o's epoll fd readable for libev's poll.
 * doc/DESIGN.md (section 2) has the whole argument.
 *
 * Only h2o's calls touch the table, all on the worker's one thread.
 */
#include "worker/h2oepoll.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <h2o.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/log.h"

/* What this file knows of h2o's epoll backend (2.2.5's
 * lib/common/socket/evloop/epoll.c.h): level-triggered EPOLLIN/EPOLLOUT
 * registrations, data.ptr its socket, never ADD with no events (it asserts
 * so) and never MOD to none (it DELs), epoll_ctl and epoll_wait called
 * through the dynamic linker.  Any other version: look again. */
#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/h2oepoll.c relies on how libh2o 0.13.5 (h2o 2.2.5) uses epoll; check epoll.c.h before changing versions"
#endif

struct h2oepoll_fd {
	void *ptr;         /* h2o's data.ptr for it (its socket) */
	void *kptr;        /* the socket the kernel's registration was made for */
	uint32_t want;     /* what h2o asked for; 0: h2o has it deleted */
	uint32_t kernel;   /* what the kernel holds; 0: not registered */
	uint32_t nonblock; /* opened non-blocking (h2oepoll_nonblocking): h2o's O_NONBLOCK is a no-op */
	uint8_t fresh;     /* just accepted (h2oepoll_fresh): its first EPOLLIN is answered without the kernel */
	uint8_t synth;     /* 1: an EPOLLIN without the kernel to hand h2o; 2: handed, to settle after the run */
};

typedef int (*epoll_ctl_fn)(int, int, int, struct epoll_event *);
typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
typedef int (*close_fn)(int);
typedef int (*fcntl_fn)(int, int, ...);

static struct {
	int epfd; /* h2o's; -1: not attached (every call goes through) */
	struct h2oepoll_fd *fds;
	size_t nfds;
	struct h2oepoll_stats stats;
	int *synth;   /* fds whose synth is set, in the order h2o asked */
	size_t nsynth, synth_cap;
	int poll_kernel; /* 0: h2o's zero-wait epoll_wait is answered without the kernel */
	int (*poll_check)(void *); /* ...unless this says 1 (h2oepoll_poll_check) */
	void *poll_check_arg;
	epoll_ctl_fn real_ctl;
	epoll_wait_fn real_wait;
	close_fn real_close;
	fcntl_fn real_fcntl;
} shim = {.epfd = -1, .poll_kernel = 1};

static int kernel_set(int fd, struct h2oepoll_fd *e, uint32_t want);

/* Set on the thread that attached (the worker's, where h2o runs): close()
 * on any other thread (libcurl's resolver) leaves the table alone. */
static __thread int shim_owner;

static int
real_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	if (shim.real_ctl == NULL)
		shim.real_ctl = (epoll_ctl_fn)dlsym(RTLD_NEXT, "epoll_ctl");
	if (shim.real_ctl == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return shim.real_ctl(epfd, op, fd, ev);
}

static int
real_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
	if (shim.real_wait == NULL)
		shim.real_wait = (epoll_wait_fn)dlsym(RTLD_NEXT, "epoll_wait");
	if (shim.real_wait == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return shim.real_wait(epfd, evs, max, timeout);
}

static int
real_close(int fd)
{
	if (shim.real_close == NULL)
		shim.real_close = (close_fn)dlsym(RTLD_NEXT, "close");
	if (shim.real_close == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return shim.real_close(fd);
}

int
h2oepoll_attach(int epfd)
{
	/* Resolve now, so a missing symbol shows at start, not mid-request. */
	shim.real_ctl = (epoll_ctl_fn)dlsym(RTLD_NEXT, "epoll_ctl");
	shim.real_wait = (epoll_wait_fn)dlsym(RTLD_NEXT, "epoll_wait");
	shim.real_close = (close_fn)dlsym(RTLD_NEXT, "close");
	shim.real_fcntl = (fcntl_fn)dlsym(RTLD_NEXT, "fcntl");
	if (shim.real_ctl == NULL || shim.real_wait == NULL || shim.real_close == NULL || shim.real_fcntl == NULL) {
		log_errorx("epoll_ctl, epoll_wait, close or fcntl: no definition after esgate's (dlsym RTLD_NEXT)");
		return -1;
	}
	shim_owner = 1;
	shim.epfd = epfd;
	return 0;
}

static struct h2oepoll_fd *
slot(int fd)
{
	size_t n;
	struct h2oepoll_fd *p;

	if (fd < 0)
		return NULL;
	if ((size_t)fd < shim.nfds)
		return &shim.fds[fd];
	for (n = shim.nfds != 0 ? shim.nfds : 1024; n <= (size_t)fd; n *= 2)
		;
	if ((p = realloc(shim.fds, n * sizeof(*p))) == NULL)
		return NULL;
	memset(p + shim.nfds, 0, (n - shim.nfds) * sizeof(*p));
	shim.fds = p;
	shim.nfds = n;
	return &shim.fds[fd];
}

void
h2oepoll_forget(int fd)
{
	if (fd >= 0 && (size_t)fd < shim.nfds)
		memset(&shim.fds[fd], 0, sizeof(shim.fds[fd]));
}

void
h2oepoll_fresh(int fd)
{
	struct h2oepoll_fd *e = slot(fd);

	if (e != NULL)
		e->fresh = 1;
}

void
h2oepoll_poll_kernel(int yes)
{
	shim.poll_kernel = yes;
}

void
h2oepoll_poll_check(int (*fn)(void *arg), void *arg)
{
	shim.poll_check = fn;
	shim.poll_check_arg = arg;
}

int
h2oepoll_pending(void)
{
	for (size_t i = 0; i < shim.nsynth; i++) {
		int fd = shim.synth[i];

		if ((size_t)fd < shim.nfds && shim.fds[fd].synth == 1)
			return 1;
	}
	return 0;
}

/* After a run of h2o's loop, for each socket handed an EPOLLIN without the
 * kernel: if h2o still reads it (its request is not complete: read() said
 * EAGAIN, or a part came), it is registered in the kernel now, and
 * level-triggered, the registration reports at once whatever came in the
 * meantime.  If h2o stopped reading (the whole request was there), the
 * epoll_ctl DEL that says so reaches us only in h2o's next run (its
 * update_status): the socket is looked at again after each run until that
 * DEL came (nothing to register: a later read start is an ordinary ADD)
 * or h2o reads again without one.  Whether h2o reads is its public
 * h2o_socket_is_reading() of the socket h2o registered (data.ptr, an
 * h2o_evloop_socket whose first member is the h2o_socket_t); the socket
 * lives while its fd is open, and close() clears the entry. */
void
h2oepoll_settle(void)
{
	size_t i, kept = 0;

	for (i = 0; i < shim.nsynth; i++) {
		int fd = shim.synth[i];
		struct h2oepoll_fd *e;

		if ((size_t)fd >= shim.nfds || (e = &shim.fds[fd])->synth == 0)
			continue; /* closed, forgotten, or registered meanwhile */
		if (e->synth == 1 || (e->want != 0 && !h2o_socket_is_reading((h2o_socket_t *)e->ptr))) {
			/* not handed yet (h2o's event array was full), or its DEL to come */
			shim.synth[kept++] = fd;
			continue;
		}
		e->synth = 0;
		if (e->want != 0 && (e->kernel == 0 || (e->want & ~e->kernel) != 0)) {
			shim.stats.synth_registered++;
			if (kernel_set(fd, e, e->want) == 0)
				e->kptr = e->ptr;
			else
				log_warn("epoll_ctl on fd %d after its first read", fd);
		}
	}
	shim.nsynth = kept;
}

static int
synth_push(int fd)
{
	if (shim.nsynth == shim.synth_cap) {
		size_t n = shim.synth_cap != 0 ? shim.synth_cap * 2 : 64;
		int *p = realloc(shim.synth, n * sizeof(*p));

		if (p == NULL)
			return -1;
		shim.synth = p;
		shim.synth_cap = n;
	}
	shim.synth[shim.nsynth++] = fd;
	return 0;
}

void
h2oepoll_nonblocking(int fd)
{
	struct h2oepoll_fd *e = slot(fd);

	if (e != NULL)
		e->nonblock = 1;
}

int
h2oepoll_covers(int fd, uint32_t events, const void *ptr)
{
	const struct h2oepoll_fd *e;

	if (fd < 0 || (size_t)fd >= shim.nfds)
		return 0;
	e = &shim.fds[fd];
	return (e->kernel & events) == events && e->kptr == ptr;
}

uint32_t
h2oepoll_kernel_events(int fd)
{
	return fd >= 0 && (size_t)fd < shim.nfds ? shim.fds[fd].kernel : 0;
}

const struct h2oepoll_stats *
h2oepoll_stats(void)
{
	return &shim.stats;
}

static int
kernel_call(int op, int fd, struct epoll_event *kev)
{
	int ret;

	shim.stats.ctl_kernel++;
	while ((ret = real_ctl(shim.epfd, op, fd, kev)) != 0 && errno == EINTR)
		;
	return ret;
}

/* Makes the kernel hold exactly WANT for FD (0: not registered). */
static int
kernel_set(int fd, struct h2oepoll_fd *e, uint32_t want)
{
	struct epoll_event kev;
	int op;

	memset(&kev, 0, sizeof(kev));
	kev.events = want;
	kev.data.u64 = (uint64_t)fd;
	if (want == 0) {
		/* A failed DEL (ENOENT, EBADF) means it is not registered either. */
		(void)kernel_call(EPOLL_CTL_DEL, fd, &kev);
		e->kernel = 0;
		return 0;
	}
	op = e->kernel != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (kernel_call(op, fd, &kev) != 0) {
		/* The registration is not where the table says: the file was
		 * closed and its number reused without h2oepoll_forget(), or an
		 * earlier file with that number is still open elsewhere.  Say it
		 * the other way, once. */
		if (op == EPOLL_CTL_MOD && errno == ENOENT)
			op = EPOLL_CTL_ADD;
		else if (op == EPOLL_CTL_ADD && errno == EEXIST)
			op = EPOLL_CTL_MOD;
		else
			return -1;
		if (kernel_call(op, fd, &kev) != 0)
			return -1;
	}
	e->kernel = want;
	return 0;
}

int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct h2oepoll_fd *e;
	uint32_t want;

	if (epfd != shim.epfd || shim.epfd < 0)
		return real_ctl(epfd, op, fd, ev);
	shim.stats.ctl++;
	if ((e = slot(fd)) == NULL) {
		errno = fd < 0 ? EBADF : ENOMEM;
		return -1;
	}
	switch (op) {
	case EPOLL_CTL_ADD:
	case EPOLL_CTL_MOD:
		/* As the kernel would answer h2o's view of the registration. */
		if (op == EPOLL_CTL_ADD && e->want != 0) {
			errno = EEXIST;
			return -1;
		}
		if (op == EPOLL_CTL_MOD && e->want == 0) {
			errno = ENOENT;
			return -1;
		}
		if (ev == NULL || ev->events == 0) {
			errno = EINVAL;
			return -1;
		}
		want = ev->events;
		if (e->fresh && e->kernel == 0 && want == EPOLLIN) {
			/* A socket just accepted: its request is usually there
			 * already.  h2o is handed EPOLLIN in its next epoll_wait
			 * and reads; h2oepoll_settle() registers the socket in the
			 * kernel after that run only if h2o still reads. */
			e->fresh = 0;
			if (synth_push(fd) == 0) {
				e->synth = 1;
				e->want = want;
				e->ptr = ev->data.ptr;
				shim.stats.synth++;
				return 0;
			}
		}
		e->fresh = 0;
		if (e->kernel == 0 || (want & ~e->kernel) != 0 || e->kptr != ev->data.ptr) {
			if (kernel_set(fd, e, want) != 0)
				return -1;
			e->kptr = ev->data.ptr;
			e->synth = 0; /* the kernel reports it now */
		}
		e->want = want;
		e->ptr = ev->data.ptr;
		return 0;
	case EPOLL_CTL_DEL:
		if (e->want == 0) {
			errno = ENOENT;
			return -1;
		}
		e->want = 0;
		e->ptr = NULL;
		return 0;
	default: errno = EINVAL; return -1;
	}
}

/* Closing a file removes its registrations from the kernel (it is never
 * shared, so this close releases it): the table forgets it too, whoever
 * closes it (h2o's dispose, or anyone else on the worker's thread). */
int
close(int fd)
{
	if (shim_owner && fd >= 0 && (size_t)fd < shim.nfds)
		memset(&shim.fds[fd], 0, sizeof(shim.fds[fd]));
	return real_close(fd);
}

/* h2o_evloop_socket_create() makes its fd non-blocking with
 * fcntl(F_SETFL, O_NONBLOCK), twice per accepted connection in 2.2.5; a
 * socket from accept4(SOCK_NONBLOCK) already is, and has no other status
 * flag that F_SETFL would clear: the calls would change nothing.  Every
 * other fcntl goes through, as glibc's own wrapper passes it (the third
 * argument read as a pointer). */
int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (cmd == F_SETFL && (int)(intptr_t)arg == O_NONBLOCK && shim_owner && fd >= 0 && (size_t)fd < shim.nfds &&
	    shim.fds[fd].nonblock) {
		shim.stats.fcntl_skipped++;
		return 0;
	}
	if (shim.real_fcntl == NULL && (shim.real_fcntl = (fcntl_fn)dlsym(RTLD_NEXT, "fcntl")) == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return shim.real_fcntl(fd, cmd, arg);
}

int
epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
	int n, i, kept = 0;

	if (epfd != shim.epfd || shim.epfd < 0)
		return real_wait(epfd, evs, max, timeout);
	if (timeout == 0 && !shim.poll_kernel && (shim.poll_check == NULL || !shim.poll_check(shim.poll_check_arg))) {
		/* The bridge runs h2o for work of its own (deferred callbacks,
		 * timeouts, a socket just accepted), and libev polls h2o's
		 * epoll fd before it blocks: whatever the kernel has ready keeps
		 * that fd readable and is read then (bridge.c). */
		shim.stats.wait_skipped++;
		n = 0;
	} else if ((n = real_wait(epfd, evs, max, timeout)) < 0) {
		return n;
	}
	if (n > 0)
		shim.stats.wait++;
	for (i = 0; i < n; i++) {
		uint64_t fd = evs[i].data.u64;
		uint32_t got = evs[i].events;
		struct h2oepoll_fd *e;

		if (fd >= shim.nfds) {
			/* Not registered through us: cannot be (we gave the kernel
			 * every fd it holds); drop it rather than hand h2o a pointer
			 * it never gave. */
			shim.stats.dropped++;
			continue;
		}
		e = &shim.fds[fd];
		/* What h2o's loop reacts to: IN/HUP/ERR if it reads, OUT/HUP/ERR
		 * if it writes. */
		if (e->want != 0 && (got & (e->want | EPOLLHUP | EPOLLERR)) != 0) {
			evs[kept].events = got;
			evs[kept].data.ptr = e->ptr;
			kept++;
			continue;
		}
		shim.stats.dropped++;
		(void)kernel_set((int)fd, e, e->want);
		if (e->want == 0)
			e->kptr = NULL;
	}
	/* Then the sockets just accepted, as if their request had come. */
	for (size_t j = 0; j < shim.nsynth && kept < max; j++) {
		int fd = shim.synth[j];
		struct h2oepoll_fd *e;

		if ((size_t)fd >= shim.nfds || (e = &shim.fds[fd])->synth != 1)
			continue;
		e->synth = 2;
		if ((e->want & EPOLLIN) == 0)
			continue; /* h2o stopped reading before it polled: settle decides */
		evs[kept].events = EPOLLIN;
		evs[kept].data.ptr = e->ptr;
		kept++;
	}
	return kept;
}
