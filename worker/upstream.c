/*
 * upstream.c - the node pool, retries and streaming described in
 * upstream.h, over two transports: the native HTTP/1.1 client
 * (worker/h1client.c) for http:// nodes, and libcurl for https:// nodes
 * (TLS, certificates, verification) or for every node with
 * "http_client: curl".  The pool, the retry policy, the metrics and the
 * consumer callbacks are the same for both; each transport reports an
 * attempt's end as one of enum upstream_fail, and upstream_end() decides.
 *
 * Native requests: the head and body go to h1client_start() per attempt,
 * with the fixed header lines (Accept, Content-Type, Accept-Encoding,
 * X-Opaque-Id, and the Authorization line computed once at start) built
 * once per request.  A consumer that cancels from inside a callback marks
 * the request (in_cb), and the wrapper around the callback frees it when
 * the consumer has returned; h1client itself is safe against that.
 *
 * libcurl: the classic multi_socket pattern: curl tells us which sockets to watch
 * (one ev_io each, remembered with curl_multi_assign) and when to call it
 * back (one ev_timer); watcher callbacks hand the event to
 * curl_multi_socket_action and then collect finished transfers.  Easy
 * handles are kept on a free list with their fixed options set, and the
 * multi handle's connection cache gives keep-alive per node, capped.
 *
 * Consumers' callbacks may run inside libcurl callbacks, where libcurl
 * forbids removing a handle; upstream_cancel() therefore only marks a
 * request there, and the handle is removed once curl has returned.
 *
 * Host names are resolved once, at worker start, and pinned with
 * CURLOPT_RESOLVE: Debian's libcurl would otherwise resolve on a thread,
 * and the worker is single-threaded by design.
 */
#include "worker/upstream.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/scoreboard.h"
#include "worker/h1client.h"
#include "worker/http.h"

/* Requests kept for reuse when the worker is idle (upstream_trim): as many
 * as were ever in flight at once are kept while it is busy. */
#define UPSTREAM_KEEP_REQS 16
#define UPSTREAM_SNIFF_MAX (4u << 20) /* a _nodes answer larger than this is refused */

struct upstream_node {
	char *url;		/* "http://10.0.0.1:9200" or with a path prefix */
	unsigned failures;	/* in a row */
	uint64_t dead_until_ms; /* 0: alive */
	int sniffed;
	int metric;		/* index in the shared metrics, -1 if none */
	long h1;		/* the node in the native client, -1: through libcurl */
};

struct upstream_req {
	struct upstream *u;
	CURL *easy; /* created on the first attempt through libcurl */
	struct h1client_req h1;
	const struct upstream_callbacks *cb; /* NULL while on the free list */
	void *arg;
	/* the request, kept for retries */
	char method[8];
	char *path;
	char *body;
	size_t body_len;
	int idempotent;
	struct curl_slist *headers; /* libcurl's, built on its first attempt */
	char opaque_id[256];
	int accept_gzip;
	char *hdr; /* the native client's fixed header lines, built on its first attempt */
	size_t hdr_len, hdr_cap;
	int hdr_built;
	/* the current attempt */
	int native;    /* through h1client */
	int in_cb;     /* a native callback is calling the consumer */
	size_t node;
	unsigned attempts;
	uint64_t attempt_us; /* when it started, for the node's latency metric */
	int status;
	int head_delivered;
	int discard;   /* a retryable answer: swallow it, then retry */
	int cancelled; /* by the consumer, inside a curl callback */
	int paused;
	int64_t content_length;
	char content_type[128];
	char content_encoding[32];
	char elastic_product[64];
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
	struct metrics *metrics;
	CURLM *multi;
	struct h1client *h1; /* NULL with http_client: curl */
	char *h1_auth;	     /* "Authorization: ...\r\n" for the native client, or NULL */
	ev_timer timer;
	ev_timer sniff_timer;
	struct upstream_node *nodes;
	size_t nnodes;
	size_t rr; /* round-robin position */
	struct curl_slist *auth_header; /* ApiKey or Bearer, or NULL */
	struct curl_slist *resolve;
	struct upstream_req *free_reqs;
	struct upstream_req *active;
	size_t ninflight;
	int in_curl;	   /* depth of calls into libcurl that may call us back */
	int reap_pending;  /* some request was cancelled inside curl */
	struct upstream_req *sniff;
	char *sniff_buf;
	size_t sniff_len;
};

static void upstream_check_done(struct upstream *u);

/*
 * The node pool.
 */

static void
upstream_node_dead(struct upstream *u, size_t i, const char *why)
{
	struct upstream_node *n = &u->nodes[i];
	uint64_t delay = u->cfg->node_backoff_ms;

	n->failures++;
	for (unsigned k = 1; k < n->failures && delay < u->cfg->node_backoff_max_ms; k++)
		delay *= 2;
	if (delay > u->cfg->node_backoff_max_ms)
		delay = u->cfg->node_backoff_max_ms;
	n->dead_until_ms = scoreboard_now_ms() + delay;
	metrics_node_state(u->metrics, n->metric, 0);
	log_warnx("upstream node %s marked dead for %" PRIu64 " ms (%s; %u failure(s) in a row)", n->url, delay, why,
		  n->failures);
}

