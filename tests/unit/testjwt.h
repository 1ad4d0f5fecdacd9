/*
 * testjwt.h - test keys, JWKs and signed tokens for the unit tests (see
 * testjwt.c).
 */
#ifndef ESGATE_TESTJWT_H
#define ESGATE_TESTJWT_H

#include <openssl/evp.h>
#include <stddef.h>

/* PEM private keys: RSA 2048, EC P-256, RSA 1024 (too short) and EC P-384
 * (a curve esgate does not verify). */
extern const char testjwt_rsa_pem[], testjwt_ec_pem[], testjwt_rsa1k_pem[], testjwt_ec384_pem[];

EVP_PKEY *testjwt_key(const char *pem);
/* base64url of DATA, malloc'ed. */
char *testjwt_b64url(const void *data, size_t len);
/* The public JWK of K as JSON text (kid omitted when NULL), malloc'ed. */
char *testjwt_jwk(EVP_PKEY *k, const char *kid);
/* "b64(HEADER).b64(PAYLOAD).b64(sig)": signed with K (RS256 or ES256 by
 * its type), or with K NULL by HMAC-SHA256 under SECRET, or with neither
 * an empty signature.  The header is used as given: it may lie. */
char *testjwt_sign(EVP_PKEY *k, const unsigned char *secret, size_t slen, const char *header, const char *payload);

#endif
