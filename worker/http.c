/*
 * http.c - the worker's HTTP face: the router.
 *
 * One h2o handler is registered on "/" and routes every request itself,
 * so that unknown paths and wrong methods get esgate's JSON errors rather
 * than h2o's plain-text ones.  Built-in paths first (/healthz, and "/",
 * the cluster info, unless turned off), then the configured routes in
 * file order.  A configured route reaches the upstream only through its
 * own templates: placeholder values are decoded, validated and encoded
 * again (lib/route.c), indices and query parameters pass allow-lists, and
 * bodies are size-capped and JSON-checked, so no client can reach an
 * upstream path that no route names.
 */
#include "worker/http.h"

#include <jansson.h>
#include <netdb.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/scoreboard.h"
#include "lib/status.h"
#include "lib/reqid.h"
#include "lib/dsl.h"
#include "lib/ratelimit.h"
#include "lib/route.h"
#include "worker/cache.h"
#include "worker/proxy.h"
#include "worker/worker.h"

#define HTTP_PATH_MAX 4096
#define HTTP_QUERY_MAX 4096

struct http_handler {
	h2o_handler_t super;
	struct worker *w;
};

uint64_t
http_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The client's address as text, formatted on first use: only the access
 * log and rate limits want it, so most requests never pay for it. */
static const char *
http_exchange_client(struct http_exchange *ex)
{
	if (ex->client[0] != '\0')
		return ex->client;
	if (ex->peerlen == 0) /* still answering: the connection is there */
		ex->peerlen = ex->req->conn->callbacks->get_peername(ex->req->conn, (struct sockaddr *)&ex->peer);
	if (ex->peerlen == 0 || ex->peer.ss_family == AF_UNIX ||
	    getnameinfo((struct sockaddr *)&ex->peer, ex->peerlen, ex->client, sizeof(ex->client), NULL, 0,
			NI_NUMERICHOST) != 0)
		snprintf(ex->client, sizeof(ex->client), "-");
	return ex->client;
}

/* The request's pool is going away: it is over, answered or abandoned. */
static void
http_exchange_done(void *arg)
{
	struct http_exchange *ex = arg;
	struct worker *w = ex->w;
	uint64_t total = http_now_us() - ex->start_us;
	int status = ex->client_gone ? 499 : ex->req->res.status; /* nginx's "client closed request" */

	metrics_add(&w->metrics->in_flight, -1);
	metrics_add(&w->slot->in_flight, -1);
	metrics_request(w->metrics, ex->route, status, total);
	if (w->access.fd >= 0) {
		struct access_entry e = {.req = ex->req,
					 .client = http_exchange_client(ex),
					 .status = status,
					 .request_id = ex->request_id,
					 .worker = w->id,
					 .upstream_node = ex->upstream_node,
					 .upstream_us = ex->upstream_us,
					 .total_us = total,
					 .cache = ex->cache};
		access_write(&w->access, &e);
	}
}

static struct http_exchange *
http_exchange_start(struct worker *w, h2o_req_t *req)
{
	struct http_exchange *ex = h2o_mem_alloc_shared(&req->pool, sizeof(*ex), http_exchange_done);

	memset(ex, 0, sizeof(*ex));
	ex->req = req;
	ex->w = w;
	ex->start_us = http_now_us();
	ex->route = -1;
	/* The access log names the client once the request is over, when its
	 * connection may be gone: take the address now (h2o caches it per
	 * connection, one getpeername(2) each).  Without an access log it is
	 * looked up only if a rate limit asks, while the request is served. */
	if (w->access.fd >= 0)
		ex->peerlen = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ex->peer);
	metrics_add(&w->metrics->in_flight, 1);
	metrics_add(&w->slot->in_flight, 1);
	return ex;
}

static const h2o_iovec_t http_json_type = {H2O_STRLIT("application/json")};

static void
http_send_json(h2o_req_t *req, int status, const char *body, size_t len)
{
	req->res.status = status;
	req->res.reason = status_reason(status);
	req->res.content_length = len;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, http_json_type.base,
		       http_json_type.len);
	h2o_send_inline(req, body, len);
}

