/*
 * exchange.c - a request's bookkeeping and the answers every stage shares
 * (see exchange.h).
 */
#include "worker/exchange.h"

#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/status.h"
#include "worker/tlsconn.h"

uint64_t
exchange_now_us(const struct exchange_env *env)
{
	return (uint64_t)(ev_now(env->loop) * 1e6);
}

uint64_t
exchange_since_us(const struct exchange_env *env, uint64_t start)
{
	uint64_t now = exchange_now_us(env);

	return now > start ? now - start : 0;
}

/* PEER (LEN 0: unknown) as the access log names a client, into BUF. */
static const char *
exchange_client_text(const struct sockaddr *peer, socklen_t len, char *buf, size_t size)
{
	if (len == 0 || peer->sa_family == AF_UNIX || getnameinfo(peer, len, buf, size, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(buf, size, "-");
	return buf;
}

const char *
exchange_client(struct exchange *ex)
{
	if (ex->client[0] != '\0')
		return ex->client;
	if (ex->peerlen == 0) /* still answering: the connection is there */
		ex->peerlen = ex->req->conn->callbacks->get_peername(ex->req->conn, (struct sockaddr *)&ex->peer);
	return exchange_client_text((const struct sockaddr *)&ex->peer, ex->peerlen, ex->client, sizeof(ex->client));
}

void
exchange_refused(struct exchange_env *env, const struct sockaddr *peer, socklen_t peerlen, int status, size_t bytes)
{
	metrics_request(env->counts, env->metric_unmatched, status, 0);
	if (env->access->fd >= 0) {
		char client[sizeof(((struct exchange *)NULL)->client)]; /* what exchange_client fits in */
		struct access_entry e = {.client = exchange_client_text(peer, peerlen, client, sizeof(client)),
		                         .status = status,
		                         .bytes = bytes,
		                         .worker = env->worker_id};

		access_write(env->access, &e);
	}
}

/* The request's pool is going away: it is over, answered or abandoned. */
static void
exchange_done(void *arg)
{
	struct exchange *ex = arg;
	struct exchange_env *env = ex->env;
	uint64_t total;
	int status;

	if (ex->conn_done != NULL)
		ex->conn_done(ex->conn_done_arg);
	if (ex->on_done != NULL)
		ex->on_done(ex->on_done_arg); /* may set client_gone */
	total = exchange_since_us(env, ex->start_us);
	status = ex->client_gone ? 499 : ex->req->res.status; /* nginx's "client closed request" */

	metrics_add(&env->counts->in_flight, -1);
	metrics_request(env->counts, ex->route, status, total);
	if (env->access->fd >= 0) {
		char cert[AUTH_PRINCIPAL_MAX + 1];
		struct access_entry e = {.req = ex->req,
		                         .client = exchange_client(ex),
		                         .principal = ex->principal,
		                         .status = status,
		                         .request_id = ex->request_id,
		                         .worker = env->worker_id,
		                         .upstream_node = ex->upstream_node,
		                         .upstream_us = ex->upstream_us,
		                         .total_us = total,
		                         .cache = ex->cache};
		if (e.principal == NULL && ex->tls_subject != NULL) {
			snprintf(cert, sizeof(cert), "cert:%s", ex->tls_subject);
			e.principal = cert;
		}
		access_write(env->access, &e);
	}
}

/* not h2o tokens: one name for every request (h2o only reads them) */
static h2o_iovec_t exchange_name_request_id = {H2O_STRLIT("x-request-id")};
h2o_iovec_t exchange_name_elastic_product = {H2O_STRLIT("x-elastic-product")};

static const char *
exchange_request_id(struct exchange *ex)
{
	h2o_req_t *req = ex->req;
	ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
	char *id;
	size_t len;

	if (i >= 0 && reqid_valid(req->headers.entries[i].value.base, req->headers.entries[i].value.len)) {
		len = req->headers.entries[i].value.len;
		id = h2o_strdup(&req->pool, req->headers.entries[i].value.base, len).base;
	} else {
		len = REQID_GEN_LEN;
		id = h2o_mem_alloc_pool(&req->pool, REQID_GEN_LEN + 1);
		reqid_generate(&ex->env->reqids, id);
	}
	/* the answer's first field: room for the usual few at once (the
	 * micro-cache's hit adds 4 more), instead of h2o's 4 then 8 */
	h2o_vector_reserve(&req->pool, &req->res.headers, 8);
	exchange_header_put(&req->res.headers, &exchange_name_request_id, id, len);
	return id;
}

void
exchange_end(struct exchange *ex)
{
	exchange_done(ex);
}

struct exchange *
exchange_start(struct exchange_env *env, h2o_req_t *req, int ended_by_caller)
{
	struct exchange *ex = ended_by_caller ? h2o_mem_alloc_pool(&req->pool, sizeof(*ex))
	                                      : h2o_mem_alloc_shared(&req->pool, sizeof(*ex), exchange_done);
	const char *subject;

	memset(ex, 0, sizeof(*ex));
	ex->req = req;
	ex->env = env;
	ex->method = config_method_parse(req->method.base, req->method.len);
	ex->start_us = exchange_now_us(env);
	ex->route = -1;
	/* h2o_start_response copies the answer's header vector into
	 * res.original for h2o's own access log (logconf's original_response,
	 * its one reader), unless original.status is already set.  esgate logs
	 * through worker/access.c and never configures logconf: the copy (a
	 * pool allocation and a memcpy every answer) is skipped, and
	 * res.original stays empty. */
	req->res.original.status = -1;
	/* The access log names the client once the request is over, when its
	 * connection may be gone: take the address now (h2o caches it per
	 * connection, one getpeername(2) each).  Without an access log it is
	 * looked up only if a rate limit asks, while the request is served. */
	if (env->access->fd >= 0)
		ex->peerlen = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ex->peer);
	metrics_add(&env->counts->in_flight, 1);
	ex->request_id = exchange_request_id(ex);
	/* the connection may be gone by the time the access log is written */
	if ((subject = tlsconn_subject(req->conn)) != NULL)
		ex->tls_subject = h2o_strdup(&req->pool, subject, SIZE_MAX).base;
	return ex;
}

const char *
exchange_opaque_id(const struct exchange *ex)
{
	return ex->opaque_id != NULL ? ex->opaque_id : ex->request_id;
}

const char *
exchange_upstream_path(struct exchange *ex)
{
	if (ex->up_query != NULL && ex->up_query[0] != '\0')
		ex->up_path[ex->up_path_len] = '?'; /* the query follows the path's NUL */
	return ex->up_path;
}

static const h2o_iovec_t exchange_json_type = {H2O_STRLIT("application/json")};

void
exchange_send_json(h2o_req_t *req, int status, const char *body, size_t len)
{
	req->res.status = status;
	req->res.reason = status_reason(status);
	req->res.content_length = len;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, exchange_json_type.base,
	               exchange_json_type.len);
	h2o_send_inline(req, body, len);
}

