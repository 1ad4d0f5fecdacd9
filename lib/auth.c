/*
 * auth.c - principals and grants (see auth.h).
 */
#include "auth.h"
#include "base64.h"
#include "dls.h"
#include "route.h"
#include "sha256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_NELEM(a) (sizeof(a) / sizeof((a)[0]))

unsigned
auth_scheme_parse(const char *name)
{
	if (strcmp(name, "api_key") == 0)
		return AUTH_SCHEME_APIKEY;
	if (strcmp(name, "jwt") == 0)
		return AUTH_SCHEME_JWT;
	if (strcmp(name, "client_cert") == 0)
		return AUTH_SCHEME_CERT;
	return 0;
}

const char *
auth_result_name(enum auth_result r)
{
	static const char *const names[AUTH_RESULT_COUNT] = {
	    "ok", "missing", "malformed", "multiple", "scheme", "bad_key", "expired_key", "bad_token", "bad_cert",
	};

	return (unsigned)r < AUTH_RESULT_COUNT ? names[r] : "malformed";
}

const char *
auth_verdict_name(enum auth_verdict v)
{
	static const char *const names[AUTH_VERDICT_COUNT] = {"allow", "route", "index", "anonymous", "filter"};

	return (unsigned)v < AUTH_VERDICT_COUNT ? names[v] : "route";
}

void
auth_config_defaults(struct auth_config *c)
{
	memset(c, 0, sizeof(*c));
	c->jwt.leeway_ms = 30 * 1000;
	c->jwt.cache_size = 1024;
	c->failed_rate = 1;
	c->failed_burst = 10;
}

static void
auth_strings_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void
auth_grant_clear(struct auth_grant *g)
{
	auth_strings_free(g->principals, g->nprincipals);
	auth_strings_free(g->groups, g->ngroups);
	auth_strings_free(g->route_paths, g->nroute_paths);
	free(g->routes);
	auth_strings_free(g->indices, g->nindices);
	json_decref(g->dls);
	fls_rules_clear(&g->fields);
	memset(g, 0, sizeof(*g));
}

void
auth_config_clear(struct auth_config *c)
{
	apikey_set_clear(&c->keys);
	free(c->keys_file);
	free(c->jwt.jwks_file);
	jwt_keyset_free(c->jwt.keys);
	free(c->jwt.issuer);
	auth_strings_free(c->jwt.audiences, c->jwt.naudiences);
	if (c->jwt.hs256_secret != NULL) {
		OPENSSL_cleanse(c->jwt.hs256_secret, strlen(c->jwt.hs256_secret));
		free(c->jwt.hs256_secret);
	}
	free(c->jwt.subject_claim);
	free(c->jwt.groups_claim);
	for (size_t i = 0; i < c->ngrants; i++)
		auth_grant_clear(&c->grants[i]);
	free(c->grants);
	for (size_t i = 0; i < c->ngroups; i++) {
		free(c->groups[i].name);
		auth_strings_free(c->groups[i].members, c->groups[i].nmembers);
	}
	free(c->groups);
	memset(c, 0, sizeof(*c));
}

unsigned
auth_schemes_configured(const struct auth_config *c)
{
	unsigned s = AUTH_SCHEME_CERT;

	if (c->keys.n > 0 || c->keys_file != NULL)
		s |= AUTH_SCHEME_APIKEY;
	if (c->jwt.enabled)
		s |= AUTH_SCHEME_JWT;
	return s;
}

void
auth_jwt_policy(const struct auth_config *c, struct jwt_policy *out)
{
	out->issuer = c->jwt.issuer;
	out->audiences = c->jwt.audiences;
	out->naudiences = c->jwt.naudiences;
	out->leeway_s = (int64_t)(c->jwt.leeway_ms / 1000);
	out->subject_claim = c->jwt.subject_claim != NULL ? c->jwt.subject_claim : "sub";
}

