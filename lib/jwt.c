/*
 * jwt.c - JWS verification, JWKS reading and the verified-token cache
 * (see jwt.h).
 */
#include "jwt.h"
#include "base64.h"
#include "siphash.h"

#include <math.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWT_HEADER_MAX 1024             /* decoded bytes of a JOSE header */
#define JWT_SIG_MAX 1024                /* decoded bytes of a signature: RSA up to 8192 bits */
#define JWT_COMPONENT_MAX 4096          /* decoded bytes of an RSA n or e, EC x or y, or a secret */
#define JWT_TIME_MAX 9000000000000000LL /* NumericDates beyond this are refused */

struct jwt_key {
	char *kid; /* NULL for the configured secret */
	enum jwt_alg alg;
	EVP_PKEY *pkey;        /* RS256, ES256 */
	unsigned char *secret; /* HS256 */
	size_t secretlen;
};

struct jwt_keyset {
	struct jwt_key *keys;
	size_t n;
};

enum jwt_alg
jwt_alg_parse(const char *name)
{
	if (strcmp(name, "RS256") == 0)
		return JWT_ALG_RS256;
	if (strcmp(name, "ES256") == 0)
		return JWT_ALG_ES256;
	if (strcmp(name, "HS256") == 0)
		return JWT_ALG_HS256;
	return JWT_ALG_NONE;
}

const char *
jwt_alg_name(enum jwt_alg alg)
{
	switch (alg) {
	case JWT_ALG_RS256: return "RS256";
	case JWT_ALG_ES256: return "ES256";
	case JWT_ALG_HS256: return "HS256";
	default: return "none";
	}
}

const char *
jwt_result_name(enum jwt_result r)
{
	static const char *const names[JWT_RESULT_COUNT] = {
	    "ok", "malformed", "alg", "key", "signature", "expired", "not_yet_valid", "issuer", "audience", "claims",
	};

	return (unsigned)r < JWT_RESULT_COUNT ? names[r] : "malformed";
}

/*
 * Key sets.
 */

static void
jwt_key_clear(struct jwt_key *k)
{
	free(k->kid);
	EVP_PKEY_free(k->pkey);
	if (k->secret != NULL) {
		OPENSSL_cleanse(k->secret, k->secretlen);
		free(k->secret);
	}
	memset(k, 0, sizeof(*k));
}

void
jwt_keyset_free(struct jwt_keyset *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++)
		jwt_key_clear(&set->keys[i]);
	free(set->keys);
	free(set);
}

size_t
jwt_keyset_count(const struct jwt_keyset *set)
{
	return set == NULL ? 0 : set->n;
}

static struct jwt_key *
jwt_keyset_append(struct jwt_keyset *set)
{
	struct jwt_key *p;

	if (set->n >= JWT_KEYS_MAX || (p = realloc(set->keys, (set->n + 1) * sizeof(*p))) == NULL)
		return NULL;
	set->keys = p;
	memset(&p[set->n], 0, sizeof(*p));
	return &p[set->n++];
}

