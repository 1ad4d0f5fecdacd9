/*
 * exchange.h - one request's way through a worker, from its arrival to its
 * last byte: what it carries from stage to stage (worker/pipeline.h), the
 * metrics and access log line written when it is over, and the answers any
 * stage may give (JSON errors, header helpers, an upstream failure as 502
 * or 504).
 *
 * The leaf of the request path: it includes nothing of worker/ but
 * upstream.h (what an upstream request reports) and access.h (the line it
 * writes), and its .c tlsconn.h (the client certificate's subject), so
 * every stage, the cache and the proxy can use it without a circle.
 */
#ifndef ESGATE_EXCHANGE_H
#define ESGATE_EXCHANGE_H

#include <h2o.h>

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "lib/config.h"
#include "lib/metrics.h"
#include "lib/ratelimit.h"
#include "lib/reqid.h"
#include "lib/route.h"
#include "lib/scoreboard.h"
#include "worker/access.h"
#include "worker/upstream.h"

struct cache;
struct jwt_cache;
struct apikey_cache;
struct auth_grant;
struct limiter;
struct router_row;
struct router_table;
struct pipeline;

/* What a request may use of its worker.  Filled once, after fork, by
 * http_configure(); every field outlives every request. */
struct exchange_env {
	const struct config *cfg;
	struct ev_loop *loop;
	struct metrics *metrics;      /* shared with the master and the other workers */
	struct metrics_shard *counts; /* this worker's shard of it: where it counts */
	struct scoreboard_slot *slot; /* this worker's, in the scoreboard */
	struct scoreboard *sb;        /* every worker's slot, for /_esgate/status */
	struct ratelimit *ratelimit;  /* token buckets shared by all workers */
	struct limiter *limiter;      /* where every limit takes its tokens (worker/limiter.h) */
	struct upstream *upstream;
	struct access_log *access;
	struct cache *cache; /* the router's micro-cache; NULL when no route caches or coalesces */
	struct reqid_gen reqids;
	struct jwt_cache *jwt_cache; /* verified tokens (lib/jwt.h), this worker's; NULL: none */
	struct apikey_cache *key_cache; /* verified API keys (lib/apikey.h), this worker's; NULL: none */
	unsigned worker_id;
	int metric_unmatched; /* the metrics series of requests no route took */
};

/* One request.  Lives in the request's pool; its dispose callback is the
 * end of the request, answered or abandoned. */
struct exchange {
	h2o_req_t *req;
	struct exchange_env *env;
	unsigned method; /* the client's: a CONFIG_METHOD_* bit, 0 for any other method */

	/* The pipeline (worker/pipeline.h). */
	const struct router_table *table; /* the routes of the host it came to */
	const struct router_row *row;     /* its route, once the route stage found it */
	const struct pipeline *pipeline;  /* the stages it passes: its row's once routed */
	unsigned next;                    /* index of the next stage in PIPELINE */
	const struct route_vars *vars;    /* the path's placeholders, in the pool; NULL if none */

	/* The upstream request the stages prepare. */
	const char *up_method; /* GET, HEAD or POST: the route's, HEAD for a client's HEAD where that
	                        * is GET; the firewall makes it a POST when it sends a body */
	char *up_path;         /* the upstream path, then a NUL and UP_QUERY (see exchange_upstream_path) */
	size_t up_path_len;
	char *up_query;      /* the checked, canonical query without '?', "" or NULL for none */
	const char *up_body; /* what goes upstream as the body, NULL for none: never the client's bytes
	                      * on a search route, only the firewall's document */
	size_t up_body_len;

	/* Who asked, on a route with "auth:" (worker/stage_auth.c); all NULL
	 * on open routes. */
	const char *principal;          /* "key:ID", "jwt:SUB", "cert:SUBJECT", "anonymous", in the pool */
	const char *tls_subject;        /* the verified client certificate's subject (worker/tlsconn.h),
					 * copied to the pool at the start; NULL: none.  The access log
					 * shows it as "cert:SUBJECT" when no principal is set */
	const char *opaque_id;          /* X-Opaque-Id upstream: "PRINCIPAL;REQUEST_ID"; NULL: the request id */
	const struct auth_grant *grant; /* the grant that allowed it */
	json_t *dls_filter;             /* the grant's document filter, rendered; the pool holds a reference */
	uint8_t principal_key[RATELIMIT_KEY_MAX]; /* its rate-limit bucket, when the grant has a rate_limit */
	size_t principal_keylen;

	/* What the metrics and the access log say of it. */
	uint64_t start_us; /* CLOCK_MONOTONIC */
	int route;         /* metrics route index, -1 if none */
	const char *request_id;
	const char *upstream_node; /* in req's pool, set by the proxy */
	uint64_t upstream_us;
	int client_gone;              /* the client left before its answer was complete */
	const char *cache;            /* what the micro-cache did (X-Cache), NULL if not asked */
	/* Called first when the request is over (its pool going), before the
	 * metrics and the access log line: the micro-cache's waiter unhooks
	 * itself and drops the entry it holds (worker/cache.c), the proxy
	 * cancels its upstream request and frees its buffers (worker/proxy.c,
	 * when it found this free), each without a shared allocation of its
	 * own a request.  NULL: nothing. */
	void (*on_done)(void *arg);
	void *on_done_arg;
	/* Called before ON_DONE: the connection's guard, which watches an
	 * HTTP/1 connection again once its request is over (worker/http.c sets
	 * it to guard_request_done).  NULL: nothing. */
	void (*conn_done)(void *arg);
	void *conn_done_arg;
	struct sockaddr_storage peer; /* taken at arrival: gone with the connection */
	socklen_t peerlen;            /* 0 if unknown */
	char client[64];              /* PEER as text, "" until exchange_client() */
};