/* 1..MAX bytes, none a control character. */
static int
auth_printable(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

int
auth_principal_valid(const char *s)
{
	if (strcmp(s, "anonymous") == 0)
		return 1;
	if (strncmp(s, "key:", 4) == 0)
		return apikey_id_valid(s + 4, strlen(s + 4));
	if (strncmp(s, "jwt:", 4) == 0)
		return auth_printable(s + 4, JWT_SUBJECT_MAX);
	if (strncmp(s, "cert:", 5) == 0)
		return auth_printable(s + 5, AUTH_PRINCIPAL_MAX - 5);
	return 0;
}

int
auth_group_name_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 128)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == len;
}

/*
 * Authentication.
 */

/* 1 if C may stand in a token68 (RFC 9110 11.2) before its '=' padding:
 * a letter, a digit, or one of - . _ ~ + / */
static int
auth_token68(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_' || c == '~' || c == '+' || c == '/';
}

enum auth_result
auth_header_parse(const char *value, size_t len, struct auth_credentials *out)
{
	unsigned char dec[BASE64_DECODED_MAX(AUTH_HEADER_MAX)];
	const char *sp, *cred, *colon;
	size_t slen, clen, idlen, klen, eq;
	ssize_t n;

	memset(out, 0, sizeof(*out));
	if (len == 0 || len > AUTH_HEADER_MAX || memchr(value, '\0', len) != NULL)
		return AUTH_MALFORMED;
	if ((sp = memchr(value, ' ', len)) == NULL)
		return AUTH_MALFORMED; /* a scheme without credentials */
	slen = (size_t)(sp - value);
	for (cred = sp; cred < value + len && *cred == ' '; cred++)
		;
	clen = (size_t)(value + len - cred);
	if (slen == 0 || clen == 0)
		return AUTH_MALFORMED;
	/* token68: the characters, then '=' only at the end */
	for (eq = 0; eq < clen && auth_token68((unsigned char)cred[eq]); eq++)
		;
	for (size_t i = eq; i < clen; i++)
		if (cred[i] != '=')
			return AUTH_MALFORMED;
	if (eq == 0)
		return AUTH_MALFORMED;
	if (slen == 6 && strncasecmp(value, "bearer", 6) == 0) {
		out->scheme = AUTH_SCHEME_JWT;
		out->token = cred;
		out->token_len = clen;
		return AUTH_OK;
	}
	if (!(slen == 6 && strncasecmp(value, "apikey", 6) == 0))
		return AUTH_OK; /* another scheme: scheme 0, the caller refuses it */
	if ((n = base64_decode(cred, clen, dec, sizeof(dec))) <= 0)
		return AUTH_MALFORMED;
	if ((colon = memchr(dec, ':', (size_t)n)) == NULL)
		goto bad;
	idlen = (size_t)(colon - (const char *)dec);
	klen = (size_t)n - idlen - 1;
	if (!apikey_id_valid((const char *)dec, idlen) || klen == 0 || klen > APIKEY_KEY_MAX)
		goto bad;
	for (size_t i = 0; i < klen; i++)
		if ((unsigned char)colon[1 + i] <= 0x20 || (unsigned char)colon[1 + i] >= 0x7f)
			goto bad;
	out->scheme = AUTH_SCHEME_APIKEY;
	memcpy(out->key_id, dec, idlen);
	out->key_id[idlen] = '\0';
	memcpy(out->key, colon + 1, klen);
	out->key[klen] = '\0';
	out->key_len = klen;
	OPENSSL_cleanse(dec, (size_t)n);
	return AUTH_OK;
bad:
	OPENSSL_cleanse(dec, (size_t)n);
	return AUTH_MALFORMED;
}

/* An empty principal: each field set, the arrays' first byte only (a
 * memset of the 400-byte struct twice a request was the hot path's; the
 * struct holds no secret to wipe). */
static void
auth_principal_init(struct auth_principal *p)
{
	p->scheme = 0;
	p->id[0] = '\0';
	p->id_len = 0;
	p->key = NULL;
	p->claims = NULL;
	p->failed_key_id[0] = '\0';
	p->token_result = JWT_OK;
	p->token_cache = AUTH_TOKEN_CACHE_UNUSED;
}

