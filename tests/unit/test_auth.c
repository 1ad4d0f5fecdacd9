/*
 * test_auth.c - lib/auth.c: the Authorization header against hostile
 * values, principals from each source in their order, the 401
 * challenges, and grants: first match by id or group, routes, indices,
 * document filters filled from claims, and the rate-limit keys.
 */
#include "lib/auth.h"
#include "lib/base64.h"
#include "tests/unit/testjwt.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1800000000
#define SECRET "0123456789abcdef0123456789abcdef"

static enum auth_result
parse(const char *v, struct auth_credentials *cr)
{
	return auth_header_parse(v, strlen(v), cr);
}

/* "ApiKey " and base64 of S. */
static char *
apikey_header(const char *s, size_t len)
{
	char enc[2048], *out;

	cr_assert(base64_encode((const unsigned char *)s, len, 0, enc, sizeof(enc)) >= 0);
	cr_assert(asprintf(&out, "ApiKey %s", enc) > 0);
	return out;
}

Test(auth, header_parse)
{
	struct auth_credentials cr;
	char *h;

	h = apikey_header("reporting:k3y-value_1", 21);
	cr_assert_eq(parse(h, &cr), AUTH_OK);
	cr_expect_eq(cr.scheme, AUTH_SCHEME_APIKEY);
	cr_expect_str_eq(cr.key_id, "reporting");
	cr_expect_str_eq(cr.key, "k3y-value_1");
	cr_expect_eq(cr.key_len, 11);
	free(h);
	/* scheme names are case-insensitive; several spaces; padding optional */
	cr_expect_eq(parse("apikey   YTpi", &cr), AUTH_OK);
	cr_expect_str_eq(cr.key_id, "a");
	cr_expect_eq(parse("APIKEY YTpiYw==", &cr), AUTH_OK);
	cr_expect_eq(parse("APIKEY YTpiYw", &cr), AUTH_OK);
	cr_expect_eq(parse("Bearer aaa.bbb.ccc", &cr), AUTH_OK);
	cr_expect_eq(cr.scheme, AUTH_SCHEME_JWT);
	cr_expect_eq(cr.token_len, 11);
	cr_expect(strncmp(cr.token, "aaa.bbb.ccc", 11) == 0);
	cr_expect_eq(parse("bEaReR x", &cr), AUTH_OK);
	/* another scheme parses as scheme 0, for the caller to refuse */
	cr_expect_eq(parse("Basic dXNlcjpwYXNz", &cr), AUTH_OK);
	cr_expect_eq(cr.scheme, 0);
	cr_expect_eq(parse("Negotiate abc", &cr), AUTH_OK);
	cr_expect_eq(cr.scheme, 0);
}

Test(auth, header_hostile)
{
	static const char *const bad[] = {
	    "",
	    "ApiKey",
	    "ApiKey ",
	    " ApiKey YTpi",
	    "ApiKey YTpi ",
	    "ApiKey YTpi\t",
	    "ApiKey\tYTpi",
	    "ApiKey YT pi",
	    "ApiKey YTpi,Bearer x",
	    "ApiKey Y=Tpi",
	    "ApiKey =",
	    "ApiKey YTpi=", /* wrong padding */
	    "ApiKey !!!!",
	    "ApiKey YWJj",     /* "abc": no colon */
	    "ApiKey OmtleQ==", /* ":key": no id */
	    "ApiKey YTo=",     /* "a:": no key */
	    "ApiKey YSBiOmM=", /* "a b:c": a bad id */
	    "ApiKey YTpiIGM=", /* "a:b c": a space in the key */
	    "ApiKey YTpiAGM=", /* "a:b\0c" */
	    "ApiKey YTpiCmM=", /* "a:b\nc" */
	    "ApiKey w6k6Yg==", /* "é:b" */
	    "Bearer",
	    "Bearer ",
	    "Bearer a b",
	    "Bearer a\"b",
	    "Bearer ===",
	    " Bearer x",
	};
	struct auth_credentials cr;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(parse(bad[i], &cr), AUTH_MALFORMED, "accepted \"%s\"", bad[i]);
	cr_expect_eq(auth_header_parse("ApiKey YTpi\0", 12, &cr), AUTH_MALFORMED, "a NUL in the value");
	cr_expect_eq(auth_header_parse("Bea\0er x", 8, &cr), AUTH_MALFORMED);
	/* huge: past the limit, and a key past its own */
	{
		size_t n = AUTH_HEADER_MAX + 10;
		char *big = malloc(n + 1);

		memcpy(big, "Bearer ", 7);
		memset(big + 7, 'a', n - 7);
		big[n] = '\0';
		cr_expect_eq(parse(big, &cr), AUTH_MALFORMED);
		free(big);
		char raw[APIKEY_KEY_MAX + 8];
		memcpy(raw, "a:", 2);
		memset(raw + 2, 'k', APIKEY_KEY_MAX + 1);
		char *h = apikey_header(raw, APIKEY_KEY_MAX + 3);
		cr_expect_eq(parse(h, &cr), AUTH_MALFORMED, "a key longer than any");
		free(h);
		h = apikey_header(raw, APIKEY_KEY_MAX + 2);
		cr_expect_eq(parse(h, &cr), AUTH_OK, "the longest key");
		free(h);
		char id[APIKEY_ID_MAX + 8];
		memset(id, 'i', APIKEY_ID_MAX + 1);
		memcpy(id + APIKEY_ID_MAX + 1, ":k", 2);
		h = apikey_header(id, APIKEY_ID_MAX + 3);
		cr_expect_eq(parse(h, &cr), AUTH_MALFORMED, "an id longer than any");
		free(h);
	}
}

