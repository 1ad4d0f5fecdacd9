/*
 * curlclient.c - libcurl as an upstream transport (see curlclient.h and
 * transport.h).
 *
 * The classic multi_socket pattern: curl tells us which sockets to watch
 * (one ev_io each, remembered with curl_multi_assign) and when to call it
 * back (one ev_timer); watcher callbacks hand the event to
 * curl_multi_socket_action and then collect finished transfers.  Easy
 * handles are kept on a free list with their fixed options set, and the
 * multi handle's connection cache gives keep-alive per node, capped.
 *
 * The pool's callbacks may run inside libcurl callbacks, where libcurl
 * forbids removing a handle; a cancel there only marks the attempt, whose
 * handle is removed once curl has returned.  The body is copied into the
 * handle (CURLOPT_COPYPOSTFIELDS), so that an attempt cancelled inside a
 * callback reads nothing of the pool's any more.
 *
 * Host names are resolved once, at worker start, by the pool and pinned
 * here with CURLOPT_RESOLVE: Debian's libcurl would otherwise resolve on a
 * thread, and the worker is single-threaded by design.
 */
#include "worker/curlclient.h"

#include <curl/curl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"

/* Attempts kept for reuse when the worker is idle (trim). */
#define CURLCLIENT_KEEP 16

struct curlclient;

/* One attempt (the transport_req the pool sees). */
struct curlclient_req {
	struct curlclient *c;
	CURL *easy;
	struct curl_slist *headers;
	const struct transport_callbacks *cb;
	void *arg;
	int status;
	int64_t content_length;
	char content_type[128];
	char content_encoding[32];
	char elastic_product[64];
	unsigned head_sent : 1;
	unsigned cancelled : 1; /* inside a curl callback: removed once curl returns */
	unsigned paused : 1;
	struct curlclient_req *next; /* the free list, or the active list */
	struct curlclient_req **prevp;
};

struct curlclient_sock {
	ev_io io;
	struct curlclient *c;
};

struct curlclient {
	struct transport base; /* first */
	struct ev_loop *loop;
	const struct config_upstream *cfg;
	CURLM *multi;
	ev_timer timer;
	struct curl_slist *resolve; /* "host:port:address" for names resolved at start */
	char **urls;                /* per node */
	size_t nnodes;
	struct curlclient_req *free_reqs, *active;
	int in_curl;      /* depth of calls into libcurl that may call us back */
	int reap_pending; /* an attempt was cancelled inside curl */
};

static void curlclient_check_done(struct curlclient *c);

/*
 * libcurl on libev.
 */

static void
curlclient_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct curlclient_sock *s = w->data;
	struct curlclient *c = s->c;
	int running, flags = 0;

	if (revents & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (revents & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	c->in_curl++;
	curl_multi_socket_action(c->multi, w->fd, flags, &running);
	c->in_curl--;
	curlclient_check_done(c);
}

static void
curlclient_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct curlclient *c = w->data;
	int running;

	c->in_curl++;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	c->in_curl--;
	curlclient_check_done(c);
}

static int
curlclient_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct curlclient *c = userp;
	struct curlclient_sock *s = socketp;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			ev_io_stop(c->loop, &s->io);
			free(s);
			curl_multi_assign(c->multi, fd, NULL);
		}
		return 0;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		s->c = c;
		ev_init(&s->io, curlclient_on_io);
		s->io.data = s;
		curl_multi_assign(c->multi, fd, s);
	} else {
		ev_io_stop(c->loop, &s->io);
	}
	ev_io_set(&s->io, fd, ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
	ev_io_start(c->loop, &s->io);
	return 0;
}

static int
curlclient_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curlclient *c = userp;

	ev_timer_stop(c->loop, &c->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0.0);
		ev_timer_start(c->loop, &c->timer);
	}
	return 0;
}

/*
 * One attempt's answer.
 */

static void
curlclient_head(struct curlclient_req *r)
{
	struct transport_head head;

	r->head_sent = 1;
	head.status = r->status;
	head.content_length = r->content_length;
	head.content_type = r->content_type[0] ? r->content_type : NULL;
	head.content_encoding = r->content_encoding[0] ? r->content_encoding : NULL;
	head.elastic_product = r->elastic_product[0] ? r->elastic_product : NULL;
	r->cb->on_head(r->arg, &head);
}

