/*
 * auth.h - who a client is (principals) and what it may do (grants): the
 * model the worker's authentication stage runs, and the configuration it
 * is read from ("auth:" at the top level, "auth:" on a route).
 *
 * Principals come from, in this order, the first that applies winning:
 *   1. the Authorization header: "ApiKey base64(id:key)" (lib/apikey.h)
 *      or "Bearer <JWT>" (lib/jwt.h), if the route accepts that scheme;
 *      credentials that are there but wrong fail the request, they never
 *      fall through to a weaker source;
 *   2. the TLS client certificate's verified subject, given as a string by
 *      the TLS layer, if the route accepts "client_cert";
 *   3. "anonymous", if the route says "required: false".
 * Ids name the source: "key:ID", "jwt:SUBJECT", "cert:SUBJECT",
 * "anonymous".  Routes without an "auth:" rule are open as before: none
 * of this runs for them.
 *
 * Grants are read in order, the first one that names the principal (by id
 * or by one of its groups) and the route wins.  A principal's groups are
 * those its API key lists, those its token's groups claim names, and the
 * "auth.groups" entries that list its id.  A grant narrows the route's
 * indices, may set a per-principal rate limit, a document filter (lib/
 * dls.h) and field rules (lib/fls.h).
 *
 * Everything here is pure (NOW is given; the JWT cache and a connection's
 * memo of its last verified credential, struct auth_memo, are the caller's)
 * and knows no role.  No function here puts a key, a token or a secret in
 * a message: a reason names at most a key id, a route or an index.
 */
#ifndef ESGATE_AUTH_H
#define ESGATE_AUTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "apikey.h"
#include "fls.h"
#include "jwt.h"
#include "ratelimit.h"

/* Schemes, as bits; the names in the configuration are "api_key", "jwt"
 * and "client_cert". */
#define AUTH_SCHEME_APIKEY 0x1
#define AUTH_SCHEME_JWT 0x2
#define AUTH_SCHEME_CERT 0x4
#define AUTH_SCHEME_ANONYMOUS 0x8 /* a principal's scheme only */

#define AUTH_HEADER_MAX 8192   /* bytes of an Authorization value */
#define AUTH_PRINCIPAL_MAX 320 /* bytes of a principal id, "cert:" and a subject */
#define AUTH_REASON_MAX 256
#define AUTH_FAILED_ROUTE 0xffffffffu /* the ratelimit_key() route number of failed attempts */

/* The scheme bit named NAME, or 0. */
unsigned auth_scheme_parse(const char *name);

/* A route's "auth:" rule. */
struct auth_rule {
	int enabled;      /* the route has "auth:"; 0: open, nothing else applies */
	int required;     /* default 1; 0: anonymous allowed (still subject to grants) */
	unsigned schemes; /* AUTH_SCHEME_*; default: api_key and jwt, those configured */
};

/* A grant. */
struct auth_grant {
	char **principals; /* principal ids: "key:ID", "jwt:SUB", "cert:SUBJECT", "anonymous" */
	size_t nprincipals;
	char **groups; /* group names */
	size_t ngroups;
	char **route_paths; /* route paths as written; none: every route with an auth rule */
	size_t nroute_paths;
	size_t *routes; /* ... resolved to route numbers once the routes are known */
	size_t nroutes;
	char **indices; /* "name" or "prefix*"; none: the route's own list */
	size_t nindices;
	double rate, burst; /* per-principal rate limit; rate 0: the route's (per address) */
	json_t *dls;        /* document filter template, or NULL */
	struct fls_rules fields;
};

/* "auth.groups": a group and its members (principal ids). */
struct auth_group {
	char *name;
	char **members;
	size_t nmembers;
};

/* "auth.jwt". */
struct auth_jwt {
	int enabled;
	char *jwks_file;         /* as resolved (relative to the configuration file) */
	struct jwt_keyset *keys; /* read at load time: the JWKS and/or hs256_secret */
	char *issuer;
	char **audiences;
	size_t naudiences;
	uint64_t leeway_ms; /* default 30s */
	char *hs256_secret;
	char *subject_claim; /* default "sub" */
	char *groups_claim;  /* NULL: none */
	unsigned cache_size; /* verified tokens kept per worker; default 1024, 0 = none */
};

/* The top-level "auth:". */
struct auth_config {
	struct apikey_set keys; /* inline and keys_file, sorted by id */
	char *keys_file;        /* as resolved; NULL if none */
	struct auth_jwt jwt;
	double failed_rate;  /* failed authentications per client address: default 1/s ... */
	double failed_burst; /* ... burst 10 */
	struct auth_grant *grants;
	size_t ngrants;
	struct auth_group *groups;
	size_t ngroups;
};

/* Fills C with the defaults (no allocation); auth_config_clear frees. */
void auth_config_defaults(struct auth_config *c);
void auth_config_clear(struct auth_config *c);
void auth_grant_clear(struct auth_grant *g);
/* The schemes a configuration can verify: api_key if there are keys (or a
 * keys file), jwt if "jwt" is set; client_cert is always possible. */
