/*
 * test_jwt.c - lib/jwt.c: JWKS documents read or refused with the reason,
 * tokens verified with each algorithm, and every attack a token carries
 * refused: "alg": "none", HS256 signed with the RSA public key
 * (algorithm confusion), a key's algorithm not the token's, tampered
 * parts, malformed encodings, expired and not-yet-valid tokens, wrong
 * issuer and audience; and the verified-token cache.
 */
#include "lib/jwt.h"
#include "tests/unit/testjwt.h"

#include <criterion/criterion.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1800000000
#define SECRET "0123456789abcdef0123456789abcdef"

static EVP_PKEY *rsa, *ec;
static struct jwt_keyset *set;
static const struct jwt_policy open_policy = {.leeway_s = 30};

/* A set of: RSA kid "r1", EC kid "e1", oct kid "h1" (SECRET). */
static void
setup(void)
{
	char *jr, *je, *k, *doc;
	char err[JWT_ERR_MAX];

	rsa = testjwt_key(testjwt_rsa_pem);
	ec = testjwt_key(testjwt_ec_pem);
	cr_assert_not_null(rsa);
	cr_assert_not_null(ec);
	jr = testjwt_jwk(rsa, "r1");
	je = testjwt_jwk(ec, "e1");
	k = testjwt_b64url(SECRET, strlen(SECRET));
	cr_assert(asprintf(&doc, "{\"keys\":[%s,%s,{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"%s\",\"alg\":\"HS256\"}]}",
	                   jr, je, k) > 0);
	set = jwt_jwks_parse(doc, strlen(doc), NULL, err, sizeof(err));
	cr_assert_not_null(set, "%s", err);
	free(jr);
	free(je);
	free(k);
	free(doc);
}

static void
teardown(void)
{
	jwt_keyset_free(set);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
}

TestSuite(jwt, .init = setup, .fini = teardown);

static enum jwt_result
verify(const char *token, const struct jwt_policy *pol)
{
	json_t *claims = NULL;
	enum jwt_result r = jwt_verify(set, pol != NULL ? pol : &open_policy, token, strlen(token), NOW, &claims, NULL);

	cr_expect((r == JWT_OK) == (claims != NULL));
	json_decref(claims);
	return r;
}

/* A token signed as its header says (kid picks the key), PAYLOAD as given. */
static char *
tok(const char *header, const char *payload)
{
	if (strstr(header, "\"e1\"") != NULL)
		return testjwt_sign(ec, NULL, 0, header, payload);
	if (strstr(header, "\"h1\"") != NULL || strstr(header, "HS256") != NULL)
		return testjwt_sign(NULL, (const unsigned char *)SECRET, strlen(SECRET), header, payload);
	return testjwt_sign(rsa, NULL, 0, header, payload);
}

#define GOOD "{\"sub\":\"alice\",\"exp\":1800000600}"

