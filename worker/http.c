/*
 * http.c - the worker's HTTP face (see http.h).
 *
 * One h2o handler is registered on "/" of each host and takes every
 * request itself, so that unknown paths and wrong methods get esgate's
 * JSON errors rather than h2o's plain-text ones.  It opens the request's
 * exchange (in-flight counters, request id), refuses ambiguous HTTP/1.1
 * framing, and hands the request to the pipeline, whose first stage finds
 * its route in the host's table (worker/pipeline.h, worker/router.h).
 *
 * What h2o answers itself, before a request reaches that handler (HTTP/1:
 * a body past max_request_entity_size 413, a broken Content-Length or
 * chunked body 400, an unknown Expect 417; HTTP/2: headers h2o refuses
 * 400), goes through h2o_send_error_generic, which binds the host's
 * fallback path: a filter there rewrites those plain-text answers as
 * esgate's JSON errors (the same shape, type and reason phrase) and opens
 * an exchange for each (request id, metrics, access log).
 */
#include "worker/http.h"

#include <stdlib.h>
#include <string.h>

#include "lib/jwt.h"
#include "lib/log.h"
#include "lib/status.h"
#include "worker/guard.h"
#include "worker/pipeline.h"

struct http_handler {
	h2o_handler_t super;
	struct http *h;
	const struct router_table *table;
	h2o_iovec_t hsts; /* "max-age=N" for a TLS listener's Strict-Transport-Security, or empty */
};

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

	/* A request with neither header has no entity: libh2o 2.2.5's HTTP/1
	 * code (lib/http1.c) reads one, and sets req->entity non-NULL, exactly
	 * when it saw a Content-Length or a Transfer-Encoding (h2o_init_request
	 * zeroes it for every request); a GET is not scanned. */
	if (req->entity.base == NULL)
		return 0;
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

/* Answers EX's request 400 for REASON, before any route: counted as
 * unmatched; an HTTP/1 connection closes after it (what follows on it
 * cannot be trusted to be framed as the client meant). */
static void
http_refuse(struct exchange *ex, const char *reason)
{
	ex->route = ex->env->metric_unmatched;
	ex->req->http1_is_persistent = 0;
	exchange_send_error(ex->req, 400, "invalid_request", reason);
}

/* RFC 9112 3.2.2: a server MUST accept a request target in absolute form
 * ("GET http://host/path?q HTTP/1.1"); libh2o 2.2.5 keeps it whole as the
 * path.  The routes see the path and query that follow the authority (the
 * authority, as a Host header, is not esgate's to route by). */
static void
http_origin_form(h2o_req_t *req)
{
	const char *p = req->path.base, *end = p + req->path.len, *a;
	size_t skip;

	if (req->path.len < 8 || p[0] == '/' || req->version >= 0x200)
		return;
	if (h2o_lcstris(p, 7, H2O_STRLIT("http://")))
		a = p + 7;
	else if (h2o_lcstris(p, 8, H2O_STRLIT("https://")))
		a = p + 8;
	else
		return;
	while (a < end && *a != '/' && *a != '?' && *a != '#')
		a++;
	skip = (size_t)(a - p);
	if (a < end && *a == '/') {
		req->path = h2o_iovec_init(a, (size_t)(end - a));
		if (req->query_at != SIZE_MAX)
			req->query_at -= skip;
	} else { /* no path: "/" and what follows */
		char *np = h2o_mem_alloc_pool(&req->pool, (size_t)(end - a) + 1);

		np[0] = '/';
		memcpy(np + 1, a, (size_t)(end - a));
		req->path = h2o_iovec_init(np, (size_t)(end - a) + 1);
		req->query_at = req->query_at != SIZE_MAX ? req->query_at - skip + 1 : SIZE_MAX;
	}
}

/* 1 if REQ's target (after http_origin_form) is a path.  Anything else
 * routes nothing and is refused, as nginx and HAProxy refuse it: "foo",
 * "*" (OPTIONS), "host:443" (CONNECT), "?q", another scheme's URL; over
 * HTTP/2 an empty :path, malformed by RFC 9113 8.3.1, which libh2o
 * 2.2.5 lets through. */
static int
http_target_is_path(const h2o_req_t *req)
{
	return req->path.len > 0 && req->path.base[0] == '/';
}

