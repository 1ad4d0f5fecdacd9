/*
 * upstream.c - libcurl's multi interface driven by the worker's libev loop.
 *
 * The classic multi_socket pattern: curl tells us which sockets to watch
 * (one ev_io each, remembered with curl_multi_assign) and when to call it
 * back (one ev_timer); watcher callbacks hand the event to
 * curl_multi_socket_action and then collect finished transfers.  Easy
 * handles are kept on a free list with their options set, and the multi
 * handle's connection cache gives keep-alive to each node, capped per node.
 *
 * Host names are resolved once here, at worker start, and pinned with
 * CURLOPT_RESOLVE: Debian's libcurl would otherwise resolve on a thread,
 * and the worker is single-threaded by design.
 */
#include "worker/upstream.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"

/* An answer larger than this is refused rather than buffered (streaming
 * with back-pressure replaces the buffer in a later version). */
#define UPSTREAM_MAX_BODY (64u << 20)

struct upstream_req {
	struct upstream *u;
	CURL *easy;
	upstream_cb cb;	/* NULL while on the free list */
	void *arg;
	size_t node;
	char *body;
	size_t body_len, body_cap;
	int oversized;
	char content_type[128];
	char elastic_product[64];
	int has_content_type, has_product;
	char url[1024];
	struct upstream_req *next; /* free list, or the active list */
	struct upstream_req **prevp;
};

struct upstream_sock {
	ev_io io;
	struct upstream *u;
};

struct upstream {
	struct ev_loop *loop;
	const struct config_upstream *cfg;
	CURLM *multi;
	ev_timer timer;
	struct curl_slist *headers;
	struct curl_slist *resolve;
	struct upstream_req *free_reqs;
	struct upstream_req *active;
	size_t ninflight;
	size_t next_node;
};

static void upstream_check_done(struct upstream *u);

static void
upstream_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct upstream_sock *s = w->data;
	struct upstream *u = s->u;
	int running, flags = 0;

	if (revents & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (revents & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(u->multi, w->fd, flags, &running);
	upstream_check_done(u);
}

static void
upstream_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct upstream *u = w->data;
	int running;

	curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	upstream_check_done(u);
}

static int
upstream_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct upstream *u = userp;
	struct upstream_sock *s = socketp;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			ev_io_stop(u->loop, &s->io);
			free(s);
			curl_multi_assign(u->multi, fd, NULL);
		}
		return 0;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		s->u = u;
		ev_init(&s->io, upstream_on_io);
		s->io.data = s;
		curl_multi_assign(u->multi, fd, s);
	} else {
		ev_io_stop(u->loop, &s->io);
	}
	ev_io_set(&s->io, fd, ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
	ev_io_start(u->loop, &s->io);
	return 0;
}

static int
upstream_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct upstream *u = userp;

	ev_timer_stop(u->loop, &u->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&u->timer, (double)timeout_ms / 1000.0, 0.0);
		ev_timer_start(u->loop, &u->timer);
	}
	return 0;
}

static size_t
upstream_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct upstream_req *r = arg;
	size_t n = size * nmemb;

	if (r->body_len + n > UPSTREAM_MAX_BODY) {
		r->oversized = 1;
		return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
	}
	if (r->body_len + n + 1 > r->body_cap) {
		size_t cap = r->body_cap ? r->body_cap : 4096;
		char *p;
		while (cap < r->body_len + n + 1)
			cap *= 2;
		if ((p = realloc(r->body, cap)) == NULL)
			return 0;
		r->body = p;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	return n;
}

/* Copies the value of header LINE into DST if its name is NAME. */
static int
upstream_header_value(const char *line, size_t len, const char *name, char *dst, size_t dstlen)
{
	size_t nlen = strlen(name), vlen;
	const char *v, *end = line + len;

	if (len <= nlen || line[nlen] != ':' || strncasecmp(line, name, nlen) != 0)
		return 0;
	v = line + nlen + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	vlen = (size_t)(end - v);
	if (vlen >= dstlen)
		vlen = dstlen - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
	return 1;
}

