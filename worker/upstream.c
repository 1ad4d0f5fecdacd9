/*
 * upstream.c - the node pool, retries, sniffing and streaming described in
 * upstream.h, over the transports of worker/transport.h, of which it knows
 * only the interface.
 *
 * Each node is offered to the transports in turn at start (the native
 * HTTP/1.1 client first, unless "http_client: curl"; libcurl takes the
 * rest), and the one that takes it carries every attempt to that node.
 * A request keeps what a retry needs (method, path, body, and its header
 * lines, built once: Accept, Content-Type, Accept-Encoding, X-Opaque-Id and
 * the Authorization line computed at start); each attempt goes to the next
 * node, and the attempt's end, as the transport reports it, is judged here
 * the same way whatever carried it (upstream_end).
 *
 * A consumer may cancel from inside its own callbacks: the request is then
 * only marked (in_cb), and put away when the consumer has returned; the
 * transports are safe against a cancel from inside theirs.
 *
 * Host names are resolved once, at worker start, and the addresses handed
 * to the transports: Debian's libcurl would otherwise resolve on a thread,
 * and the worker is single-threaded by design.
 */
#include "worker/upstream.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/parse.h"
#include "lib/scoreboard.h"
#include "worker/curlclient.h"
#include "worker/h1client.h"
#include "worker/transport.h"

/* Requests kept for reuse when the worker is idle (upstream_trim): as many
 * as were ever in flight at once are kept while it is busy. */
#define UPSTREAM_KEEP_REQS 16
#define UPSTREAM_SNIFF_MAX (4u << 20) /* a _nodes answer larger than this is refused */
#define UPSTREAM_TRANSPORTS 2

struct upstream_node {
	char *url;              /* "http://10.0.0.1:9200" or with a path prefix */
	unsigned failures;      /* in a row */
	uint64_t dead_until_ms; /* 0: alive */
	int sniffed;
	int metric;           /* index in the shared metrics, -1 if none */
	struct transport *tp; /* the transport that took it */
	long tnode;           /* its index there */
};

struct upstream_req {
	struct upstream *u;
	const struct upstream_callbacks *cb; /* NULL while on the free list */
	void *arg;
	/* the request, kept for retries */
	char method[8];
	char *path; /* path_buf, or malloc'd when longer */
	char path_buf[128];
	char *body;
	size_t body_len;
	int idempotent;
	char *hdr; /* its header lines, built once per request */
	size_t hdr_len, hdr_cap;
	/* the current attempt */
	struct transport *tp;
	struct transport_req *att; /* NULL once its transport let go */
	size_t node;
	unsigned attempts;
	ev_tstamp attempt_at; /* when it started (the loop's time), for the node's latency metric */
	int head_delivered;
	int discard;               /* a retryable answer: swallow it, then retry */
	int in_cb;                 /* calling the consumer */
	int cancelled;             /* by the consumer, from inside that call: put away when it returns */
	struct upstream_req *next; /* free list, or the active list */
	struct upstream_req **prevp;
};

struct upstream {
	struct ev_loop *loop;
	const struct config_upstream *cfg;
	struct metrics *metrics;       /* the node names and states */
	struct metrics_shard *counts; /* this worker's shard */
	struct transport *transports[UPSTREAM_TRANSPORTS]; /* in the order nodes are offered */
	size_t ntransports;
	char *auth; /* "Authorization: ...\r\n", or NULL */
	ev_timer sniff_timer;
	struct upstream_node *nodes;
	size_t nnodes;
	size_t rr; /* round-robin position */
	struct upstream_req *free_reqs;
	struct upstream_req *active;
	size_t ninflight;
	struct upstream_req *sniff;
	char *sniff_buf;
	size_t sniff_len;
};

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
	uint64_t now = 0; /* read only if a node has been dead: no clock call per request */
	size_t best = 0;

	for (size_t k = 0; k < u->nnodes; k++) {
		size_t i = (u->rr + k) % u->nnodes;
		if (u->nodes[i].dead_until_ms != 0 && now == 0)
			now = scoreboard_now_ms();
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
 * one needs no lookup), and the first transport that serves such a node
 * takes it.  A sniffed node named by a host name is not resolved in the
 * middle of serving: it goes to a transport that resolves names itself.
 */