/*
 * A configuration: keys "reporting" (groups readers), "old" (expired),
 * "tenant-b"; JWT with the test RSA key (kid r1) and SECRET; groups
 * "readers" from a JWT claim "roles"; grants in order.
 */
static struct auth_config cfg;
static struct apikey keys[3];
static EVP_PKEY *rsa;

static void
sha256(const char *s, uint8_t out[32])
{
	unsigned int n;

	EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

static char **
strs(int n, ...)
{
	char **out = calloc((size_t)n, sizeof(char *));
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		out[i] = strdup(va_arg(ap, const char *));
	va_end(ap);
	return out;
}

static void
setup(void)
{
	char *jwk, *doc;

	auth_config_defaults(&cfg);
	memset(keys, 0, sizeof(keys));
	keys[0].id = strdup("reporting");
	sha256("kr", keys[0].hash);
	keys[0].groups = strs(1, "readers");
	keys[0].ngroups = 1;
	keys[1].id = strdup("old");
	sha256("ko", keys[1].hash);
	keys[1].expires = NOW - 1;
	keys[2].id = strdup("tenant-b");
	sha256("kb", keys[2].hash);
	cfg.keys.keys = malloc(sizeof(keys));
	memcpy(cfg.keys.keys, keys, sizeof(keys));
	cfg.keys.n = 3;
	cr_assert_eq(apikey_set_sort(&cfg.keys), -1);

	rsa = testjwt_key(testjwt_rsa_pem);
	jwk = testjwt_jwk(rsa, "r1");
	cr_assert(asprintf(&doc, "{\"keys\":[%s]}", jwk) > 0);
	cfg.jwt.enabled = 1;
	cfg.jwt.keys = jwt_jwks_parse(doc, strlen(doc), NULL, NULL, 0);
	cr_assert_not_null(cfg.jwt.keys);
	cfg.jwt.keys = jwt_keyset_add_secret(cfg.jwt.keys, (const unsigned char *)SECRET, strlen(SECRET));
	cfg.jwt.groups_claim = strdup("roles");
	cfg.jwt.audiences = strs(1, "esgate");
	cfg.jwt.naudiences = 1;
	free(jwk);
	free(doc);

	cfg.groups = calloc(1, sizeof(*cfg.groups));
	cfg.groups[0].name = strdup("ops");
	cfg.groups[0].members = strs(2, "cert:CN=backup,O=Example", "key:tenant-b");
	cfg.groups[0].nmembers = 2;
	cfg.ngroups = 1;

	/* grants, first match wins:
	 * 0: key:tenant-b on route 1 only, index tenant-b*, with a filter on the principal
	 * 1: group readers, routes 0 and 1, indices books and logs-*, rate limit
	 * 2: jwt principals with a tenant filter from the claims, all routes
	 * 3: anonymous on route 2
	 * 4: group ops: everything */
	cfg.grants = calloc(5, sizeof(*cfg.grants));
	cfg.ngrants = 5;
	cfg.grants[0].principals = strs(1, "key:tenant-b");
	cfg.grants[0].nprincipals = 1;
	cfg.grants[0].route_paths = strs(1, "/b");
	cfg.grants[0].nroute_paths = 1;
	cfg.grants[0].routes = calloc(1, sizeof(size_t));
	cfg.grants[0].routes[0] = 1;
	cfg.grants[0].nroutes = 1;
	cfg.grants[0].indices = strs(1, "tenant-b*");
	cfg.grants[0].nindices = 1;
	cfg.grants[0].dls = json_pack("{s:{s:s}}", "term", "owner", "{{principal}}");
	cfg.grants[1].groups = strs(1, "readers");
	cfg.grants[1].ngroups = 1;
	cfg.grants[1].route_paths = strs(2, "/a", "/b");
	cfg.grants[1].nroute_paths = 2;
	cfg.grants[1].routes = calloc(2, sizeof(size_t));
	cfg.grants[1].routes[0] = 0;
	cfg.grants[1].routes[1] = 1;
	cfg.grants[1].nroutes = 2;
	cfg.grants[1].indices = strs(2, "books", "logs-*");
	cfg.grants[1].nindices = 2;
	cfg.grants[1].rate = 5;
	cfg.grants[1].burst = 10;
	cfg.grants[2].principals = strs(2, "jwt:alice", "jwt:mallory");
	cfg.grants[2].nprincipals = 2;
	cfg.grants[2].dls = json_pack("{s:{s:s}}", "term", "tenant", "{{claims.tenant}}");
	cfg.grants[3].principals = strs(1, "anonymous");
	cfg.grants[3].nprincipals = 1;
	cfg.grants[3].route_paths = strs(1, "/public");
	cfg.grants[3].nroute_paths = 1;
	cfg.grants[3].routes = calloc(1, sizeof(size_t));
	cfg.grants[3].routes[0] = 2;
	cfg.grants[3].nroutes = 1;
	cfg.grants[4].groups = strs(1, "ops");
	cfg.grants[4].ngroups = 1;
}

static void
teardown(void)
{
	auth_config_clear(&cfg);
	EVP_PKEY_free(rsa);
}

TestSuite(auth, .init = setup, .fini = teardown);

static const struct auth_rule all = {1, 1, AUTH_SCHEME_APIKEY | AUTH_SCHEME_JWT | AUTH_SCHEME_CERT};

/* the caches authn() passes (the caches test sets them) */
static struct apikey_cache *key_cache;
static struct jwt_cache *token_cache;
static struct auth_memo *memo; /* the connection's memo authn() passes (the memo test sets it) */

static enum auth_result
authn_at(const struct auth_rule *rule, const char *header, const char *cert, int64_t now, struct auth_principal *p)
{
	const char *vals[1] = {header};
	size_t lens[1] = {header != NULL ? strlen(header) : 0};
	struct auth_request rq = {vals, lens, header != NULL ? 1 : 0, cert, now, key_cache, memo};

	return auth_authenticate(&cfg, rule, &rq, token_cache, p);
}

static enum auth_result
authn(const struct auth_rule *rule, const char *header, const char *cert, struct auth_principal *p)
{
	return authn_at(rule, header, cert, NOW, p);
}

static char *
bearer(const char *payload)
{
	char *t = testjwt_sign(rsa, NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload), *h;

	cr_assert(asprintf(&h, "Bearer %s", t) > 0);
	free(t);
	return h;
}

Test(auth, api_keys)
{
	struct auth_principal p;
	char *h;

	h = apikey_header("reporting:kr", 12);
	cr_expect_eq(authn(&all, h, NULL, &p), AUTH_OK);
	cr_expect_str_eq(p.id, "key:reporting");
	cr_expect_eq(p.scheme, AUTH_SCHEME_APIKEY);
	cr_assert_not_null(p.key);
	cr_expect_str_eq(p.key->id, "reporting");
	auth_principal_clear(&p);
	free(h);
	h = apikey_header("reporting:kx", 12);
	cr_expect_eq(authn(&all, h, NULL, &p), AUTH_BAD_KEY);
	cr_expect_str_eq(p.failed_key_id, "reporting", "the id, for the log");
	cr_expect_str_eq(p.id, "");
	auth_principal_clear(&p);
	free(h);
	h = apikey_header("nobody:kr", 9);
	cr_expect_eq(authn(&all, h, NULL, &p), AUTH_BAD_KEY, "unknown id: the same answer");
	auth_principal_clear(&p);
	free(h);
	h = apikey_header("old:ko", 6);
	cr_expect_eq(authn(&all, h, NULL, &p), AUTH_EXPIRED_KEY);
	auth_principal_clear(&p);
	/* an API key on a route that takes only JWTs */
	struct auth_rule jwt_only = {1, 1, AUTH_SCHEME_JWT};
	cr_expect_eq(authn(&jwt_only, h, NULL, &p), AUTH_SCHEME);
	auth_principal_clear(&p);
	free(h);
	cr_expect_eq(authn(&all, "Basic dXNlcjpwYXNz", NULL, &p), AUTH_SCHEME);
	cr_expect_eq(authn(&all, "ApiKey !!", NULL, &p), AUTH_MALFORMED);
}

Test(auth, jwt)
{
	struct auth_principal p;
	char *h;

	h = bearer("{\"sub\":\"alice\",\"aud\":\"esgate\",\"exp\":1800000600,\"tenant\":\"a\"}");
	cr_expect_eq(authn(&all, h, NULL, &p), AUTH_OK);
	cr_expect_str_eq(p.id, "jwt:alice");
	cr_expect_eq(p.scheme, AUTH_SCHEME_JWT);
	cr_assert_not_null(p.claims);
	cr_expect_str_eq(json_string_value(json_object_get(p.claims, "tenant")), "a");
	auth_principal_clear(&p);
	free(h);
	h = bearer("{\"sub\":\"alice\",\"aud\":\"other\",\"exp\":1800000600}");
	cr_expect_eq(authn(&all, h, NULL, &p), AUTH_BAD_TOKEN);
	cr_expect_eq(p.token_result, JWT_AUDIENCE);
	cr_expect_null(p.claims);
	auth_principal_clear(&p);
	free(h);
	h = bearer("{\"sub\":\"alice\",\"aud\":\"esgate\",\"exp\":1000}");
	cr_expect_eq(authn(&all, h, NULL, &p), AUTH_BAD_TOKEN);
	cr_expect_eq(p.token_result, JWT_EXPIRED);
	auth_principal_clear(&p);
	struct auth_rule keys_only = {1, 1, AUTH_SCHEME_APIKEY};
	cr_expect_eq(authn(&keys_only, h, NULL, &p), AUTH_SCHEME);
	free(h);
	/* through a cache: the same principal twice */
	{
		struct jwt_cache *c = jwt_cache_new(16);
		const char *vals[1];
		size_t lens[1];
		struct auth_request rq = {vals, lens, 1, NULL, NOW, NULL, NULL};

		h = bearer("{\"sub\":\"bob\",\"aud\":[\"esgate\"],\"exp\":1800000600}");
		vals[0] = h;
		lens[0] = strlen(h);
		for (int i = 0; i < 2; i++) {
			cr_expect_eq(auth_authenticate(&cfg, &all, &rq, c, &p), AUTH_OK);
			cr_expect_str_eq(p.id, "jwt:bob");
			auth_principal_clear(&p);
		}
		uint64_t hits, misses;
		jwt_cache_stats(c, &hits, &misses);
		cr_expect_eq(hits, 1);
		jwt_cache_free(c);
		free(h);
	}
}

/*
 * Through the worker's caches of verified credentials: the same answers
 * as without, only what verified is cached, and a cached key's or
 * token's expiry still holds.
 */
Test(auth, caches)
{
	struct auth_principal p;
	struct auth_rule jwt_only = {1, 1, AUTH_SCHEME_JWT};
	const struct apikey *old = apikey_find(&cfg.keys, "old", 3);
	uint64_t hits, misses;
	char *h, *h2;

	cr_assert_not_null(key_cache = apikey_cache_new(8));
	cr_assert_not_null(token_cache = jwt_cache_new(16));
	h = apikey_header("reporting:kr", 12);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(authn(&all, h, NULL, &p), AUTH_OK);
		cr_expect_str_eq(p.id, "key:reporting");
		cr_expect_eq(p.scheme, AUTH_SCHEME_APIKEY);
		cr_expect_str_eq(p.key->id, "reporting");
		cr_expect_str_eq(p.failed_key_id, "");
		auth_principal_clear(&p);
	}
	apikey_cache_stats(key_cache, &hits, &misses);
	cr_expect_eq(hits, 2);
	cr_expect_eq(misses, 1);
	/* the scheme's name in any case, more spaces: the same credential */
	cr_assert(asprintf(&h2, "APIKEY   %s", h + 7) > 0);
	cr_expect_eq(authn(&all, h2, NULL, &p), AUTH_OK);
	cr_expect_str_eq(p.id, "key:reporting");
	auth_principal_clear(&p);
	free(h2);
	/* cached, but the route takes only tokens */
	cr_expect_eq(authn(&jwt_only, h, NULL, &p), AUTH_SCHEME);
	auth_principal_clear(&p);
	/* something after it is another credential, and malformed */
	cr_assert(asprintf(&h2, "%s x", h) > 0);
	cr_expect_eq(authn(&all, h2, NULL, &p), AUTH_MALFORMED);
	free(h2);
	free(h);
	/* refusals are not cached: the same answer each time */
	h = apikey_header("reporting:kx", 12);
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(authn(&all, h, NULL, &p), AUTH_BAD_KEY);
		cr_expect_str_eq(p.failed_key_id, "reporting");
		auth_principal_clear(&p);
	}
	free(h);
	h = apikey_header("old:ko", 6);
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(authn(&all, h, NULL, &p), AUTH_EXPIRED_KEY);
		auth_principal_clear(&p);
	}
	/* a key cached while valid is refused once it has expired */
	cr_assert_not_null(old);
	apikey_cache_put(key_cache, h + 7, strlen(h + 7), old);
	cr_expect_eq(authn(&all, h, NULL, &p), AUTH_EXPIRED_KEY);
	cr_expect_str_eq(p.failed_key_id, "old");
	cr_expect_str_eq(p.id, "");
	cr_expect_null(p.key);
	auth_principal_clear(&p);
	free(h);

	/* tokens: the second is a hit, claims and all */
	h = bearer("{\"sub\":\"alice\",\"aud\":\"esgate\",\"exp\":1800000600,\"tenant\":\"a\"}");
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(authn(&all, h, NULL, &p), AUTH_OK);
		cr_expect_str_eq(p.id, "jwt:alice");
		cr_expect_eq(p.scheme, AUTH_SCHEME_JWT);
		cr_expect_eq(p.token_result, JWT_OK);
		cr_assert_not_null(p.claims);
		cr_expect_str_eq(json_string_value(json_object_get(p.claims, "tenant")), "a");
		auth_principal_clear(&p);
	}
	jwt_cache_stats(token_cache, &hits, &misses);
	cr_expect_eq(hits, 1);
	cr_expect_eq(misses, 1);
	/* cached, but the route takes only keys */
	struct auth_rule keys_only = {1, 1, AUTH_SCHEME_APIKEY};
	cr_expect_eq(authn(&keys_only, h, NULL, &p), AUTH_SCHEME);
	auth_principal_clear(&p);
	/* past its exp (and the leeway): refused, and said why */
	cr_expect_eq(authn_at(&all, h, NULL, 1800000600 + 3600, &p), AUTH_BAD_TOKEN);
	cr_expect_eq(p.token_result, JWT_EXPIRED);
	cr_expect_null(p.claims);
	auth_principal_clear(&p);
	free(h);

	apikey_cache_free(key_cache);
	jwt_cache_free(token_cache);
	key_cache = NULL;
	token_cache = NULL;
}