void
auth_principal_clear(struct auth_principal *p)
{
	json_decref(p->claims);
	auth_principal_init(p);
}

/* OUT's id: PREFIX (PLEN bytes) and NAME (NLEN bytes), NAME cut to fit
 * (without printf: the hot path). */
static void
auth_id_n(struct auth_principal *out, const char *prefix, size_t plen, const char *name, size_t nlen)
{
	if (nlen > sizeof(out->id) - 1 - plen)
		nlen = sizeof(out->id) - 1 - plen;
	memcpy(out->id, prefix, plen);
	memcpy(out->id + plen, name, nlen);
	out->id[plen + nlen] = '\0';
	out->id_len = plen + nlen;
}

/* The same for a NUL-terminated NAME, PREFIX a string literal. */
#define auth_id(out, prefix, name)                                                                             \
	auth_id_n((out), (prefix), sizeof(prefix) - 1, (name), strnlen((name), sizeof((out)->id)))

/* The credentials after SCHEME (six letters, lower case) and its spaces
 * in VALUE (LEN bytes), matched as auth_header_parse() matches them, or
 * NULL if VALUE names another scheme. */
static const char *
auth_after_scheme(const char *value, size_t len, const char *scheme, size_t *clen)
{
	size_t i = 6;

	if (len <= 7 || value[6] != ' ' || strncasecmp(value, scheme, 6) != 0)
		return NULL;
	while (i < len && value[i] == ' ')
		i++;
	*clen = len - i;
	return value + i;
}

/* The principal of key K, the right one presented at NOW. */
static enum auth_result
auth_key_principal(const struct apikey *k, int64_t now, struct auth_principal *out)
{
	if (k->expires != 0 && now >= k->expires) {
		memcpy(out->failed_key_id, k->id, strlen(k->id) + 1); /* both APIKEY_ID_MAX + 1 */
		return AUTH_EXPIRED_KEY;
	}
	out->scheme = AUTH_SCHEME_APIKEY;
	out->key = k;
	auth_id(out, "key:", k->id);
	return AUTH_OK;
}

void
auth_memo_clear(struct auth_memo *m)
{
	if (m->text != NULL) {
		OPENSSL_cleanse(m->text, m->cap);
		free(m->text);
	}
	json_decref(m->claims);
	memset(m, 0, sizeof(*m));
}

/* 1 if A and B (LEN bytes each) are equal, in a time that depends on LEN
 * only: 32 bytes a step, then 16 (OpenSSL's CRYPTO_memcmp goes a byte a
 * step), the tail as the last 16 (or 8) bytes again, overlapping. */
typedef uint64_t auth_v2 __attribute__((vector_size(16)));

static int
auth_ct_equal(const char *a, const char *b, size_t len)
{
	auth_v2 dv = {0, 0}, dv2 = {0, 0}, x, y, x2, y2;
	uint64_t d = 0, u, w;
	size_t i = 0;

	if (len >= 16) {
		for (; i + 32 <= len; i += 32) {
			memcpy(&x, a + i, 16);
			memcpy(&y, b + i, 16);
			memcpy(&x2, a + i + 16, 16);
			memcpy(&y2, b + i + 16, 16);
			dv |= x ^ y;
			dv2 |= x2 ^ y2;
		}
		if (i + 16 <= len) {
			memcpy(&x, a + i, 16);
			memcpy(&y, b + i, 16);
			dv |= x ^ y;
			i += 16;
		}
		if (i < len) {
			memcpy(&x, a + len - 16, 16);
			memcpy(&y, b + len - 16, 16);
			dv |= x ^ y;
		}
		dv |= dv2;
		d = dv[0] | dv[1];
	} else if (len >= 8) {
		memcpy(&u, a, 8);
		memcpy(&w, b, 8);
		d = u ^ w;
		memcpy(&u, a + len - 8, 8);
		memcpy(&w, b + len - 8, 8);
		d |= u ^ w;
	} else {
		for (; i < len; i++)
			d |= (uint64_t)((unsigned char)a[i] ^ (unsigned char)b[i]);
	}
	return d == 0;
}

