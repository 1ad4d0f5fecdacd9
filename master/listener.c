/*
 * listener.c - binding the configured addresses (see listener.h).
 */
#include "master/listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"

#define LISTENER_BACKLOG 4096 /* the kernel caps it at somaxconn */

static void
listener_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(buf, len, "fd %d", fd);
		return;
	}
	if (ss.ss_family == AF_UNIX) {
		snprintf(buf, len, "unix:%s", ((struct sockaddr_un *)&ss)->sun_path);
		return;
	}
	if (
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, len, "fd %d", fd);
		return;
	}
	snprintf(buf, len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

static int
listener_open_unix(const struct parse_listen *l, struct listener *out)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", l->host);
	/* A socket file left by a previous run that died: remove it, but
	 * never anything that is not a socket. */
	if (lstat(l->host, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(l->host);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		log_error("socket for %s", l->spec);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(fd, LISTENER_BACKLOG) != 0) {
		log_error("cannot listen on %s", l->spec);
		close(fd);
		return -1;
	}
	out->fd = fd;
	out->path = strdup(l->host);
	snprintf(out->name, sizeof(out->name), "unix:%s", l->host);
	return 0;
}

int
listener_open(const struct parse_listen *l, struct listener *out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res, *ai;
	char port[8];
	int fd = -1, rc, saved = 0;
	static const int one = 1;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (l->kind == PARSE_LISTEN_UNIX) {
		if (listener_open_unix(l, out) != 0)
			return -1;
		out->spec = strdup(l->spec);
		return 0;
	}
	snprintf(port, sizeof(port), "%u", l->port);
	if (strcmp(l->host, "*") == 0)
		hints.ai_family = AF_INET; /* "*:port" is every IPv4 address, as in nginx */
	if ((rc = getaddrinfo(strcmp(l->host, "*") == 0 ? NULL : l->host, port, &hints, &res)) != 0) {
		log_errorx("cannot listen on %s: %s", l->spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTENER_BACKLOG) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		errno = saved;
		log_error("cannot listen on %s", l->spec);
		return -1;
	}
	out->fd = fd;
	out->spec = strdup(l->spec);
	listener_name(fd, out->name, sizeof(out->name));
	return 0;
}

void
listener_describe(struct listener *l)
{
	listener_name(l->fd, l->name, sizeof(l->name));
}

void
listener_close(struct listener *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (l->path != NULL)
		unlink(l->path);
	free(l->path);
	free(l->spec);
	l->path = l->spec = NULL;
}