/* Each byte of the remembered header H changed in turn (memo set): the
 * answer the memo-less, cache-less path gives, and H itself still the
 * memo's, as principal ID. */
static void
each_byte_as_uncached(const struct auth_rule *rule, const char *h, const char *id)
{
	struct auth_principal p;

	for (size_t i = 0; i < strlen(h); i++) {
		struct auth_memo *keep = memo;
		struct apikey_cache *kc = key_cache;
		struct jwt_cache *tc = token_cache;
		enum auth_result want;
		char *x = strdup(h);

		cr_assert_not_null(x);
		x[i] = x[i] == 'B' ? 'C' : 'B';
		memo = NULL;
		key_cache = NULL;
		token_cache = NULL;
		want = authn(rule, x, NULL, &p);
		auth_principal_clear(&p);
		memo = keep;
		key_cache = kc;
		token_cache = tc;
		cr_expect_eq(authn(rule, x, NULL, &p), want, "byte %zu of %zu", i, strlen(h));
		auth_principal_clear(&p);
		cr_expect_eq(authn(rule, h, NULL, &p), AUTH_OK);
		cr_expect_str_eq(p.id, id);
		auth_principal_clear(&p);
		free(x);
	}
}

/*
 * Through a connection's memo of its last verified credential: the same
 * answers, only the exact value that verified is taken from it, and
 * expiry still holds.
 */