/* Remembers in M that VALUE (LEN bytes) verified as the principal P
 * (AUTH_OK); UNTIL: a token's exp + leeway. */
static void
auth_memo_put(struct auth_memo *m, const char *value, size_t len, const struct auth_principal *p, const char *sub,
              size_t sub_len, int64_t until)
{
	if (m == NULL)
		return;
	m->gen++;
	json_decref(m->claims);
	m->claims = NULL;
	m->scheme = 0;
	if (len > AUTH_MEMO_MAX || (p->scheme == AUTH_SCHEME_JWT && sub == NULL))
		return;
	if (m->cap < len) {
		char *t = malloc(AUTH_MEMO_MAX);

		if (t == NULL)
			return;
		if (m->text != NULL) {
			OPENSSL_cleanse(m->text, m->cap);
			free(m->text);
		}
		m->text = t;
		m->cap = AUTH_MEMO_MAX;
	}
	if (m->len > len)
		OPENSSL_cleanse(m->text + len, m->len - len); /* nothing of the last one stays */
	memcpy(m->text, value, len);
	m->len = len;
	m->key = p->key;
	m->claims = json_incref(p->claims);
	m->sub = sub;
	m->sub_len = sub_len;
	m->until = until;
	m->scheme = p->scheme;
}

/* The principal of M if VALUE (LEN bytes) is its credential and RULE
 * takes its scheme; AUTH_RESULT_COUNT if not (or a token past its end:
 * the cache and the verification then say why). */
static enum auth_result
auth_memo_get(const struct auth_memo *m, const struct auth_rule *rule, const char *value, size_t len, int64_t now,
              struct jwt_cache *cache, struct auth_principal *out)
{
	if (m == NULL || m->scheme == 0 || m->len != len || (rule->schemes & m->scheme) == 0 ||
	    !auth_ct_equal(m->text, value, len))
		return AUTH_RESULT_COUNT;
	if (m->scheme == AUTH_SCHEME_APIKEY)
		return auth_key_principal(m->key, now, out);
	if (now >= m->until)
		return AUTH_RESULT_COUNT;
	jwt_cache_note_hit(cache);
	out->token_cache = AUTH_TOKEN_CACHE_HIT;
	out->scheme = AUTH_SCHEME_JWT;
	out->claims = json_incref(m->claims);
	out->token_result = JWT_OK;
	auth_id_n(out, "jwt:", 4, m->sub, m->sub_len);
	return AUTH_OK;
}

/*
 * A credential the worker has verified before (lib/apikey.h's and
 * lib/jwt.h's caches, by a keyed hash of the header's credential text):
 * its answer without decoding or hashing anything else; AUTH_RESULT_COUNT
 * if it is not one.  The same text was parsed and verified in full to be
 * cached, under this configuration, so the answer is the one
 * auth_header_parse() and the verification would give (but a key's
 * expiry and a token's, checked again here).
 */
static enum auth_result
auth_cached(const struct auth_config *c, const struct auth_rule *rule, const struct auth_request *rq,
            struct jwt_cache *cache, struct auth_principal *out)
{
	const char *v = rq->authorization[0], *cred;
	size_t len = rq->authorization_len[0], clen;
	const struct apikey *k;

	enum auth_result r;