static size_t
upstream_on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct upstream_req *r = arg;
	size_t n = size * nmemb;

	if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		/* A new status line (after 100 Continue): forget earlier headers. */
		r->has_content_type = r->has_product = 0;
	} else if (upstream_header_value(line, n, "content-type", r->content_type, sizeof(r->content_type))) {
		r->has_content_type = 1;
	} else if (upstream_header_value(line, n, "x-elastic-product", r->elastic_product,
					 sizeof(r->elastic_product))) {
		r->has_product = 1;
	}
	return n;
}

static struct upstream_req *
upstream_req_get(struct upstream *u)
{
	struct upstream_req *r = u->free_reqs;
	const struct config_upstream *cfg = u->cfg;

	if (r != NULL) {
		u->free_reqs = r->next;
		return r;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if ((r->easy = curl_easy_init()) == NULL) {
		free(r);
		return NULL;
	}
	r->u = u;
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)cfg->request_timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, upstream_on_body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, upstream_on_header);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, u->headers);
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	if (u->resolve != NULL)
		curl_easy_setopt(r->easy, CURLOPT_RESOLVE, u->resolve);
	if (cfg->username != NULL) {
		curl_easy_setopt(r->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(r->easy, CURLOPT_USERNAME, cfg->username);
		curl_easy_setopt(r->easy, CURLOPT_PASSWORD, cfg->password);
	}
	return r;
}

static void
upstream_req_put(struct upstream *u, struct upstream_req *r)
{
	/* unlink from the active list */
	if (r->prevp != NULL) {
		*r->prevp = r->next;
		if (r->next != NULL)
			r->next->prevp = r->prevp;
		r->prevp = NULL;
	}
	r->cb = NULL;
	r->arg = NULL;
	r->body_len = 0;
	r->oversized = 0;
	/* Keep a modest buffer for the next answer; give big ones back. */
	if (r->body_cap > (1u << 20)) {
		free(r->body);
		r->body = NULL;
		r->body_cap = 0;
	}
	r->next = u->free_reqs;
	u->free_reqs = r;
	u->ninflight--;
}

static void
upstream_finish(struct upstream *u, struct upstream_req *r, CURLcode rc)
{
	struct upstream_response res;
	long status = 0;
	upstream_cb cb = r->cb;
	void *arg = r->arg;

	memset(&res, 0, sizeof(res));
	res.node = u->cfg->nodes[r->node].url;
	switch (rc) {
	case CURLE_OK:
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		res.error = UPSTREAM_OK;
		res.status = (int)status;
		res.body = r->body != NULL ? r->body : "";
		res.body_len = r->body_len;
		res.content_type = r->has_content_type ? r->content_type : NULL;
		res.elastic_product = r->has_product ? r->elastic_product : NULL;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		res.error = UPSTREAM_TIMEOUT;
		res.reason = "upstream timed out";
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		res.error = UPSTREAM_REFUSED;
		res.reason = "upstream unavailable";
		break;
	default:
		res.error = UPSTREAM_BAD_ANSWER;
		res.reason = r->oversized ? "upstream answer too large" : "bad answer from upstream";
		break;
	}
	if (rc != CURLE_OK)
		log_warnx("upstream %s: %s (%s)", res.node, res.reason, curl_easy_strerror(rc));
	curl_multi_remove_handle(u->multi, r->easy);
	/* The callback may start new requests: hand it the buffer before the
	 * request goes back to the free list. */
	cb(arg, &res);
	upstream_req_put(u, r);
}

static void
upstream_check_done(struct upstream *u)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
		struct upstream_req *r;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		upstream_finish(u, r, msg->data.result);
	}
}

/* Pins non-numeric node host names to addresses resolved now. */
static int
upstream_resolve(struct upstream *u)
{
	for (size_t i = 0; i < u->cfg->nnodes; i++) {
		const struct config_node *n = &u->cfg->nodes[i];
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
		unsigned char tmp[sizeof(struct in6_addr)];
		char addr[INET6_ADDRSTRLEN], entry[512];
		struct curl_slist *l;
		int rc;

		if (inet_pton(AF_INET, n->host, tmp) == 1 || inet_pton(AF_INET6, n->host, tmp) == 1)
			continue;
		if ((rc = getaddrinfo(n->host, NULL, &hints, &ai)) != 0) {
			log_errorx("upstream node %s: cannot resolve %s: %s", n->url, n->host, gai_strerror(rc));
			return -1;
		}
		getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST);
		freeaddrinfo(ai);
		snprintf(entry, sizeof(entry), "%s:%u:%s%s%s", n->host, n->port, strchr(addr, ':') ? "[" : "", addr,
			 strchr(addr, ':') ? "]" : "");
		if ((l = curl_slist_append(u->resolve, entry)) == NULL)
			return -1;
		u->resolve = l;
		log_debug("upstream node %s resolved to %s", n->url, addr);
	}
	return 0;
}