static void
upstream_node_alive(struct upstream *u, size_t i)
{
	struct upstream_node *n = &u->nodes[i];

	if (n->failures > 0) {
		log_info("upstream node %s is back", n->url);
		metrics_node_state(u->metrics, n->metric, 1);
	}
	n->failures = 0;
	n->dead_until_ms = 0;
}

/* Round-robin over live nodes; when all are dead, the one whose backoff
 * ends first is forced back (as the official clients do). */
static size_t
upstream_pick(struct upstream *u)
{
	uint64_t now = scoreboard_now_ms();
	size_t best = 0;

	for (size_t k = 0; k < u->nnodes; k++) {
		size_t i = (u->rr + k) % u->nnodes;
		if (u->nodes[i].dead_until_ms <= now) {
			u->rr = i + 1;
			return i;
		}
	}
	for (size_t i = 1; i < u->nnodes; i++)
		if (u->nodes[i].dead_until_ms < u->nodes[best].dead_until_ms)
			best = i;
	u->rr = best + 1;
	return best;
}

/*
 * Where node N is: its host is resolved now (at worker start; a numeric
 * one needs no lookup), the result pinned for libcurl with CURLOPT_RESOLVE
 * (Debian's libcurl would otherwise resolve on a thread, and the worker is
 * single-threaded by design) and handed to the native client for http://
 * nodes.  A sniffed node named by a host name stays with libcurl: it is not
 * resolved in the middle of serving.
 */
static int
upstream_node_transport(struct upstream *u, struct upstream_node *n)
{
	struct config_node cn;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	unsigned char tmp[sizeof(struct in6_addr)];
	char addr[INET6_ADDRSTRLEN], entry[512], port[8], host[300];
	int numeric, rc, ret = -1;

	n->h1 = -1;
	memset(&cn, 0, sizeof(cn));
	if (config_parse_node(n->url, &cn) != 0) {
		log_errorx("upstream node %s: bad URL", n->url);
		return -1;
	}
	numeric = inet_pton(AF_INET, cn.host, tmp) == 1 || inet_pton(AF_INET6, cn.host, tmp) == 1;
	if (!numeric && n->sniffed) {
		ret = 0;
		goto out;
	}
	snprintf(port, sizeof(port), "%u", cn.port);
	hints.ai_flags = numeric ? AI_NUMERICHOST | AI_NUMERICSERV : AI_NUMERICSERV;
	if ((rc = getaddrinfo(cn.host, port, &hints, &ai)) != 0) {
		log_errorx("upstream node %s: cannot resolve %s: %s", n->url, cn.host, gai_strerror(rc));
		goto out;
	}
	if (!numeric) {
		struct curl_slist *l;
		getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST);
		snprintf(entry, sizeof(entry), "%s:%u:%s%s%s", cn.host, cn.port, strchr(addr, ':') ? "[" : "", addr,
			 strchr(addr, ':') ? "]" : "");
		if ((l = curl_slist_append(u->resolve, entry)) == NULL)
			goto out;
		u->resolve = l;
		log_debug("upstream node %s resolved to %s", n->url, addr);
	}
	if (u->h1 != NULL && strcmp(cn.scheme, "http") == 0) {
		/* Host: as in the URL; IPv6 literals in brackets, port 80 implied */
		snprintf(host, sizeof(host), "%s%s%s", strchr(cn.host, ':') ? "[" : "", cn.host,
			 strchr(cn.host, ':') ? "]" : "");
		if (cn.port != 80)
			snprintf(host + strlen(host), sizeof(host) - strlen(host), ":%u", cn.port);
		if ((n->h1 = h1client_node_add(u->h1, ai->ai_addr, ai->ai_addrlen, host, cn.path)) < 0)
			goto out;
	}
	ret = 0;
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	config_node_clear(&cn);
	return ret;
}

static int
upstream_add_node(struct upstream *u, const char *url, int sniffed)
{
	struct upstream_node *p;

	for (size_t i = 0; i < u->nnodes; i++)
		if (strcmp(u->nodes[i].url, url) == 0)
			return 0;
	if ((p = realloc(u->nodes, (u->nnodes + 1) * sizeof(*p))) == NULL)
		return -1;
	u->nodes = p;
	memset(&p[u->nnodes], 0, sizeof(p[0]));
	if ((p[u->nnodes].url = strdup(url)) == NULL)
		return -1;
	p[u->nnodes].sniffed = sniffed;
	if (upstream_node_transport(u, &p[u->nnodes]) != 0) {
		free(p[u->nnodes].url);
		return -1;
	}
	p[u->nnodes].metric = metrics_node(u->metrics, url);
	metrics_node_state(u->metrics, p[u->nnodes].metric, 1);
	u->nnodes++;
	return 1;
}