static int
upstream_node_transport(struct upstream *u, struct upstream_node *n)
{
	struct parse_node at;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	struct transport_node tn = {.url = n->url, .at = &at};
	unsigned char tmp[sizeof(struct in6_addr)];
	char port[8];
	int numeric, rc, ret = -1;

	if (parse_node(n->url, &at) != PARSE_OK) {
		log_errorx("upstream node %s: bad URL", n->url);
		return -1;
	}
	numeric = inet_pton(AF_INET, at.host, tmp) == 1 || inet_pton(AF_INET6, at.host, tmp) == 1;
	if (numeric || !n->sniffed) {
		snprintf(port, sizeof(port), "%u", at.port);
		hints.ai_flags = numeric ? AI_NUMERICHOST | AI_NUMERICSERV : AI_NUMERICSERV;
		if ((rc = getaddrinfo(at.host, port, &hints, &ai)) != 0) {
			log_errorx("upstream node %s: cannot resolve %s: %s", n->url, at.host, gai_strerror(rc));
			goto out;
		}
		tn.addr = ai->ai_addr;
		tn.addrlen = ai->ai_addrlen;
		tn.resolved_name = !numeric;
	}
	for (size_t i = 0; i < u->ntransports; i++) {
		long k = u->transports[i]->ops->node_add(u->transports[i], &tn);
		if (k == -1)
			continue;
		if (k < 0)
			goto out;
		n->tp = u->transports[i];
		n->tnode = k;
		ret = 0;
		goto out;
	}
	log_errorx("upstream node %s: no transport serves it", n->url);
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	parse_node_clear(&at);
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
	size_t plen;

	/* by letters, not strcmp: three calls a GET otherwise */
	if ((method[0] == 'G' && method[1] == 'E' && method[2] == 'T' && method[3] == '\0') ||
	    (method[0] == 'H' && strcmp(method, "HEAD") == 0))
		return 1;
	if (method[0] != 'P' || strcmp(method, "POST") != 0)
		return 0;
	plen = strcspn(path, "?");
	for (size_t i = 0; i < sizeof(readonly) / sizeof(readonly[0]); i++) {
		size_t n = strlen(readonly[i]);
		if (plen >= n && memcmp(path + plen - n, readonly[i], n) == 0)
			return 1;
	}
	return 0;
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
	return r;
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
	if (r->path != r->path_buf)
		free(r->path);
	free(r->body);
	r->path = r->body = NULL;
	r->att = NULL;
	r->cb = NULL;
	r->arg = NULL;
	r->next = u->free_reqs;
	u->free_reqs = r;
	u->ninflight--;
}

/* Lets go of R's current attempt, without a callback. */
static void
upstream_release(struct upstream_req *r)
{
	if (r->att != NULL) {
		r->tp->ops->cancel(r->att);
		r->att = NULL;
	}
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
	if (s != NULL) /* NULL: LEN bytes reserved, for the caller to fill */
		memcpy(r->hdr + r->hdr_len, s, len);
	r->hdr_len += len;
	return 0;
}

