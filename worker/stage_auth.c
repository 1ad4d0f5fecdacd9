/*
 * stage_auth.c - the authentication stage, on routes with "auth:" (see
 * pipeline.h): who the client is (lib/auth.h: an API key, a JWT, a TLS
 * client certificate, or anonymous where the route allows it) and whether
 * a grant lets it use this route and index.  The model is lib/'s; this
 * stage feeds it the request and turns its answers into HTTP:
 *
 *   - missing or bad credentials: 401 with WWW-Authenticate naming the
 *     route's schemes; a failed attempt takes a token from its client
 *     address's bucket of failed authentications (auth.failed_limit,
 *     through worker/limiter.h as every limit: the table every worker
 *     shares, or Redis shared by a fleet), and an address whose
 *     bucket is empty gets 429 before its credentials are even looked
 *     at, so guessing keys goes no faster than the limit;
 *   - a principal without the grant: 403 forbidden naming the route or
 *     index refused, never anything about keys;
 *   - allowed: the principal goes into the exchange (the access log, and
 *     the prefix of X-Opaque-Id upstream), with its grant (the later
 *     stages' document and field rules) and its own rate-limit bucket,
 *     whose first token is taken here.
 *
 * A keep-alive client sends the same Authorization value on every request:
 * each connection keeps the last value verified on it (lib/auth.h's
 * auth_memo, in the guard's per-connection slot), the grant it had on the
 * last route, and the bucket key of its failed attempts when that is the
 * peer's address, so a request repeating it skips the keyed hash, the
 * parsing, the grant search and the rendering of the grant's document
 * filter (kept beside the grant, rendered once for the memo's principal);
 * expiry, the route's schemes, the index and the failed-attempts limit
 * are still checked each time.
 *
 * The client's Authorization header never goes upstream (the upstream
 * client sends only the configured credentials, worker/upstream.c).
 * Nothing here logs a key or a token; metrics use fixed label values.
 */
#include "worker/guard.h"
#include "worker/limiter.h"
#include "worker/router.h"
#include "worker/stage_ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/auth.h"
#include "lib/jwt.h"
#include "lib/log.h"

#define STAGE_AUTH_MAX_HEADERS 4        /* more Authorization headers than this is AUTH_MULTIPLE anyway */
#define STAGE_AUTH_OPAQUE_PRINCIPAL 200 /* bytes of the principal in X-Opaque-Id (upstream.c keeps 255) */

_Static_assert(METRICS_AUTH_RESULT_COUNT == AUTH_RESULT_COUNT, "metrics and lib/auth.h disagree on the results");

/*
 * The verified subject of the client's TLS certificate ("CN=app,O=Example"),
 * or NULL: taken from the connection when the exchange started
 * (worker/tlsconn.h), on a listener with tls.client_ca.  This is the one
 * place it is read.
 */
static const char *
stage_auth_cert_subject(struct exchange *ex)
{
	return ex->tls_subject;
}

static enum metrics_auth_scheme
stage_auth_metric_scheme(unsigned scheme)
{
	switch (scheme) {
	case AUTH_SCHEME_APIKEY: return METRICS_AUTH_APIKEY;
	case AUTH_SCHEME_JWT: return METRICS_AUTH_JWT;
	case AUTH_SCHEME_CERT: return METRICS_AUTH_CERT;
	case AUTH_SCHEME_ANONYMOUS: return METRICS_AUTH_ANONYMOUS;
	default: return METRICS_AUTH_NONE;
	}
}

/* The scheme an Authorization value names, for the metrics of a failure. */
static unsigned
stage_auth_header_scheme(const char *v, size_t len)
{
	if (len >= 7 && strncasecmp(v, "apikey ", 7) == 0)
		return AUTH_SCHEME_APIKEY;
	if (len >= 7 && strncasecmp(v, "bearer ", 7) == 0)
		return AUTH_SCHEME_JWT;
	return 0;
}

static void
stage_auth_challenge(struct exchange *ex, unsigned schemes, enum auth_result r, const char *reason)
{
	const char *ch[2];
	size_t n = auth_challenges(schemes, r, ch);

	for (size_t i = 0; i < n; i++)
		exchange_header_add(ex->req, H2O_STRLIT("www-authenticate"), ch[i]);
	exchange_send_error(ex->req, 401, "security_exception", reason);
}