unsigned auth_schemes_configured(const struct auth_config *c);
/* A JWT policy for C's jwt settings (pointing into C). */
void auth_jwt_policy(const struct auth_config *c, struct jwt_policy *out);

/* Config-time checks of values; 1 if valid. */
int auth_principal_valid(const char *s);  /* "key:ID", "jwt:SUB", "cert:SUBJECT", "anonymous" */
int auth_group_name_valid(const char *s); /* [A-Za-z0-9._:-]{1,128} */

/*
 * Authentication.
 */

enum auth_result {
	AUTH_OK = 0,
	AUTH_MISSING,     /* no credentials, none optional: 401 */
	AUTH_MALFORMED,   /* an Authorization value that does not parse: 401 */
	AUTH_MULTIPLE,    /* more than one Authorization header: 401 */
	AUTH_SCHEME,      /* a scheme the route does not accept (Basic, or Bearer on an api_key route): 401 */
	AUTH_BAD_KEY,     /* unknown API key id, or the wrong key: 401 */
	AUTH_EXPIRED_KEY, /* an API key past its expiry: 401 */
	AUTH_BAD_TOKEN,   /* a JWT that does not verify (see token_result): 401 */
	AUTH_BAD_CERT,    /* a client certificate subject esgate cannot use (too long, control bytes): 401 */
};
#define AUTH_RESULT_COUNT 9

/* A short fixed word, for metrics labels and logs: "ok", "missing", ... */
const char *auth_result_name(enum auth_result r);
/* 401 for every failure; 200 stands for AUTH_OK. */

/* The parsed Authorization header. */
struct auth_credentials {
	unsigned scheme;                /* AUTH_SCHEME_APIKEY or _JWT; 0 for another scheme */
	char key_id[APIKEY_ID_MAX + 1]; /* ApiKey: the id ... */
	char key[APIKEY_KEY_MAX + 1];   /* ... and the key (wipe after use) */
	size_t key_len;
	const char *token; /* Bearer: points into the header value */
	size_t token_len;
};

/*
 * Parses one Authorization value VALUE (LEN bytes): the scheme (ApiKey,
 * Bearer; case-insensitive), one or more spaces, and a token68 with
 * nothing after it.  ApiKey's token must be base64 of "id:key", the id
 * valid (apikey_id_valid) and the key 1..APIKEY_KEY_MAX printable bytes.
 * Another scheme (Basic...) parses as scheme 0.  AUTH_OK, or
 * AUTH_MALFORMED (empty, too long, NUL, bad base64, no colon...).
 */
enum auth_result auth_header_parse(const char *value, size_t len, struct auth_credentials *out);

/*
 * The last credential verified on one client connection (the worker keeps
 * one per connection, worker/guard.h): its Authorization value, byte for
 * byte, and what it verified as.  A request on the same connection that
 * presents exactly that value (compared in constant time, the whole of
 * it: stronger than any tag of it) is that principal again without a
 * keyed hash of the value, a cache lookup or any parsing; a key's expiry
 * and a token's are still checked at each hit, and the failed-attempts
 * limit is asked before (the caller's order), as for the caches.  Zeroed
 * is empty; auth_memo_clear wipes the copy and frees it.  Values longer
 * than AUTH_MEMO_MAX are not kept.
 */
#define AUTH_MEMO_MAX 1024
struct auth_memo {
	char *text; /* the Authorization value (malloc'd, CAP bytes), LEN bytes of it */
	size_t len, cap;
	unsigned scheme;          /* AUTH_SCHEME_APIKEY or _JWT; 0: empty */
	const struct apikey *key; /* API key: its entry in the configuration */
	json_t *claims;           /* JWT: the verified claims (a reference of the memo's) */
	const char *sub;          /* ... jwt_subject() of them (inside CLAIMS), SUB_LEN bytes */
	size_t sub_len;
	int64_t until; /* ... exp + leeway: no hit from then on */
	uint64_t gen;  /* moves each time the memo is written: what a caller keeps
	                * beside it (a grant) holds while GEN does */
};
void auth_memo_clear(struct auth_memo *m);

/* What the stage knows of a request. */
struct auth_request {
	const char *const *authorization; /* the Authorization header values, */
	const size_t *authorization_len;  /* NAUTHORIZATION of them */
	size_t nauthorization;
	const char *cert_subject; /* the verified client certificate's subject, or NULL */
	int64_t now;              /* wall clock, Unix seconds */
	struct apikey_cache *key_cache; /* the worker's verified API keys (lib/apikey.h), or NULL */
	struct auth_memo *memo;         /* the connection's last verified credential (in and out), or NULL */
};

