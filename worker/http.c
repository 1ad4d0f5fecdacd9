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
#include "lib/route.h"
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

/* The request's pool is going away: it is over, answered or abandoned. */
static void
http_exchange_done(void *arg)
{
	struct http_exchange *ex = arg;
	struct worker *w = ex->w;
	uint64_t total = http_now_us() - ex->start_us;
	int status = ex->client_gone ? 499 : ex->req->res.status; /* nginx's "client closed request" */
	struct access_entry e = {.req = ex->req,
				 .client = ex->client,
				 .status = status,
				 .request_id = ex->request_id,
				 .worker = w->id,
				 .upstream_node = ex->upstream_node,
				 .upstream_us = ex->upstream_us,
				 .total_us = total};

	metrics_add(&w->metrics->in_flight, -1);
	metrics_add(&w->slot->in_flight, -1);
	metrics_request(w->metrics, ex->route, status, total);
	access_write(&w->access, &e);
}

static struct http_exchange *
http_exchange_start(struct worker *w, h2o_req_t *req)
{
	struct http_exchange *ex = h2o_mem_alloc_shared(&req->pool, sizeof(*ex), http_exchange_done);

	struct sockaddr_storage ss;
	socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);

	memset(ex, 0, sizeof(*ex));
	ex->req = req;
	ex->w = w;
	ex->start_us = http_now_us();
	ex->route = -1;
	if (sl == 0 || ss.ss_family == AF_UNIX ||
	    getnameinfo((struct sockaddr *)&ss, sl, ex->client, sizeof(ex->client), NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(ex->client, sizeof(ex->client), "-");
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

/* JSON, or for _msearch newline-delimited JSON (one document a line). */
static int
http_valid_json(const char *body, size_t len, int ndjson)
{
	json_error_t err;
	json_t *doc;

	if (!ndjson) {
		if ((doc = json_loadb(body, len, 0, &err)) == NULL)
			return 0;
		json_decref(doc);
		return 1;
	}
	while (len > 0) {
		const char *nl = memchr(body, '\n', len);
		size_t n = nl != NULL ? (size_t)(nl - body) : len;
		if (n > 0) {
			if ((doc = json_loadb(body, n, 0, &err)) == NULL)
				return 0;
			json_decref(doc);
		}
		body += n + (nl != NULL);
		len -= n + (nl != NULL);
	}
	return 1;
}

static void
http_proxy(struct worker *w, h2o_req_t *req, const char *method, const char *path, struct http_exchange *ex)
{
	struct upstream_request rq = {.method = method, .path = path, .opaque_id = ex->request_id};

	if (req->entity.base != NULL && strcmp(method, "HEAD") != 0) {
		rq.body = req->entity.base;
		rq.body_len = req->entity.len;
	}
	rq.accept_gzip = http_accepts_gzip(req);
	proxy_start(w, req, &rq, ex);
}

/* A configured route that matched PATH: checks, then the upstream call. */
static void
http_route(struct worker *w, h2o_req_t *req, const struct config_route *r, const struct route_vars *vars,
	   struct http_exchange *ex)
{
	char upath[HTTP_PATH_MAX + HTTP_QUERY_MAX + 2], bad[96], reason[160];
	const char *query = NULL, *method;
	size_t qlen = 0, body_len = req->entity.base != NULL ? req->entity.len : 0;
	ssize_t n, q;

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
	if (q > 0)
		upath[n] = '?';
	if (body_len > r->max_body) {
		http_send_error(req, 413, "request_too_large", "request body too large for this route");
		return;
	}
	if (body_len > 0 && r->json) {
		size_t ulen = (size_t)n;
		int nd = ulen >= 9 && memcmp(upath + ulen - 9, "/_msearch", 9) == 0;
		if (!http_valid_json(req->entity.base, body_len, nd)) {
			http_send_error(req, 400, "parse_error", "request body is not valid JSON");
			return;
		}
	}
	method = r->upstream_method == CONFIG_METHOD_POST ? "POST" : r->upstream_method == CONFIG_METHOD_HEAD ? "HEAD" : "GET";
	if (http_method(req) == CONFIG_METHOD_HEAD && r->upstream_method == CONFIG_METHOD_GET)
		method = "HEAD";
	http_proxy(w, req, method, upath, ex);
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
		if (!(method & get_head))
			http_method_not_allowed(req, get_head);
		else
			http_proxy(w, req, method == CONFIG_METHOD_HEAD ? "HEAD" : "GET", "/", ex);
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
			if (!(r->methods & method)) {
				allowed |= r->methods; /* another route may take this method */
				continue;
			}
			http_route(w, req, r, &vars, ex);
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
}
