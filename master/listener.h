/*
 * listener.h - the listening sockets, owned by the master.
 *
 * The master binds every address once and keeps the sockets for its whole
 * life; workers inherit them across fork.  A reload keeps a socket whose
 * address is unchanged, so the kernel's accept queue, and every connection
 * waiting in it, survives generations of workers.
 */
#ifndef ESGATE_LISTENER_H
#define ESGATE_LISTENER_H

#include <stddef.h>

#include "lib/config.h"

struct listener {
	char *spec;	/* the config's spelling, which identifies it across reloads */
	char *path;	/* unix socket path to unlink at close, or NULL */
	int fd;
	int metrics_only; /* metrics.listen: /metrics and nothing else */
	char name[160];	/* the bound address, port 0 resolved: "127.0.0.1:41234" */
};

/* Binds and listens on L.  Returns 0, or -1 after logging why. */
int listener_open(const struct parse_listen *l, struct listener *out);
/* Fills L->name from the socket itself (for inherited sockets). */
void listener_describe(struct listener *l);
/* Closes the socket (and removes a unix socket's file). */
void listener_close(struct listener *l);

#endif