void
http_send_error(h2o_req_t *req, int status, const char *type, const char *reason)
{
	json_t *doc = json_pack("{s:{s:s,s:s},s:i}", "error", "type", type, "reason", reason, "status", status);
	char buf[1024];
	size_t len = doc != NULL ? json_dumpb(doc, buf, sizeof(buf), JSON_COMPACT) : 0;

	json_decref(doc);
	if (len == 0 || len > sizeof(buf))
		len = (size_t)snprintf(buf, sizeof(buf), "{\"status\":%d}", status);
	http_send_json(req, status, buf, len);
}

static unsigned
http_method(h2o_req_t *req)
{
	return config_method_parse(req->method.base, req->method.len);
}

static void
http_method_not_allowed(h2o_req_t *req, unsigned allowed)
{
	char allow[32] = "";

	if (allowed & CONFIG_METHOD_GET)
		strcat(allow, "GET");
	if (allowed & CONFIG_METHOD_HEAD)
		strcat(allow, allow[0] ? ", HEAD" : "HEAD");
	if (allowed & CONFIG_METHOD_POST)
		strcat(allow, allow[0] ? ", POST" : "POST");
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, h2o_strdup(&req->pool, allow, SIZE_MAX).base,
		       strlen(allow));
	http_send_error(req, 405, "method_not_allowed", "method not allowed for this path");
}

/* The request id: the client's X-Request-Id if sane, else a new one.  It
 * is returned to the client and sent upstream as X-Opaque-Id. */
static const char *
http_request_id(struct worker *w, h2o_req_t *req)
{
	ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
	char *id;

	if (i >= 0 && reqid_valid(req->headers.entries[i].value.base, req->headers.entries[i].value.len)) {
		id = h2o_strdup(&req->pool, req->headers.entries[i].value.base, req->headers.entries[i].value.len).base;
	} else {
		id = h2o_mem_alloc_pool(&req->pool, REQID_GEN_LEN + 1);
		reqid_generate(&w->reqids, id);
	}
	h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, id, strlen(id));
	return id;
}

static int
http_accepts_gzip(h2o_req_t *req)
{
	ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, -1);

	return i >= 0 && h2o_strstr(req->headers.entries[i].value.base, req->headers.entries[i].value.len,
				    H2O_STRLIT("gzip")) != SIZE_MAX;
}

static int
http_valid_json(const char *body, size_t len)
{
	json_error_t err;
	json_t *doc;

	if ((doc = json_loadb(body, len, 0, &err)) == NULL)
		return 0;
	json_decref(doc);
	return 1;
}

/* BODY (NULL for none) is exactly what goes upstream: the caller decides,
 * so a search route can never fall back to the client's own bytes. */
static void
http_proxy(struct worker *w, h2o_req_t *req, const char *method, const char *path, const char *body,
	   size_t body_len, int sanitize, struct http_exchange *ex)
{
	struct upstream_request rq = {.method = method, .path = path, .opaque_id = ex->request_id};

	if (body != NULL && strcmp(method, "HEAD") != 0) {
		rq.body = body;
		rq.body_len = body_len;
	}
	rq.accept_gzip = http_accepts_gzip(req);
	proxy_start(w, req, &rq, ex, sanitize);
}

static h2o_iovec_t
http_header(h2o_req_t *req, const char *name, size_t len)
{
	ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);

	return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

/* Every line of header NAME joined with ",", as RFC 9110 allows: a proxy
 * that adds its own X-Forwarded-For line must not let the client's line
 * stand alone.  {NULL, 0} if absent. */
static h2o_iovec_t
http_header_joined(h2o_req_t *req, const char *name, size_t len)
{
	h2o_iovec_t out = {NULL, 0}, v;
	ssize_t i = -1;

	while ((i = h2o_find_header_by_str(&req->headers, name, len, i)) >= 0) {
		v = req->headers.entries[i].value;
		if (out.base == NULL) {
			out = v;
			continue;
		}
		out = h2o_concat(&req->pool, out, h2o_iovec_init(H2O_STRLIT(",")), v);
	}
	return out;
}