Test(jwt, each_algorithm_verifies)
{
	static const char *const headers[] = {
	    "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	    "{\"alg\":\"ES256\",\"kid\":\"e1\",\"typ\":\"JWT\"}",
	    "{\"alg\":\"HS256\",\"kid\":\"h1\"}",
	};
	for (size_t i = 0; i < 3; i++) {
		char *t = tok(headers[i], GOOD);
		json_t *claims = NULL;
		int64_t exp = 0;

		cr_expect_eq(jwt_verify(set, &open_policy, t, strlen(t), NOW, &claims, &exp), JWT_OK, "%s", headers[i]);
		cr_expect_eq(exp, 1800000600);
		cr_expect_str_eq(jwt_subject(&open_policy, claims), "alice");
		json_decref(claims);
		free(t);
	}
	cr_expect_eq(jwt_keyset_count(set), 3);
}

Test(jwt, no_kid_needs_exactly_one_key_of_the_algorithm)
{
	char *t = tok("{\"alg\":\"RS256\"}", GOOD);

	cr_expect_eq(verify(t, NULL), JWT_OK, "one RSA key: taken without a kid");
	free(t);
	/* a second RSA key: without a kid the token names none */
	{
		EVP_PKEY *other = testjwt_key(testjwt_rsa_pem);
		char *j1 = testjwt_jwk(rsa, "a"), *j2 = testjwt_jwk(other, "b"), *doc, err[JWT_ERR_MAX];
		struct jwt_keyset *two;

		cr_assert(asprintf(&doc, "{\"keys\":[%s,%s]}", j1, j2) > 0);
		two = jwt_jwks_parse(doc, strlen(doc), NULL, err, sizeof(err));
		cr_assert_not_null(two, "%s", err);
		t = tok("{\"alg\":\"RS256\"}", GOOD);
		cr_expect_eq(jwt_verify(two, &open_policy, t, strlen(t), NOW, NULL, NULL), JWT_KEY);
		free(t);
		t = tok("{\"alg\":\"RS256\",\"kid\":\"b\"}", GOOD);
		cr_expect_eq(jwt_verify(two, &open_policy, t, strlen(t), NOW, NULL, NULL), JWT_OK);
		free(t);
		jwt_keyset_free(two);
		free(j1);
		free(j2);
		free(doc);
		EVP_PKEY_free(other);
	}
}

Test(jwt, alg_none_refused)
{
	static const char *const headers[] = {
	    "{\"alg\":\"none\"}", "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}", "{\"alg\":\"none\",\"kid\":\"r1\"}",
	    "{\"alg\":\"\"}",     "{\"kid\":\"r1\"}",   "{\"alg\":null}",     "{\"alg\":[\"RS256\"]}"};

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		/* empty signature, as an unsecured JWS has, then a real one */
		char *t = testjwt_sign(NULL, NULL, 0, headers[i], GOOD),
		     *u = testjwt_sign(rsa, NULL, 0, headers[i], GOOD);

		cr_expect_eq(verify(t, NULL), JWT_ALG, "%s with no signature", headers[i]);
		cr_expect_eq(verify(u, NULL), JWT_ALG, "%s", headers[i]);
		free(t);
		free(u);
	}
}

Test(jwt, algorithm_confusion_refused)
{
	/* HS256 with the RSA public key (PEM, as the classic attack uses it,
	 * and the raw modulus) as the HMAC secret */
	BIO *b = BIO_new(BIO_s_mem());
	char *pem, *t;
	long n;

	PEM_write_bio_PUBKEY(b, rsa);
	n = BIO_get_mem_data(b, &pem);
	t = testjwt_sign(NULL, (const unsigned char *)pem, (size_t)n, "{\"alg\":\"HS256\",\"kid\":\"r1\"}", GOOD);
	cr_expect_eq(verify(t, NULL), JWT_ALG, "kid names an RSA key: RS256 only");
	free(t);
	t = testjwt_sign(NULL, (const unsigned char *)pem, (size_t)n, "{\"alg\":\"HS256\"}", GOOD);
	cr_expect_eq(verify(t, NULL), JWT_SIGNATURE, "without kid: the only HS256 key is the real secret");
	free(t);
	BIO_free(b);
	/* the other way: RS256 claimed for the oct key */
	t = testjwt_sign(rsa, NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"h1\"}", GOOD);
	cr_expect_eq(verify(t, NULL), JWT_ALG);
	free(t);
	t = testjwt_sign(ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"r1\"}", GOOD);
	cr_expect_eq(verify(t, NULL), JWT_ALG);
	free(t);
	/* a set without HS256 keys, and an HS256 token without kid */
	{
		char *j = testjwt_jwk(rsa, "r1"), *doc, err[JWT_ERR_MAX];
		struct jwt_keyset *only;

		cr_assert(asprintf(&doc, "{\"keys\":[%s]}", j) > 0);
		only = jwt_jwks_parse(doc, strlen(doc), NULL, err, sizeof(err));
		cr_assert_not_null(only);
		BIO *b2 = BIO_new(BIO_s_mem());
		PEM_write_bio_PUBKEY(b2, rsa);
		n = BIO_get_mem_data(b2, &pem);
		t = testjwt_sign(NULL, (const unsigned char *)pem, (size_t)n, "{\"alg\":\"HS256\"}", GOOD);
		cr_expect_eq(jwt_verify(only, &open_policy, t, strlen(t), NOW, NULL, NULL), JWT_ALG);
		free(t);
		BIO_free(b2);
		jwt_keyset_free(only);
		free(j);
		free(doc);
	}
}