static const char *
stage_auth_reason(enum auth_result r)
{
	switch (r) {
	case AUTH_MISSING: return "missing authentication credentials";
	case AUTH_MULTIPLE: return "more than one Authorization header";
	case AUTH_SCHEME: return "this route does not accept that authentication scheme";
	case AUTH_EXPIRED_KEY: return "the API key has expired";
	case AUTH_BAD_TOKEN: return "invalid bearer token";
	case AUTH_BAD_CERT: return "unusable client certificate";
	default: return "invalid credentials";
	}
}

/* What the stage keeps of a client connection (worker/guard.h's slot):
 * the memo of the last credential verified on it (lib/auth.h), and the
 * bucket key of its failed attempts when that is the peer's address (no
 * trusted_proxies: no X-Forwarded-For is believed, so it cannot change
 * while the connection lasts). */
struct stage_auth_conn {
	struct auth_memo memo;
	/* the grant the memo's principal has on route GRANT_ROUTE (the same
	 * principal under the same configuration: the same grant), while the
	 * memo's gen is GRANT_GEN */
	const struct auth_grant *grant;
	uint64_t grant_gen;
	size_t grant_route;
	/* GRANT's document filter as rendered for the memo's principal (its
	 * id and claims do not change while GEN holds), a reference of the
	 * connection's; NULL if GRANT has none.  Requests share it: nothing
	 * downstream changes a filter (lib/dls.h takes it const). */
	json_t *filter;
	int failed_known; /* FAILED_KEY, FAILED_KEYLEN and FAILED_HASH are the connection's */
	size_t failed_keylen;
	uint64_t failed_hash; /* limiter_hash() of the key */
	uint8_t failed_key[RATELIMIT_KEY_MAX];
};

static void
stage_auth_conn_free(void *data)
{
	struct stage_auth_conn *c = data;

	auth_memo_clear(&c->memo);
	json_decref(c->filter);
	free(c);
}

/* The stage's state of the request's connection, made at its first
 * request with credentials; NULL if the connection has no slot for it
 * (or out of memory: then nothing is remembered). */
static struct stage_auth_conn *
stage_auth_conn(struct exchange *ex)
{
	struct guard_slot *slot = guard_slot_of(ex->req);

	if (slot == NULL)
		return NULL;
	if (slot->data == NULL && slot->free == NULL) {
		if ((slot->data = calloc(1, sizeof(struct stage_auth_conn))) == NULL)
			return NULL;
		slot->free = stage_auth_conn_free;
	}
	return slot->free == stage_auth_conn_free ? slot->data : NULL;
}

static void
stage_auth_filter_free(void *arg)
{
	json_decref(*(json_t **)arg);
}

/* The bucket of failed attempts from the client's address, in *KEYP (the
 * connection's copy, or KEY); its length, 0 if there is none
 * (failed_limit off, or a unix-socket peer).  Found once a connection
 * when it is the peer's address (CONN, may be NULL). */
static size_t
stage_auth_failed_key(struct exchange *ex, struct stage_auth_conn *conn, uint8_t key[RATELIMIT_KEY_MAX],
                      const uint8_t **keyp)
{
	const struct auth_config *a = &ex->env->cfg->auth;
	struct ratelimit_addr addr;
	size_t len;

	*keyp = key;
	if (a->failed_rate <= 0)
		return 0;
	if (conn != NULL && conn->failed_known) {
		*keyp = conn->failed_key;
		return conn->failed_keylen;
	}
	len = stage_ratelimit_client(ex, &addr) ? auth_failed_key(&addr, key) : 0;
	if (conn != NULL && ex->env->cfg->ntrusted_proxies == 0 && len <= sizeof(conn->failed_key)) {
		memcpy(conn->failed_key, key, len);
		conn->failed_keylen = len;
		conn->failed_hash = len > 0 ? limiter_hash(ex->env->limiter, key, len) : 0;
		conn->failed_known = 1;
	}
	return len;
}

/* Who asked: 1 with *P filled, or 0 after answering 401 or 429. */
static int
stage_auth_authenticate(struct exchange *ex, const struct auth_rule *rule, struct auth_principal *p,
                        struct stage_auth_conn **connp)
{
	const struct auth_config *a = &ex->env->cfg->auth;
	h2o_req_t *req = ex->req;
	const char *values[STAGE_AUTH_MAX_HEADERS];
	size_t lens[STAGE_AUTH_MAX_HEADERS], n = 0, keylen;
	struct auth_request rq = {.authorization = values, .authorization_len = lens};
	uint8_t keybuf[RATELIMIT_KEY_MAX];
	const uint8_t *key = keybuf;
	struct stage_auth_conn *conn;
	double retry = 0;
	enum auth_result r;
	unsigned scheme = 0;
	ssize_t i = -1;