/* The route's CORS origin for this request's Origin, or NULL. */
static const char *
http_cors_origin(const struct config_route *r, h2o_req_t *req)
{
	h2o_iovec_t origin = http_header(req, H2O_STRLIT("origin"));

	if (r->cors.origins == NULL || origin.base == NULL)
		return NULL;
	for (size_t i = 0; i < r->cors.norigins; i++) {
		if (strcmp(r->cors.origins[i], "*") == 0)
			return "*";
		if (h2o_memis(origin.base, origin.len, r->cors.origins[i], strlen(r->cors.origins[i])))
			return h2o_strdup(&req->pool, origin.base, origin.len).base;
	}
	return NULL;
}

static void
http_add(h2o_req_t *req, const char *name, size_t namelen, const char *value)
{
	h2o_add_header_by_str(&req->pool, &req->res.headers, name, namelen, 0, NULL, value, strlen(value));
}

/* A CORS preflight, answered here and never forwarded. */
static void
http_preflight(h2o_req_t *req, const struct config_route *r)
{
	const char *origin = http_cors_origin(r, req);
	char methods[32] = "", headers[512] = "", age[32];

	if (origin == NULL) {
		http_send_error(req, 403, "cors_origin_not_allowed", "this origin may not call this route");
		return;
	}
	if (r->methods & CONFIG_METHOD_GET)
		strcat(methods, "GET");
	if (r->methods & CONFIG_METHOD_HEAD)
		strcat(methods, methods[0] ? ", HEAD" : "HEAD");
	if (r->methods & CONFIG_METHOD_POST)
		strcat(methods, methods[0] ? ", POST" : "POST");
	for (size_t i = 0; i < r->cors.nheaders; i++) {
		if (strlen(headers) + strlen(r->cors.headers[i]) + 3 >= sizeof(headers))
			break;
		if (i > 0)
			strcat(headers, ", ");
		strcat(headers, r->cors.headers[i]);
	}
	http_add(req, H2O_STRLIT("access-control-allow-origin"), origin);
	http_add(req, H2O_STRLIT("access-control-allow-methods"), h2o_strdup(&req->pool, methods, SIZE_MAX).base);
	if (headers[0] != '\0')
		http_add(req, H2O_STRLIT("access-control-allow-headers"), h2o_strdup(&req->pool, headers, SIZE_MAX).base);
	if (r->cors.max_age_ms > 0) {
		snprintf(age, sizeof(age), "%llu", (unsigned long long)(r->cors.max_age_ms / 1000));
		http_add(req, H2O_STRLIT("access-control-max-age"), h2o_strdup(&req->pool, age, SIZE_MAX).base);
	}
	if (strcmp(origin, "*") != 0)
		http_add(req, H2O_STRLIT("vary"), "Origin");
	req->res.status = 204;
	req->res.reason = status_reason(204);
	req->res.content_length = 0;
	h2o_send_inline(req, "", 0);
}

/* Takes N tokens of the COST (>= N) the whole request has (one per
 * search it runs): 1 if the client may go on; else a 429 with Retry-After
 * (none when COST is over the burst: it never will) was sent. */
static int
http_rate_limit(struct worker *w, h2o_req_t *req, const struct config_route *r, size_t route_index,
		struct http_exchange *ex, uint64_t n, uint64_t cost)
{
	const struct config *cfg = w->cfg;
	h2o_iovec_t xff = http_header_joined(req, H2O_STRLIT("x-forwarded-for"));
	struct ratelimit_addr addr;
	uint8_t key[RATELIMIT_KEY_MAX];
	char buf[RATELIMIT_ADDRSTRLEN], after[32];
	double retry = 0;
	size_t keylen;

	if (r->rate_limit.rate <= 0)
		return 1;
	if (ratelimit_client(http_exchange_client(ex), xff.base, xff.len, cfg->trusted_proxies, cfg->ntrusted_proxies, &addr, buf,
			     sizeof(buf)) == NULL)
		return 1; /* a unix-socket peer: a local proxy that limits itself */
	keylen = ratelimit_key(&addr, (uint32_t)route_index, key);
	if ((double)cost > r->rate_limit.burst) {
		http_send_error(req, 429, "too_many_requests", "this request costs more tokens than the route's burst");
		return 0;
	}
	if (ratelimit_take_n(w->ratelimit, key, keylen, r->rate_limit.rate, r->rate_limit.burst, n, scoreboard_now_ms(),
			     &retry) != 0)
		return 1;
	snprintf(after, sizeof(after), "%llu", (unsigned long long)(retry + 0.999));
	http_add(req, H2O_STRLIT("retry-after"), h2o_strdup(&req->pool, after, SIZE_MAX).base);
	http_send_error(req, 429, "too_many_requests", "rate limit exceeded for this client");
	return 0;
}