Test(jwt, unsupported_algorithms_and_embedded_keys)
{
	static const char *const headers[] = {
	    "{\"alg\":\"RS384\",\"kid\":\"r1\"}", "{\"alg\":\"PS256\",\"kid\":\"r1\"}",
	    "{\"alg\":\"HS512\",\"kid\":\"h1\"}", "{\"alg\":\"rs256\",\"kid\":\"r1\"}",
	    "{\"alg\":\"RS256 \",\"kid\":\"r1\"}"};

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *t = testjwt_sign(rsa, NULL, 0, headers[i], GOOD);

		cr_expect_eq(verify(t, NULL), JWT_ALG, "%s", headers[i]);
		free(t);
	}
	/* a key in the header is never used: signed by another RSA key, it
	 * is checked against r1 and fails */
	{
		EVP_PKEY *evil = testjwt_key(testjwt_rsa1k_pem);
		char *jwk = testjwt_jwk(evil, NULL), *h, *t;

		cr_assert(asprintf(&h, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"jwk\":%s,\"jku\":\"https://x/\"}", jwk) >
		          0);
		t = testjwt_sign(evil, NULL, 0, h, GOOD);
		cr_expect_eq(verify(t, NULL), JWT_SIGNATURE);
		free(t);
		free(h);
		free(jwk);
		EVP_PKEY_free(evil);
	}
	{
		char *t = tok("{\"alg\":\"RS256\",\"kid\":\"nope\"}", GOOD);

		cr_expect_eq(verify(t, NULL), JWT_KEY);
		free(t);
		t = tok("{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp\"]}", GOOD);
		cr_expect_eq(verify(t, NULL), JWT_MALFORMED, "crit: no extension is understood");
		free(t);
		t = tok("{\"alg\":\"RS256\",\"kid\":\"r1\",\"b64\":false}", GOOD);
		cr_expect_eq(verify(t, NULL), JWT_MALFORMED);
		free(t);
		t = tok("{\"alg\":\"RS256\",\"kid\":7}", GOOD);
		cr_expect_eq(verify(t, NULL), JWT_MALFORMED);
		free(t);
	}
}

/* T with byte I of part PART (0, 1, 2) changed to C. */
static char *
tamper(const char *t, int part, size_t i, char c)
{
	char *u = strdup(t), *p = u;

	for (int k = 0; k < part; k++)
		p = strchr(p, '.') + 1;
	p[i] = c;
	return u;
}

Test(jwt, tampering_refused)
{
	static const char *const headers[] = {"{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	                                      "{\"alg\":\"ES256\",\"kid\":\"e1\"}",
	                                      "{\"alg\":\"HS256\",\"kid\":\"h1\"}"};

	for (size_t i = 0; i < 3; i++) {
		char *t = tok(headers[i], GOOD), *u, *other;
		char *sig = strrchr(t, '.') + 1;

		u = tamper(t, 2, 3, sig[3] == 'A' ? 'B' : 'A');
		cr_expect_eq(verify(u, NULL), JWT_SIGNATURE, "%s: signature byte", headers[i]);
		free(u);
		u = tamper(t, 1, 5, 'x');
		cr_expect_neq(verify(u, NULL), JWT_OK, "%s: payload byte", headers[i]);
		free(u);
		/* another payload under the same signature */
		other = tok(headers[i], "{\"sub\":\"mallory\",\"exp\":1800000600}");
		{
			char *a = strdup(t), *b = strchr(other, '.') + 1, *bend = strrchr(other, '.');
			char *x;
			char *adot = strchr(a, '.');

			*adot = '\0';
			cr_assert(asprintf(&x, "%s.%.*s.%s", a, (int)(bend - b), b, sig) > 0);
			cr_expect_eq(verify(x, NULL), JWT_SIGNATURE, "%s: payload swapped", headers[i]);
			free(x);
			free(a);
		}
		free(other);
		/* signature cut short, or grown */
		u = strdup(t);
		u[strlen(u) - 4] = '\0';
		cr_expect_neq(verify(u, NULL), JWT_OK);
		free(u);
		cr_assert(asprintf(&u, "%sAAAA", t) > 0);
		cr_expect_neq(verify(u, NULL), JWT_OK);
		free(u);
		free(t);
	}
}

Test(jwt, es256_der_signature_refused)
{
	/* OpenSSL's own DER form is not JOSE's r||s */
	char *h = testjwt_b64url("{\"alg\":\"ES256\",\"kid\":\"e1\"}", 26), *p = testjwt_b64url(GOOD, strlen(GOOD));
	char *input, *sig64, *t;
	unsigned char sig[128];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	cr_assert(asprintf(&input, "%s.%s", h, p) > 0);
	EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ec);
	EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, strlen(input));
	EVP_MD_CTX_free(md);
	sig64 = testjwt_b64url(sig, siglen);
	cr_assert(asprintf(&t, "%s.%s", input, sig64) > 0);
	cr_expect_eq(verify(t, NULL), JWT_SIGNATURE);
	free(h);
	free(p);
	free(input);
	free(sig64);
	free(t);
}