	if (len > AUTH_HEADER_MAX)
		return AUTH_RESULT_COUNT;
	if ((r = auth_memo_get(rq->memo, rule, v, len, rq->now, cache, out)) != AUTH_RESULT_COUNT)
		return r;
	if (rq->key_cache != NULL && (rule->schemes & AUTH_SCHEME_APIKEY) &&
	    (cred = auth_after_scheme(v, len, "apikey", &clen)) != NULL &&
	    (k = apikey_cache_get(rq->key_cache, cred, clen)) != NULL) {
		if ((r = auth_key_principal(k, rq->now, out)) == AUTH_OK)
			auth_memo_put(rq->memo, v, len, out, NULL, 0, 0);
		return r;
	}
	if (cache != NULL && (rule->schemes & AUTH_SCHEME_JWT) &&
	    (cred = auth_after_scheme(v, len, "bearer", &clen)) != NULL) {
		json_t *claims = NULL;
		const char *sub = NULL;
		size_t sublen = 0;
		int64_t exp = 0;

		/* the subject as found when the token was verified: no JSON on a hit */
		if (!jwt_cache_get(cache, cred, clen, rq->now, &claims, rq->memo != NULL ? &exp : NULL, &sub, &sublen))
			return AUTH_RESULT_COUNT;
		out->token_cache = AUTH_TOKEN_CACHE_HIT;
		out->scheme = AUTH_SCHEME_JWT;
		out->claims = claims;
		out->token_result = JWT_OK;
		auth_id_n(out, "jwt:", 4, sub != NULL ? sub : "", sub != NULL ? sublen : 0);
		auth_memo_put(rq->memo, v, len, out, sub, sublen, exp + (int64_t)(c->jwt.leeway_ms / 1000));
		return AUTH_OK;
	}
	return AUTH_RESULT_COUNT;
}

static enum auth_result
auth_by_header(const struct auth_config *c, const struct auth_rule *rule, const struct auth_request *rq,
               struct jwt_cache *cache, struct auth_principal *out)
{
	struct auth_credentials cr;
	enum auth_result r;
	const struct apikey *k = NULL;
	const char *cred;
	size_t clen;

	if ((r = auth_cached(c, rule, rq, cache, out)) != AUTH_RESULT_COUNT)
		return r;
	if ((r = auth_header_parse(rq->authorization[0], rq->authorization_len[0], &cr)) != AUTH_OK)
		return r;
	if ((cr.scheme & rule->schemes) == 0) {
		r = AUTH_SCHEME;
	} else if (cr.scheme == AUTH_SCHEME_APIKEY) {
		memcpy(out->failed_key_id, cr.key_id, strlen(cr.key_id) + 1); /* both APIKEY_ID_MAX + 1 */
		switch (apikey_verify(&c->keys, cr.key_id, strlen(cr.key_id), cr.key, cr.key_len, rq->now, &k)) {
		case APIKEY_OK:
			out->scheme = AUTH_SCHEME_APIKEY;
			out->key = k;
			auth_id(out, "key:", k->id);
			out->failed_key_id[0] = '\0';
			auth_memo_put(rq->memo, rq->authorization[0], rq->authorization_len[0], out, NULL, 0, 0);
			if ((cred = auth_after_scheme(rq->authorization[0], rq->authorization_len[0], "apikey",
			                              &clen)) != NULL)
				apikey_cache_put(rq->key_cache, cred, clen, k);
			break;
		case APIKEY_EXPIRED: r = AUTH_EXPIRED_KEY; break;
		default: r = AUTH_BAD_KEY; break;
		}
	} else {
		struct jwt_policy pol;
		json_t *claims = NULL;

		auth_jwt_policy(c, &pol);
		int64_t exp = 0;
		const char *sub;

		uint64_t hits0, misses0, hits, misses;

		jwt_cache_stats(cache, &hits0, &misses0);
		out->token_result =
		    jwt_verify_cached(cache, c->jwt.keys, &pol, cr.token, cr.token_len, rq->now, &claims, &exp);
		jwt_cache_stats(cache, &hits, &misses);
		out->token_cache = misses > misses0 ? AUTH_TOKEN_CACHE_MISS
		                   : hits > hits0   ? AUTH_TOKEN_CACHE_HIT
		                                    : AUTH_TOKEN_CACHE_UNUSED;
		if (out->token_result != JWT_OK) {
			r = AUTH_BAD_TOKEN;
		} else {
			out->scheme = AUTH_SCHEME_JWT;
			out->claims = claims;
			sub = jwt_subject(&pol, claims);
			auth_id(out, "jwt:", sub);
			auth_memo_put(rq->memo, rq->authorization[0], rq->authorization_len[0], out, sub, strlen(sub),
			              exp + pol.leeway_s);
		}
	}
	OPENSSL_cleanse(&cr, sizeof(cr));
	return r;
}

