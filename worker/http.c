/*
 * http.c - the worker's HTTP face.
 *
 * One h2o handler is registered on "/" and routes every request itself,
 * so that unknown paths and wrong methods get esgate's JSON errors rather
 * than h2o's plain-text ones.  Answers that need Elasticsearch start an
 * upstream request and finish in its callback; the per-request state lives
 * in the request's pool, and its dispose callback (the client went away)
 * cancels the upstream request.
 */
#include "worker/http.h"

#include <jansson.h>
#include <string.h>

#include "lib/log.h"
#include "worker/worker.h"

struct http_handler {
	h2o_handler_t super;
	struct worker *w;
};

/* An upstream call tied to one client request. */
struct http_pending {
	h2o_req_t *req;
	struct upstream_req *up; /* NULL once answered or cancelled */
};

static const h2o_iovec_t http_json_type = {H2O_STRLIT("application/json")};

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

static void
http_send_json(h2o_req_t *req, int status, const char *body, size_t len)
{
	req->res.status = status;
	req->res.reason = http_reason(status);
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

static void
http_method_not_allowed(h2o_req_t *req, const char *allow)
{
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
	http_send_error(req, 405, "method_not_allowed", "method not allowed for this path");
}

static int
http_is_get_or_head(h2o_req_t *req)
{
	return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
	       h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

static void
http_on_upstream(void *arg, const struct upstream_response *res)
{
	struct http_pending *p = arg;
	h2o_req_t *req = p->req;

	p->up = NULL;
	switch (res->error) {
	case UPSTREAM_OK:
		break;
	case UPSTREAM_TIMEOUT:
		http_send_error(req, 504, "upstream_timeout", res->reason);
		return;
	default:
		http_send_error(req, 502, "bad_gateway", res->reason);
		return;
	}
	req->res.status = res->status;
	req->res.reason = http_reason(res->status);
	req->res.content_length = res->body_len;
	if (res->content_type != NULL) {
		size_t n = strlen(res->content_type);
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
			       h2o_strdup(&req->pool, res->content_type, n).base, n);
	}
	if (res->elastic_product != NULL) {
		size_t n = strlen(res->elastic_product);
		h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-elastic-product"), 0, NULL,
				      h2o_strdup(&req->pool, res->elastic_product, n).base, n);
	}
	h2o_send_inline(req, res->body, res->body_len);
}

/* The request's pool is going away: the client closed, or we answered. */
static void
http_pending_dispose(void *arg)
{
	struct http_pending *p = arg;

	if (p->up != NULL) {
		upstream_cancel(p->up);
		p->up = NULL;
	}
}

static int
http_proxy(struct worker *w, h2o_req_t *req, const char *path)
{
	struct http_pending *p = h2o_mem_alloc_shared(&req->pool, sizeof(*p), http_pending_dispose);

	p->req = req;
	p->up = upstream_request(w->upstream, "GET", path, NULL, 0, http_on_upstream, p);
	if (p->up == NULL)
		http_send_error(req, 502, "bad_gateway", "cannot start upstream request");
	return 0;
}

static int
http_on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct worker *w = ((struct http_handler *)self)->w;
	h2o_iovec_t path = req->path_normalized;
	static const char health[] = "{\"status\":\"ok\"}";

	worker_count_request(w);
	if (h2o_memis(path.base, path.len, H2O_STRLIT("/"))) {
		if (!http_is_get_or_head(req)) {
			http_method_not_allowed(req, "GET, HEAD");
			return 0;
		}
		/* The original app's es.info(): upstream GET / with no parameters. */
		return http_proxy(w, req, "/");
	}
	if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
		if (!http_is_get_or_head(req)) {
			http_method_not_allowed(req, "GET, HEAD");
			return 0;
		}
		http_send_json(req, 200, health, sizeof(health) - 1);
		return 0;
	}
	http_send_error(req, 404, "not_found", "no route for this path");
	return 0;
}

void
http_configure(struct worker *w)
{
	const struct config *cfg = w->cfg;
	h2o_hostconf_t *host;
	h2o_pathconf_t *path;
	struct http_handler *h;

	h2o_config_init(&w->h2o_config);
	w->h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("esgate"));
	w->h2o_config.max_request_entity_size = 1024 * 1024;
	w->h2o_config.http1.req_timeout = cfg->keepalive_timeout_ms;
	w->h2o_config.http2.idle_timeout = cfg->keepalive_timeout_ms;
	/* 0 would let a draining HTTP/2 connection wait forever. */
	w->h2o_config.http2.graceful_shutdown_timeout = cfg->graceful_timeout_ms;

	host = h2o_config_register_host(&w->h2o_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	path = h2o_config_register_path(host, "/", 0);
	h = (struct http_handler *)h2o_create_handler(path, sizeof(*h));
	h->super.on_req = http_on_req;
	h->w = w;
}