/*
 * A search route's query string and body through the firewall
 * (dsl_check_request(), lib/dsl.h): what goes upstream is the checked
 * document, never the client's bytes.  UQUERY is the route's allowed,
 * canonical query; it is rewritten without source parameters (the body
 * they carried is *BODY now).  Returns 0 with *BODY (malloc'ed, or NULL for
 * none) and *SEARCHES (what the request costs), or -1 after answering 400
 * or 413.
 */
static int
http_firewall(h2o_req_t *req, const struct config_route *r, const struct route_vars *vars, char *uquery,
	      char **body, size_t *body_len, uint64_t *searches)
{
	char reason[DSL_REASON_MAX + 64], kept[HTTP_QUERY_MAX + 1] = "", *piece, *save = NULL, *name, *value;
	size_t nparams = 0, max = 1, len;
	struct dsl_param *params;
	struct dsl_result res;
	ssize_t vlen;
	int rc;

	for (const char *c = uquery; *c != '\0'; c++)
		max += *c == '&';
	params = h2o_mem_alloc_pool(&req->pool, max * sizeof(*params));
	for (piece = strtok_r(uquery, "&", &save); piece != NULL; piece = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(piece, '=');
		size_t nlen = eq != NULL ? (size_t)(eq - piece) : strlen(piece);

		len = strlen(piece) + 1;
		name = h2o_mem_alloc_pool(&req->pool, len);
		value = h2o_mem_alloc_pool(&req->pool, len);
		vlen = 0;
		value[0] = '\0';
		if (route_decode(piece, nlen, name, len) < 0 ||
		    (eq != NULL && (vlen = route_decode(eq + 1, strlen(eq + 1), value, len)) < 0)) {
			http_send_error(req, 400, "query_not_allowed", "malformed query string");
			return -1;
		}
		params[nparams++] = (struct dsl_param){.name = name, .value = value, .len = (size_t)vlen};
		if (strcmp(name, "source") == 0 || strcmp(name, "source_content_type") == 0)
			continue; /* the checked body goes as application/json */
		if (kept[0] != '\0')
			strcat(kept, "&");
		strcat(kept, piece);
	}
	strcpy(uquery, kept);
	rc = dsl_check_request(&r->policy, r->search, (vars->set & ROUTE_VAR_INDEX) ? vars->index : NULL, params, nparams,
			       req->entity.base, req->entity.base != NULL ? req->entity.len : 0, NULL, &res, reason,
			       sizeof(reason));
	if (rc != DSL_OK) {
		if (rc == DSL_TOO_LARGE)
			http_send_error(req, 413, "request_too_large", reason);
		else
			http_send_error(req, 400, "query_not_allowed", reason);
		return -1;
	}
	*body = res.body;
	*body_len = res.len;
	*searches = res.searches;
	return 0;
}