/* Who asked. */
struct auth_principal {
	unsigned scheme;                 /* AUTH_SCHEME_* */
	char id[AUTH_PRINCIPAL_MAX + 1]; /* "key:reporting", "jwt:alice", "cert:CN=app", "anonymous" */
	size_t id_len;                   /* strlen(id) */
	const struct apikey *key;        /* API key: its entry in the configuration */
	json_t *claims;                  /* JWT: the verified claims (owned: auth_principal_clear) */
	/* on failure, for the log and metrics: */
	char failed_key_id[APIKEY_ID_MAX + 1]; /* the API key id tried, "" if none */
	enum jwt_result token_result;          /* the JWT's, for AUTH_BAD_TOKEN */
	/* for the metrics: how the worker's token cache (or the connection's
	 * memo, which counts as the cache) was used for this request */
	enum { AUTH_TOKEN_CACHE_UNUSED, AUTH_TOKEN_CACHE_HIT, AUTH_TOKEN_CACHE_MISS } token_cache;
};

void auth_principal_clear(struct auth_principal *p);

/*
 * Finds the principal of request RQ on a route with rule RULE (enabled)
 * under configuration C, verifying JWTs through CACHE (may be NULL).
 * AUTH_OK with *OUT filled, or why not.
 */
enum auth_result auth_authenticate(const struct auth_config *c, const struct auth_rule *rule,
                                   const struct auth_request *rq, struct jwt_cache *cache, struct auth_principal *out);

/*
 * The WWW-Authenticate values of a 401 on a route accepting SCHEMES:
 * "ApiKey" and 'Bearer realm="esgate"' (with ', error="invalid_token"'
 * after a bad token, RFC 6750); up to 2, in OUT (static strings).
 * Returns how many.
 */
size_t auth_challenges(unsigned schemes, enum auth_result r, const char *out[2]);

/*
 * Authorization.
 */

enum auth_verdict {
	AUTH_ALLOW = 0,
	AUTH_DENY_ROUTE,     /* 403: no grant for this principal and route */
	AUTH_DENY_INDEX,     /* 403: the grant does not cover the index */
	AUTH_DENY_ANONYMOUS, /* 401: anonymous, and no grant names it */
	AUTH_DENY_FILTER,    /* 403: the grant's document filter cannot be filled (claim missing) */
};
#define AUTH_VERDICT_COUNT 5

/* "allow", "route", "index", "anonymous", "filter": bounded label values. */
const char *auth_verdict_name(enum auth_verdict v);

struct auth_decision {
	enum auth_verdict verdict;
	const struct auth_grant *grant; /* AUTH_ALLOW: the grant that allowed */
	json_t *filter;                 /* AUTH_ALLOW with a document filter: rendered (owned:
	                                 * auth_decision_clear), else NULL */
	char reason[AUTH_REASON_MAX];   /* for the 403 body: what was refused */
};

/*
 * May principal P use route number ROUTE (its path ROUTE_PATH, for the
 * message) on index INDEX (the request's {index}, the upstream path's
 * literal index, or NULL when the route reads no index)?  Pure; the
 * answer, the grant and the rendered filter in *OUT.
 */
enum auth_verdict auth_decide(const struct auth_config *c, const struct auth_principal *p, size_t route,
                              const char *route_path, const char *index, struct auth_decision *out);
void auth_decision_clear(struct auth_decision *d);

/* The grant auth_decide() would pick for P on route number ROUTE (the
 * first naming P and the route), or NULL. */
const struct auth_grant *auth_grant_find(const struct auth_config *c, const struct auth_principal *p, size_t route);
/* auth_decide() with the grant G it would pick (auth_grant_find(), not
 * NULL) known: the index and the document filter. */
enum auth_verdict auth_decide_grant(const struct auth_config *c, const struct auth_principal *p,
                                    const struct auth_grant *g, const char *index, struct auth_decision *out);
/* auth_decide_grant() for the principal whose document filter of G was
 * rendered by an earlier auth_decide_grant() that allowed (FILTER: its
 * out->filter, NULL when G has no dls): the index is checked again, the
 * filter not rendered again (the same principal and claims render the
 * same filter), a new reference of FILTER in OUT.  A connection that
 * presents the same credential again (worker/stage_auth.c). */
enum auth_verdict auth_decide_grant_rendered(const struct auth_grant *g, json_t *filter, const char *index,
                                             struct auth_decision *out);

/* 1 if P belongs to group NAME (see above). */
int auth_in_group(const struct auth_config *c, const struct auth_principal *p, const char *name);

/*
 * The shared rate-limit bucket key of principal P on route ROUTE
 * (lib/ratelimit.h): 16 bytes of SHA-256 of the id and the route number,
 * 20 bytes, a length no address key has.  Returns the length.
 */
size_t auth_ratelimit_key(const struct auth_principal *p, uint32_t route, uint8_t key[RATELIMIT_KEY_MAX]);

/* The bucket of failed authentications from client address A. */
size_t auth_failed_key(const struct ratelimit_addr *a, uint8_t key[RATELIMIT_KEY_MAX]);

/* The index a route without {index} reads: the first segment of its
 * upstream path when that is a literal name ("/books/_search" -> "books"),
 * else NULL ("/_search", "/").  BUF holds ROUTE_INDEX_MAX + 1 bytes. */
const char *auth_upstream_index(const char *upstream_path, char *buf, size_t buflen);

#endif