	while ((i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, i)) >= 0) {
		if (n < STAGE_AUTH_MAX_HEADERS) {
			values[n] = req->headers.entries[i].value.base;
			lens[n] = req->headers.entries[i].value.len;
		}
		n++;
	}
	rq.nauthorization = n < STAGE_AUTH_MAX_HEADERS ? n : STAGE_AUTH_MAX_HEADERS;
	rq.cert_subject = stage_auth_cert_subject(ex);
	rq.now = (int64_t)ev_now(ex->env->loop);
	rq.key_cache = ex->env->key_cache;
	*connp = conn = n > 0 ? stage_auth_conn(ex) : NULL;
	rq.memo = n == 1 && conn != NULL ? &conn->memo : NULL;

	/* an address that failed too often is refused before anything it
	 * sends is checked (a request without credentials costs nothing to
	 * answer, and is never counted) */
	keylen = n > 0 ? stage_auth_failed_key(ex, conn, keybuf, &key) : 0;
	if (keylen > 0) {
		switch (conn != NULL && conn->failed_known
		            ? limiter_peek_hashed(ex->env->limiter, key, keylen, conn->failed_hash, a->failed_rate,
		                                  a->failed_burst, &retry)
		            : limiter_peek(ex->env->limiter, key, keylen, a->failed_rate, a->failed_burst, &retry)) {
		case LIMITER_REFUSE:
			metrics_auth_denied(ex->env->counts, METRICS_DENY_FAILED_LIMIT);
			stage_ratelimit_refuse(ex, retry, "too many failed authentications from this client");
			return 0;
		case LIMITER_UNAVAILABLE: stage_ratelimit_unavailable(ex); return 0;
		default: break;
		}
	}

	/* (a route that takes no tokens never asks the token cache) */
	r = auth_authenticate(&ex->env->cfg->auth, rule, &rq, ex->env->jwt_cache, p);
	if (ex->env->jwt_cache != NULL && (rule->schemes & AUTH_SCHEME_JWT) && p->token_cache != AUTH_TOKEN_CACHE_UNUSED)
		metrics_inc(&ex->env->counts->auth_jwt_cache[p->token_cache == AUTH_TOKEN_CACHE_HIT ? 0 : 1]);
	if (r != AUTH_OK && n == 1)
		scheme = stage_auth_header_scheme(values[0], lens[0]); /* for the metrics of a failure */
	metrics_auth(ex->env->counts, stage_auth_metric_scheme(r == AUTH_OK ? p->scheme : scheme), (unsigned)r);
	if (r == AUTH_OK)
		return 1;
	if (r == AUTH_BAD_TOKEN)
		log_debug("request %s: bearer token refused: %s", ex->request_id, jwt_result_name(p->token_result));
	else if (p->failed_key_id[0] != '\0')
		log_debug("request %s: API key id %s refused: %s", ex->request_id, p->failed_key_id,
		          auth_result_name(r));
	if (keylen > 0)
		(void)limiter_take(ex->env->limiter, key, keylen, a->failed_rate, a->failed_burst, 1, NULL);
	auth_principal_clear(p);
	stage_auth_challenge(ex, rule->schemes, r, stage_auth_reason(r));
	return 0;
}

/* The index the request reads, for the grant's indices: the path's
 * {index}, or the literal one of the upstream path (found at load,
 * config_route.auth_index); NULL if none. */
static const char *
stage_auth_index(struct exchange *ex)
{
	if (ex->vars != NULL && (ex->vars->set & ROUTE_VAR_INDEX))
		return ex->vars->index;
	return ex->row->route->auth_index;
}

/* The principal for the access log, and X-Opaque-Id upstream: the
 * principal (cut to fit), ';', the request id; one allocation for both. */