size_t
upstream_nodes(const struct upstream *u, size_t *alive)
{
	uint64_t now = scoreboard_now_ms();

	if (alive != NULL) {
		*alive = 0;
		for (size_t i = 0; i < u->nnodes; i++)
			*alive += u->nodes[i].dead_until_ms <= now;
	}
	return u->nnodes;
}

int
upstream_is_idempotent(const char *method, const char *path)
{
	static const char *const readonly[] = {"/_search", "/_count", "/_msearch", "/_mget"};
	size_t plen = strcspn(path, "?");

	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		return 1;
	if (strcmp(method, "POST") != 0)
		return 0;
	for (size_t i = 0; i < sizeof(readonly) / sizeof(readonly[0]); i++) {
		size_t n = strlen(readonly[i]);
		if (plen >= n && memcmp(path + plen - n, readonly[i], n) == 0)
			return 1;
	}
	return 0;
}

/*
 * libcurl on libev.
 */

static void
upstream_reap_cancelled(struct upstream *u);

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
	u->in_curl++;
	curl_multi_socket_action(u->multi, w->fd, flags, &running);
	u->in_curl--;
	upstream_check_done(u);
}

static void
upstream_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct upstream *u = w->data;
	int running;

	u->in_curl++;
	curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	u->in_curl--;
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

/*
 * One attempt's answer.
 */

static int
upstream_retryable_status(int status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

static int
upstream_retries_left(const struct upstream_req *r)
{
	return r->idempotent && r->attempts <= r->u->cfg->max_retries && r->u->nnodes > 0;
}

static void
upstream_headers_done(struct upstream_req *r)
{
	struct upstream *u = r->u;
	struct upstream_head head;

	if (r->head_delivered || r->discard)
		return;
	metrics_upstream(u->metrics, u->nodes[r->node].metric, r->status == 429 || r->status >= 500,
			 http_now_us() - r->attempt_us);
	if (r->status == 429 || r->status >= 500) {
		char why[32];
		snprintf(why, sizeof(why), "status %d", r->status);
		upstream_node_dead(u, r->node, why);
	} else {
		upstream_node_alive(u, r->node);
	}
	if (upstream_retryable_status(r->status) && upstream_retries_left(r)) {
		r->discard = 1;
		return;
	}
	r->head_delivered = 1;
	if (r->cancelled)
		return;
	head.status = r->status;
	head.content_length = r->content_length;
	head.content_type = r->content_type[0] ? r->content_type : NULL;
	head.content_encoding = r->content_encoding[0] ? r->content_encoding : NULL;
	head.elastic_product = r->elastic_product[0] ? r->elastic_product : NULL;
	head.node = u->nodes[r->node].url;
	r->cb->on_head(r->arg, &head);
}

static size_t
upstream_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct upstream_req *r = arg;
	size_t n = size * nmemb;

	if (r->cancelled)
		return 0; /* aborts the transfer; reaped after curl returns */
	if (!r->head_delivered)
		upstream_headers_done(r);
	if (r->discard)
		return n;
	if (r->cb->on_body(r->arg, data, n) != 0) {
		r->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
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
	char num[32];

	if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		/* A new status line (after 100 Continue): start over. */
		const char *sp = memchr(line, ' ', n);
		r->status = sp != NULL ? atoi(sp + 1) : 0;
		r->content_length = -1;
		r->content_type[0] = r->content_encoding[0] = r->elastic_product[0] = '\0';
	} else if (n <= 2 && (line[0] == '\r' || line[0] == '\n')) {
		if (r->status >= 200)
			upstream_headers_done(r);
	} else if (upstream_header_value(line, n, "content-length", num, sizeof(num))) {
		r->content_length = strtoll(num, NULL, 10);
	} else if (!upstream_header_value(line, n, "content-type", r->content_type, sizeof(r->content_type)) &&
		   !upstream_header_value(line, n, "content-encoding", r->content_encoding,
					  sizeof(r->content_encoding))) {
		upstream_header_value(line, n, "x-elastic-product", r->elastic_product, sizeof(r->elastic_product));
	}
	return r->cancelled ? 0 : n;
}

/*
 * Requests.
 */