/* A configured route that matched PATH: checks, then the upstream call. */
static void
http_route(struct worker *w, h2o_req_t *req, const struct config_route *r, size_t route_index,
	   const struct route_vars *vars, struct http_exchange *ex)
{
	char upath[HTTP_PATH_MAX + HTTP_QUERY_MAX + 2], bad[96], reason[160], *checked = NULL;
	const char *query = NULL, *method, *origin;
	size_t qlen = 0, body_len = req->entity.base != NULL ? req->entity.len : 0, checked_len = 0;
	ssize_t n, q;

	/* CORS first: a browser must be able to read a 429 too. */
	if ((origin = http_cors_origin(r, req)) != NULL) {
		http_add(req, H2O_STRLIT("access-control-allow-origin"), origin);
		if (strcmp(origin, "*") != 0)
			http_add(req, H2O_STRLIT("vary"), "Origin");
	}
	if (!http_rate_limit(w, req, r, route_index, ex, 1, 1))
		return;
	if ((vars->set & ROUTE_VAR_INDEX) && !route_index_allowed(vars->index, vars->index_len, r->indices, r->nindices)) {
		http_send_error(req, 403, "index_not_allowed", "this index is not served here");
		return;
	}
	if (req->query_at != SIZE_MAX) {
		query = req->path.base + req->query_at + 1;
		qlen = req->path.len - req->query_at - 1;
	}
	if ((n = route_build(r->upstream_tmpl, vars, upath, HTTP_PATH_MAX)) < 0) {
		http_send_error(req, 414, "path_too_long", "the upstream path would be too long");
		return;
	}
	q = route_query(query != NULL ? query : "", qlen, r->params, r->nparams, upath + n + 1, HTTP_QUERY_MAX, bad,
			sizeof(bad));
	if (q < 0) {
		if (strcmp(bad, "malformed query string") == 0 || strcmp(bad, "query string too long") == 0)
			snprintf(reason, sizeof(reason), "%s", bad);
		else
			snprintf(reason, sizeof(reason), "query parameter \"%s\" is not allowed here", bad);
		http_send_error(req, 400, "illegal_argument", reason);
		return;
	}
	if (body_len > r->max_body) {
		http_send_error(req, 413, "request_too_large", "request body too large for this route");
		return;
	}
	method = r->upstream_method == CONFIG_METHOD_POST ? "POST" : r->upstream_method == CONFIG_METHOD_HEAD ? "HEAD" : "GET";
	if (r->search >= 0) {
		uint64_t searches = 1;

		if (http_firewall(req, r, vars, upath + n + 1, &checked, &checked_len, &searches) != 0)
			return;
		/* each search past the first costs a token of its own */
		if (searches > 1 && !http_rate_limit(w, req, r, route_index, ex, searches - 1, searches)) {
			free(checked);
			return;
		}
		q = (ssize_t)strlen(upath + n + 1);
		if (checked != NULL)
			method = "POST"; /* the checked body goes as a POST: curl sends no GET body */
	} else if (body_len > 0 && r->json) {
		if (!http_valid_json(req->entity.base, body_len)) {
			http_send_error(req, 400, "parse_error", "request body is not valid JSON");
			return;
		}
	}
	if (q > 0)
		upath[n] = '?';
	if (http_method(req) == CONFIG_METHOD_HEAD && r->upstream_method == CONFIG_METHOD_GET)
		method = "HEAD";
	if (r->cache_ttl_ms > 0 || r->coalesce) {
		/* Only now, past every check above: a hit must not skip one. */
		const struct cache_route *cr = &w->cache_routes[1 + route_index];
		if (http_method(req) == CONFIG_METHOD_GET && strcmp(method, "GET") == 0 && checked == NULL &&
		    body_len == 0) {
			cache_serve(w->cache, req, ex, cr, upath, http_accepts_gzip(req));
			return;
		}
		cache_bypass(w->cache, req, ex, cr);
	}
	/* a search route sends only what the firewall made, nothing else */
	if (r->search >= 0)
		http_proxy(w, req, method, upath, checked, checked_len, !r->errors_detail, ex);
	else
		http_proxy(w, req, method, upath, body_len > 0 ? req->entity.base : NULL, body_len, !r->errors_detail, ex);
	free(checked);
}

static void
http_metrics(struct worker *w, h2o_req_t *req)
{
	size_t len;
	char *text = metrics_render(w->metrics, &len);
	static const char type[] = "text/plain; version=0.0.4; charset=utf-8";

	if (text == NULL) {
		http_send_error(req, 500, "internal_error", "out of memory");
		return;
	}
	req->res.status = 200;
	req->res.reason = "OK";
	req->res.content_length = len;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, sizeof(type) - 1);
	h2o_send_inline(req, text, len); /* copies */
	free(text);
}

/* GET /_esgate/status: what this esgate is, and its workers, read from the
 * scoreboard shared with the master. */