enum auth_result
auth_authenticate(const struct auth_config *c, const struct auth_rule *rule, const struct auth_request *rq,
                  struct jwt_cache *cache, struct auth_principal *out)
{
	auth_principal_init(out);
	if (rq->nauthorization > 1)
		return AUTH_MULTIPLE; /* two parsers that pick different ones are how checks get skipped */
	if (rq->nauthorization == 1)
		return auth_by_header(c, rule, rq, cache, out);
	if (rq->cert_subject != NULL && (rule->schemes & AUTH_SCHEME_CERT)) {
		if (!auth_printable(rq->cert_subject, AUTH_PRINCIPAL_MAX - 5))
			return AUTH_BAD_CERT;
		out->scheme = AUTH_SCHEME_CERT;
		snprintf(out->id, sizeof(out->id), "cert:%s", rq->cert_subject);
		out->id_len = strlen(out->id);
		return AUTH_OK;
	}
	if (!rule->required) {
		out->scheme = AUTH_SCHEME_ANONYMOUS;
		snprintf(out->id, sizeof(out->id), "anonymous");
		out->id_len = strlen(out->id);
		return AUTH_OK;
	}
	return AUTH_MISSING;
}

size_t
auth_challenges(unsigned schemes, enum auth_result r, const char *out[2])
{
	size_t n = 0;

	if (schemes & AUTH_SCHEME_APIKEY)
		out[n++] = "ApiKey";
	if (schemes & AUTH_SCHEME_JWT)
		out[n++] = r == AUTH_BAD_TOKEN ? "Bearer realm=\"esgate\", error=\"invalid_token\""
		                               : "Bearer realm=\"esgate\"";
	return n;
}

/*
 * Authorization.
 */

