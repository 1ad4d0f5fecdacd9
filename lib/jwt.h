/*
 * jwt.h - JSON Web Tokens as "Authorization: Bearer" credentials: compact
 * JWS (RFC 7515) signed with RS256, ES256 or HS256, keys from a JWKS file
 * (RFC 7517), and the registered claims exp, nbf, iss and aud (RFC 7519).
 *
 * Written on OpenSSL 3 directly (EVP_DigestVerify, HMAC), not on a JOSE
 * library: three algorithms need little code, and every choice that
 * JOSE libraries make for the caller is here made the strict way:
 *   - each key has one algorithm, fixed when the key set is read (RSA ->
 *     RS256, EC P-256 -> ES256, a secret -> HS256); a token whose "alg"
 *     differs from its key's is refused, which is what stops "alg": "none"
 *     and HS256 signed with an RSA public key used as the secret
 *     (algorithm confusion); nothing in the token (jwk, jku, x5u, x5c)
 *     ever supplies or points at a key;
 *   - base64url without padding and JSON without duplicate keys, so one
 *     token has one meaning; a "crit" header is refused (no extension is
 *     understood);
 *   - "exp" is required; "nbf" and "exp" are checked with a small leeway;
 *     "iss" and "aud" when configured.
 * All of it is pure (no I/O: the configuration reads the JWKS file; no
 * clock: NOW is given) and safe in any worker; a key set is built once by
 * the master and shared read-only.
 *
 * A per-worker cache (jwt_cache_*) keeps verified tokens by a keyed hash
 * (lib/siphash.h) until their "exp", so the hot path does not verify the
 * same signature again.  Cached or not, a token's time claims are checked against NOW.
 */
#ifndef ESGATE_JWT_H
#define ESGATE_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_TOKEN_MAX 8192 /* bytes of a compact token */
#define JWT_KEYS_MAX 64    /* keys in one set */
#define JWT_KID_MAX 256    /* bytes of a "kid" */
#define JWT_SECRET_MIN 32  /* bytes of an HS256 secret (RFC 7518 3.2: at least the hash size) */
#define JWT_RSA_BITS_MIN 2048
#define JWT_SUBJECT_MAX 256 /* bytes of the principal claim */
#define JWT_ERR_MAX 256

enum jwt_alg {
	JWT_ALG_NONE = 0, /* not an algorithm esgate verifies */
	JWT_ALG_RS256,
	JWT_ALG_ES256,
	JWT_ALG_HS256,
};

/* The algorithm named NAME ("RS256", ...; exact case), or JWT_ALG_NONE. */
enum jwt_alg jwt_alg_parse(const char *name);
const char *jwt_alg_name(enum jwt_alg alg);

struct jwt_keyset; /* opaque; read-only once built */

/*
 * Reads a JWKS document (TEXT, LEN bytes): {"keys": [...]}.  RSA keys
 * (n, e; 2048 bits or more) verify RS256, EC keys on P-256 (x, y, checked
 * to be on the curve) ES256, "oct" keys (k, 32 bytes or more) HS256.  A
 * key's "alg", if given, must be its algorithm; keys whose "use" is not
 * "sig", whose "key_ops" lack "verify", or whose type, curve or "alg"
 * esgate does not verify (RSA-OAEP, PS256, P-384...) are skipped and
 * counted in *SKIPPED, as an identity provider's set may hold them.  A key
 * with private parts ("d", "p"...) is an error: the gateway needs only the
 * public set.  "kid"s must be distinct.  A set without a usable key is an
 * error.
 *
 * Returns the set, or NULL with ERR (ERRLEN bytes) saying why: "LINE:COL:
 * JSON syntax error: ..." for text that is not JSON, else e.g. "keys[2]
 * (kid \"a1\"): RSA key shorter than 2048 bits".  Never a key's material.
 */
struct jwt_keyset *jwt_jwks_parse(const char *text, size_t len, size_t *skipped, char *err, size_t errlen);
/* A set with only the HS256 secret SECRET (LEN >= JWT_SECRET_MIN bytes),
 * or SET (may be NULL) with it added: the secret has no kid, and verifies
 * tokens that carry none.  NULL on error (out of memory, short secret). */
struct jwt_keyset *jwt_keyset_add_secret(struct jwt_keyset *set, const unsigned char *secret, size_t len);
size_t jwt_keyset_count(const struct jwt_keyset *set);
void jwt_keyset_free(struct jwt_keyset *set);