static void
stage_auth_set_principal(struct exchange *ex, const char *principal, size_t len)
{
	size_t plen = len < STAGE_AUTH_OPAQUE_PRINCIPAL ? len : STAGE_AUTH_OPAQUE_PRINCIPAL;
	size_t rlen = strlen(ex->request_id);
	char *s = h2o_mem_alloc_pool(&ex->req->pool, len + 1 + plen + 1 + rlen + 1), *o = s + len + 1;

	memcpy(s, principal, len + 1);
	memcpy(o, principal, plen);
	o[plen] = ';';
	memcpy(o + plen + 1, ex->request_id, rlen + 1);
	ex->principal = s;
	ex->opaque_id = o;
}

static enum pipeline_result
stage_auth_run(struct exchange *ex)
{
	const struct config_route *r = ex->row->route;
	struct auth_principal p;
	struct auth_decision d;
	struct stage_auth_conn *conn = NULL;
	const char *index;
	enum auth_verdict v;
	json_t **owner;

	if (!stage_auth_authenticate(ex, &r->auth, &p, &conn))
		return PIPELINE_ANSWERED;
	index = stage_auth_index(ex);
	/* the principal is the memo's when the memo holds a credential: it
	 * either answered or was just written with this one (lib/auth.h) */
	if (conn != NULL && p.scheme != AUTH_SCHEME_CERT && p.scheme != AUTH_SCHEME_ANONYMOUS &&
	    conn->memo.scheme != 0 && conn->grant != NULL && conn->grant_gen == conn->memo.gen &&
	    conn->grant_route == ex->row->index) {
		v = auth_decide_grant_rendered(conn->grant, conn->filter, index, &d);
	} else {
		v = auth_decide(&ex->env->cfg->auth, &p, ex->row->index, r->path, index, &d);
		if (conn != NULL && p.scheme != AUTH_SCHEME_CERT && p.scheme != AUTH_SCHEME_ANONYMOUS &&
		    conn->memo.scheme != 0 && d.grant != NULL) {
			conn->grant = d.grant;
			conn->grant_gen = conn->memo.gen;
			conn->grant_route = ex->row->index;
			json_decref(conn->filter);
			conn->filter = json_incref(d.filter);
		}
	}
	if (v == AUTH_ALLOW && index == NULL && d.grant->nindices > 0 && r->search >= 0) {
		/* a search of every index ("/_search"): the grant covers only some */
		auth_decision_clear(&d);
		d.verdict = v = AUTH_DENY_INDEX;
		snprintf(d.reason, sizeof(d.reason), "route %.200s reads every index; the grant covers only some",
		         r->path);
	}
	if (v != AUTH_ALLOW) {
		static const enum metrics_denial why[AUTH_VERDICT_COUNT] = {
		    [AUTH_DENY_ROUTE] = METRICS_DENY_ROUTE,
		    [AUTH_DENY_INDEX] = METRICS_DENY_INDEX,
		    [AUTH_DENY_ANONYMOUS] = METRICS_DENY_ANONYMOUS,
		    [AUTH_DENY_FILTER] = METRICS_DENY_FILTER,
		};

		metrics_auth_denied(ex->env->counts, why[v]);
		if (v == AUTH_DENY_ANONYMOUS)
			stage_auth_challenge(ex, r->auth.schemes, AUTH_MISSING, d.reason);
		else
			exchange_send_error(ex->req, 403, "forbidden", d.reason);
		auth_decision_clear(&d);
		auth_principal_clear(&p);
		return PIPELINE_ANSWERED;
	}
	stage_auth_set_principal(ex, p.id, p.id_len);
	ex->grant = d.grant;
	if (d.filter != NULL) {
		owner = h2o_mem_alloc_shared(&ex->req->pool, sizeof(*owner), stage_auth_filter_free);
		*owner = d.filter; /* the pool's reference now */
		ex->dls_filter = d.filter;
		d.filter = NULL;
	}
	if (d.grant->rate > 0)
		ex->principal_keylen = auth_ratelimit_key(&p, stage_ratelimit_route_id(ex->row->route), ex->principal_key);
	auth_decision_clear(&d);
	auth_principal_clear(&p);
	if (ex->principal_keylen == 0)
		return PIPELINE_NEXT; /* no limit of the principal's (what take would find) */
	return stage_ratelimit_take_principal(ex) ? PIPELINE_NEXT : PIPELINE_ANSWERED;
}

static int
stage_auth_applies(const struct router_row *row)
{
	return row->route != NULL && row->route->auth.enabled;
}

const struct pipeline_stage stage_auth = {"auth", stage_auth_run, stage_auth_applies};