Test(auth, memo)
{
	struct auth_memo m = {0};
	struct auth_principal p;
	struct auth_rule jwt_only = {1, 1, AUTH_SCHEME_JWT}, keys_only = {1, 1, AUTH_SCHEME_APIKEY};
	const struct apikey *old = apikey_find(&cfg.keys, "old", 3);
	uint64_t hits, misses;
	char *h, *bad, *t;

	memo = &m;
	cr_assert_not_null(key_cache = apikey_cache_new(8));
	cr_assert_not_null(token_cache = jwt_cache_new(16));
	h = apikey_header("reporting:kr", 12);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(authn(&all, h, NULL, &p), AUTH_OK);
		cr_expect_str_eq(p.id, "key:reporting");
		cr_expect_eq(p.scheme, AUTH_SCHEME_APIKEY);
		cr_expect_str_eq(p.key->id, "reporting");
		auth_principal_clear(&p);
	}
	cr_expect_eq(m.scheme, AUTH_SCHEME_APIKEY);
	apikey_cache_stats(key_cache, &hits, &misses);
	cr_expect_eq(hits, 0, "the memo answered, not the cache");
	cr_expect_eq(misses, 1);
	/* the same length, one byte off: not the memo's, and refused */
	bad = apikey_header("reporting:kx", 12);
	cr_assert_eq(strlen(bad), strlen(h));
	cr_expect_eq(authn(&all, bad, NULL, &p), AUTH_BAD_KEY);
	cr_expect_str_eq(p.id, "");
	auth_principal_clear(&p);
	free(bad);
	/* each byte changed in turn (the constant-time compare's words and its
	 * tail) */
	each_byte_as_uncached(&all, h, "key:reporting");
	/* the memo's scheme on a route that does not take it */
	cr_expect_eq(authn(&jwt_only, h, NULL, &p), AUTH_SCHEME);
	auth_principal_clear(&p);
	/* a key remembered while valid is refused once it has expired */
	cr_assert_not_null(old);
	m.key = old;
	cr_expect_eq(authn(&all, h, NULL, &p), AUTH_EXPIRED_KEY);
	cr_expect_str_eq(p.failed_key_id, "old");
	cr_expect_null(p.key);
	auth_principal_clear(&p);
	free(h);

	/* a token: verified once, then the memo's, claims and all */
	h = bearer("{\"sub\":\"alice\",\"aud\":\"esgate\",\"exp\":1800000600,\"tenant\":\"a\"}");
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(authn(&all, h, NULL, &p), AUTH_OK);
		cr_expect_str_eq(p.id, "jwt:alice");
		cr_expect_eq(p.scheme, AUTH_SCHEME_JWT);
		cr_assert_not_null(p.claims);
		cr_expect_str_eq(json_string_value(json_object_get(p.claims, "tenant")), "a");
		auth_principal_clear(&p);
	}
	cr_expect_eq(m.scheme, AUTH_SCHEME_JWT);
	jwt_cache_stats(token_cache, &hits, &misses);
	cr_expect_eq(hits, 2, "memo hits count as reused tokens");
	cr_expect_eq(misses, 1);
	cr_expect_eq(authn(&keys_only, h, NULL, &p), AUTH_SCHEME);
	auth_principal_clear(&p);
	/* a tampered signature of the same length is not the memo's */
	cr_assert_not_null(t = strdup(h));
	t[strlen(t) - 3] = t[strlen(t) - 3] == 'A' ? 'B' : 'A';
	cr_expect_eq(authn(&all, t, NULL, &p), AUTH_BAD_TOKEN);
	auth_principal_clear(&p);
	free(t);
	/* each byte of the token's header changed in turn (the compare's
	 * 32- and 16-byte steps and its tail) */
	each_byte_as_uncached(&all, h, "jwt:alice");
	/* past its exp (and the leeway): refused, and said why */
	cr_expect_eq(authn_at(&all, h, NULL, 1800000600 + 3600, &p), AUTH_BAD_TOKEN);
	cr_expect_eq(p.token_result, JWT_EXPIRED);
	cr_expect_null(p.claims);
	auth_principal_clear(&p);
	free(h);

	/* the claims outlive the caches while the memo holds them */
	jwt_cache_free(token_cache);
	token_cache = NULL;
	auth_memo_clear(&m);
	cr_expect_null(m.text);
	cr_expect_eq(m.scheme, 0);
	apikey_cache_free(key_cache);
	key_cache = NULL;
	memo = NULL;
}