static int
http_on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct http_handler *hh = (struct http_handler *)self;
	struct http *h = hh->h;
	struct guard_conn *gc = guard_on_request(req);
	/* an HTTP/1 request on a guarded connection: its exchange is ended by
	 * http_on_dispose (one request at a time per connection), others by
	 * their pool's release */
	struct exchange *ex = exchange_start(&h->env, req, gc != NULL);

	if (gc != NULL) {
		ex->conn_done = guard_request_done;
		ex->conn_done_arg = gc;
		guard_request_set(gc, ex);
	}
	h->on_request(h->on_request_arg);
	if (hh->hsts.len != 0)
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, NULL, hh->hsts.base,
		               hh->hsts.len);
	if (http_ambiguous_framing(req)) {
		http_refuse(ex, "ambiguous message framing");
		return 0;
	}
	http_origin_form(req);
	if (!http_target_is_path(req)) {
		http_refuse(ex, "request target is not a path");
		return 0;
	}
	ex->table = hh->table;
	ex->pipeline = &hh->table->entry;
	pipeline_run(ex);
	return 0;
}

/* h2o's dispose of a request, through its loggers (libh2o 2.2.5's
 * h2o_dispose_request calls each logger of the request's path, for a
 * request that was read and routed, before it clears the request's pool):
 * the end of an HTTP/1 exchange that http_on_req handed to the guard. */
static void
http_on_dispose(h2o_logger_t *self, h2o_req_t *req)
{
	struct exchange *ex = guard_request_take(req);

	(void)self;
	if (ex != NULL)
		exchange_end(ex);
}

/* ---- h2o's own error answers, as JSON ----------------------------------------- */

struct http_h2o_error {
	h2o_ostream_t super;
};

struct http_h2o_error_filter {
	h2o_filter_t super;
	struct http *h;
};

/* The one body h2o_send_inline passes (none for HEAD): h2o's text becomes
 * the reason of esgate's error document, the head's length and type follow. */
static void
http_h2o_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
	const char *type, *why = "request body too large for this route"; /* stage_check's, for 413 */
	char reason[128], doc[EXCHANGE_ERROR_DOC_MAX];
	size_t n = 0;
	h2o_iovec_t out;
	ssize_t i;

	switch (req->res.status) {
	case 400: type = "invalid_request"; break;
	case 404: type = "not_found"; break;
	case 413: type = "request_too_large"; break;
	case 417: type = "expectation_failed"; break;
	default: type = req->res.status >= 500 ? "bad_gateway" : "invalid_request"; break;
	}
	if (req->res.status != 413) { /* h2o's text, printable ASCII */
		for (size_t k = 0; k < bufcnt; k++)
			for (size_t j = 0; j < bufs[k].len && n < sizeof(reason) - 1; j++) {
				unsigned char c = (unsigned char)bufs[k].base[j];
				reason[n++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : ' ';
			}
		reason[n] = '\0';
		why = reason;
	}
	out = h2o_strdup(&req->pool, doc, exchange_error_doc(doc, sizeof(doc), req->res.status, type, why));
	req->res.content_length = out.len;
	req->res.reason = status_reason(req->res.status);
	if ((i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1)) >= 0)
		req->res.headers.entries[i].value = h2o_iovec_init(H2O_STRLIT("application/json"));
	h2o_ostream_send_next(self, req, &out, bufcnt > 0 ? 1 : 0, state);
}

/* Only h2o's own answers reach the fallback path (esgate's handler takes
 * every path at "/"): its errors, plain text from h2o_send_error_generic. */
static void
http_h2o_error_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
	struct http_h2o_error_filter *f = (struct http_h2o_error_filter *)self;
	ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);

	if (req->res.status >= 400 && i >= 0 &&
	    h2o_memis(req->res.headers.entries[i].value.base, req->res.headers.entries[i].value.len,
	              H2O_STRLIT("text/plain; charset=utf-8"))) {
		struct http_h2o_error *e = (void *)h2o_add_ostream(req, sizeof(*e), slot);
		/* an exchange of its own, as any answer: a request id, the
		 * "unmatched" series of the metrics, a line in the access log */
		struct exchange *ex = exchange_start(&f->h->env, req, 0);

		ex->route = f->h->env.metric_unmatched;

		e->super.do_send = http_h2o_error_send;
		slot = &e->super.next;
	}
	h2o_setup_next_ostream(req, slot);
}

static h2o_hostconf_t *
http_host(struct http *h, const char *name, const struct router_table *table, uint64_t hsts)
{
	h2o_hostconf_t *host = h2o_config_register_host(&h->h2o_config, h2o_iovec_init(name, strlen(name)), 65535);
	h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
	struct http_handler *hh = (struct http_handler *)h2o_create_handler(path, sizeof(*hh));
	struct http_h2o_error_filter *ef =
	    (struct http_h2o_error_filter *)h2o_create_filter(&host->fallback_path, sizeof(*ef));

	hh->super.on_req = http_on_req;
	h2o_create_logger(path, sizeof(h2o_logger_t))->log_access = http_on_dispose;
	ef->super.on_setup_ostream = http_h2o_error_setup;
	ef->h = h;
	hh->h = h;
	hh->table = table;
	if (hsts > 0) {
		char buf[48];
		int n = snprintf(buf, sizeof(buf), "max-age=%llu", (unsigned long long)hsts);
		hh->hsts = h2o_strdup(NULL, buf, (size_t)n);
	}
	return host;
}