static size_t
curlclient_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct curlclient_req *r = arg;
	size_t n = size * nmemb;

	if (r->cancelled)
		return 0; /* aborts the transfer; reaped after curl returns */
	if (!r->head_sent) {
		curlclient_head(r);
		if (r->cancelled)
			return 0;
	}
	if (r->cb->on_body(r->arg, data, n) != 0) {
		r->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	return r->cancelled ? 0 : n;
}

/* Copies the value of header LINE into DST if its name is NAME. */
static int
curlclient_header_value(const char *line, size_t len, const char *name, char *dst, size_t dstlen)
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
curlclient_on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct curlclient_req *r = arg;
	size_t n = size * nmemb;
	char num[32];

	if (r->cancelled)
		return 0;
	if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		/* A new status line (after 100 Continue): start over. */
		const char *sp = memchr(line, ' ', n);
		r->status = sp != NULL ? atoi(sp + 1) : 0;
		r->content_length = -1;
		r->content_type[0] = r->content_encoding[0] = r->elastic_product[0] = '\0';
	} else if (n <= 2 && (line[0] == '\r' || line[0] == '\n')) {
		if (r->status >= 200 && !r->head_sent)
			curlclient_head(r);
	} else if (curlclient_header_value(line, n, "content-length", num, sizeof(num))) {
		r->content_length = strtoll(num, NULL, 10);
	} else if (!curlclient_header_value(line, n, "content-type", r->content_type, sizeof(r->content_type)) &&
	           !curlclient_header_value(line, n, "content-encoding", r->content_encoding,
	                                    sizeof(r->content_encoding))) {
		curlclient_header_value(line, n, "x-elastic-product", r->elastic_product, sizeof(r->elastic_product));
	}
	return r->cancelled ? 0 : n;
}

/*
 * Attempts.
 */

/* A fresh attempt with its easy handle's fixed options set. */
static struct curlclient_req *
curlclient_req_new(struct curlclient *c)
{
	const struct config_upstream *cfg = c->cfg;
	struct curlclient_req *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	if ((r->easy = curl_easy_init()) == NULL) {
		free(r);
		return NULL;
	}
	r->c = c;
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)cfg->request_timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, curlclient_on_body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, curlclient_on_header);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Bytes are passed through as they come; gzip only when the client
	 * asked for it, and then it decodes it itself. */
	curl_easy_setopt(r->easy, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	if (c->resolve != NULL)
		curl_easy_setopt(r->easy, CURLOPT_RESOLVE, c->resolve);
	if (cfg->ca_file != NULL)
		curl_easy_setopt(r->easy, CURLOPT_CAINFO, cfg->ca_file);
	if (cfg->cert_file != NULL) {
		curl_easy_setopt(r->easy, CURLOPT_SSLCERT, cfg->cert_file);
		curl_easy_setopt(r->easy, CURLOPT_SSLKEY, cfg->key_file);
	}
	if (!cfg->verify) {
		curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return r;
}

/* Takes R off the active list, onto the free list (its handle is out of
 * the multi handle). */
static void
curlclient_req_put(struct curlclient *c, struct curlclient_req *r)
{
	if (r->prevp != NULL) {
		*r->prevp = r->next;
		if (r->next != NULL)
			r->next->prevp = r->prevp;
		r->prevp = NULL;
	}
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	r->cb = NULL;
	r->arg = NULL;
	r->next = c->free_reqs;
	c->free_reqs = r;
}

/* HEADERS ("Name: value\r\n"...) as libcurl's list, plus "Expect:" (no
 * 100-continue round trip for a body). */
static struct curl_slist *
curlclient_headers(const char *headers, size_t len)
{
	struct curl_slist *h = NULL, *l;
	const char *p = headers, *end = headers + len, *eol;
	char line[4096];

	while (p < end) {
		size_t n;

		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		n = (size_t)(eol - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > 0) {
			if (n >= sizeof(line))
				goto fail;
			memcpy(line, p, n);
			line[n] = '\0';
			if ((l = curl_slist_append(h, line)) == NULL)
				goto fail;
			h = l;
		}
		p = eol + 1;
	}
	if ((l = curl_slist_append(h, "Expect:")) == NULL)
		goto fail;
	return l;
fail:
	curl_slist_free_all(h);
	return NULL;
}

static struct transport_req *
curlclient_start(struct transport *t, long node, const struct transport_request *rq,
                 const struct transport_callbacks *cb, void *arg)
{
	struct curlclient *c = (struct curlclient *)t;
	struct curlclient_req *r = c->free_reqs;
	char urlbuf[4096];

	if (r != NULL)
		c->free_reqs = r->next;
	else if ((r = curlclient_req_new(c)) == NULL)
		return NULL;
	r->cb = cb;
	r->arg = arg;
	r->status = 0;
	r->content_length = -1;
	r->content_type[0] = r->content_encoding[0] = r->elastic_product[0] = '\0';
	r->head_sent = r->cancelled = r->paused = 0;
	r->next = c->active;
	if (r->next != NULL)
		r->next->prevp = &r->next;
	r->prevp = &c->active;
	c->active = r;
	/* libcurl keeps a copy of the URL: no need for one per attempt */
	if ((r->headers = curlclient_headers(rq->headers, rq->headers_len)) == NULL ||
	    (size_t)snprintf(urlbuf, sizeof(urlbuf), "%s%s", c->urls[node], rq->path) >= sizeof(urlbuf))
		goto fail;
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->easy, CURLOPT_URL, urlbuf);
	curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(r->easy, CURLOPT_NOBODY, 0L);
	if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)rq->body_len);
		curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, rq->body != NULL ? rq->body : "");
	} else if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
	}
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
		goto fail;
	return (struct transport_req *)(void *)r;