Test(auth, sources_in_order)
{
	struct auth_principal p;
	const char *vals[2] = {"Bearer x", "Bearer y"};
	size_t lens[2] = {8, 8};
	struct auth_request two = {vals, lens, 2, NULL, NOW, NULL, NULL};
	char *h;

	cr_expect_eq(auth_authenticate(&cfg, &all, &two, NULL, &p), AUTH_MULTIPLE);
	/* a header wins over a certificate, and a bad one does not fall through */
	h = apikey_header("reporting:kr", 12);
	cr_expect_eq(authn(&all, h, "CN=backup,O=Example", &p), AUTH_OK);
	cr_expect_str_eq(p.id, "key:reporting");
	auth_principal_clear(&p);
	free(h);
	h = apikey_header("reporting:wrong", 15);
	cr_expect_eq(authn(&all, h, "CN=backup,O=Example", &p), AUTH_BAD_KEY);
	auth_principal_clear(&p);
	free(h);
	cr_expect_eq(authn(&all, NULL, "CN=backup,O=Example", &p), AUTH_OK);
	cr_expect_str_eq(p.id, "cert:CN=backup,O=Example");
	cr_expect_eq(p.scheme, AUTH_SCHEME_CERT);
	auth_principal_clear(&p);
	cr_expect_eq(authn(&all, NULL, "CN=a\nb", &p), AUTH_BAD_CERT);
	struct auth_rule no_cert = {1, 1, AUTH_SCHEME_APIKEY};
	cr_expect_eq(authn(&no_cert, NULL, "CN=backup,O=Example", &p), AUTH_MISSING,
	             "the route does not take certificates");
	cr_expect_eq(authn(&all, NULL, NULL, &p), AUTH_MISSING);
	struct auth_rule optional = {1, 0, AUTH_SCHEME_APIKEY};
	cr_expect_eq(authn(&optional, NULL, NULL, &p), AUTH_OK);
	cr_expect_str_eq(p.id, "anonymous");
	cr_expect_eq(p.scheme, AUTH_SCHEME_ANONYMOUS);
	cr_expect_eq(authn(&optional, "ApiKey YTpi", NULL, &p), AUTH_BAD_KEY, "credentials given must be right");
}