h2o_hostconf_t **
http_hosts(struct http *h, const struct tls_listener *t, int local)
{
	const struct config *cfg = h->env.cfg;

	if (t != NULL && h->hosts_hsts != NULL)
		for (size_t i = 0; i < cfg->nlisten; i++)
			if (cfg->listen[i].tls == t && h->hosts_hsts[4 * i] != NULL)
				return &h->hosts_hsts[4 * i + (local ? 2 : 0)];
	return local ? h->hosts_local : h->hosts_main;
}

void
http_configure(struct http *h)
{
	const struct config *cfg = h->env.cfg;
	uint64_t max_body = 0;

	for (size_t i = 0; i < cfg->nroutes; i++)
		if (cfg->routes[i].max_body > max_body)
			max_body = cfg->routes[i].max_body;
	h2o_config_init(&h->h2o_config);
	h->h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("esgate"));
	/* h2o buffers a whole body before the handler runs, and answers 413
	 * past this cap itself (HTTP/1: as JSON through http_h2o_error_setup;
	 * HTTP/2: worker/guard.c); routes check their own max_body.  Twice the largest route cap (at least 64 KiB) lets
	 * most oversized bodies get the JSON answer without letting a client
	 * make a worker hold much more than any route takes. */
	h->h2o_config.max_request_entity_size = max_body * 2 > 65536 ? max_body * 2 : 65536;
	h->h2o_config.http1.req_timeout = cfg->keepalive_timeout_ms;
	h->h2o_config.http2.idle_timeout = cfg->keepalive_timeout_ms;
	/* 0 would let a draining HTTP/2 connection wait forever. */
	h->h2o_config.http2.graceful_shutdown_timeout = cfg->graceful_timeout_ms;
	/* A TLS connection that has not finished its handshake by then is
	 * closed (h2o_accept's timer): a silent client holds nothing long. */
	h->h2o_config.handshake_timeout = cfg->tls_handshake_timeout_ms;
	reqid_seed(&h->env.reqids);
	/* verified tokens, per worker and per configuration (lib/jwt.h) */
	h->env.jwt_cache = NULL;
	if (cfg->auth.jwt.enabled && cfg->auth.jwt.cache_size > 0 &&
	    (h->env.jwt_cache = jwt_cache_new(cfg->auth.jwt.cache_size)) == NULL)
		log_fatalx("cannot allocate the token cache");
	/* verified API keys, the same way: room for each key's two spellings
	 * (base64 with and without its padding), within 512 KiB */
	h->env.key_cache = NULL;
	if (cfg->auth.keys.n > 0 &&
	    (h->env.key_cache = apikey_cache_new(cfg->auth.keys.n < 8192 ? 2 * cfg->auth.keys.n : 16384)) == NULL)
		log_fatalx("cannot allocate the API key cache");

	h->router = router_new(&h->env);
	h->hosts_main[0] = http_host(h, "default", &h->router->main, 0);
	h->hosts_local[0] = http_host(h, "local", &h->router->local, 0);
	/* A separate metrics listener gets a host of its own: its connections
	 * can reach /metrics and /_esgate/status and nothing else. */
	h->hosts_metrics[0] = http_host(h, "metrics", &h->router->metrics, 0);
	/* A TLS listener with "hsts" gets one too: the same routes, and the
	 * header on every answer.  h2o picks a host from the accept context's
	 * list before it looks at any Host header, so a list of one is a
	 * listener's own. */
	if ((h->hosts_hsts = calloc(4 * cfg->nlisten + 1, sizeof(*h->hosts_hsts))) == NULL)
		log_fatal("calloc");
	for (size_t i = 0; i < cfg->nlisten; i++) {
		char name[300];
		if (cfg->listen[i].tls == NULL || cfg->listen[i].tls->hsts_max_age_s == 0)
			continue;
		snprintf(name, sizeof(name), "%s", cfg->listen[i].spec);
		h->hosts_hsts[4 * i] = http_host(h, name, &h->router->main, cfg->listen[i].tls->hsts_max_age_s);
		snprintf(name, sizeof(name), "local %s", cfg->listen[i].spec);
		h->hosts_hsts[4 * i + 2] = http_host(h, name, &h->router->local, cfg->listen[i].tls->hsts_max_age_s);
	}
}

void
http_free(struct http *h)
{
	router_free(h->router);
	h->router = NULL;
	free(h->hosts_hsts);
	h->hosts_hsts = NULL;
	h->env.cache = NULL;
	jwt_cache_free(h->env.jwt_cache);
	h->env.jwt_cache = NULL;
	apikey_cache_free(h->env.key_cache);
	h->env.key_cache = NULL;
}