static void
http_status(struct worker *w, h2o_req_t *req)
{
	static const char *const states[] = {"starting", "ready", "draining", "stopping"};
	json_t *doc, *workers = json_array();
	uint64_t now = scoreboard_now_ms();
	size_t alive, nodes = upstream_nodes(w->upstream, &alive);
	char *text;

	for (uint32_t i = 0; i < w->sb->nslots; i++) {
		const struct scoreboard_slot *s = &w->sb->slots[i];
		int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
		if (pid == 0)
			continue;
		json_array_append_new(workers, json_pack("{s:i,s:i,s:i,s:f,s:I,s:s}", "pid", (int)pid, "id", (int)s->id,
							 "generation", (int)s->generation, "age_seconds",
							 (double)(now - s->started_ms) / 1000.0, "requests",
							 (json_int_t)__atomic_load_n(&s->requests, __ATOMIC_RELAXED),
							 "state", st < 4 ? states[st] : "unknown"));
	}
	doc = json_pack("{s:s,s:s,s:i,s:I,s:i,s:o,s:{s:i,s:i}}", "version", ESGATE_VERSION, "config", w->cfg->path,
			"generation", (int)__atomic_load_n(&w->metrics->generation, __ATOMIC_RELAXED),
			"uptime_seconds", (json_int_t)(time(NULL) - (time_t)w->metrics->started_unix), "served_by",
			(int)getpid(), "workers", workers, "upstream", "nodes", (int)nodes, "alive", (int)alive);
	text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(doc);
	if (text == NULL) {
		http_send_error(req, 500, "internal_error", "out of memory");
		return;
	}
	http_send_json(req, 200, text, strlen(text));
	free(text);
}

/* h2o 2.2.5 keeps Content-Length and Transfer-Encoding out of req->headers:
 * it frames the body by Transfer-Encoding, else by the first Content-Length,
 * and says nothing.  A request with both, or with two different
 * Content-Lengths, is how a request is smuggled past a proxy in front
 * (RFC 9112 6.1, 6.3), so it is refused and the connection closed.  The
 * request head is still at the start of the socket's input buffer (h2o
 * consumes it once the response is sent; names are lower-cased in place). */
static int
http_ambiguous_framing(h2o_req_t *req)
{
	h2o_socket_t *sock;
	const char *p, *end, *eol, *cl = NULL;
	size_t cllen = 0;
	int te = 0;

	if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL ||
	    (sock = req->conn->callbacks->get_socket(req->conn)) == NULL || sock->input == NULL)
		return 0;
	p = sock->input->bytes;
	end = p + sock->input->size;
	if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
		return 0;
	for (p = eol + 1; p < end; p = eol + 1) {
		const char *v, *ve;

		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return 0;
		if (eol == p || (eol == p + 1 && *p == '\r'))
			break; /* end of the head */
		ve = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
		if ((size_t)(ve - p) > 15 && memcmp(p, "content-length:", 15) == 0) {
			for (v = p + 15; v < ve && (*v == ' ' || *v == '\t'); v++)
				;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (cl != NULL && !h2o_memis(cl, cllen, v, (size_t)(ve - v)))
				return 1;
			cl = v;
			cllen = (size_t)(ve - v);
		} else if ((size_t)(ve - p) > 18 && memcmp(p, "transfer-encoding:", 18) == 0) {
			te = 1;
		}
	}
	return te && cl != NULL;
}

/* Refuses a request whose framing is ambiguous; 1 if it did. */
static int
http_refuse_smuggling(struct worker *w, h2o_req_t *req, struct http_exchange *ex)
{
	if (!http_ambiguous_framing(req))
		return 0;
	ex->route = w->metric_unmatched;
	req->http1_is_persistent = 0;
	http_send_error(req, 400, "invalid_request", "ambiguous message framing");
	return 1;
}

/* The host of a separate metrics listener: /metrics and /_esgate/status,
 * nothing else. */