/* R's header lines, the same for every attempt and every transport. */
static int
upstream_hdr_build(struct upstream *u, struct upstream_req *r, const char *opaque_id, int accept_gzip)
{
	size_t idlen = opaque_id != NULL ? strnlen(opaque_id, 255) : 0, alen = u->auth != NULL ? strlen(u->auth) : 0;
	char *d;

	/* room for all of them once, then copies (a capacity check a piece was
	 * 5 calls a request) */
	r->hdr_len = 0;
	if (upstream_hdr_put(r, NULL, 26 + (r->body != NULL ? 32 : 0) + (accept_gzip ? 23 : 0) +
	                                      (idlen > 0 ? 13 + idlen + 2 : 0) + alen) != 0)
		return -1;
	d = r->hdr;
	memcpy(d, "Accept: application/json\r\n", 26);
	d += 26;
	if (r->body != NULL) {
		memcpy(d, "Content-Type: application/json\r\n", 32);
		d += 32;
	}
	if (accept_gzip) {
		memcpy(d, "Accept-Encoding: gzip\r\n", 23);
		d += 23;
	}
	if (idlen > 0) {
		memcpy(d, "X-Opaque-Id: ", 13);
		memcpy(d + 13, opaque_id, idlen);
		memcpy(d + 13 + idlen, "\r\n", 2);
		d += 13 + idlen + 2;
	}
	if (alen > 0)
		memcpy(d, u->auth, alen);
	return 0;
}

static const struct transport_callbacks upstream_transport_callbacks;

/* How long the current attempt has taken, in microseconds of the loop's
 * time (no clock call: the loop refreshed it when it woke for this). */
static uint64_t
upstream_attempt_us(const struct upstream *u, const struct upstream_req *r)
{
	ev_tstamp d = ev_now(u->loop) - r->attempt_at;

	return d > 0 ? (uint64_t)(d * 1e6) : 0;
}

/* Starts (or restarts) an attempt on the next node. */
static int
upstream_attempt(struct upstream *u, struct upstream_req *r)
{
	struct transport_request rq = {.method = r->method,
	                               .path = r->path,
	                               .headers = r->hdr,
	                               .headers_len = r->hdr_len,
	                               .body = r->body,
	                               .body_len = r->body_len,
	                               .idempotent = r->idempotent};

	r->node = upstream_pick(u);
	r->attempts++;
	r->attempt_at = ev_now(u->loop);
	r->head_delivered = r->discard = 0;
	r->tp = u->nodes[r->node].tp;
	r->att = r->tp->ops->start(r->tp, u->nodes[r->node].tnode, &rq, &upstream_transport_callbacks, r);
	return r->att != NULL ? 0 : -1;
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
	r->attempts = 0;
	r->att = NULL;
	upstream_strlcpy(r->method, rq->method, sizeof(r->method));
	{
		/* usual paths fit the request's own buffer: no malloc and free a request */
		size_t plen = strlen(rq->path);

		if (plen < sizeof(r->path_buf)) {
			memcpy(r->path_buf, rq->path, plen + 1);
			r->path = r->path_buf;
		} else {
			r->path = strdup(rq->path);
		}
	}
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
	if (r->path == NULL || (rq->body != NULL && r->body == NULL) ||
	    upstream_hdr_build(u, r, rq->opaque_id, rq->accept_gzip) != 0 || upstream_attempt(u, r) != 0) {
		upstream_release(r);
		upstream_req_put(u, r);
		return NULL;
	}
	return r;
}

/*
 * One attempt's answer, as its transport reports it.
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

/* The final head: the node's health, then deliver it, unless a retry
 * will follow (the answer is then swallowed). */
static void
upstream_on_head(void *arg, const struct transport_head *th)
{
	struct upstream_req *r = arg;
	struct upstream *u = r->u;
	struct upstream_head head;

	metrics_upstream(u->counts, u->nodes[r->node].metric, th->status == 429 || th->status >= 500,
	                 upstream_attempt_us(u, r));
	if (th->status == 429 || th->status >= 500) {
		char why[32];
		snprintf(why, sizeof(why), "status %d", th->status);
		upstream_node_dead(u, r->node, why);
	} else {
		upstream_node_alive(u, r->node);
	}
	if (upstream_retryable_status(th->status) && upstream_retries_left(r)) {
		r->discard = 1;
		return;
	}
	r->head_delivered = 1;
	head.status = th->status;
	head.content_length = th->content_length;
	head.content_type = th->content_type;
	head.content_encoding = th->content_encoding;
	head.elastic_product = th->elastic_product;
	head.node = u->nodes[r->node].url;
	r->in_cb = 1;
	r->cb->on_head(r->arg, &head);
	r->in_cb = 0;
	if (r->cancelled)
		upstream_req_put(u, r); /* its transport let go in upstream_cancel */
}