struct jwt_keyset *
jwt_keyset_add_secret(struct jwt_keyset *set, const unsigned char *secret, size_t len)
{
	struct jwt_keyset *s = set;
	struct jwt_key *k;

	if (len < JWT_SECRET_MIN)
		return NULL;
	if (s == NULL && (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((k = jwt_keyset_append(s)) == NULL || (k->secret = malloc(len)) == NULL) {
		if (k != NULL)
			s->n--;
		if (set == NULL)
			jwt_keyset_free(s);
		return NULL;
	}
	memcpy(k->secret, secret, len);
	k->secretlen = len;
	k->alg = JWT_ALG_HS256;
	return s;
}

static void jwt_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
jwt_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The base64url member NAME of JWK as bytes in BUF: its length, or -1 if
 * absent or malformed. */
static ssize_t
jwt_member_bytes(const json_t *jwk, const char *name, unsigned char *buf, size_t buflen)
{
	const json_t *v = json_object_get(jwk, name);

	if (!json_is_string(v))
		return -1;
	return base64url_decode(json_string_value(v), json_string_length(v), buf, buflen);
}

/* An EVP_PKEY from OSSL_PARAMs built by the caller. */
static EVP_PKEY *
jwt_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static const char *
jwt_rsa_key(const json_t *jwk, EVP_PKEY **out)
{
	unsigned char n[JWT_COMPONENT_MAX], e[16];
	ssize_t nlen, elen;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	const char *why = NULL;
	size_t skip = 0;

	if ((nlen = jwt_member_bytes(jwk, "n", n, sizeof(n))) <= 0)
		return "RSA key without a valid \"n\"";
	if ((elen = jwt_member_bytes(jwk, "e", e, sizeof(e))) <= 0)
		return "RSA key without a valid \"e\"";
	while (skip < (size_t)nlen && n[skip] == 0)
		skip++;
	if (((size_t)nlen - skip) * 8 < JWT_RSA_BITS_MIN)
		return "RSA key shorter than 2048 bits";
	/* 3 <= e, odd: what RSA needs; OpenSSL refuses some others only at
	 * verification time */
	if (elen > 8 || !(e[elen - 1] & 1) || (elen == 1 && e[0] < 3))
		return "RSA key with a bad exponent \"e\"";
	if ((bn = BN_bin2bn(n, (int)nlen, NULL)) == NULL || (be = BN_bin2bn(e, (int)elen, NULL)) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1 ||
	    (*out = jwt_pkey_fromdata("RSA", bld)) == NULL)
		why = "RSA key that OpenSSL refuses";
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return why;
}

static const char *
jwt_ec_key(const json_t *jwk, EVP_PKEY **out)
{
	unsigned char pt[65], tmp[64];
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	const char *why = NULL;

	/* P-256 coordinates are exactly 32 bytes (RFC 7518 6.2.1.2) */
	if (jwt_member_bytes(jwk, "x", tmp, sizeof(tmp)) != 32)
		return "EC key without a valid 32-byte \"x\"";
	memcpy(pt + 1, tmp, 32);
	if (jwt_member_bytes(jwk, "y", tmp, sizeof(tmp)) != 32)
		return "EC key without a valid 32-byte \"y\"";
	memcpy(pt + 33, tmp, 32);
	pt[0] = 0x04; /* uncompressed point */
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) != 1 ||
	    (*out = jwt_pkey_fromdata("EC", bld)) == NULL)
		why = "EC key that is not a point on P-256";
	else if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL)) == NULL || EVP_PKEY_public_check(ctx) != 1) {
		why = "EC key that is not a point on P-256";
		EVP_PKEY_free(*out);
		*out = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_BLD_free(bld);
	return why;
}

/* 1 if JWK (a key object) is one to skip: not for signatures, or of a
 * kind esgate does not verify.  *ALG gets the algorithm otherwise. */
static int
jwt_key_skipped(const json_t *jwk, enum jwt_alg *alg)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const json_t *use = json_object_get(jwk, "use"), *ops = json_object_get(jwk, "key_ops"), *a;
	const char *crv;
	size_t i;
	int verify = 0;

	if (use != NULL && !(json_is_string(use) && strcmp(json_string_value(use), "sig") == 0))
		return 1;
	if (ops != NULL) {
		json_array_foreach (ops, i, a)
			if (json_is_string(a) && strcmp(json_string_value(a), "verify") == 0)
				verify = 1;
		if (!verify)
			return 1;
	}
	if (kty == NULL)
		return 1;
	if (strcmp(kty, "RSA") == 0)
		*alg = JWT_ALG_RS256;
	else if (strcmp(kty, "oct") == 0)
		*alg = JWT_ALG_HS256;
	else if (strcmp(kty, "EC") == 0 && (crv = json_string_value(json_object_get(jwk, "crv"))) != NULL &&
	         strcmp(crv, "P-256") == 0)
		*alg = JWT_ALG_ES256;
	else
		return 1;
	a = json_object_get(jwk, "alg");
	return a != NULL && !(json_is_string(a) && jwt_alg_parse(json_string_value(a)) == *alg);
}