static struct upstream_req *
upstream_req_get(struct upstream *u)
{
	struct upstream_req *r = u->free_reqs;

	if (r != NULL) {
		u->free_reqs = r->next;
		return r;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->u = u;
	h1client_req_init(&r->h1);
	return r;
}

/* The easy handle, with its fixed options, on a request's first attempt
 * through libcurl. */
static int
upstream_easy(struct upstream *u, struct upstream_req *r)
{
	const struct config_upstream *cfg = u->cfg;

	if (r->easy != NULL)
		return 0;
	if ((r->easy = curl_easy_init()) == NULL)
		return -1;
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)cfg->request_timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, upstream_on_body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, upstream_on_header);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Bytes are passed through as they come; gzip only when the client
	 * asked for it, and then it decodes it itself. */
	curl_easy_setopt(r->easy, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	if (u->resolve != NULL)
		curl_easy_setopt(r->easy, CURLOPT_RESOLVE, u->resolve);
	if (cfg->username != NULL) {
		curl_easy_setopt(r->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(r->easy, CURLOPT_USERNAME, cfg->username);
		curl_easy_setopt(r->easy, CURLOPT_PASSWORD, cfg->password);
	}
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
	return 0;
}

/* Takes R off the active list (its transport already let go of it). */
static void
upstream_req_put(struct upstream *u, struct upstream_req *r)
{
	if (r->prevp != NULL) {
		*r->prevp = r->next;
		if (r->next != NULL)
			r->next->prevp = r->prevp;
		r->prevp = NULL;
	}
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	free(r->path);
	free(r->body);
	r->path = r->body = NULL;
	r->cb = NULL;
	r->arg = NULL;
	r->next = u->free_reqs;
	u->free_reqs = r;
	u->ninflight--;
}

/* Lets go of R's current attempt in its transport, without a callback. */
static void
upstream_release(struct upstream *u, struct upstream_req *r)
{
	if (r->native)
		h1client_cancel(&r->h1);
	else if (r->easy != NULL)
		curl_multi_remove_handle(u->multi, r->easy);
}

static struct curl_slist *
upstream_headers(struct upstream *u, const struct upstream_req *r)
{
	struct curl_slist *h = NULL, *l;
	char line[300];
	const char *fixed[] = {"Accept: application/json", "Expect:",
			       r->body != NULL ? "Content-Type: application/json" : NULL,
			       r->accept_gzip ? "Accept-Encoding: gzip" : NULL};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (fixed[i] == NULL)
			continue;
		if ((l = curl_slist_append(h, fixed[i])) == NULL)
			goto fail;
		h = l;
	}
	if (r->opaque_id[0] != '\0') {
		snprintf(line, sizeof(line), "X-Opaque-Id: %s", r->opaque_id);
		if ((l = curl_slist_append(h, line)) == NULL)
			goto fail;
		h = l;
	}
	for (struct curl_slist *a = u->auth_header; a != NULL; a = a->next) {
		if ((l = curl_slist_append(h, a->data)) == NULL)
			goto fail;
		h = l;
	}
	return h;
fail:
	curl_slist_free_all(h);
	return NULL;
}

static int
upstream_hdr_put(struct upstream_req *r, const char *s, size_t len)
{
	if (r->hdr_len + len > r->hdr_cap) {
		size_t cap = r->hdr_cap ? r->hdr_cap : 256;
		char *p;
		while (cap < r->hdr_len + len)
			cap *= 2;
		if ((p = realloc(r->hdr, cap)) == NULL)
			return -1;
		r->hdr = p;
		r->hdr_cap = cap;
	}
	memcpy(r->hdr + r->hdr_len, s, len);
	r->hdr_len += len;
	return 0;
}

/* The same header lines for the native client, in one buffer kept with R. */
static int
upstream_hdr_build(struct upstream *u, struct upstream_req *r)
{
	size_t idlen = strlen(r->opaque_id);

	r->hdr_len = 0;
	if (upstream_hdr_put(r, "Accept: application/json\r\n", 26) != 0 ||
	    (r->body != NULL && upstream_hdr_put(r, "Content-Type: application/json\r\n", 32) != 0) ||
	    (r->accept_gzip && upstream_hdr_put(r, "Accept-Encoding: gzip\r\n", 23) != 0) ||
	    (idlen > 0 && (upstream_hdr_put(r, "X-Opaque-Id: ", 13) != 0 || upstream_hdr_put(r, r->opaque_id, idlen) != 0 ||
			   upstream_hdr_put(r, "\r\n", 2) != 0)) ||
	    (u->h1_auth != NULL && upstream_hdr_put(r, u->h1_auth, strlen(u->h1_auth)) != 0))
		return -1;
	r->hdr_built = 1;
	return 0;
}

static const struct h1client_callbacks upstream_h1_callbacks;

/* Starts (or restarts) an attempt on the next node. */
static int
upstream_attempt(struct upstream *u, struct upstream_req *r)
{
	const char *url;
	char urlbuf[4096];

	r->node = upstream_pick(u);
	r->attempts++;
	r->attempt_us = http_now_us();
	r->status = 0;
	r->head_delivered = r->discard = r->paused = 0;
	r->content_length = -1;
	r->content_type[0] = r->content_encoding[0] = r->elastic_product[0] = '\0';
	if (u->nodes[r->node].h1 >= 0) {
		r->native = 1;
		if (!r->hdr_built && upstream_hdr_build(u, r) != 0)
			return -1;
		return h1client_start(u->h1, &r->h1, (size_t)u->nodes[r->node].h1, r->method, r->path, r->hdr,
				      r->hdr_len, r->body, r->body_len, r->idempotent, &upstream_h1_callbacks, r);
	}
	r->native = 0;
	if (upstream_easy(u, r) != 0)
		return -1;
	if (r->headers == NULL) {
		if ((r->headers = upstream_headers(u, r)) == NULL)
			return -1;
		curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	}
	url = u->nodes[r->node].url;
	/* libcurl keeps a copy of the URL: no need for one per request */
	if ((size_t)snprintf(urlbuf, sizeof(urlbuf), "%s%s", url, r->path) >= sizeof(urlbuf))
		return -1;
	curl_easy_setopt(r->easy, CURLOPT_URL, urlbuf);
	curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(r->easy, CURLOPT_NOBODY, 0L);
	if (strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)r->body_len);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body != NULL ? r->body : "");
	} else if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
	}
	return curl_multi_add_handle(u->multi, r->easy) == CURLM_OK ? 0 : -1;
}