static int
auth_list_has(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

int
auth_in_group(const struct auth_config *c, const struct auth_principal *p, const char *name)
{
	const json_t *claim, *e;
	size_t i;

	if (p->key != NULL && auth_list_has(p->key->groups, p->key->ngroups, name))
		return 1;
	if (p->claims != NULL && c->jwt.groups_claim != NULL &&
	    (claim = json_object_get(p->claims, c->jwt.groups_claim)) != NULL) {
		if (json_is_string(claim) && strcmp(json_string_value(claim), name) == 0)
			return 1;
		json_array_foreach (claim, i, e)
			if (json_is_string(e) && strcmp(json_string_value(e), name) == 0)
				return 1;
	}
	for (i = 0; i < c->ngroups; i++)
		if (strcmp(c->groups[i].name, name) == 0 &&
		    auth_list_has(c->groups[i].members, c->groups[i].nmembers, p->id))
			return 1;
	return 0;
}

static int
auth_grant_names(const struct auth_config *c, const struct auth_grant *g, const struct auth_principal *p)
{
	if (auth_list_has(g->principals, g->nprincipals, p->id))
		return 1;
	for (size_t i = 0; i < g->ngroups; i++)
		if (auth_in_group(c, p, g->groups[i]))
			return 1;
	return 0;
}

static int
auth_grant_route(const struct auth_grant *g, size_t route)
{
	if (g->nroute_paths == 0)
		return 1;
	for (size_t i = 0; i < g->nroutes; i++)
		if (g->routes[i] == route)
			return 1;
	return 0;
}

/* An empty decision (each field: the reason is 256 bytes). */
static void
auth_decision_init(struct auth_decision *d)
{
	d->verdict = AUTH_ALLOW;
	d->grant = NULL;
	d->filter = NULL;
	d->reason[0] = '\0';
}

void
auth_decision_clear(struct auth_decision *d)
{
	json_decref(d->filter);
	auth_decision_init(d);
}

const struct auth_grant *
auth_grant_find(const struct auth_config *c, const struct auth_principal *p, size_t route)
{
	for (size_t i = 0; i < c->ngrants; i++)
		if (auth_grant_route(&c->grants[i], route) && auth_grant_names(c, &c->grants[i], p))
			return &c->grants[i];
	return NULL;
}

enum auth_verdict
auth_decide(const struct auth_config *c, const struct auth_principal *p, size_t route, const char *route_path,
            const char *index, struct auth_decision *out)
{
	const struct auth_grant *g = auth_grant_find(c, p, route);

	if (g == NULL) {
		auth_decision_init(out);
		if (p->scheme == AUTH_SCHEME_ANONYMOUS) {
			snprintf(out->reason, sizeof(out->reason), "authentication required");
			return out->verdict = AUTH_DENY_ANONYMOUS;
		}
		snprintf(out->reason, sizeof(out->reason), "route %.200s is not granted", route_path);
		return out->verdict = AUTH_DENY_ROUTE;
	}
	return auth_decide_grant(c, p, g, index, out);
}

/* 1 if grant G lets INDEX (may be NULL: no index) be read, else OUT's
 * reason and verdict filled. */
static int
auth_grant_index_ok(const struct auth_grant *g, const char *index, struct auth_decision *out)
{
	if (index != NULL && g->nindices > 0 && !route_index_allowed(index, strlen(index), g->indices, g->nindices)) {
		snprintf(out->reason, sizeof(out->reason), "index %.200s is not granted", index);
		out->verdict = AUTH_DENY_INDEX;
		return 0;
	}
	return 1;
}

enum auth_verdict
auth_decide_grant(const struct auth_config *c, const struct auth_principal *p, const struct auth_grant *g,
                  const char *index, struct auth_decision *out)
{
	char why[DLS_REASON_MAX];

	(void)c;
	auth_decision_init(out);
	if (!auth_grant_index_ok(g, index, out))
		return out->verdict;
	if (g->dls != NULL && (out->filter = dls_render(g->dls, p->id, p->claims, why, sizeof(why))) == NULL) {
		snprintf(out->reason, sizeof(out->reason), "%s", why);
		return out->verdict = AUTH_DENY_FILTER;
	}
	out->grant = g;
	return out->verdict = AUTH_ALLOW;
}

enum auth_verdict
auth_decide_grant_rendered(const struct auth_grant *g, json_t *filter, const char *index,
                           struct auth_decision *out)
{
	auth_decision_init(out);
	if (!auth_grant_index_ok(g, index, out))
		return out->verdict;
	out->filter = json_incref(filter);
	out->grant = g;
	return out->verdict = AUTH_ALLOW;
}

size_t
auth_ratelimit_key(const struct auth_principal *p, uint32_t route, uint8_t key[RATELIMIT_KEY_MAX])
{
	uint8_t h[SHA256_LEN];

	/* a prefix of its own: no principal key equals another table's */
	(void)sha256_two("esgate principal\0", 17, p->id, p->id_len, h);
	memcpy(key, h, 16);
	memcpy(key + 16, &route, 4);
	return 20;
}

size_t
auth_failed_key(const struct ratelimit_addr *a, uint8_t key[RATELIMIT_KEY_MAX])
{
	return ratelimit_key(a, AUTH_FAILED_ROUTE, key);
}

const char *
auth_upstream_index(const char *upath, char *buf, size_t buflen)
{
	size_t n;

	if (upath[0] != '/')
		return NULL;
	upath++;
	n = strcspn(upath, "/");
	if (n == 0 || n >= buflen || upath[0] == '_' || upath[0] == '{' || !route_index_valid(upath, n, 0))
		return NULL;
	memcpy(buf, upath, n);
	buf[n] = '\0';
	return buf;
}