/* Reads one JWK into K; NULL, or why not. */
static const char *
jwt_key_read(const json_t *jwk, enum jwt_alg alg, struct jwt_key *k)
{
	static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
	const json_t *kid = json_object_get(jwk, "kid");
	unsigned char secret[JWT_COMPONENT_MAX];
	ssize_t n;
	const char *why = NULL;

	if (kid != NULL &&
	    (!json_is_string(kid) || json_string_length(kid) == 0 || json_string_length(kid) > JWT_KID_MAX ||
	     strlen(json_string_value(kid)) != json_string_length(kid)))
		return "\"kid\" must be a string of 1 to 256 bytes";
	k->alg = alg;
	switch (alg) {
	case JWT_ALG_RS256:
	case JWT_ALG_ES256:
		for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++)
			if (json_object_get(jwk, private_members[i]) != NULL)
				return "the key holds private parts: give esgate the public key set";
		why = alg == JWT_ALG_RS256 ? jwt_rsa_key(jwk, &k->pkey) : jwt_ec_key(jwk, &k->pkey);
		break;
	default:
		if ((n = jwt_member_bytes(jwk, "k", secret, sizeof(secret))) < 0)
			return "oct key without a valid \"k\"";
		if (n < JWT_SECRET_MIN)
			return "oct key shorter than 32 bytes";
		if ((k->secret = malloc((size_t)n)) == NULL)
			why = "out of memory";
		else {
			memcpy(k->secret, secret, (size_t)n);
			k->secretlen = (size_t)n;
		}
		OPENSSL_cleanse(secret, sizeof(secret));
		break;
	}
	if (why == NULL && kid != NULL && (k->kid = strdup(json_string_value(kid))) == NULL)
		why = "out of memory";
	return why;
}