/* Copies SRC into DST of DSTLEN bytes, cut short if need be (no printf on
 * the hot path). */
static void
upstream_strlcpy(char *dst, const char *src, size_t dstlen)
{
	size_t n = strnlen(src, dstlen - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

struct upstream_req *
upstream_send(struct upstream *u, const struct upstream_request *rq, const struct upstream_callbacks *cb, void *arg)
{
	struct upstream_req *r;

	if (u->nnodes == 0 || (r = upstream_req_get(u)) == NULL)
		return NULL;
	r->cb = cb;
	r->arg = arg;
	r->cancelled = 0;
	r->in_cb = 0;
	r->native = 0;
	r->attempts = 0;
	r->hdr_built = 0;
	upstream_strlcpy(r->method, rq->method, sizeof(r->method));
	upstream_strlcpy(r->opaque_id, rq->opaque_id != NULL ? rq->opaque_id : "", sizeof(r->opaque_id));
	r->accept_gzip = rq->accept_gzip;
	r->path = strdup(rq->path);
	r->body = NULL;
	r->body_len = rq->body_len;
	if (rq->body != NULL && (r->body = malloc(rq->body_len + 1)) != NULL)
		memcpy(r->body, rq->body, rq->body_len);
	r->idempotent = upstream_is_idempotent(rq->method, rq->path);

	r->next = u->active;
	if (r->next != NULL)
		r->next->prevp = &r->next;
	r->prevp = &u->active;
	u->active = r;
	u->ninflight++;
	if (r->path == NULL || (rq->body != NULL && r->body == NULL) || upstream_attempt(u, r) != 0) {
		upstream_release(u, r);
		upstream_req_put(u, r);
		return NULL;
	}
	return r;
}

/* How an attempt ended, whatever the transport. */
enum upstream_fail {
	UPSTREAM_FAIL_NONE,    /* an answer, complete */
	UPSTREAM_FAIL_TIMEOUT, /* connect or request timeout */
	UPSTREAM_FAIL_CONNECT, /* no connection, reset, closed before or during the answer */
	UPSTREAM_FAIL_ANSWER,  /* a malformed answer, or another transport error */
};

/* The end of an attempt: retry, or report to the consumer.  R's transport
 * has let go of it. */
static void
upstream_end(struct upstream *u, struct upstream_req *r, enum upstream_fail fail, const char *why)
{
	struct upstream_result res = {.error = UPSTREAM_OK};
	const struct upstream_callbacks *cb = r->cb;
	void *arg = r->arg;
	int retry = 0;

	res.node = u->nodes[r->node].url;
	if (fail != UPSTREAM_FAIL_NONE && !r->head_delivered && !r->discard)
		metrics_upstream(u->metrics, u->nodes[r->node].metric, 1, http_now_us() - r->attempt_us);
	switch (fail) {
	case UPSTREAM_FAIL_NONE:
		retry = r->discard;
		break;
	case UPSTREAM_FAIL_TIMEOUT:
		res.error = UPSTREAM_TIMEOUT;
		res.reason = "upstream timed out";
		upstream_node_dead(u, r->node, "timeout"); /* connect or request: the log says which */
		retry = !r->head_delivered && u->cfg->retry_on_timeout && upstream_retries_left(r);
		break;
	case UPSTREAM_FAIL_CONNECT:
		res.error = UPSTREAM_REFUSED;
		res.reason = "upstream unavailable";
		upstream_node_dead(u, r->node, why);
		retry = !r->head_delivered && upstream_retries_left(r);
		break;
	case UPSTREAM_FAIL_ANSWER:
		res.error = UPSTREAM_BAD_ANSWER;
		res.reason = "bad answer from upstream";
		log_warnx("upstream %s: %s", u->nodes[r->node].url, why);
		break;
	}
	if (retry) {
		const char *from = u->nodes[r->node].url;
		metrics_inc(&u->metrics->upstream_retries);
		if (upstream_attempt(u, r) == 0) {
			log_info("upstream %s failed (%s); retry %u on %s", from,
				 fail == UPSTREAM_FAIL_NONE ? "retryable status" : why, r->attempts - 1,
				 u->nodes[r->node].url);
			return;
		}
		upstream_release(u, r);
		res.error = UPSTREAM_REFUSED;
		res.reason = "upstream unavailable";
	} else if (fail == UPSTREAM_FAIL_NONE && !r->head_delivered) {
		/* an answer with no header end seen */
		r->in_cb = 1;
		upstream_headers_done(r);
		r->in_cb = 0;
		if (r->cancelled) {
			upstream_req_put(u, r);
			return;
		}
	}
	if (r->discard && res.error == UPSTREAM_OK) {
		/* out of retries on a retryable status: cannot happen, the last
		 * attempt is delivered; keep the client informed anyway */
		res.error = UPSTREAM_BAD_ANSWER;
		res.reason = "upstream unavailable";
	}
	res.attempts = r->attempts;
	upstream_req_put(u, r);
	cb->on_done(arg, &res);
}

static void
upstream_finish(struct upstream *u, struct upstream_req *r, CURLcode rc)
{
	enum upstream_fail fail;

	curl_multi_remove_handle(u->multi, r->easy);
	if (r->cancelled) {
		upstream_req_put(u, r);
		return;
	}
	switch (rc) {
	case CURLE_OK: fail = UPSTREAM_FAIL_NONE; break;
	case CURLE_OPERATION_TIMEDOUT: fail = UPSTREAM_FAIL_TIMEOUT; break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: /* the connection broke mid-answer */
	case CURLE_SSL_CONNECT_ERROR: fail = UPSTREAM_FAIL_CONNECT; break;
	default: fail = UPSTREAM_FAIL_ANSWER; break;
	}
	upstream_end(u, r, fail, curl_easy_strerror(rc));
}

/*
 * The native client's callbacks.  Each runs the consumer with in_cb set:
 * a cancel from inside only marks R, and R is put away here once the
 * consumer has returned (h1client has let go of it by then).
 */

static void
upstream_h1_copy(char *dst, size_t dstlen, struct h1resp_str s)
{
	size_t n = s.p == NULL ? 0 : s.len < dstlen ? s.len : dstlen - 1;

	if (n > 0)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static void
upstream_h1_head(void *arg, const struct h1resp_head *head)
{
	struct upstream_req *r = arg;

	r->status = head->status;
	r->content_length = head->content_length;
	upstream_h1_copy(r->content_type, sizeof(r->content_type), head->content_type);
	upstream_h1_copy(r->content_encoding, sizeof(r->content_encoding), head->content_encoding);
	upstream_h1_copy(r->elastic_product, sizeof(r->elastic_product), head->elastic_product);
	r->in_cb = 1;
	upstream_headers_done(r);
	r->in_cb = 0;
	if (r->cancelled)
		upstream_req_put(r->u, r);
}

static int
upstream_h1_body(void *arg, const char *data, size_t len)
{
	struct upstream_req *r = arg;
	int rc = 0;

	if (r->discard)
		return 0;
	r->in_cb = 1;
	if (r->cb->on_body(r->arg, data, len) != 0) {
		r->paused = 1;
		rc = 1;
	}
	r->in_cb = 0;
	if (r->cancelled) {
		upstream_req_put(r->u, r);
		return 0; /* h1client already let go */
	}
	return rc;
}

static void
upstream_h1_done(void *arg, enum h1client_error err, const char *why)
{
	struct upstream_req *r = arg;
	static const enum upstream_fail map[] = {
	    [H1CLIENT_OK] = UPSTREAM_FAIL_NONE,
	    [H1CLIENT_REFUSED] = UPSTREAM_FAIL_CONNECT,
	    [H1CLIENT_TIMEOUT] = UPSTREAM_FAIL_TIMEOUT,
	    [H1CLIENT_BAD_ANSWER] = UPSTREAM_FAIL_ANSWER,
	    [H1CLIENT_BROKEN] = UPSTREAM_FAIL_CONNECT, /* as libcurl's CURLE_PARTIAL_FILE */
	};

	upstream_end(r->u, r, map[err], why != NULL ? why : "");
}

static const struct h1client_callbacks upstream_h1_callbacks = {upstream_h1_head, upstream_h1_body,
								   upstream_h1_done};

static void
upstream_reap_cancelled(struct upstream *u)
{
	struct upstream_req *r, *next;

	if (!u->reap_pending || u->in_curl)
		return;
	u->reap_pending = 0;
	for (r = u->active; r != NULL; r = next) {
		next = r->next;
		if (r->cancelled && !r->native) {
			curl_multi_remove_handle(u->multi, r->easy);
			upstream_req_put(u, r);
		}
	}
}

static void
upstream_check_done(struct upstream *u)
{
	CURLMsg *msg;
	int left;

	upstream_reap_cancelled(u);
	while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
		struct upstream_req *r;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		upstream_finish(u, r, msg->data.result);
		upstream_reap_cancelled(u);
	}
}

void
upstream_cancel(struct upstream_req *r)
{
	struct upstream *u = r->u;

	if (r->native) {
		/* h1client lets go at once, even from inside its callbacks */
		h1client_cancel(&r->h1);
		if (r->in_cb)
			r->cancelled = 1; /* put away when the consumer returns */
		else
			upstream_req_put(u, r);
		return;
	}
	if (u->in_curl) {
		/* inside a curl callback: libcurl forbids removing the handle */
		r->cancelled = 1;
		u->reap_pending = 1;
		return;
	}
	curl_multi_remove_handle(u->multi, r->easy);
	upstream_req_put(u, r);
}

void
upstream_resume(struct upstream_req *r)
{
	struct upstream *u = r->u;

	if (!r->paused || r->cancelled)
		return;
	r->paused = 0;
	if (r->native) {
		h1client_resume(&r->h1); /* the held bytes come from the loop */
		return;
	}
	u->in_curl++;
	curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may deliver the held bytes right away */
	u->in_curl--;
	/* The transfer may have finished meanwhile; collect it on the next
	 * loop turn rather than calling the consumer back from inside its
	 * own callback. */
	ev_timer_stop(u->loop, &u->timer);
	ev_timer_set(&u->timer, 0.0, 0.0);
	ev_timer_start(u->loop, &u->timer);
}

size_t
upstream_inflight(const struct upstream *u)
{
	return u->ninflight;
}

/*
 * Sniffing: GET /_nodes/_all/http on a live node, and every node that is
 * not master-only joins the pool with its HTTP publish address.
 */

static void
upstream_sniff_head(void *arg, const struct upstream_head *head)
{
	struct upstream *u = arg;

	u->sniff_len = 0;
	if (head->status != 200)
		log_warnx("sniffing: %s answered %d", head->node, head->status);
}

static int
upstream_sniff_body(void *arg, const char *data, size_t len)
{
	struct upstream *u = arg;
	char *p;

	if (u->sniff_len + len > UPSTREAM_SNIFF_MAX)
		return 0; /* dropped: the parse below fails and says so */
	if ((p = realloc(u->sniff_buf, u->sniff_len + len + 1)) == NULL)
		return 0;
	u->sniff_buf = p;
	memcpy(p + u->sniff_len, data, len);
	u->sniff_len += len;
	return 0;
}

static int
upstream_master_only(json_t *roles)
{
	size_t i;
	json_t *v;

	if (!json_is_array(roles) || json_array_size(roles) == 0)
		return 0;
	json_array_foreach (roles, i, v)
		if (!json_is_string(v) || strcmp(json_string_value(v), "master") != 0)
			return 0;
	return 1;
}

static void
upstream_sniff_done(void *arg, const struct upstream_result *res)
{
	struct upstream *u = arg;
	json_t *doc, *nodes, *n;
	const char *key, *scheme = strncmp(u->nodes[0].url, "https:", 6) == 0 ? "https" : "http";
	json_error_t err;
	int added = 0;

	u->sniff = NULL;
	if (res->error != UPSTREAM_OK) {
		log_warnx("sniffing failed: %s", res->reason);
		return;
	}
	if ((doc = json_loadb(u->sniff_buf, u->sniff_len, 0, &err)) == NULL) {
		log_warnx("sniffing: bad _nodes answer: %s", err.text);
		return;
	}
	nodes = json_object_get(doc, "nodes");
	json_object_foreach (nodes, key, n) {
		const char *addr = json_string_value(json_object_get(json_object_get(n, "http"), "publish_address"));
		const char *slash;
		char url[300];
		if (addr == NULL || upstream_master_only(json_object_get(n, "roles")))
			continue;
		/* "host/1.2.3.4:9200" names the host too: keep the address */
		if ((slash = strchr(addr, '/')) != NULL)
			addr = slash + 1;
		snprintf(url, sizeof(url), "%s://%s", scheme, addr);
		if (upstream_add_node(u, url, 1) > 0) {
			log_info("sniffing: added node %s", url);
			added++;
		}
	}
	json_decref(doc);
	log_info("sniffing: %zu node(s) in the pool, %d new", u->nnodes, added);
}

static const struct upstream_callbacks upstream_sniff_cb = {upstream_sniff_head, upstream_sniff_body,
							     upstream_sniff_done};

static void
upstream_sniff(struct upstream *u)
{
	struct upstream_request rq = {.method = "GET", .path = "/_nodes/_all/http"};

	if (u->sniff != NULL)
		return;
	u->sniff_len = 0;
	u->sniff = upstream_send(u, &rq, &upstream_sniff_cb, u);
}

static void
upstream_on_sniff_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	upstream_sniff(w->data);
}

/* LINE with CRLF appended, malloc'ed (a header line for the native client). */
static char *
upstream_crlf(const char *line)
{
	size_t n = strlen(line);
	char *s = malloc(n + 3);

	if (s != NULL) {
		memcpy(s, line, n);
		memcpy(s + n, "\r\n", 3);
	}
	return s;
}

struct upstream *
upstream_new(struct ev_loop *loop, const struct config_upstream *cfg, struct metrics *metrics)
{
	struct upstream *u;
	char auth[2048];

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	u->loop = loop;
	u->cfg = cfg;
	u->metrics = metrics;
	ev_init(&u->timer, upstream_on_timer);
	u->timer.data = u;
	ev_init(&u->sniff_timer, upstream_on_sniff_timer);
	u->sniff_timer.data = u;
	if ((u->multi = curl_multi_init()) == NULL)
		goto fail;
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, upstream_socket_cb);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, upstream_timer_cb);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->max_connections_per_node);
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)(cfg->max_connections_per_node * cfg->nnodes));
	if (cfg->http_client == CONFIG_HTTP_CLIENT_NATIVE &&
	    (u->h1 = h1client_new(loop, cfg->max_connections_per_node, cfg->connect_timeout_ms,
				  cfg->request_timeout_ms)) == NULL)
		goto fail;

	for (size_t i = 0; i < cfg->nnodes; i++)
		if (upstream_add_node(u, cfg->nodes[i].url, 0) < 0)
			goto fail;
	auth[0] = '\0';
	if (cfg->api_key != NULL)
		snprintf(auth, sizeof(auth), "Authorization: ApiKey %s", cfg->api_key);
	else if (cfg->bearer != NULL)
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->bearer);
	if (auth[0] == '\0' && cfg->username != NULL && u->h1 != NULL) {
		/* libcurl does Basic itself; the native client gets it ready-made */
		char plain[1024];
		int n = snprintf(plain, sizeof(plain), "%s:%s", cfg->username, cfg->password);
		if (n < 0 || (size_t)n >= sizeof(plain) || (size_t)n * 4 / 3 + 64 >= sizeof(auth)) {
			explicit_bzero(plain, sizeof(plain));
			log_errorx("upstream username and password are too long");
			goto fail;
		}
		memcpy(auth, "Authorization: Basic ", 21);
		EVP_EncodeBlock((unsigned char *)auth + 21, (const unsigned char *)plain, n);
		explicit_bzero(plain, sizeof(plain));
		u->h1_auth = upstream_crlf(auth);
		explicit_bzero(auth, sizeof(auth));
		if (u->h1_auth == NULL)
			goto fail;
	}
	if (auth[0] != '\0') {
		u->auth_header = curl_slist_append(NULL, auth);
		if (u->h1 != NULL)
			u->h1_auth = upstream_crlf(auth);
		explicit_bzero(auth, sizeof(auth));
		if (u->auth_header == NULL || (u->h1 != NULL && u->h1_auth == NULL))
			goto fail;
	}
	if (u->h1 != NULL)
		log_debug("upstream: native HTTP/1.1 client for http:// nodes, libcurl for https://");
	else
		log_debug("upstream: libcurl for every node (http_client: curl)");
	if (!cfg->verify)
		log_warnx("upstream TLS certificates are NOT verified (verify: false)");
	if (cfg->sniff_on_start)
		upstream_sniff(u);
	if (cfg->sniff_interval_ms > 0) {
		double every = (double)cfg->sniff_interval_ms / 1000.0;
		ev_timer_set(&u->sniff_timer, every, every);
		ev_timer_start(loop, &u->sniff_timer);
	}
	return u;
