/*
 * fuzz_auth.c - libFuzzer target for client authentication: the first
 * byte picks what the rest is.
 *   0: an Authorization value through auth_header_parse();
 *   1: the same through auth_authenticate() on a configuration with an
 *      API key and a JWKS (RS256 kid r1, ES256 kid e1) plus an HS256
 *      secret, through the caches of verified tokens and keys and a
 *      connection's memo of its last credential (kept across inputs): the
 *      answer must equal the uncached one, and a principal must be one
 *      the keys can prove;
 *   2: a compact JWT through jwt_verify();
 *   3: a JWKS document through jwt_jwks_parse();
 *   4: a search body (4: _search, then _count and _msearch by the second
 *      byte) through dls_apply_text(): an accepted body must carry the
 *      filter where it binds (top-level bool filter, or every knn);
 *   5: claims JSON through dls_render(): the filter keeps its shape;
 *   6: a search body (by the second byte as in 4) through fls_apply_text()
 *      with a field hidden: an accepted body's _source excludes it, and
 *      the rules applied again change nothing;
 *   7 (the first byte 7 exactly): a request's Authorization headers as the auth stage collects them
 *      (the input split at newlines, up to 4 values) through
 *      auth_authenticate() on a route that also takes a certificate and
 *      anonymous: two or more values are AUTH_MULTIPLE, and credentials
 *      that are there but wrong never fall through to the certificate or
 *      to anonymous.
 * The seeds (corpus/fuzz_auth) hold tokens signed with the keys whose
 * public halves are below, expiring in 2096, so mutations reach the
 * signature and claim checks.  Beyond memory errors it aborts when an
 * invariant breaks.
 */
#include "lib/auth.h"
#include "lib/dls.h"
#include "lib/dsl.h"
#include "lib/fls.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000
#define SECRET "esgate-fuzz-hs256-secret-0123456789abcdef"
/* sha256("fuzz-key"): the key of id "app" */
#define APP_HASH "sha256:231e9b2f757db8d48ecd0711b60135e1cc57a3a807be9dc12638856f17a7872c"

static const char fuzz_jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"n\":\"kdTFbAYSUwYAQZILG8b007iYih2zpv9jqOTOxTp0LjM3BkiiEWyH-"
    "WTqejYqOXIE9ObkJSy9vYqvZStxWz4MTe-XsAv07ny7tezVS-"
    "jm6lReTn0yC7HYjISeoutB199QydZKTX5rz0ZSLJTlW79wx6J8zTAhrilIlA0VoIm0RoXMoxeZq8IWzUD6Qg_"
    "By7PbdKZ3T7AQG8N8H9fL3jW1tSneBNwYtEXcQAOgvLQqkdeQ3JgwDCAzfiOD46qsEf7LhyHazCwHnM3tQFnO3uQn7SCCx-"
    "8XJn43b774vw5H581nDqGYfzeo76NIDmJkkuViVPy9GWpqMHUxiUaWsDMXOQ\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"crv\":\"P-256\","
    "\"kid\":\"e1\",\"x\":\"g-d-mqpbEdVXQMsiE0sB385ZI9_xpgNdD0NNIncKgXo\",\"y\":\"JKUwXZ79Fk1-"
    "JKhTYLIvIVExlqAcFBAJMTbr2uXQouU\"}]}";

static struct auth_config cfg;
static struct jwt_cache *cache;
static struct apikey_cache *keycache;
static struct auth_memo memo; /* a connection's memo, kept across inputs as across a connection's requests */
static json_t *filter, *tmpl;

static void
fuzz_auth_init(void)
{
	static char *auds[] = {"esgate"};

	auth_config_defaults(&cfg);
	cfg.keys.keys = calloc(1, sizeof(struct apikey));
	cfg.keys.keys[0].id = strdup("app");
	if (apikey_hash_parse(APP_HASH, cfg.keys.keys[0].hash) != 0)
		abort();
	cfg.keys.n = 1;
	cfg.jwt.enabled = 1;
	cfg.jwt.keys = jwt_jwks_parse(fuzz_jwks, strlen(fuzz_jwks), NULL, NULL, 0);
	cfg.jwt.keys = jwt_keyset_add_secret(cfg.jwt.keys, (const unsigned char *)SECRET, strlen(SECRET));
	if (cfg.jwt.keys == NULL || jwt_keyset_count(cfg.jwt.keys) != 3)
		abort();
	cfg.jwt.issuer = strdup("https://idp.example/");
	cfg.jwt.audiences = auds;
	cfg.jwt.naudiences = 1;
	cache = jwt_cache_new(64);
	keycache = apikey_cache_new(8);
	filter = json_pack("{s:{s:s}}", "term", "tenant", "t1");
	tmpl = json_pack("{s:{s:s}}", "term", "tenant", "x-{{claims.tenant}}-{{principal}}");
}

static int
fuzz_has(const json_t *list, const json_t *f)
{
	const json_t *e;
	size_t i;

	if (json_equal((json_t *)(uintptr_t)list, (json_t *)(uintptr_t)f))
		return 1;
	json_array_foreach (list, i, e)
		if (json_equal((json_t *)(uintptr_t)e, (json_t *)(uintptr_t)f))
			return 1;
	return 0;
}