fail:
	curlclient_req_put(c, r);
	return NULL;
}

/* The end of R's transfer (its handle is still in the multi handle). */
static void
curlclient_finish(struct curlclient *c, struct curlclient_req *r, CURLcode rc)
{
	const struct transport_callbacks *cb = r->cb;
	void *arg = r->arg;
	enum transport_end end;

	curl_multi_remove_handle(c->multi, r->easy);
	if (r->cancelled) {
		curlclient_req_put(c, r);
		return;
	}
	switch (rc) {
	case CURLE_OK: end = TRANSPORT_OK; break;
	case CURLE_OPERATION_TIMEDOUT: end = TRANSPORT_TIMEOUT; break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: /* the connection broke mid-answer */
	case CURLE_SSL_CONNECT_ERROR: end = TRANSPORT_CONNECT; break;
	default: end = TRANSPORT_BAD_ANSWER; break;
	}
	if (end == TRANSPORT_OK && !r->head_sent) {
		/* an answer with no header end seen */
		curlclient_head(r);
		if (r->cancelled) {
			curlclient_req_put(c, r);
			return;
		}
	}
	curlclient_req_put(c, r); /* before: the pool may start its next attempt from on_end */
	cb->on_end(arg, end, curl_easy_strerror(rc));
}

static void
curlclient_reap_cancelled(struct curlclient *c)
{
	struct curlclient_req *r, *next;

	if (!c->reap_pending || c->in_curl)
		return;
	c->reap_pending = 0;
	for (r = c->active; r != NULL; r = next) {
		next = r->next;
		if (r->cancelled) {
			curl_multi_remove_handle(c->multi, r->easy);
			curlclient_req_put(c, r);
		}
	}
}

static void
curlclient_check_done(struct curlclient *c)
{
	CURLMsg *msg;
	int left;

	curlclient_reap_cancelled(c);
	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct curlclient_req *r;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curlclient_finish(c, r, msg->data.result);
		curlclient_reap_cancelled(c);
	}
}