struct upstream *
upstream_new(struct ev_loop *loop, const struct config_upstream *cfg)
{
	struct upstream *u;
	char auth[1024];
	struct curl_slist *l;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	u->loop = loop;
	u->cfg = cfg;
	if ((u->multi = curl_multi_init()) == NULL)
		goto fail;
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, upstream_socket_cb);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, upstream_timer_cb);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->max_connections_per_node);
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)(cfg->max_connections_per_node * cfg->nnodes));
	ev_init(&u->timer, upstream_on_timer);
	u->timer.data = u;

	/* "Expect:" stops curl from waiting for 100-continue on POST bodies. */
	static const char *const fixed[] = {"Accept: application/json", "Expect:", "Content-Type: application/json"};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if ((l = curl_slist_append(u->headers, fixed[i])) == NULL)
			goto fail;
		u->headers = l;
	}
	if (cfg->api_key != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: ApiKey %s", cfg->api_key);
		l = curl_slist_append(u->headers, auth);
		explicit_bzero(auth, sizeof(auth));
		if (l == NULL)
			goto fail;
		u->headers = l;
	}
	if (upstream_resolve(u) != 0)
		goto fail;
	return u;
fail:
	upstream_free(u);
	return NULL;
}

void
upstream_free(struct upstream *u)
{
	struct upstream_req *r;

	if (u == NULL)
		return;
	while ((r = u->active) != NULL) {
		curl_multi_remove_handle(u->multi, r->easy);
		upstream_req_put(u, r);
	}
	while ((r = u->free_reqs) != NULL) {
		u->free_reqs = r->next;
		curl_easy_cleanup(r->easy);
		free(r->body);
		free(r);
	}
	if (u->multi != NULL)
		curl_multi_cleanup(u->multi); /* closes cached connections via the socket callback */
	ev_timer_stop(u->loop, &u->timer);
	curl_slist_free_all(u->headers);
	curl_slist_free_all(u->resolve);
	free(u);
}

struct upstream_req *
upstream_request(struct upstream *u, const char *method, const char *path, const char *body, size_t body_len,
		 upstream_cb cb, void *arg)
{
	struct upstream_req *r;
	const struct config_node *n;

	if ((r = upstream_req_get(u)) == NULL)
		return NULL;
	r->node = u->next_node;
	u->next_node = (u->next_node + 1) % u->cfg->nnodes;
	n = &u->cfg->nodes[r->node];
	snprintf(r->url, sizeof(r->url), "%s%s", n->url, path);
	curl_easy_setopt(r->easy, CURLOPT_URL, r->url);

	curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(r->easy, CURLOPT_NOBODY, 0L);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)body_len);
		curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, body != NULL ? body : "");
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
		if (strcmp(method, "GET") != 0)
			curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
	}
	r->cb = cb;
	r->arg = arg;
	r->body_len = 0;
	r->oversized = 0;
	r->has_content_type = r->has_product = 0;

	r->next = u->active;
	if (r->next != NULL)
		r->next->prevp = &r->next;
	r->prevp = &u->active;
	u->active = r;
	u->ninflight++;
	if (curl_multi_add_handle(u->multi, r->easy) != CURLM_OK) {
		upstream_req_put(u, r);
		return NULL;
	}
	return r;
}

void
upstream_cancel(struct upstream_req *r)
{
	struct upstream *u = r->u;

	curl_multi_remove_handle(u->multi, r->easy);
	upstream_req_put(u, r);
}

size_t
upstream_inflight(const struct upstream *u)
{
	return u->ninflight;
}