Test(auth, challenges)
{
	const char *c[2];

	cr_assert_eq(auth_challenges(AUTH_SCHEME_APIKEY | AUTH_SCHEME_JWT, AUTH_MISSING, c), 2);
	cr_expect_str_eq(c[0], "ApiKey");
	cr_expect_str_eq(c[1], "Bearer realm=\"esgate\"");
	cr_assert_eq(auth_challenges(AUTH_SCHEME_JWT | AUTH_SCHEME_CERT, AUTH_BAD_TOKEN, c), 1);
	cr_expect_str_eq(c[0], "Bearer realm=\"esgate\", error=\"invalid_token\"");
	cr_expect_eq(auth_challenges(AUTH_SCHEME_CERT, AUTH_MISSING, c), 0);
	cr_expect_str_eq(auth_result_name(AUTH_BAD_TOKEN), "bad_token");
	cr_expect_str_eq(auth_result_name((enum auth_result)77), "malformed");
	cr_expect_str_eq(auth_verdict_name(AUTH_DENY_INDEX), "index");
}

static enum auth_verdict
decide_as(const char *header, const char *cert, const struct auth_rule *rule, size_t route, const char *index,
          struct auth_decision *d)
{
	struct auth_principal p;
	enum auth_verdict v;

	const struct auth_grant *g;
	struct auth_decision d2;