static void
curlclient_cancel(struct transport_req *tr)
{
	struct curlclient_req *r = (struct curlclient_req *)(void *)tr;
	struct curlclient *c = r->c;

	if (c->in_curl) {
		/* inside a curl callback: libcurl forbids removing the handle */
		r->cancelled = 1;
		c->reap_pending = 1;
		return;
	}
	curl_multi_remove_handle(c->multi, r->easy);
	curlclient_req_put(c, r);
}

static void
curlclient_resume(struct transport_req *tr)
{
	struct curlclient_req *r = (struct curlclient_req *)(void *)tr;
	struct curlclient *c = r->c;

	if (!r->paused || r->cancelled)
		return;
	r->paused = 0;
	c->in_curl++;
	curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may deliver the held bytes right away */
	c->in_curl--;
	/* The transfer may have finished meanwhile; collect it on the next
	 * loop turn rather than calling the pool back from inside its own
	 * callback. */
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_set(&c->timer, 0.0, 0.0);
	ev_timer_start(c->loop, &c->timer);
}

/*
 * Nodes and the transport's life.
 */

static long
curlclient_node_add(struct transport *t, const struct transport_node *node)
{
	struct curlclient *c = (struct curlclient *)t;
	char **p, entry[512], addr[INET6_ADDRSTRLEN];

	if (node->resolved_name && node->addr != NULL) {
		/* pinned: every easy handle made from now on gets the list */
		struct curl_slist *l;
		getnameinfo(node->addr, node->addrlen, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST);
		snprintf(entry, sizeof(entry), "%s:%u:%s%s%s", node->at->host, node->at->port,
		         strchr(addr, ':') ? "[" : "", addr, strchr(addr, ':') ? "]" : "");
		if ((l = curl_slist_append(c->resolve, entry)) == NULL)
			return -2;
		c->resolve = l;
		log_debug("upstream node %s resolved to %s", node->url, addr);
	}
	if ((p = realloc(c->urls, (c->nnodes + 1) * sizeof(*p))) == NULL)
		return -2;
	c->urls = p;
	if ((c->urls[c->nnodes] = strdup(node->url)) == NULL)
		return -2;
	return (long)c->nnodes++;
}

/* Frees the attempts kept for reuse beyond the first KEEP. */
static void
curlclient_free_reqs(struct curlclient *c, size_t keep)
{
	struct curlclient_req **rp = &c->free_reqs, *r;

	for (size_t n = 0; *rp != NULL && n < keep; n++)
		rp = &(*rp)->next;
	while ((r = *rp) != NULL) {
		*rp = r->next;
		curl_easy_cleanup(r->easy);
		free(r);
	}
}

static void
curlclient_trim(struct transport *t)
{
	curlclient_free_reqs((struct curlclient *)t, CURLCLIENT_KEEP);
}

static void
curlclient_free(struct transport *t)
{
	struct curlclient *c = (struct curlclient *)t;
	struct curlclient_req *r;

	if (c == NULL)
		return;
	while ((r = c->active) != NULL) {
		curl_multi_remove_handle(c->multi, r->easy);
		curlclient_req_put(c, r);
	}
	curlclient_free_reqs(c, 0);
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi); /* closes cached connections via the socket callback */
	ev_timer_stop(c->loop, &c->timer);
	for (size_t i = 0; i < c->nnodes; i++)
		free(c->urls[i]);
	free(c->urls);
	curl_slist_free_all(c->resolve);
	free(c);
}

static const struct transport_ops curlclient_ops = {
    .name = "libcurl",
    .node_add = curlclient_node_add,
    .start = curlclient_start,
    .cancel = curlclient_cancel,
    .resume = curlclient_resume,
    .trim = curlclient_trim,
    .free = curlclient_free,
};

struct transport *
curlclient_new(struct ev_loop *loop, const struct config_upstream *cfg)
{
	struct curlclient *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->base.ops = &curlclient_ops;
	c->loop = loop;
	c->cfg = cfg;
	ev_init(&c->timer, curlclient_on_timer);
	c->timer.data = c;
	if ((c->multi = curl_multi_init()) == NULL) {
		free(c);
		return NULL;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curlclient_socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curlclient_timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->max_connections_per_node);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)(cfg->max_connections_per_node * cfg->nnodes));
	return &c->base;
}