size_t
exchange_error_doc(char *buf, size_t size, int status, const char *type, const char *reason)
{
	json_t *doc = json_pack("{s:{s:s,s:s},s:i}", "error", "type", type, "reason", reason, "status", status);
	size_t len = doc != NULL ? json_dumpb(doc, buf, size, JSON_COMPACT) : 0;

	json_decref(doc);
	if (len == 0 || len > size)
		len = (size_t)snprintf(buf, size, "{\"status\":%d}", status);
	return len;
}

void
exchange_send_error(h2o_req_t *req, int status, const char *type, const char *reason)
{
	char buf[EXCHANGE_ERROR_DOC_MAX];

	exchange_send_json(req, status, buf, exchange_error_doc(buf, sizeof(buf), status, type, reason));
}

void
exchange_send_upstream_error(h2o_req_t *req, const struct upstream_result *res)
{
	if (res->error == UPSTREAM_TIMEOUT)
		exchange_send_error(req, 504, "upstream_timeout", res->reason);
	else
		exchange_send_error(req, 502, "bad_gateway",
		                    res->reason != NULL ? res->reason : "upstream unavailable");
}

void
exchange_header_add(h2o_req_t *req, const char *name, size_t namelen, const char *value)
{
	h2o_add_header_by_str(&req->pool, &req->res.headers, name, namelen, 0, NULL, value, strlen(value));
}

void
exchange_header_add_copy(h2o_req_t *req, const char *name, size_t namelen, const char *value)
{
	size_t n = strlen(value);

	h2o_add_header_by_str(&req->pool, &req->res.headers, name, namelen, 0, NULL,
	                      h2o_strdup(&req->pool, value, n).base, n);
}

h2o_iovec_t
exchange_header(h2o_req_t *req, const char *name, size_t namelen)
{
	ssize_t i = h2o_find_header_by_str(&req->headers, name, namelen, -1);

	return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

h2o_iovec_t
exchange_header_joined(h2o_req_t *req, const char *name, size_t namelen)
{
	h2o_iovec_t out = {NULL, 0}, v;
	ssize_t i = -1;

	while ((i = h2o_find_header_by_str(&req->headers, name, namelen, i)) >= 0) {
		v = req->headers.entries[i].value;
		if (out.base == NULL) {
			out = v;
			continue;
		}
		out = h2o_concat(&req->pool, out, h2o_iovec_init(H2O_STRLIT(",")), v);
	}
	return out;
}

int
exchange_accepts_gzip(h2o_req_t *req)
{
	ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, -1);

	return i >= 0 && h2o_strstr(req->headers.entries[i].value.base, req->headers.entries[i].value.len,
	                            H2O_STRLIT("gzip")) != SIZE_MAX;
}

const char *
exchange_method_list(unsigned methods, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{CONFIG_METHOD_GET, "GET"}, {CONFIG_METHOD_HEAD, "HEAD"}, {CONFIG_METHOD_POST, "POST"}};
	size_t n = 0;
	int k;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(methods & names[i].bit))
			continue;
		if ((k = snprintf(buf + n, len - n, "%s%s", n > 0 ? ", " : "", names[i].name)) < 0 ||
		    (size_t)k >= len - n)
			break;
		n += (size_t)k;
	}
	return buf;
}