	cr_assert_eq(authn(rule != NULL ? rule : &all, header, cert, &p), AUTH_OK, "%s", header);
	v = auth_decide(&cfg, &p, route, route == 0 ? "/a" : route == 1 ? "/b" : "/public", index, d);
	/* the same in two steps, as the stage does with a connection's grant */
	if ((g = auth_grant_find(&cfg, &p, route)) != NULL) {
		cr_expect_eq(auth_decide_grant(&cfg, &p, g, index, &d2), v);
		cr_expect_eq(d2.grant, d->grant);
		cr_expect_str_eq(d2.reason, d->reason);
		cr_expect_eq(d2.filter != NULL, d->filter != NULL);
		/* and with the filter an allowing decision rendered kept: the
		 * same verdict, reason and filter, for this index and others */
		if (v == AUTH_ALLOW) {
			static const char *const others[] = {"books", "secret", "logs-2026", NULL};
			struct auth_decision d3, d4;

			cr_expect_eq(auth_decide_grant_rendered(g, d2.filter, index, &d3), v);
			cr_expect_eq(d3.grant, d->grant);
			cr_expect(d3.filter == NULL ? d->filter == NULL : json_equal(d3.filter, d->filter));
			auth_decision_clear(&d3);
			for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
				enum auth_verdict w = auth_decide_grant(&cfg, &p, g, others[i], &d4);

				cr_expect_eq(auth_decide_grant_rendered(g, d2.filter, others[i], &d3), w, "%s",
				             others[i] != NULL ? others[i] : "(none)");
				cr_expect_str_eq(d3.reason, d4.reason);
				cr_expect(d3.filter == NULL ? d4.filter == NULL : json_equal(d3.filter, d4.filter));
				auth_decision_clear(&d3);
				auth_decision_clear(&d4);
			}
		}
		auth_decision_clear(&d2);
	} else {
		cr_expect(v == AUTH_DENY_ROUTE || v == AUTH_DENY_ANONYMOUS);
	}
	auth_principal_clear(&p);
	return v;
}

Test(auth, grants)
{
	struct auth_decision d;
	char *h = apikey_header("reporting:kr", 12), *s;

	/* reporting: group readers (its key's), grant 1 */
	cr_expect_eq(decide_as(h, NULL, NULL, 0, "books", &d), AUTH_ALLOW);
	cr_expect_eq(d.grant, &cfg.grants[1]);
	cr_expect_null(d.filter);
	auth_decision_clear(&d);
	cr_expect_eq(decide_as(h, NULL, NULL, 1, "logs-2026", &d), AUTH_ALLOW);
	auth_decision_clear(&d);
	cr_expect_eq(decide_as(h, NULL, NULL, 0, "secret", &d), AUTH_DENY_INDEX);
	cr_expect_str_eq(d.reason, "index secret is not granted");
	auth_decision_clear(&d);
	cr_expect_eq(decide_as(h, NULL, NULL, 0, NULL, &d), AUTH_ALLOW, "a route reading no index");
	auth_decision_clear(&d);
	cr_expect_eq(decide_as(h, NULL, NULL, 2, NULL, &d), AUTH_DENY_ROUTE);
	cr_expect_str_eq(d.reason, "route /public is not granted");
	auth_decision_clear(&d);
	free(h);
	/* tenant-b: its own grant on /b first (filter with its id), then group ops everywhere */
	h = apikey_header("tenant-b:kb", 11);
	cr_expect_eq(decide_as(h, NULL, NULL, 1, "tenant-b-1", &d), AUTH_ALLOW);
	cr_expect_eq(d.grant, &cfg.grants[0]);
	s = json_dumps(d.filter, JSON_COMPACT);
	cr_expect_str_eq(s, "{\"term\":{\"owner\":\"key:tenant-b\"}}");
	free(s);
	auth_decision_clear(&d);
	cr_expect_eq(decide_as(h, NULL, NULL, 1, "books", &d), AUTH_DENY_INDEX, "the first grant decides");
	auth_decision_clear(&d);
	cr_expect_eq(decide_as(h, NULL, NULL, 0, "anything", &d), AUTH_ALLOW);
	cr_expect_eq(d.grant, &cfg.grants[4]);
	auth_decision_clear(&d);
	free(h);
	/* a certificate in group ops */
	cr_expect_eq(decide_as(NULL, "CN=backup,O=Example", NULL, 2, "x", &d), AUTH_ALLOW);
	auth_decision_clear(&d);
	cr_expect_eq(decide_as(NULL, "CN=other", NULL, 0, "books", &d), AUTH_DENY_ROUTE);
	auth_decision_clear(&d);
	/* anonymous: only where a grant names it; else 401 */
	struct auth_rule optional = {1, 0, AUTH_SCHEME_APIKEY};
	cr_expect_eq(decide_as(NULL, NULL, &optional, 2, NULL, &d), AUTH_ALLOW);
	auth_decision_clear(&d);
	cr_expect_eq(decide_as(NULL, NULL, &optional, 0, NULL, &d), AUTH_DENY_ANONYMOUS);
	cr_expect_str_eq(d.reason, "authentication required");
	auth_decision_clear(&d);
	/* the expired key never gets here; the unknown never names anything */
	cr_expect_str_eq(auth_verdict_name(AUTH_ALLOW), "allow");
}

