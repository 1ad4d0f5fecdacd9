/*
 * access.c - access log lines (see access.h).
 */
#include "worker/access.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

int
access_open(struct access_log *a, const char *path, int json)
{
	a->fd = -1;
	a->json = json;
	a->path = NULL;
	if (path == NULL)
		return 0;
	if (strcmp(path, "-") == 0) {
		a->fd = STDERR_FILENO;
		return 0;
	}
	a->path = path;
	return access_reopen(a);
}

int
access_reopen(struct access_log *a)
{
	int fd;

	if (a->path == NULL)
		return 0;
	if ((fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0)
		return -1;
	if (a->fd >= 0)
		close(a->fd);
	a->fd = fd;
	return 0;
}

/* Bytes a log reader must not mistake for structure: quotes, backslashes,
 * control characters and non-ASCII become \xHH, as nginx does. */
static size_t
access_escape_as(char *out, size_t outlen, const char *s, size_t len, int space)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t j = 0;

	for (size_t i = 0; i < len && j + 5 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || (space && c == ' ')) {
			out[j++] = '\\';
			out[j++] = 'x';
			out[j++] = hex[c >> 4];
			out[j++] = hex[c & 15];
		} else {
			out[j++] = (char)c;
		}
	}
	out[j] = '\0';
	return j;
}

static size_t
access_escape(char *out, size_t outlen, const char *s, size_t len)
{
	return access_escape_as(out, outlen, s, len, 0);
}

/* The same, spaces too: a field that must stay one word (the principal). */
static size_t
access_escape_word(char *out, size_t outlen, const char *s, size_t len)
{
	return access_escape_as(out, outlen, s, len, 1);
}

static h2o_iovec_t
access_header(h2o_req_t *req, const h2o_token_t *token)
{
	ssize_t i = req != NULL ? h2o_find_header(&req->headers, token, -1) : -1;

	return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(H2O_STRLIT("-"));
}

static size_t
access_bytes(const struct access_entry *e)
{
	return e->req != NULL ? e->req->bytes_sent : e->bytes;
}

static const char *
access_protocol(h2o_req_t *req)
{
	return req->version >= 0x200 ? "HTTP/2" : req->version == 0x100 ? "HTTP/1.0" : "HTTP/1.1";
}

size_t
access_format_combined(const struct access_entry *e, char *buf, size_t len)
{
	h2o_req_t *req = e->req;
	char when[64], method[32], path[2048], ref[512], ua[512], ut[32], user[1300], request[2200];
	h2o_iovec_t r = access_header(req, H2O_TOKEN_REFERER), u = access_header(req, H2O_TOKEN_USER_AGENT);
	time_t now = time(NULL);
	struct tm tm;
	int n;

	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S %z", &tm);
	if (req != NULL) {
		access_escape(method, sizeof(method), req->method.base, req->method.len);
		access_escape(path, sizeof(path), req->path.base, req->path.len);
		snprintf(request, sizeof(request), "%s %s %s", method, path, access_protocol(req));
	} else {
		snprintf(request, sizeof(request), "-"); /* nginx's, for a request it could not read */
	}
	access_escape(ref, sizeof(ref), r.base, r.len);
	access_escape(ua, sizeof(ua), u.base, u.len);
	snprintf(ut, sizeof(ut), "%.3f", (double)e->upstream_us / 1e6);
	/* the principal is the combined format's remote user, one word */
	if (e->principal != NULL)
		access_escape_word(user, sizeof(user), e->principal, strlen(e->principal));
	else
		snprintf(user, sizeof(user), "-");
	n = snprintf(buf, len,
	             "%s - %s [%s] \"%s\" %d %zu \"%s\" \"%s\" rid=%s worker=%u upstream=%s upstream_time=%s "
	             "request_time=%.3f",
	             e->client, user, when, request, e->status, access_bytes(e), ref, ua,
	             e->request_id != NULL ? e->request_id : "-", e->worker,
	             e->upstream_node != NULL ? e->upstream_node : "-", e->upstream_node != NULL ? ut : "-",
	             (double)e->total_us / 1e6);
	if (n >= 0 && (size_t)n < len && e->cache != NULL)
		n += snprintf(buf + n, len - (size_t)n, " cache=%s", e->cache);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

static size_t
access_format_json(const struct access_entry *e, char *buf, size_t len)
{
	h2o_req_t *req = e->req;
	char when[64];
	struct timespec ts;
	struct tm tm;
	h2o_iovec_t ua = access_header(req, H2O_TOKEN_USER_AGENT);
	json_t *o;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	if (req == NULL) /* a head refused before any request: what it asked is unknown */
		o = json_pack("{s:s,s:s,s:n,s:n,s:n,s:i,s:I,s:n,s:i,s:n,s:n,s:f,s:n}", "time", when, "client",
		              e->client, "method", "path", "protocol", "status", e->status, "bytes",
		              (json_int_t)e->bytes, "request_id", "worker", (int)e->worker, "upstream", "upstream_time",
		              "request_time", (double)e->total_us / 1e6, "user_agent");
	else
		o = json_pack("{s:s,s:s,s:s%,s:s%,s:s,s:i,s:I,s:s,s:i,s:s?,s:o,s:f,s:s%,s:s?,s:s?}", "time", when,
		              "client", e->client, "method", req->method.base, req->method.len, "path", req->path.base,
		              req->path.len, "protocol", access_protocol(req), "status", e->status, "bytes",
		              (json_int_t)req->bytes_sent, "request_id", e->request_id != NULL ? e->request_id : "",
		              "worker", (int)e->worker, "upstream", e->upstream_node, "upstream_time",
		              e->upstream_node != NULL ? json_real((double)e->upstream_us / 1e6) : json_null(),
		              "request_time", (double)e->total_us / 1e6, "user_agent", ua.base, ua.len, "cache",
		              e->cache, "principal", e->principal);
	if (o == NULL)
		return 0;
	n = json_dumpb(o, buf, len, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	return n < len ? n : 0;
}

void
access_write(struct access_log *a, const struct access_entry *e)
{
	char line[8192];
	size_t n;

	if (a->fd < 0)
		return;
	n = a->json ? access_format_json(e, line, sizeof(line) - 1) : access_format_combined(e, line, sizeof(line) - 1);
	if (n == 0)
		return;
	line[n++] = '\n';
	while (write(a->fd, line, n) < 0 && errno == EINTR)
		;
}