Test(jwt, malformed_tokens)
{
	char *t = tok("{\"alg\":\"RS256\",\"kid\":\"r1\"}", GOOD), *u;
	static const char *const bad[] = {
	    "", ".", "..", "...", "a.b", "a.b.c.d", "a.b.c.d.e", "eyJhbGciOiJSUzI1NiJ9", "!!.!!.!!",
	};

	cr_expect_eq(verify(t, NULL), JWT_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(verify(bad[i], NULL), JWT_MALFORMED, "\"%s\"", bad[i]);
	/* padding, white space, a fourth part, a NUL, a header that is an
	 * array or has duplicate keys */
	cr_assert(asprintf(&u, "%s=", t) > 0);
	cr_expect_eq(verify(u, NULL), JWT_MALFORMED);
	free(u);
	cr_assert(asprintf(&u, " %s", t) > 0);
	cr_expect_eq(verify(u, NULL), JWT_MALFORMED);
	free(u);
	cr_assert(asprintf(&u, "%s.AAAA", t) > 0);
	cr_expect_eq(verify(u, NULL), JWT_MALFORMED);
	free(u);
	cr_expect_eq(jwt_verify(set, &open_policy, t, strlen(t) + 1, NOW, NULL, NULL), JWT_MALFORMED, "NUL at the end");
	free(t);
	t = tok("[\"alg\",\"RS256\"]", GOOD);
	cr_expect_eq(verify(t, NULL), JWT_MALFORMED);
	free(t);
	t = tok("{\"alg\":\"HS256\",\"alg\":\"RS256\",\"kid\":\"r1\"}", GOOD);
	cr_expect_eq(verify(t, NULL), JWT_MALFORMED, "duplicate keys");
	free(t);
	t = tok("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "[1]");
	cr_expect_eq(verify(t, NULL), JWT_MALFORMED, "claims not an object");
	free(t);
	t = tok("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1800000600}");
	cr_expect_eq(verify(t, NULL), JWT_MALFORMED, "duplicate claims");
	free(t);
	t = tok("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"sub\":\"a\\u0000b\",\"exp\":1800000600}");
	cr_expect_eq(verify(t, NULL), JWT_MALFORMED, "a NUL in a claim");
	free(t);
	/* too long */
	u = malloc(JWT_TOKEN_MAX + 2);
	memset(u, 'A', JWT_TOKEN_MAX + 1);
	u[10] = '.';
	u[20] = '.';
	u[JWT_TOKEN_MAX + 1] = '\0';
	cr_expect_eq(verify(u, NULL), JWT_MALFORMED);
	free(u);
	cr_expect_eq(jwt_verify(NULL, &open_policy, "a.b.c", 5, NOW, NULL, NULL), JWT_MALFORMED, "no key set");
}

static enum jwt_result
claims(const char *payload, const struct jwt_policy *pol)
{
	char *t = tok("{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload);
	enum jwt_result r = verify(t, pol);

	free(t);
	return r;
}

Test(jwt, time_claims)
{
	/* NOW = 1800000000, leeway 30 s */
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000001}", NULL), JWT_OK);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1799999980}", NULL), JWT_OK, "expired within the leeway");
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1799999970}", NULL), JWT_EXPIRED, "exp + leeway == now");
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1000}", NULL), JWT_EXPIRED);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600.5}", NULL), JWT_OK, "a fractional NumericDate");
	cr_expect_eq(claims("{\"sub\":\"a\"}", NULL), JWT_CLAIMS, "no exp");
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":\"1800000600\"}", NULL), JWT_CLAIMS);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":null}", NULL), JWT_CLAIMS);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1e300}", NULL), JWT_CLAIMS);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":9223372036854775807}", NULL), JWT_CLAIMS,
	             "no overflow with the leeway");
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600,\"nbf\":-9223372036854775807}", NULL), JWT_CLAIMS);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":9000000000000000}", NULL), JWT_OK, "the largest date taken");
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600,\"nbf\":1800000020}", NULL), JWT_OK,
	             "nbf within leeway");
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600,\"nbf\":1800000031}", NULL), JWT_NOT_YET_VALID);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600,\"nbf\":\"soon\"}", NULL), JWT_CLAIMS);
	struct jwt_policy strict = {.leeway_s = 0};
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000000}", &strict), JWT_EXPIRED);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000001}", &strict), JWT_OK);
}