/* What a token must also satisfy. */
struct jwt_policy {
	const char *issuer;        /* "iss" must equal it; NULL: not checked */
	char *const *audiences;    /* "aud" (a string, or an array of them) must hold one of these; */
	size_t naudiences;         /* 0: not checked */
	int64_t leeway_s;          /* clock skew allowed on exp and nbf, seconds */
	const char *subject_claim; /* the claim naming the principal, a non-empty string of at most
	                            * JWT_SUBJECT_MAX printable bytes; NULL means "sub" */
};

enum jwt_result {
	JWT_OK = 0,
	JWT_MALFORMED,     /* not a compact JWS, bad base64url, header or claims not a JSON object, crit */
	JWT_ALG,           /* "alg" missing, "none", unsupported, or not the key's algorithm */
	JWT_KEY,           /* no key for the "kid" (or, without one, not exactly one key of the algorithm) */
	JWT_SIGNATURE,     /* the signature does not verify */
	JWT_EXPIRED,       /* now >= exp + leeway */
	JWT_NOT_YET_VALID, /* now + leeway < nbf */
	JWT_ISSUER,        /* iss differs */
	JWT_AUDIENCE,      /* aud holds none of the audiences */
	JWT_CLAIMS,        /* exp missing, or a registered claim or the subject claim of the wrong type */
};
#define JWT_RESULT_COUNT 10

/* A short fixed word for metrics and logs: "ok", "malformed", "alg", ... */
const char *jwt_result_name(enum jwt_result r);

/*
 * Verifies TOKEN (LEN bytes, the part after "Bearer ") with the keys of SET
 * at time NOW (Unix seconds).  On JWT_OK, *CLAIMS (if not NULL) is a new
 * reference to the claims object and *EXP its "exp" (whole seconds,
 * rounded down).  The signature is checked before any claim.
 */
enum jwt_result jwt_verify(const struct jwt_keyset *set, const struct jwt_policy *policy, const char *token, size_t len,
                           int64_t now, json_t **claims, int64_t *exp);

/* The principal a verified token names: the string value of POLICY's
 * subject claim in CLAIMS (jwt_verify has checked it is one). */
const char *jwt_subject(const struct jwt_policy *policy, const json_t *claims);

/*
 * The cache of verified tokens, one per worker (not shared: it holds
 * jansson values).  ENTRIES (rounded up to a power of two, at least 4) is
 * the most it keeps; a full set of four evicts its least recently used.
 * The key is the token's SipHash-2-4-128 under the cache's own random key
 * (lib/siphash.h), so an entry cannot be reached without the token itself
 * and tells nothing of it.  A cache is tied to the key set and policy it was
 * used with: a worker builds a new one with each configuration.
 */
struct jwt_cache;
struct jwt_cache *jwt_cache_new(size_t entries);
void jwt_cache_free(struct jwt_cache *c);
/* Counters for metrics: lookups that found a valid entry, and the rest. */
void jwt_cache_stats(const struct jwt_cache *c, uint64_t *hits, uint64_t *misses);
/* Counts a hit found before the cache was asked (lib/auth.h's memo of a
 * connection's last token): the metrics count verified tokens reused. */
void jwt_cache_note_hit(struct jwt_cache *c);

/*
 * The lookup alone: 1 if C holds TOKEN (LEN bytes) verified and not
 * expired at NOW, with *CLAIMS (a new reference) and *EXP as
 * jwt_verify_cached() gives them, counted as a hit; else 0 and nothing
 * changed.  Lets the caller skip parsing a header it has seen verified.
 * SUBJECT (may be NULL) gets jwt_subject() of the claims, as found when
 * the token was stored (a string inside *CLAIMS: valid while the caller
 * holds that reference), and SUBJECT_LEN its length: a hit does no JSON
 * lookup.
 */
int jwt_cache_get(struct jwt_cache *c, const char *token, size_t len, int64_t now, json_t **claims, int64_t *exp,
                  const char **subject, size_t *subject_len);

/*
 * jwt_verify() through cache C (NULL: no cache).  A hit skips the
 * signature and the JSON but still checks exp and nbf against NOW; only
 * tokens verified JWT_OK and already valid (nbf passed) are stored.
 * *CLAIMS is a new reference either way: the caller decrefs it.
 */
enum jwt_result jwt_verify_cached(struct jwt_cache *c, const struct jwt_keyset *set, const struct jwt_policy *policy,
                                  const char *token, size_t len, int64_t now, json_t **claims, int64_t *exp);

#endif