/* One body line as dls_apply_text() wrote it: the filter must bind it. */
static void
fuzz_bound(const char *s, size_t n)
{
	json_t *b = json_loadb(s, n, 0, NULL), *q, *knn, *e;
	size_t i;

	if (b == NULL || !json_is_object(b))
		abort();
	q = json_object_get(b, "query");
	knn = json_object_get(b, "knn");
	if (q != NULL) {
		json_t *bl = json_object_get(q, "bool"), *f = json_object_get(bl, "filter");

		if (json_object_size(q) != 1 || !json_is_array(f) || json_array_size(f) != 1 ||
		    !json_equal(json_array_get(f, 0), filter) ||
		    json_object_size(bl) != (json_object_get(bl, "must") != NULL ? 2u : 1u))
			abort();
	} else if (knn == NULL)
		abort();
	if (json_is_object(knn) && !fuzz_has(json_object_get(knn, "filter"), filter))
		abort();
	json_array_foreach (knn, i, e)
		if (!fuzz_has(json_object_get(e, "filter"), filter))
			abort();
	json_decref(b);
}

static void
fuzz_dls(const uint8_t *data, size_t size)
{
	static const int modes[] = {DSL_BODY_SEARCH, DSL_BODY_COUNT, DSL_BODY_MSEARCH};
	char *out = NULL, reason[DLS_REASON_MAX];
	size_t outlen = 0, line = 0;
	int mode;

	if (size < 1)
		return;
	mode = modes[data[0] % 3];
	if (dls_apply_text((const char *)data + 1, size - 1, mode, filter, &out, &outlen, reason, sizeof(reason)) !=
	    0) {
		if (out != NULL || strlen(reason) == 0)
			abort();
		return;
	}
	if (out == NULL || strlen(out) != outlen)
		abort();
	for (const char *p = out; p < out + outlen; line++) {
		const char *nl = memchr(p, '\n', (size_t)(out + outlen - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(out + outlen - p);

		if (mode != DSL_BODY_MSEARCH || line % 2 == 1)
			fuzz_bound(p, n);
		p += n + 1;
	}
	free(out);
}

/* An accepted body under a hidden field: its _source (unless false)
 * excludes the field, and the rules applied again accept it unchanged. */
static void
fuzz_fls_line(const struct fls_rules *rules, json_t *j, int mode)
{
	json_t *again = json_deep_copy(j), *src = json_object_get(j, "_source"), *e;
	char reason[256];
	size_t i;
	int found = 0;

	if (mode != DSL_BODY_COUNT && !json_is_false(src)) {
		json_array_foreach (json_object_get(src, "excludes"), i, e)
			found |= json_is_string(e) && strcmp(json_string_value(e), "salary") == 0;
		if (!found)
			abort();
	}
	if (fls_apply(rules, again, mode, reason, sizeof(reason)) != 0 || !json_equal(again, j))
		abort();
	json_decref(again);
}

static void
fuzz_fls(const uint8_t *data, size_t size)
{
	static const int modes[] = {DSL_BODY_SEARCH, DSL_BODY_COUNT, DSL_BODY_MSEARCH};
	static char *hide[] = {"salary"};
	static const struct fls_rules rules = {NULL, 0, hide, 1};
	char *out = NULL, reason[256];
	size_t outlen = 0, line = 0;
	int mode;

	if (size < 1)
		return;
	mode = modes[data[0] % 3];
	if (fls_apply_text(&rules, (const char *)data + 1, size - 1, mode, &out, &outlen, reason, sizeof(reason)) != 0)
		return;
	for (const char *p = out; p < out + outlen; line++) {
		const char *nl = memchr(p, '\n', (size_t)(out + outlen - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(out + outlen - p);
		json_t *j = json_loadb(p, len, 0, NULL);

		if (j == NULL)
			abort();
		if (mode != DSL_BODY_MSEARCH || line % 2 == 1)
			fuzz_fls_line(&rules, j, mode == DSL_BODY_MSEARCH ? DSL_BODY_SEARCH : mode);
		json_decref(j);
		p += len + 1;
	}
	free(out);
}

static void
fuzz_authenticate(const char *s, size_t n)
{
	static const struct auth_rule rule = {1, 1, AUTH_SCHEME_APIKEY | AUTH_SCHEME_JWT};
	struct auth_request rq = {(const char *const[]){s}, (const size_t[]){n}, 1, NULL, NOW, keycache, &memo};
	struct auth_request bare = {(const char *const[]){s}, (const size_t[]){n}, 1, NULL, NOW, NULL, NULL};
	struct auth_principal p1, p2, p3;
	enum auth_result r1, r2, r3;

	r1 = auth_authenticate(&cfg, &rule, &rq, cache, &p1);
	r2 = auth_authenticate(&cfg, &rule, &rq, cache, &p2);
	r3 = auth_authenticate(&cfg, &rule, &bare, NULL, &p3);
	/* the caches and the memo never change an answer */
	if (r1 != r2 || r1 != r3 || strcmp(p1.id, p3.id) != 0 || strcmp(p2.id, p3.id) != 0)
		abort();
	if (r1 == AUTH_OK) {
		struct auth_decision d;

		if (strncmp(p1.id, "jwt:", 4) != 0 && strcmp(p1.id, "key:app") != 0)
			abort();
		if (p1.scheme == AUTH_SCHEME_JWT && p1.claims == NULL)
			abort();
		/* a filter from these claims is built or refused, never half */
		cfg.grants = calloc(1, sizeof(*cfg.grants));
		cfg.grants[0].principals = (char *[]){p1.id};
		cfg.grants[0].nprincipals = 1;
		cfg.grants[0].dls = tmpl;
		cfg.ngrants = 1;
		if (auth_decide(&cfg, &p1, 0, "/", NULL, &d) == AUTH_ALLOW && d.filter == NULL)
			abort();
		auth_decision_clear(&d);
		free(cfg.grants);
		cfg.grants = NULL;
		cfg.ngrants = 0;
	} else if (p1.claims != NULL || p1.id[0] != '\0')
		abort();
	auth_principal_clear(&p1);
	auth_principal_clear(&p2);
	auth_principal_clear(&p3);
}

/* Mode 7 (see above). */
static void
fuzz_headers(const char *s, size_t n)
{
	static const struct auth_rule rule = {1, 0, AUTH_SCHEME_APIKEY | AUTH_SCHEME_JWT | AUTH_SCHEME_CERT};
	const char *values[4];
	size_t lens[4], nv = 0;
	struct auth_request rq = {values, lens, 0, "CN=fuzz", NOW, keycache, &memo};
	struct auth_principal p;
	enum auth_result r;

	while (nv < 4) {
		const char *nl = memchr(s, '\n', n);
		size_t len = nl != NULL ? (size_t)(nl - s) : n;

		values[nv] = s;
		lens[nv++] = len;
		if (nl == NULL)
			break;
		s = nl + 1;
		n -= len + 1;
	}
	rq.nauthorization = nv;
	r = auth_authenticate(&cfg, &rule, &rq, cache, &p);
	if (nv > 1 && r != AUTH_MULTIPLE)
		abort();
	if (r == AUTH_OK && (p.scheme == AUTH_SCHEME_CERT || p.scheme == AUTH_SCHEME_ANONYMOUS))
		abort(); /* an Authorization header was there: it decides */
	if (r == AUTH_OK && strncmp(p.id, "jwt:", 4) != 0 && strcmp(p.id, "key:app") != 0)
		abort();
	auth_principal_clear(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	size_t n = size > 0 ? size - 1 : 0;

	if (cache == NULL || keycache == NULL)
		fuzz_auth_init();
	if (size < 1)
		return 0;
	/* 7 itself is mode 7; the seeds of modes 0..6 keep their first bytes */
	switch (data[0] == 7 ? 7 : data[0] % 7) {
	case 0: {
		struct auth_credentials cr;

		if (auth_header_parse(s, n, &cr) == AUTH_OK) {
			if (cr.scheme == AUTH_SCHEME_APIKEY &&
			    (!apikey_id_valid(cr.key_id, strlen(cr.key_id)) || cr.key_len == 0 ||
			     cr.key_len != strlen(cr.key) || cr.key_len > APIKEY_KEY_MAX))
				abort();
			if (cr.scheme == AUTH_SCHEME_JWT &&
			    (cr.token < s || cr.token + cr.token_len != s + n || cr.token_len == 0))
				abort();
		}
		break;
	}
	case 1: fuzz_authenticate(s, n); break;
	case 7: fuzz_headers(s, n); break;
	case 2: {
		struct jwt_policy pol;
		json_t *claims = NULL;
		int64_t exp = 0;

		auth_jwt_policy(&cfg, &pol);
		if (jwt_verify(cfg.jwt.keys, &pol, s, n, NOW, &claims, &exp) == JWT_OK) {
			if (claims == NULL || exp + pol.leeway_s <= NOW || jwt_subject(&pol, claims) == NULL)
				abort();
		} else if (claims != NULL)
			abort();
		json_decref(claims);
		break;
	}
	case 3: {
		char err[JWT_ERR_MAX];
		size_t skipped;
		struct jwt_keyset *k = jwt_jwks_parse(s, n, &skipped, err, sizeof(err));

		if (k != NULL && (jwt_keyset_count(k) == 0 || jwt_keyset_count(k) > JWT_KEYS_MAX))
			abort();
		jwt_keyset_free(k);
		break;
	}
	case 4: fuzz_dls(data + 1, n); break;
	case 6: fuzz_fls(data + 1, n); break;
	default: {
		json_t *claims = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL), *r;
		char reason[DLS_REASON_MAX];

		r = dls_render(tmpl, "jwt:x", claims, reason, sizeof(reason));
		/* one term, on one string, whatever the claims hold */
		if (r != NULL && (json_object_size(r) != 1 || json_object_size(json_object_get(r, "term")) != 1 ||
		                  !json_is_string(json_object_get(json_object_get(r, "term"), "tenant"))))
			abort();
		json_decref(r);
		json_decref(claims);
		break;
	}
	}
	return 0;
}