Test(auth, jwt_grants_and_filters)
{
	struct auth_decision d;
	char *h, *s;

	h = bearer("{\"sub\":\"alice\",\"aud\":\"esgate\",\"exp\":1800000600,\"tenant\":\"a\\\"}}\"}");
	cr_expect_eq(decide_as(h, NULL, NULL, 0, "books", &d), AUTH_ALLOW);
	cr_expect_eq(d.grant, &cfg.grants[2]);
	s = json_dumps(d.filter, JSON_COMPACT);
	cr_expect_str_eq(s, "{\"term\":{\"tenant\":\"a\\\"}}\"}}");
	free(s);
	auth_decision_clear(&d);
	free(h);
	/* the filter's claim is missing: refused, never unfiltered */
	h = bearer("{\"sub\":\"mallory\",\"aud\":\"esgate\",\"exp\":1800000600}");
	cr_expect_eq(decide_as(h, NULL, NULL, 0, "books", &d), AUTH_DENY_FILTER);
	cr_expect_str_eq(d.reason, "claim \"tenant\" needed by the document filter is missing");
	cr_expect_null(d.filter);
	auth_decision_clear(&d);
	free(h);
	/* groups from the roles claim: string or array */
	h = bearer("{\"sub\":\"carol\",\"aud\":\"esgate\",\"exp\":1800000600,\"roles\":[\"x\",\"readers\"]}");
	cr_expect_eq(decide_as(h, NULL, NULL, 0, "books", &d), AUTH_ALLOW);
	cr_expect_eq(d.grant, &cfg.grants[1]);
	auth_decision_clear(&d);
	free(h);
	h = bearer("{\"sub\":\"dave\",\"aud\":\"esgate\",\"exp\":1800000600,\"roles\":\"readers\"}");
	cr_expect_eq(decide_as(h, NULL, NULL, 0, "books", &d), AUTH_ALLOW);
	auth_decision_clear(&d);
	free(h);
	h = bearer("{\"sub\":\"erin\",\"aud\":\"esgate\",\"exp\":1800000600,\"roles\":{\"readers\":true}}");
	cr_expect_eq(decide_as(h, NULL, NULL, 0, "books", &d), AUTH_DENY_ROUTE);
	auth_decision_clear(&d);
	free(h);
	/* a token whose sub names an API key is still a jwt: principal */
	h = bearer("{\"sub\":\"key:tenant-b\",\"aud\":\"esgate\",\"exp\":1800000600}");
	cr_expect_eq(decide_as(h, NULL, NULL, 0, "anything", &d), AUTH_DENY_ROUTE);
	auth_decision_clear(&d);
	free(h);
}

Test(auth, ratelimit_keys)
{
	struct auth_principal a = {.id = "key:a", .id_len = 5}, b = {.id = "key:b", .id_len = 5};
	uint8_t k1[RATELIMIT_KEY_MAX], k2[RATELIMIT_KEY_MAX], k3[RATELIMIT_KEY_MAX];
	struct ratelimit_addr addr;

	cr_expect_eq(auth_ratelimit_key(&a, 1, k1), 20);
	auth_ratelimit_key(&b, 1, k2);
	auth_ratelimit_key(&a, 2, k3);
	cr_expect(memcmp(k1, k2, 20) != 0);
	cr_expect(memcmp(k1, k3, 20) != 0);
	auth_ratelimit_key(&a, 1, k2);
	cr_expect(memcmp(k1, k2, 20) == 0, "stable");
	cr_assert_eq(ratelimit_addr_parse("10.0.0.1", 8, &addr), 0);
	cr_expect_eq(auth_failed_key(&addr, k1), 8);
	cr_expect_eq(ratelimit_key(&addr, AUTH_FAILED_ROUTE, k2), 8);
	cr_expect(memcmp(k1, k2, 8) == 0);
}

Test(auth, values)
{
	char buf[256];

	cr_expect(auth_principal_valid("key:reporting"));
	cr_expect(auth_principal_valid("jwt:alice@example.com"));
	cr_expect(auth_principal_valid("cert:CN=app,O=Example Corp"));
	cr_expect(auth_principal_valid("anonymous"));
	cr_expect_not(auth_principal_valid("key:"));
	cr_expect_not(auth_principal_valid("key:a b"));
	cr_expect_not(auth_principal_valid("jwt:"));
	cr_expect_not(auth_principal_valid("jwt:a\nb"));
	cr_expect_not(auth_principal_valid("alice"));
	cr_expect_not(auth_principal_valid("Anonymous"));
	cr_expect(auth_group_name_valid("readers"));
	cr_expect(auth_group_name_valid("org:team-1.x"));
	cr_expect_not(auth_group_name_valid(""));
	cr_expect_not(auth_group_name_valid("a b"));
	cr_expect_eq(auth_scheme_parse("api_key"), AUTH_SCHEME_APIKEY);
	cr_expect_eq(auth_scheme_parse("client_cert"), AUTH_SCHEME_CERT);
	cr_expect_eq(auth_scheme_parse("basic"), 0);
	cr_expect_str_eq(auth_upstream_index("/books/_search", buf, sizeof(buf)), "books");
	cr_expect_null(auth_upstream_index("/_search", buf, sizeof(buf)));
	cr_expect_null(auth_upstream_index("/{index}/_search", buf, sizeof(buf)));
	cr_expect_null(auth_upstream_index("/", buf, sizeof(buf)));
	cr_expect_null(auth_upstream_index("/Books/_search", buf, sizeof(buf)));
	cr_expect_eq(auth_schemes_configured(&cfg), AUTH_SCHEME_APIKEY | AUTH_SCHEME_JWT | AUTH_SCHEME_CERT);
	struct jwt_policy pol;
	auth_jwt_policy(&cfg, &pol);
	cr_expect_str_eq(pol.subject_claim, "sub");
	cr_expect_eq(pol.leeway_s, 30);
	cr_expect_eq(pol.naudiences, 1);
}