static int
http_on_metrics_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct worker *w = ((struct http_handler *)self)->w;
	size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
	struct http_exchange *ex = http_exchange_start(w, req);
	int is_metrics = h2o_memis(req->path.base, plen, H2O_STRLIT("/metrics"));

	worker_count_request(w);
	ex->request_id = http_request_id(w, req);
	if (http_refuse_smuggling(w, req, ex))
		return 0;
	ex->route = w->metric_unmatched;
	if (!w->cfg->metrics || (!is_metrics && !h2o_memis(req->path.base, plen, H2O_STRLIT("/_esgate/status")))) {
		http_send_error(req, 404, "not_found", "only /metrics and /_esgate/status here");
		return 0;
	}
	ex->route = is_metrics ? w->metric_metrics : w->metric_status;
	if (!(http_method(req) & (CONFIG_METHOD_GET | CONFIG_METHOD_HEAD)))
		http_method_not_allowed(req, CONFIG_METHOD_GET | CONFIG_METHOD_HEAD);
	else if (is_metrics)
		http_metrics(w, req);
	else
		http_status(w, req);
	return 0;
}

static int
http_on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct worker *w = ((struct http_handler *)self)->w;
	const struct config *cfg = w->cfg;
	size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
	const char *path = req->path.base, *reason = NULL;
	static const char health[] = "{\"status\":\"ok\"}";
	unsigned method = http_method(req), allowed = 0, get_head = CONFIG_METHOD_GET | CONFIG_METHOD_HEAD;
	struct http_exchange *ex = http_exchange_start(w, req);
	struct route_vars vars;

	worker_count_request(w);
	ex->request_id = http_request_id(w, req);
	if (http_refuse_smuggling(w, req, ex))
		return 0;

	if (h2o_memis(path, plen, H2O_STRLIT("/healthz"))) {
		ex->route = w->metric_health;
		if (!(method & get_head))
			http_method_not_allowed(req, get_head);
		else
			http_send_json(req, 200, health, sizeof(health) - 1);
		return 0;
	}
	if (cfg->metrics && !cfg->metrics_listen &&
	    (h2o_memis(path, plen, H2O_STRLIT("/metrics")) || h2o_memis(path, plen, H2O_STRLIT("/_esgate/status")))) {
		int is_metrics = path[1] == 'm';
		ex->route = is_metrics ? w->metric_metrics : w->metric_status;
		if (!(method & get_head))
			http_method_not_allowed(req, get_head);
		else if (is_metrics)
			http_metrics(w, req);
		else
			http_status(w, req);
		return 0;
	}
	if (cfg->cluster_info && h2o_memis(path, plen, H2O_STRLIT("/"))) {
		/* The original app's es.info(): upstream GET / with no parameters. */
		ex->route = w->metric_root;
		if (!(method & get_head)) {
			http_method_not_allowed(req, get_head);
		} else if (w->cache != NULL && (cfg->cluster_info_cache_ttl_ms > 0 || cfg->cluster_info_coalesce)) {
			if (method == CONFIG_METHOD_GET && (req->entity.base == NULL || req->entity.len == 0)) {
				cache_serve(w->cache, req, ex, &w->cache_routes[0], "/", http_accepts_gzip(req));
				return 0;
			}
			cache_bypass(w->cache, req, ex, &w->cache_routes[0]);
			http_proxy(w, req, method == CONFIG_METHOD_HEAD ? "HEAD" : "GET", "/", NULL, 0, 0, ex);
		} else {
			/* the cluster's own info document: passed on as it comes */
			http_proxy(w, req, method == CONFIG_METHOD_HEAD ? "HEAD" : "GET", "/", NULL, 0, 0, ex);
		}
		return 0;
	}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct config_route *r = &cfg->routes[i];
		switch (route_match(r->path_tmpl, path, plen, &vars, &reason)) {
		case ROUTE_NOMATCH:
			continue;
		case ROUTE_BAD:
			ex->route = w->route_metric[i];
			http_send_error(req, 400, "invalid_request", reason != NULL ? reason : "invalid path");
			return 0;
		case ROUTE_MATCH:
			ex->route = w->route_metric[i];
			if (method == 0 && r->cors.origins != NULL &&
			    h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"))) {
				http_preflight(req, r);
				return 0;
			}
			if (!(r->methods & method)) {
				allowed |= r->methods; /* another route may take this method */
				continue;
			}
			http_route(w, req, r, i, &vars, ex);
			return 0;
		}
	}
	if (allowed != 0) {
		http_method_not_allowed(req, allowed);
	} else {
		ex->route = w->metric_unmatched;
		http_send_error(req, 404, "not_found", "no route for this path");
	}
	return 0;
}