struct jwt_keyset *
jwt_jwks_parse(const char *text, size_t len, size_t *skipped, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc, *keys, *jwk;
	struct jwt_keyset *set = NULL;
	size_t i, nskipped = 0;

	if (skipped != NULL)
		*skipped = 0;
	if ((doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		jwt_errf(err, errlen, "%d:%d: JSON syntax error: %s", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	keys = json_object_get(doc, "keys");
	if (!json_is_object(doc) || !json_is_array(keys)) {
		jwt_errf(err, errlen, "not a JWKS document: {\"keys\": [...]} expected");
		goto fail;
	}
	if (json_array_size(keys) > JWT_KEYS_MAX) {
		jwt_errf(err, errlen, "more than %d keys", JWT_KEYS_MAX);
		goto fail;
	}
	if ((set = calloc(1, sizeof(*set))) == NULL) {
		jwt_errf(err, errlen, "out of memory");
		goto fail;
	}
	json_array_foreach (keys, i, jwk) {
		const char *kid = json_string_value(json_object_get(jwk, "kid")), *why;
		enum jwt_alg alg = JWT_ALG_NONE;
		struct jwt_key *k;

		if (!json_is_object(jwk)) {
			jwt_errf(err, errlen, "keys[%zu]: not an object", i);
			goto fail;
		}
		if (jwt_key_skipped(jwk, &alg)) {
			nskipped++;
			continue;
		}
		if ((k = jwt_keyset_append(set)) == NULL) {
			jwt_errf(err, errlen, "out of memory");
			goto fail;
		}
		if ((why = jwt_key_read(jwk, alg, k)) != NULL) {
			/* a kid is an identifier, not a secret; cut and made
			 * printable all the same */
			if (kid != NULL && strlen(kid) <= 64 &&
			    strspn(kid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
			        strlen(kid))
				jwt_errf(err, errlen, "keys[%zu] (kid \"%s\"): %s", i, kid, why);
			else
				jwt_errf(err, errlen, "keys[%zu]: %s", i, why);
			goto fail;
		}
		for (size_t j = 0; k->kid != NULL && j + 1 < set->n; j++)
			if (set->keys[j].kid != NULL && strcmp(set->keys[j].kid, k->kid) == 0) {
				jwt_errf(err, errlen, "keys[%zu]: duplicate kid", i);
				goto fail;
			}
	}
	if (set->n == 0) {
		jwt_errf(err, errlen, "no key esgate can verify with (RSA, EC P-256 or oct, for signatures)");
		goto fail;
	}
	json_decref(doc);
	if (skipped != NULL)
		*skipped = nskipped;
	return set;
fail:
	jwt_keyset_free(set);
	json_decref(doc);
	return NULL;
}

/*
 * Verification.
 */

/* The key for a token of algorithm ALG with kid KID (NULL if none). */
static const struct jwt_key *
jwt_key_for(const struct jwt_keyset *set, enum jwt_alg alg, const char *kid, enum jwt_result *why)
{
	const struct jwt_key *found = NULL;
	size_t n = 0;

	for (size_t i = 0; i < set->n; i++) {
		const struct jwt_key *k = &set->keys[i];

		if (kid != NULL) {
			if (k->kid != NULL && strcmp(k->kid, kid) == 0) {
				/* the key's algorithm, not the token's, decides */
				*why = k->alg == alg ? JWT_OK : JWT_ALG;
				return k->alg == alg ? k : NULL;
			}
		} else if (k->alg == alg) {
			found = k;
			n++;
		}
	}
	if (kid == NULL && n == 1)
		return found;
	/* several keys of the algorithm and no kid: trying each would let
	 * one token cost many verifications */
	*why = kid == NULL && n == 0 ? JWT_ALG : JWT_KEY;
	return NULL;
}

static int
jwt_verify_sig(const struct jwt_key *k, const unsigned char *data, size_t len, const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *md;
	unsigned char mac[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int maclen = 0;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int ok = 0, derlen;

	if (k->alg == JWT_ALG_HS256) {
		if (siglen != 32 || HMAC(EVP_sha256(), k->secret, (int)k->secretlen, data, len, mac, &maclen) == NULL ||
		    maclen != 32)
			return 0;
		ok = CRYPTO_memcmp(mac, sig, 32) == 0;
		OPENSSL_cleanse(mac, sizeof(mac));
		return ok;
	}
	if (k->alg == JWT_ALG_ES256) {
		/* JOSE writes r||s, 32 bytes each; OpenSSL verifies DER */
		if (siglen != 64 || (es = ECDSA_SIG_new()) == NULL || (r = BN_bin2bn(sig, 32, NULL)) == NULL ||
		    (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
			BN_free(r);
			BN_free(s);
			ECDSA_SIG_free(es);
			return 0;
		}
		derlen = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		if (derlen <= 0)
			return 0;
		sig = der;
		siglen = (size_t)derlen;
	} else if (siglen != (size_t)EVP_PKEY_get_size(k->pkey))
		return 0;
	if ((md = EVP_MD_CTX_new()) != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(md, sig, siglen, data, len) == 1)
		ok = 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return ok;
}

/* A base64url part of a token into a JSON object, or NULL. */
static json_t *
jwt_part_json(const char *s, size_t len, size_t max)
{
	unsigned char *buf;
	ssize_t n;
	json_t *j = NULL;

	if (len == 0 || BASE64_DECODED_MAX(len) > max + 3 || (buf = malloc(BASE64_DECODED_MAX(len))) == NULL)
		return NULL;
	if ((n = base64url_decode(s, len, buf, BASE64_DECODED_MAX(len))) > 0)
		j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* A NumericDate claim NAME of CLAIMS: 1 present (in *OUT, rounded down),
 * 0 absent, -1 not a finite number. */
static int
jwt_time_claim(const json_t *claims, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(claims, name);
	double d;

	if (v == NULL)
		return 0;
	/* past year 285 million either way: refused, so that exp + leeway
	 * cannot overflow */
	if (json_is_integer(v)) {
		if (json_integer_value(v) > JWT_TIME_MAX || json_integer_value(v) < -JWT_TIME_MAX)
			return -1;
		*out = (int64_t)json_integer_value(v);
		return 1;
	}
	if (!json_is_real(v) || !isfinite(d = json_real_value(v)) || d > JWT_TIME_MAX || d < -JWT_TIME_MAX)
		return -1;
	*out = (int64_t)floor(d);
	return 1;
}

static int
jwt_printable(const char *s, size_t len)
{
	if (len == 0 || len > JWT_SUBJECT_MAX || strlen(s) != len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

const char *
jwt_subject(const struct jwt_policy *policy, const json_t *claims)
{
	return json_string_value(json_object_get(claims, policy->subject_claim ? policy->subject_claim : "sub"));
}

/* 1 if AUD (a string or an array) holds one of POLICY's audiences. */
static int
jwt_audience_ok(const struct jwt_policy *policy, const json_t *aud)
{
	const json_t *a;
	size_t i, j;

	for (i = 0; i < policy->naudiences; i++) {
		if (json_is_string(aud) && strcmp(json_string_value(aud), policy->audiences[i]) == 0)
			return 1;
		json_array_foreach (aud, j, a)
			if (json_is_string(a) && strcmp(json_string_value(a), policy->audiences[i]) == 0)
				return 1;
	}
	return 0;
}

/* The claims checks other than time: iss, aud, the subject. */
static enum jwt_result
jwt_check_claims(const struct jwt_policy *policy, const json_t *claims)
{
	const json_t *iss = json_object_get(claims, "iss"), *aud = json_object_get(claims, "aud"), *sub;

	if (iss != NULL && !json_is_string(iss))
		return JWT_CLAIMS;
	if (policy->issuer != NULL && (iss == NULL || strcmp(json_string_value(iss), policy->issuer) != 0))
		return JWT_ISSUER;
	if (aud != NULL && !json_is_string(aud) && !json_is_array(aud))
		return JWT_CLAIMS;
	if (policy->naudiences > 0 && (aud == NULL || !jwt_audience_ok(policy, aud)))
		return JWT_AUDIENCE;
	sub = json_object_get(claims, policy->subject_claim != NULL ? policy->subject_claim : "sub");
	if (!json_is_string(sub) || !jwt_printable(json_string_value(sub), json_string_length(sub)))
		return JWT_CLAIMS;
	return JWT_OK;
}

/* exp and nbf at NOW: EXP gets "exp". */
static enum jwt_result
jwt_check_time(const struct jwt_policy *policy, const json_t *claims, int64_t now, int64_t *exp)
{
	int64_t nbf;
	int rc;

	if (jwt_time_claim(claims, "exp", exp) != 1)
		return JWT_CLAIMS; /* a token without an end is not taken */
	if ((rc = jwt_time_claim(claims, "nbf", &nbf)) < 0)
		return JWT_CLAIMS;
	if (now >= *exp + policy->leeway_s)
		return JWT_EXPIRED;
	if (rc == 1 && now + policy->leeway_s < nbf)
		return JWT_NOT_YET_VALID;
	return JWT_OK;
}

enum jwt_result
jwt_verify(const struct jwt_keyset *set, const struct jwt_policy *policy, const char *token, size_t len, int64_t now,
           json_t **claims_out, int64_t *exp_out)
{
	const char *dot1, *dot2, *sig64;
	json_t *header = NULL, *claims = NULL;
	const json_t *alg, *kid;
	const struct jwt_key *key;
	unsigned char sig[JWT_SIG_MAX];
	enum jwt_result r = JWT_MALFORMED;
	enum jwt_alg a;
	ssize_t siglen;
	int64_t exp = 0;

	if (claims_out != NULL)
		*claims_out = NULL;
	if (set == NULL || len == 0 || len > JWT_TOKEN_MAX || memchr(token, '\0', len) != NULL)
		return JWT_MALFORMED;
	if ((dot1 = memchr(token, '.', len)) == NULL ||
	    (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		return JWT_MALFORMED; /* not three parts: a JWE has five */
	sig64 = dot2 + 1;
	if ((header = jwt_part_json(token, (size_t)(dot1 - token), JWT_HEADER_MAX)) == NULL)
		goto out;
	alg = json_object_get(header, "alg");
	kid = json_object_get(header, "kid");
	if (json_object_get(header, "crit") != NULL || json_object_get(header, "b64") != NULL)
		goto out; /* extensions esgate does not understand (RFC 7515 4.1.11) */
	if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) == 0 ||
	                    strlen(json_string_value(kid)) != json_string_length(kid)))
		goto out;
	r = JWT_ALG;
	if (!json_is_string(alg) || (a = jwt_alg_parse(json_string_value(alg))) == JWT_ALG_NONE)
		goto out;
	if ((key = jwt_key_for(set, a, kid != NULL ? json_string_value(kid) : NULL, &r)) == NULL)
		goto out;
	r = JWT_MALFORMED;
	if ((size_t)(token + len - sig64) == 0 ||
	    (siglen = base64url_decode(sig64, (size_t)(token + len - sig64), sig, sizeof(sig))) <= 0)
		goto out;
	r = JWT_SIGNATURE;
	if (!jwt_verify_sig(key, (const unsigned char *)token, (size_t)(dot2 - token), sig, (size_t)siglen))
		goto out;
	r = JWT_MALFORMED;
	if ((claims = jwt_part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1), JWT_TOKEN_MAX)) == NULL)
		goto out;
	if ((r = jwt_check_time(policy, claims, now, &exp)) != JWT_OK ||
	    (r = jwt_check_claims(policy, claims)) != JWT_OK)
		goto out;
	if (exp_out != NULL)
		*exp_out = exp;
	if (claims_out != NULL) {
		*claims_out = claims;
		claims = NULL;
	}
out:
	json_decref(header);
	json_decref(claims);
	return r;
}

/*
 * The cache: sets of four entries, the set chosen by the tag's first
 * bytes, least recently used evicted.  The tag is the token's
 * SipHash-2-4-128 under a random key of the cache's (lib/siphash.h says
 * why that and not a SHA-256: the same guarantee at a quarter of the
 * cost for a token of 250 bytes).
 */

struct jwt_cache_entry {
	uint8_t tag[SIPHASH128_LEN];
	int64_t until;  /* exp + leeway: the entry is dead from then on */
	uint64_t used;  /* c->sets.tick at the last hit or store */
	json_t *claims; /* NULL: free */
	const char *subject; /* jwt_subject() of claims, a string inside them */
	size_t subject_len;
};

struct jwt_cache {
	struct siphash_sets sets;
	struct jwt_cache_entry entries[];
};

struct jwt_cache *
jwt_cache_new(size_t entries)
{
	struct jwt_cache *c;
	size_t nsets = siphash_sets_count(entries);

	if ((c = calloc(1, sizeof(*c) + nsets * SIPHASH_SETS_WAYS * sizeof(c->entries[0]))) == NULL)
		return NULL;
	if (siphash_sets_init(&c->sets, nsets) != 0) {
		free(c);
		return NULL;
	}
	return c;
}

void
jwt_cache_free(struct jwt_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->sets.nsets * SIPHASH_SETS_WAYS; i++)
		json_decref(c->entries[i].claims);
	OPENSSL_cleanse(c->sets.key, sizeof(c->sets.key));
	free(c);
}

void
jwt_cache_stats(const struct jwt_cache *c, uint64_t *hits, uint64_t *misses)
{
	*hits = c != NULL ? c->sets.hits : 0;
	*misses = c != NULL ? c->sets.misses : 0;
}

void
jwt_cache_note_hit(struct jwt_cache *c)
{
	if (c != NULL)
		c->sets.hits++;
}

/* The live entry of TAG in the set E, or NULL. */
static struct jwt_cache_entry *
jwt_cache_find(struct jwt_cache_entry *e, const uint8_t tag[SIPHASH128_LEN], int64_t now)
{
	for (int i = 0; i < SIPHASH_SETS_WAYS; i++)
		if (e[i].claims != NULL && CRYPTO_memcmp(e[i].tag, tag, SIPHASH128_LEN) == 0 && now < e[i].until)
			return &e[i];
	return NULL;
}

static void
jwt_cache_hit(struct jwt_cache *c, struct jwt_cache_entry *e, json_t **claims, int64_t *exp)
{
	c->sets.hits++;
	e->used = ++c->sets.tick;
	if (claims != NULL)
		*claims = json_incref(e->claims);
	if (exp != NULL)
		(void)jwt_time_claim(e->claims, "exp", exp);
}

int
jwt_cache_get(struct jwt_cache *c, const char *token, size_t len, int64_t now, json_t **claims, int64_t *exp,
              const char **subject, size_t *subject_len)
{
	uint8_t tag[SIPHASH128_LEN];
	struct jwt_cache_entry *e;

	if (c == NULL || len == 0 || len > JWT_TOKEN_MAX)
		return 0;
	if ((e = jwt_cache_find(&c->entries[siphash_sets_find(&c->sets, token, len, tag)], tag, now)) == NULL)
		return 0;
	jwt_cache_hit(c, e, claims, exp);
	if (subject != NULL)
		*subject = e->subject;
	if (subject_len != NULL)
		*subject_len = e->subject_len;
	return 1;
}

enum jwt_result
jwt_verify_cached(struct jwt_cache *c, const struct jwt_keyset *set, const struct jwt_policy *policy, const char *token,
                  size_t len, int64_t now, json_t **claims, int64_t *exp)
{
	struct jwt_cache_entry *e, *victim;
	uint8_t tag[SIPHASH128_LEN];
	enum jwt_result r;
	json_t *got = NULL;
	int64_t e_exp = 0;

	if (claims != NULL)
		*claims = NULL;
	if (c == NULL || len == 0 || len > JWT_TOKEN_MAX)
		return jwt_verify(set, policy, token, len, now, claims, exp);
	e = &c->entries[siphash_sets_find(&c->sets, token, len, tag)];
	for (int i = 0; i < SIPHASH_SETS_WAYS; i++) {
		if (e[i].claims == NULL || CRYPTO_memcmp(e[i].tag, tag, SIPHASH128_LEN) != 0)
			continue;
		if (now >= e[i].until) {
			/* expired since: drop it, and verify (which says why) */
			json_decref(e[i].claims);
			e[i].claims = NULL;
			break;
		}
		jwt_cache_hit(c, &e[i], claims, exp);
		return JWT_OK;
	}
	c->sets.misses++;
	if ((r = jwt_verify(set, policy, token, len, now, &got, &e_exp)) != JWT_OK)
		return r;
	victim = &e[0];
	for (int i = 0; i < SIPHASH_SETS_WAYS; i++) {
		if (e[i].claims == NULL || now >= e[i].until) {
			victim = &e[i];
			break;
		}
		if (e[i].used < victim->used)
			victim = &e[i];
	}
	json_decref(victim->claims);
	memcpy(victim->tag, tag, SIPHASH128_LEN);
	victim->until = e_exp + policy->leeway_s;
	victim->used = ++c->sets.tick;
	victim->claims = json_incref(got);
	victim->subject = jwt_subject(policy, got);
	victim->subject_len = victim->subject != NULL ? strlen(victim->subject) : 0;
	if (exp != NULL)
		*exp = e_exp;
	if (claims != NULL)
		*claims = got;
	else
		json_decref(got);
	return JWT_OK;
}