static int
upstream_on_body(void *arg, const char *data, size_t len)
{
	struct upstream_req *r = arg;
	int rc;

	if (r->discard)
		return 0;
	r->in_cb = 1;
	rc = r->cb->on_body(r->arg, data, len);
	r->in_cb = 0;
	if (r->cancelled) {
		upstream_req_put(r->u, r);
		return 0;
	}
	return rc;
}

/* The end of an attempt: retry, or report to the consumer.  R's transport
 * has let go of it. */
static void
upstream_on_end(void *arg, enum transport_end end, const char *why)
{
	struct upstream_req *r = arg;
	struct upstream *u = r->u;
	struct upstream_result res = {.error = UPSTREAM_OK};
	const struct upstream_callbacks *cb = r->cb;
	void *cbarg = r->arg;
	int retry = 0;

	r->att = NULL;
	if (end == TRANSPORT_OK && !r->head_delivered && !r->discard) {
		end = TRANSPORT_BAD_ANSWER; /* transports deliver a head first: never seen */
		why = "an answer without a head";
	}
	res.node = u->nodes[r->node].url;
	if (end != TRANSPORT_OK && !r->head_delivered && !r->discard)
		metrics_upstream(u->counts, u->nodes[r->node].metric, 1, upstream_attempt_us(u, r));
	switch (end) {
	case TRANSPORT_OK: retry = r->discard; break;
	case TRANSPORT_TIMEOUT:
		res.error = UPSTREAM_TIMEOUT;
		res.reason = "upstream timed out";
		upstream_node_dead(u, r->node, "timeout"); /* connect or request: the log says which */
		retry = !r->head_delivered && u->cfg->retry_on_timeout && upstream_retries_left(r);
		break;
	case TRANSPORT_CONNECT:
		res.error = UPSTREAM_REFUSED;
		res.reason = "upstream unavailable";
		upstream_node_dead(u, r->node, why);
		retry = !r->head_delivered && upstream_retries_left(r);
		break;
	case TRANSPORT_BAD_ANSWER:
		res.error = UPSTREAM_BAD_ANSWER;
		res.reason = "bad answer from upstream";
		log_warnx("upstream %s: %s", u->nodes[r->node].url, why);
		break;
	}
	if (retry) {
		const char *from = u->nodes[r->node].url;
		metrics_inc(&u->counts->upstream_retries);
		if (upstream_attempt(u, r) == 0) {
			log_info("upstream %s failed (%s); retry %u on %s", from,
			         end == TRANSPORT_OK ? "retryable status" : why, r->attempts - 1,
			         u->nodes[r->node].url);
			return;
		}
		upstream_release(r);
		res.error = UPSTREAM_REFUSED;
		res.reason = "upstream unavailable";
	}
	if (r->discard && res.error == UPSTREAM_OK) {
		/* out of retries on a retryable status: cannot happen, the last
		 * attempt is delivered; keep the client informed anyway */
		res.error = UPSTREAM_BAD_ANSWER;
		res.reason = "upstream unavailable";
	}
	res.attempts = r->attempts;
	upstream_req_put(u, r);
	cb->on_done(cbarg, &res);
}

static const struct transport_callbacks upstream_transport_callbacks = {upstream_on_head, upstream_on_body,
                                                                        upstream_on_end};

void
upstream_cancel(struct upstream_req *r)
{
	upstream_release(r); /* transports take a cancel from inside their callbacks */
	if (r->in_cb)
		r->cancelled = 1; /* put away when the consumer returns */
	else
		upstream_req_put(r->u, r);
}