/* The loop's time in microseconds: ev_now(), the time libev read when it
 * last woke up, so no clock call per request (nginx's cached time).  A
 * request's durations run from the wake-up that read it to the one that
 * finished it.  Wall-clock: take differences with exchange_since_us. */
uint64_t exchange_now_us(const struct exchange_env *env);
/* exchange_now_us() - START, 0 if the clock went back. */
uint64_t exchange_since_us(const struct exchange_env *env, uint64_t start);

/* Opens the exchange of REQ (in its pool, counted in flight) and gives it
 * its request id: the client's X-Request-Id if sane, else a new one,
 * returned to the client and sent upstream as X-Opaque-Id.  Its end
 * (exchange_end: ON_DONE, the metrics, the access log line) comes when
 * REQ's pool goes: with ENDED_BY_CALLER 0 the exchange is a shared
 * allocation of the pool whose release runs it; with 1 it is a plain pool
 * allocation and the caller promises to call exchange_end exactly once,
 * before the pool is cleared (worker/http.c does for HTTP/1, from h2o's
 * dispose of the request: no malloc, pool link and free a request). */
struct exchange *exchange_start(struct exchange_env *env, h2o_req_t *req, int ended_by_caller);
void exchange_end(struct exchange *ex);
/* The client's address as text ("-" for a Unix socket), formatted on first
 * use: only the access log and rate limits want it. */
const char *exchange_client(struct exchange *ex);
/* A request from PEER that no handler saw, answered STATUS in BYTES (a
 * head refused before any request existed, an HTTP/2 body past h2o's cap,
 * a connection over max_connections_per_address: worker/guard.h's
 * guard_refused_cb): counted as an unmatched request of that status and
 * logged with "-" for the request. */
void exchange_refused(struct exchange_env *env, const struct sockaddr *peer, socklen_t peerlen, int status,
                      size_t bytes);

/* What goes upstream as X-Opaque-Id: the principal and the request id on
 * a route with "auth:", else the request id. */
const char *exchange_opaque_id(const struct exchange *ex);

/* The upstream path with its query ("/books/_search?size=5"), joined in
 * place. */
const char *exchange_upstream_path(struct exchange *ex);

/* Answers REQ with STATUS and BODY (LEN bytes, copied) as application/json. */
void exchange_send_json(h2o_req_t *req, int status, const char *body, size_t len);
/* Answers REQ with STATUS and {"error":{"type":TYPE,"reason":REASON},"status":STATUS}. */
void exchange_send_error(h2o_req_t *req, int status, const char *type, const char *reason);
/* That error's JSON document ({"error":{"type","reason"},"status"}) into
 * BUF of SIZE (EXCHANGE_ERROR_DOC_MAX holds any); its length. */
#define EXCHANGE_ERROR_DOC_MAX 1024
size_t exchange_error_doc(char *buf, size_t size, int status, const char *type, const char *reason);
/* Answers REQ for an upstream request that got no answer: 504
 * upstream_timeout after a timeout, else 502 bad_gateway. */
void exchange_send_upstream_error(h2o_req_t *req, const struct upstream_result *res);

/* "x-elastic-product", not an h2o token: one name for every answer that
 * carries it (h2o only reads it). */
extern h2o_iovec_t exchange_name_elastic_product;

/* Appends a response header to HS, whose room the caller reserved, as
 * h2o_add_header and h2o_add_header_by_str fill a slot, without their
 * calls and the pool copy of a constant name: NAME (a token's buf or a
 * static name) and VALUE live as long as the request. */
static inline void
exchange_header_put(h2o_headers_t *hs, h2o_iovec_t *name, const char *value, size_t len)
{
	h2o_header_t *slot = hs->entries + hs->size++;

	slot->name = name;
	slot->orig_name = NULL;
	slot->value = h2o_iovec_init(value, len);
}

/* Adds a response header; VALUE must live as long as REQ (a literal, or in
 * its pool). */
void exchange_header_add(h2o_req_t *req, const char *name, size_t namelen, const char *value);
/* The same with VALUE copied into REQ's pool. */
void exchange_header_add_copy(h2o_req_t *req, const char *name, size_t namelen, const char *value);
/* The first request header NAME, {NULL, 0} if absent. */
h2o_iovec_t exchange_header(h2o_req_t *req, const char *name, size_t namelen);
/* Every line of request header NAME joined with ",", as RFC 9110 allows:
 * a proxy that adds its own X-Forwarded-For line must not let the client's
 * line stand alone.  {NULL, 0} if absent. */
h2o_iovec_t exchange_header_joined(h2o_req_t *req, const char *name, size_t namelen);
/* 1 if the client accepts gzip. */
int exchange_accepts_gzip(h2o_req_t *req);
/* METHODS (CONFIG_METHOD_* bits) as "GET, HEAD, POST" into BUF (32 bytes
 * are enough), for Allow and Access-Control-Allow-Methods. */
const char *exchange_method_list(unsigned methods, char *buf, size_t len);

#endif