fail:
	upstream_free(u);
	return NULL;
}

/* Frees the requests kept for reuse beyond the first KEEP. */
static void
upstream_free_reqs(struct upstream *u, size_t keep)
{
	struct upstream_req **rp = &u->free_reqs, *r;

	for (size_t n = 0; *rp != NULL && n < keep; n++)
		rp = &(*rp)->next;
	while ((r = *rp) != NULL) {
		*rp = r->next;
		if (r->easy != NULL)
			curl_easy_cleanup(r->easy);
		h1client_req_dispose(&r->h1);
		free(r->hdr);
		free(r);
	}
}

void
upstream_trim(struct upstream *u)
{
	upstream_free_reqs(u, UPSTREAM_KEEP_REQS);
}

void
upstream_free(struct upstream *u)
{
	struct upstream_req *r;

	if (u == NULL)
		return;
	/* requests still waiting for a connection first, so that closing the
	 * others' connections does not open new ones for them */
	for (r = u->active; r != NULL;) {
		struct upstream_req *next = r->next;
		if (r->native && r->h1.conn == NULL) {
			upstream_release(u, r);
			upstream_req_put(u, r);
		}
		r = next;
	}
	while ((r = u->active) != NULL) {
		upstream_release(u, r);
		upstream_req_put(u, r);
	}
	upstream_free_reqs(u, 0);
	h1client_free(u->h1);
	if (u->multi != NULL)
		curl_multi_cleanup(u->multi); /* closes cached connections via the socket callback */
	ev_timer_stop(u->loop, &u->timer);
	ev_timer_stop(u->loop, &u->sniff_timer);
	for (size_t i = 0; i < u->nnodes; i++)
		free(u->nodes[i].url);
	free(u->nodes);
	free(u->sniff_buf);
	if (u->h1_auth != NULL) {
		explicit_bzero(u->h1_auth, strlen(u->h1_auth));
		free(u->h1_auth);
	}
	curl_slist_free_all(u->auth_header);
	curl_slist_free_all(u->resolve);
	free(u);
}