void
upstream_resume(struct upstream_req *r)
{
	if (!r->cancelled && r->att != NULL)
		r->tp->ops->resume(r->att);
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
	json_array_foreach(roles, i, v) if (!json_is_string(v) || strcmp(json_string_value(v), "master") != 0) return 0;
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
	json_object_foreach(nodes, key, n)
	{
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

/* LINE with CRLF appended, malloc'ed (a header line). */
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

/* The Authorization line, computed once: ApiKey, Bearer, or Basic with
 * the password base64-encoded; nothing of it is ever logged. */
static int
upstream_auth(struct upstream *u)
{
	const struct config_upstream *cfg = u->cfg;
	char auth[2048];

	auth[0] = '\0';
	if (cfg->api_key != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: ApiKey %s", cfg->api_key);
	} else if (cfg->bearer != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->bearer);
	} else if (cfg->username != NULL) {
		char plain[1024];
		int n = snprintf(plain, sizeof(plain), "%s:%s", cfg->username, cfg->password);
		if (n < 0 || (size_t)n >= sizeof(plain) || (size_t)n * 4 / 3 + 64 >= sizeof(auth)) {
			explicit_bzero(plain, sizeof(plain));
			log_errorx("upstream username and password are too long");
			return -1;
		}
		memcpy(auth, "Authorization: Basic ", 21);
		EVP_EncodeBlock((unsigned char *)auth + 21, (const unsigned char *)plain, n);
		explicit_bzero(plain, sizeof(plain));
	}
	if (auth[0] == '\0')
		return 0;
	u->auth = upstream_crlf(auth);
	explicit_bzero(auth, sizeof(auth));
	return u->auth != NULL ? 0 : -1;
}

struct upstream *
upstream_new(struct ev_loop *loop, const struct config_upstream *cfg, struct metrics *metrics,
             struct metrics_shard *counts)
{
	struct upstream *u;
	struct transport *t;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	u->loop = loop;
	u->cfg = cfg;
	u->metrics = metrics;
	u->counts = counts;
	ev_init(&u->sniff_timer, upstream_on_sniff_timer);
	u->sniff_timer.data = u;
	/* the transports, in the order a node is offered to them */
	if (cfg->http_client == CONFIG_HTTP_CLIENT_NATIVE) {
		if ((t = h1client_transport_new(loop, cfg->max_connections_per_node, cfg->pipeline_depth,
		                                cfg->connect_timeout_ms, cfg->request_timeout_ms,
		                                cfg->node_backoff_max_ms)) == NULL)
			goto fail;
		u->transports[u->ntransports++] = t;
	}
	if ((t = curlclient_new(loop, cfg)) == NULL)
		goto fail;
	u->transports[u->ntransports++] = t;
	if (upstream_auth(u) != 0)
		goto fail;
	for (size_t i = 0; i < cfg->nnodes; i++)
		if (upstream_add_node(u, cfg->nodes[i].url, 0) < 0)
			goto fail;
	if (cfg->http_client == CONFIG_HTTP_CLIENT_NATIVE)
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
		free(r->hdr);
		free(r);
	}
}

void
upstream_trim(struct upstream *u)
{
	upstream_free_reqs(u, UPSTREAM_KEEP_REQS);
	for (size_t i = 0; i < u->ntransports; i++)
		u->transports[i]->ops->trim(u->transports[i]);
}

void
upstream_free(struct upstream *u)
{
	struct upstream_req *r;

	if (u == NULL)
		return;
	/* the transports abandon every attempt, without callbacks, and close
	 * their connections; then the requests are only put away */
	for (size_t i = 0; i < u->ntransports; i++)
		u->transports[i]->ops->free(u->transports[i]);
	while ((r = u->active) != NULL)
		upstream_req_put(u, r);
	upstream_free_reqs(u, 0);
	ev_timer_stop(u->loop, &u->sniff_timer);
	for (size_t i = 0; i < u->nnodes; i++)
		free(u->nodes[i].url);
	free(u->nodes);
	free(u->sniff_buf);
	if (u->auth != NULL) {
		explicit_bzero(u->auth, strlen(u->auth));
		free(u->auth);
	}
	free(u);
}