Test(jwt, issuer_audience_subject)
{
	char *auds[] = {"esgate", "other"};
	struct jwt_policy pol = {.issuer = "https://idp.example/", .audiences = auds, .naudiences = 2, .leeway_s = 30};

	cr_expect_eq(
	    claims("{\"sub\":\"a\",\"exp\":1800000600,\"iss\":\"https://idp.example/\",\"aud\":\"esgate\"}", &pol),
	    JWT_OK);
	cr_expect_eq(
	    claims("{\"sub\":\"a\",\"exp\":1800000600,\"iss\":\"https://idp.example/\",\"aud\":[\"x\",\"other\"]}",
	           &pol),
	    JWT_OK);
	cr_expect_eq(
	    claims("{\"sub\":\"a\",\"exp\":1800000600,\"iss\":\"https://idp.example\",\"aud\":\"esgate\"}", &pol),
	    JWT_ISSUER);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600,\"aud\":\"esgate\"}", &pol), JWT_ISSUER);
	cr_expect_eq(
	    claims("{\"sub\":\"a\",\"exp\":1800000600,\"iss\":\"https://idp.example/\",\"aud\":\"esgatex\"}", &pol),
	    JWT_AUDIENCE);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600,\"iss\":\"https://idp.example/\",\"aud\":[]}", &pol),
	             JWT_AUDIENCE);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600,\"iss\":\"https://idp.example/\"}", &pol), JWT_AUDIENCE);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600,\"iss\":\"https://idp.example/\",\"aud\":7}", &pol),
	             JWT_CLAIMS);
	cr_expect_eq(
	    claims("{\"sub\":\"a\",\"exp\":1800000600,\"iss\":[\"https://idp.example/\"],\"aud\":\"esgate\"}", &pol),
	    JWT_CLAIMS);
	/* unchecked when not configured, but still typed */
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600,\"iss\":\"anyone\",\"aud\":\"anything\"}", NULL),
	             JWT_OK);
	/* the subject */
	cr_expect_eq(claims("{\"exp\":1800000600}", NULL), JWT_CLAIMS, "no sub");
	cr_expect_eq(claims("{\"sub\":\"\",\"exp\":1800000600}", NULL), JWT_CLAIMS);
	cr_expect_eq(claims("{\"sub\":7,\"exp\":1800000600}", NULL), JWT_CLAIMS);
	cr_expect_eq(claims("{\"sub\":\"a\\nb\",\"exp\":1800000600}", NULL), JWT_CLAIMS,
	             "a newline would forge log lines");
	struct jwt_policy email = {.leeway_s = 30, .subject_claim = "email"};
	cr_expect_eq(claims("{\"sub\":\"a\",\"email\":\"a@example.com\",\"exp\":1800000600}", &email), JWT_OK);
	cr_expect_eq(claims("{\"sub\":\"a\",\"exp\":1800000600}", &email), JWT_CLAIMS);
}