void
http_configure(struct worker *w)
{
	const struct config *cfg = w->cfg;
	h2o_hostconf_t *host;
	h2o_pathconf_t *path;
	struct http_handler *h;
	uint64_t max_body = 0;

	for (size_t i = 0; i < cfg->nroutes; i++)
		if (cfg->routes[i].max_body > max_body)
			max_body = cfg->routes[i].max_body;
	h2o_config_init(&w->h2o_config);
	w->h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("esgate"));
	/* h2o buffers a whole body before the handler runs, and answers a
	 * plain-text 413 past this cap; routes check their own max_body and
	 * answer JSON.  Twice the largest route cap (at least 64 KiB) lets
	 * most oversized bodies get the JSON answer without letting a client
	 * make a worker hold much more than any route takes. */
	w->h2o_config.max_request_entity_size = max_body * 2 > 65536 ? max_body * 2 : 65536;
	w->h2o_config.http1.req_timeout = cfg->keepalive_timeout_ms;
	w->h2o_config.http2.idle_timeout = cfg->keepalive_timeout_ms;
	/* 0 would let a draining HTTP/2 connection wait forever. */
	w->h2o_config.http2.graceful_shutdown_timeout = cfg->graceful_timeout_ms;

	host = h2o_config_register_host(&w->h2o_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	path = h2o_config_register_path(host, "/", 0);
	h = (struct http_handler *)h2o_create_handler(path, sizeof(*h));
	h->super.on_req = http_on_req;
	h->w = w;
	w->hosts_main[0] = host;
	/* A separate metrics listener gets a host of its own: its connections
	 * can reach /metrics and nothing else. */
	host = h2o_config_register_host(&w->h2o_config, h2o_iovec_init(H2O_STRLIT("metrics")), 65535);
	path = h2o_config_register_path(host, "/", 0);
	h = (struct http_handler *)h2o_create_handler(path, sizeof(*h));
	h->super.on_req = http_on_metrics_req;
	h->w = w;
	w->hosts_metrics[0] = host;
	reqid_seed(&w->reqids);

	/* Metric series by route: the path templates, and the built-ins. */
	w->metric_root = metrics_route(w->metrics, "/");
	w->metric_health = metrics_route(w->metrics, "/healthz");
	w->metric_metrics = metrics_route(w->metrics, "/metrics");
	w->metric_status = metrics_route(w->metrics, "/_esgate/status");
	w->metric_unmatched = metrics_route(w->metrics, "unmatched");
	if ((w->route_metric = calloc(cfg->nroutes + 1, sizeof(*w->route_metric))) == NULL)
		log_fatal("calloc");
	for (size_t i = 0; i < cfg->nroutes; i++)
		w->route_metric[i] = metrics_route(w->metrics, cfg->routes[i].path);

	/* The micro-cache, only when a route asks for it. */
	if ((w->cache_routes = calloc(cfg->nroutes + 1, sizeof(*w->cache_routes))) == NULL)
		log_fatal("calloc");
	w->cache_routes[0] = (struct cache_route){.id = 0,
						  .ttl_ms = cfg->cluster_info_cache_ttl_ms,
						  .coalesce = cfg->cluster_info_coalesce,
						  .sanitize = 0, /* GET / is never cut down */
						  .metric = w->metric_root};
	int caching = cfg->cluster_info && (cfg->cluster_info_cache_ttl_ms > 0 || cfg->cluster_info_coalesce);
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct config_route *r = &cfg->routes[i];
		w->cache_routes[1 + i] = (struct cache_route){.id = (unsigned)(1 + i),
							      .ttl_ms = r->cache_ttl_ms,
							      .coalesce = r->coalesce,
							      .sanitize = !r->errors_detail,
							      .metric = w->route_metric[i]};
		caching |= r->cache_ttl_ms > 0 || r->coalesce;
	}
	if (caching)
		w->cache = cache_new(w);
}