Test(jwt, jwks_skips_what_it_does_not_verify)
{
	EVP_PKEY *p384 = testjwt_key(testjwt_ec384_pem);
	char *jr = testjwt_jwk(rsa, "r1"), *doc, err[JWT_ERR_MAX];
	struct jwt_keyset *s;
	size_t skipped = 99;

	cr_assert_not_null(p384);
	cr_assert(asprintf(&doc,
	                   "{\"keys\":[%s,"
	                   "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
	                   "{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
	                   "{\"kty\":\"RSA\",\"alg\":\"PS256\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
	                   "{\"kty\":\"RSA\",\"key_ops\":[\"encrypt\"],\"n\":\"AQAB\",\"e\":\"AQAB\"},"
	                   "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"},"
	                   "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}],\"other\":1}",
	                   jr) > 0);
	s = jwt_jwks_parse(doc, strlen(doc), &skipped, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	cr_expect_eq(jwt_keyset_count(s), 1);
	cr_expect_eq(skipped, 6);
	jwt_keyset_free(s);
	free(jr);
	free(doc);
	EVP_PKEY_free(p384);
}

static void
jwks_refused(const char *doc, const char *want)
{
	char err[JWT_ERR_MAX] = "";

	cr_expect_null(jwt_jwks_parse(doc, strlen(doc), NULL, err, sizeof(err)), "accepted %s", doc);
	cr_expect_str_eq(err, want);
}

Test(jwt, jwks_refused)
{
	EVP_PKEY *short_rsa = testjwt_key(testjwt_rsa1k_pem);
	char *j, *doc, *k;

	jwks_refused("{\"keys\": [", "1:10: JSON syntax error: ']' expected near end of file");
	jwks_refused("{\"keys\": [\n{\"kty\": }]}", "2:9: JSON syntax error: unexpected token near '}'");
	jwks_refused("[]", "not a JWKS document: {\"keys\": [...]} expected");
	jwks_refused("{\"keys\": {}}", "not a JWKS document: {\"keys\": [...]} expected");
	jwks_refused("{\"keys\": []}", "no key esgate can verify with (RSA, EC P-256 or oct, for signatures)");
	jwks_refused("{\"keys\": [1]}", "keys[0]: not an object");
	jwks_refused("{\"keys\": [{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2hvcnQ\"}]}",
	             "keys[0] (kid \"h\"): oct key shorter than 32 bytes");
	jwks_refused("{\"keys\": [{\"kty\":\"oct\",\"k\":\"!!\"}]}", "keys[0]: oct key without a valid \"k\"");
	jwks_refused("{\"keys\": [{\"kty\":\"RSA\",\"kid\":\"r\",\"e\":\"AQAB\"}]}",
	             "keys[0] (kid \"r\"): RSA key without a valid \"n\"");
	jwks_refused("{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
	             "keys[0]: EC key without a valid 32-byte \"x\"");
	/* a point not on the curve */
	k = testjwt_b64url("\1\2\3\4\5\6\7\10\1\2\3\4\5\6\7\10\1\2\3\4\5\6\7\10\1\2\3\4\5\6\7\10", 32);
	cr_assert(asprintf(&doc, "{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", k, k) >
	          0);
	jwks_refused(doc, "keys[0]: EC key that is not a point on P-256");
	free(doc);
	free(k);
	j = testjwt_jwk(short_rsa, "old");
	cr_assert(asprintf(&doc, "{\"keys\": [%s]}", j) > 0);
	jwks_refused(doc, "keys[0] (kid \"old\"): RSA key shorter than 2048 bits");
	free(doc);
	free(j);
	j = testjwt_jwk(rsa, "r1");
	cr_assert(asprintf(&doc, "{\"keys\": [%s, %s]}", j, j) > 0);
	jwks_refused(doc, "keys[1]: duplicate kid");
	free(doc);
	/* the private key: refused, and none of it in the message */
	j[strlen(j) - 1] = '\0';
	cr_assert(asprintf(&doc, "{\"keys\": [%s,\"d\":\"c2VjcmV0\"}]}", j) > 0);
	jwks_refused(doc, "keys[0] (kid \"r1\"): the key holds private parts: give esgate the public key set");
	free(doc);
	cr_assert(asprintf(&doc, "{\"keys\": [%s,\"alg\":\"ES256\"}]}", j) > 0);
	cr_expect_not_null(jwt_jwks_parse(doc, strlen(doc), NULL, NULL, 0) == NULL ? (void *)1 : NULL,
	                   "an RSA key saying ES256 is skipped, leaving none");
	free(doc);
	strstr(j, "\"e\":\"AQAB\"")[5] = '\0';
	cr_assert(asprintf(&doc, "{\"keys\": [%sAg\"}]}", j) > 0);
	jwks_refused(doc, "keys[0] (kid \"r1\"): RSA key with a bad exponent \"e\"");
	free(doc);
	free(j);
	jwks_refused("{\"keys\": [{\"kty\":\"oct\",\"kid\":7,\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"}]}",
	             "keys[0]: \"kid\" must be a string of 1 to 256 bytes");
	jwks_refused("{\"keys\": [{\"kty\":\"oct\",\"kid\":\"a\\nb\",\"k\":\"x\"}]}",
	             "keys[0]: oct key without a valid \"k\"");
	EVP_PKEY_free(short_rsa);
}

Test(jwt, configured_secret)
{
	struct jwt_keyset *s = jwt_keyset_add_secret(NULL, (const unsigned char *)SECRET, strlen(SECRET));
	char *t = testjwt_sign(NULL, (const unsigned char *)SECRET, strlen(SECRET), "{\"alg\":\"HS256\"}", GOOD);

	cr_assert_not_null(s);
	cr_expect_eq(jwt_verify(s, &open_policy, t, strlen(t), NOW, NULL, NULL), JWT_OK);
	free(t);
	t = testjwt_sign(NULL, (const unsigned char *)"another secret another secret 32", 32, "{\"alg\":\"HS256\"}",
	                 GOOD);
	cr_expect_eq(jwt_verify(s, &open_policy, t, strlen(t), NOW, NULL, NULL), JWT_SIGNATURE);
	free(t);
	t = testjwt_sign(rsa, NULL, 0, "{\"alg\":\"RS256\"}", GOOD);
	cr_expect_eq(jwt_verify(s, &open_policy, t, strlen(t), NOW, NULL, NULL), JWT_ALG, "no RSA key at all");
	free(t);
	jwt_keyset_free(s);
	cr_expect_null(jwt_keyset_add_secret(NULL, (const unsigned char *)"short", 5));
}

Test(jwt, cache)
{
	struct jwt_cache *c = jwt_cache_new(8);
	char *t = tok("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"sub\":\"a\",\"exp\":1800000100}"), *bad;
	json_t *cl = NULL;
	uint64_t hits, misses;
	int64_t exp = 0;

	cr_assert_not_null(c);
	cr_expect_eq(jwt_verify_cached(c, set, &open_policy, t, strlen(t), NOW, &cl, &exp), JWT_OK);
	cr_expect_eq(exp, 1800000100);
	json_decref(cl);
	cr_expect_eq(jwt_verify_cached(c, set, &open_policy, t, strlen(t), NOW + 10, &cl, &exp), JWT_OK);
	cr_expect_str_eq(json_string_value(json_object_get(cl, "sub")), "a");
	cr_expect_eq(exp, 1800000100);
	jwt_cache_stats(c, &hits, &misses);
	cr_expect_eq(hits, 1);
	cr_expect_eq(misses, 1);
	/* the claims outlive the cache */
	jwt_cache_free(c);
	cr_expect_str_eq(json_string_value(json_object_get(cl, "sub")), "a");
	json_decref(cl);

	c = jwt_cache_new(8);
	cr_expect_eq(jwt_verify_cached(c, set, &open_policy, t, strlen(t), NOW, NULL, NULL), JWT_OK);
	/* the lookup alone: a hit, with the claims; nothing for another token */
	cr_expect_eq(jwt_cache_get(c, t, strlen(t), NOW + 20, &cl, &exp, NULL, NULL), 1);
	cr_expect_str_eq(json_string_value(json_object_get(cl, "sub")), "a");
	cr_expect_eq(exp, 1800000100);
	json_decref(cl);
	{
		/* and the subject as stored, without a JSON lookup */
		const char *sub = NULL;
		size_t sublen = 0;

		cr_expect_eq(jwt_cache_get(c, t, strlen(t), NOW + 20, &cl, NULL, &sub, &sublen), 1);
		cr_expect_str_eq(sub, "a");
		cr_expect_eq(sublen, 1);
		json_decref(cl);
	}
	cr_expect_eq(jwt_cache_get(c, t, strlen(t) - 1, NOW, &cl, NULL, NULL, NULL), 0);
	cr_expect_eq(jwt_cache_get(c, t, strlen(t), 1800000130, &cl, NULL, NULL, NULL), 0, "expired: not a hit");
	cr_expect_eq(jwt_cache_get(NULL, t, strlen(t), NOW, &cl, NULL, NULL, NULL), 0);
	/* a cached token still expires */
	cr_expect_eq(jwt_verify_cached(c, set, &open_policy, t, strlen(t), 1800000130, &cl, NULL), JWT_EXPIRED);
	cr_expect_null(cl);
	/* a tampered token is not the cached one */
	bad = tamper(t, 2, 2, t[strlen(t) - 5] == 'A' ? 'B' : 'A');
	cr_expect_eq(jwt_verify_cached(c, set, &open_policy, bad, strlen(bad), NOW, NULL, NULL), JWT_SIGNATURE);
	free(bad);
	/* failures are not cached */
	bad = tok("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"sub\":\"a\",\"exp\":1800000600,\"nbf\":1800000500}");
	cr_expect_eq(jwt_verify_cached(c, set, &open_policy, bad, strlen(bad), NOW, NULL, NULL), JWT_NOT_YET_VALID);
	cr_expect_eq(jwt_verify_cached(c, set, &open_policy, bad, strlen(bad), 1800000480, NULL, NULL), JWT_OK);
	free(bad);
	/* many tokens through a small cache: bounded, and each still right */
	for (int i = 0; i < 100; i++) {
		char payload[64], sub[16], *ti;

		snprintf(sub, sizeof(sub), "u%d", i);
		snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":1800000600}", sub);
		ti = tok("{\"alg\":\"HS256\",\"kid\":\"h1\"}", payload);
		for (int k = 0; k < 2; k++) {
			cr_expect_eq(jwt_verify_cached(c, set, &open_policy, ti, strlen(ti), NOW, &cl, NULL), JWT_OK);
			cr_expect_str_eq(json_string_value(json_object_get(cl, "sub")), sub);
			json_decref(cl);
		}
		free(ti);
	}
	jwt_cache_free(c);
	free(t);
	/* without a cache, the same answers */
	t = tok("{\"alg\":\"RS256\",\"kid\":\"r1\"}", GOOD);
	cr_expect_eq(jwt_verify_cached(NULL, set, &open_policy, t, strlen(t), NOW, &cl, NULL), JWT_OK);
	json_decref(cl);
	free(t);
}

Test(jwt, names)
{
	cr_expect_str_eq(jwt_result_name(JWT_OK), "ok");
	cr_expect_str_eq(jwt_result_name(JWT_NOT_YET_VALID), "not_yet_valid");
	cr_expect_str_eq(jwt_result_name(JWT_CLAIMS), "claims");
	cr_expect_str_eq(jwt_result_name((enum jwt_result)99), "malformed");
	cr_expect_eq(jwt_alg_parse("ES256"), JWT_ALG_ES256);
	cr_expect_eq(jwt_alg_parse("none"), JWT_ALG_NONE);
	cr_expect_str_eq(jwt_alg_name(JWT_ALG_HS256), "HS256");
}
