/*
 * testjwt.c - what the JWT and authentication tests need to play the
 * identity provider: fixed test keys (made for these tests, used nowhere
 * else), JWKs of their public halves, and tokens signed with them.
 */
#include "tests/unit/testjwt.h"
#include "lib/base64.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char testjwt_rsa_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCR1MVsBhJTBgBB\n"
                               "kgsbxvTTuJiKHbOm/2Oo5M7FOnQuMzcGSKIRbIf5ZOp6Nio5cgT05uQlLL29iq9l\n"
                               "K3FbPgxN75ewC/TufLu17NVL6ObqVF5OfTILsdiMhJ6i60HX31DJ1kpNfmvPRlIs\n"
                               "lOVbv3DHonzNMCGuKUiUDRWgibRGhcyjF5mrwhbNQPpCD8HLs9t0pndPsBAbw3wf\n"
                               "18veNbW1Kd4E3Bi0RdxAA6C8tCqR15DcmDAMIDN+I4PjqqwR/suHIdrMLAecze1A\n"
                               "Wc7e5CftIILH7xcmfjdvvvi/DkfnzWcOoZh/N6jvo0gOYmSS5WJU/L0ZamowdTGJ\n"
                               "RpawMxc5AgMBAAECggEABPcQ6bFN5RRqjyZLyTGoRZ/JVxp/yAsgojAizMWauF/3\n"
                               "WvgUxzHCHL76L22yA6wFeIPL92q4jcAvt0AYEe/g4gkVnwwpK12FKUKGWJlLaLsK\n"
                               "ovLRm2L+E9AIHqqSiVO0dSAd/i7JuOWUsqk3Iz03YnSpJHX5D5b0PlDbuvrf78QH\n"
                               "9Vf7nLWqft55DBPuZKJGdGExsJRH3ltFrrAVLGd9K67zlGdNURiy4u0HUmgWLkHQ\n"
                               "EfqikIBBxuAfyGJuYpTdv6rAksJPsUOXWGuxzzzUEWmHjucNZ/fH8zUWp0aHZuGE\n"
                               "BA1GGL30S2tNK8BHdbHwcJs9tWAI+c2+ptpXSxDRaQKBgQDCW9Ixnv42gflA92/6\n"
                               "ts9RmgVrkEM2Uca0cKHio+zsErFFRK2Z6JcNRhaja/Dr7OLd+M0nTXGXddN30QSD\n"
                               "mjW0VP0bSA4xQ6lp8b1UWmQFam6Qwhcl5F1U7UXEiJE/ZEauEiE9kdCh444WZU66\n"
                               "qJYb9Kw26/u+FRcQ5kOiV9KndwKBgQDAFPMmf4BG4J+dxQsIt/YokI3W/4YxXovO\n"
                               "HSYEjc7XMPOEtXLn/sYjiWyKWD/tOS/wLedsvDd9AIW92GsZSK3mabEStn7/7daA\n"
                               "26+S4uNXQi/OovP6Pj6SKXojRIC0EGKrzcXw1sGyrZeJHduwkpJ9sJXcdb3Lo0ch\n"
                               "GoW6vhdCzwKBgAmCAGhZBMqZ1R2ufRXgt4egZz950S/pFDVjhSfXKRHrYCypTWzI\n"
                               "CgumMBlSgHiqH/cH4tFXYoUsSGoGGZhuhM4Lkk4xWjBixPjf0Ik92sLBECOYuxUp\n"
                               "dL9g1BbnL2PQffyp+mJOrcwdm6fQ0OcktCMt9vbA2JHV6kjzWr+oWC/FAoGALF+q\n"
                               "nGYwGC+kMCppFiaJc22Rlu2I7rbMzVzmf37THdttJmdUmEu/Mk55CKzCd+cSMAYq\n"
                               "xG/m0bXhL65jb3/ezK/1/EC0riMfvr0BnolTw8DCkpYKjvD6O4HheWxF31M5uD7d\n"
                               "T3oNXV3E+CQxsGTr+qVkuX1pzzV1JSyfYDix3vkCgYEAly1Yd9JwZ09vb1P9uLNQ\n"
                               "SkTnDmvr0z4ArUuE6XijQASsTesysOEXAzKiI4xRexGbrWfzzjbXbBQZBytZ2JA+\n"
                               "N48r3dqUYxnQ0NWoQ6WKkqls6SjXXuawRFKouReT6lNWPL5YfQNFQTxRE2W9pkbg\n"
                               "z8zYY1Hy6xNVi04IZYlMC8k=\n"
                               "-----END PRIVATE KEY-----\n";

const char testjwt_ec_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvg/4bBoUHN7uqvLO\n"
                              "JI3wRvXjfhnvNwIBMUjzJxwqGbOhRANCAASD536aqlsR1VdAyyITSwHfzlkj3/Gm\n"
                              "A10PQ00idwqBeiSlMF2e/RZNfiSoU2CyLyFRMZagHBQQCTE269rl0KLl\n"
                              "-----END PRIVATE KEY-----\n";

const char testjwt_rsa1k_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                                 "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAKpavW3kuICKMh78\n"
                                 "MBF5t2DXEJOAkNH9AfU/+Px3AmFD64K1fnTIxS3HoN9hAaaMq/I83pwdGjEZS4hY\n"
                                 "lPW0F3PsqDEu51+LxQsPFbII0X05sXPexeskiPQckpyrE5MQjQPdNeAHO6bKsXH7\n"
                                 "2nsNLmVDvFl8JHbUp0qWg7aY7iypAgMBAAECgYBc/gGP/p3U1Rt9HI8kyvuWanAL\n"
                                 "BNCJQIKUHSLOtixfahMim+52064HSoT/y1V6VCn8psuiDqTgjn1T5X8TDQcLhabf\n"
                                 "2lMGhgZx+jHqLrj9rgqXHKSeZj+5Z2AF2JeIR+6LgqXLxaCVTbhOinTBQZfuOauU\n"
                                 "cYt7+L9KykfRoGEhrQJBANu8kJdGjXYV4U+UA7IYL/9Pdasb+SSH52/0hrE6hO80\n"
                                 "RTcYjLTv3GotS+GEfjETlfiyHXsu9UMvHxXWyTwOk/8CQQDGd+DJLuhyQm4eFC/X\n"
                                 "K3owHLsFaujFGoFbS6nReqYwPTwKCVQ91cFqbgkSxvdTaaHvZYcYn7YMJ4FpV9Z7\n"
                                 "8h9XAkEAq8iv9UPX5cBXQ6JAfWPBakSRhjK5RODmgzTUdAt+z466qccMgYufcnZ1\n"
                                 "AxpUmUNplGKS/7GHVn2pPKaM7eGruwJASPVwsQSJdtds26nYHGVjOaSWK9utTif8\n"
                                 "Pa+G8fcAeONJ2vaq/UBDJfjlZP23lfZTDUppa2fq6HTtYehkdJQBaQJAZQIMgHf3\n"
                                 "bnwckuBXeugE0eRrB4f4Iw6Ux9ok7EDOHd62Tmo5F+xzuY2Dt3xndoedApxbdsnb\n"
                                 "f4MTr6Vv5lC6Zg==\n"
                                 "-----END PRIVATE KEY-----\n";

const char testjwt_ec384_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                                 "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDtOy3VkKEgNNju9PAL\n"
                                 "L5CiynUBLvO3vti++JoaxQTLiG5OsBcQ73h6lzrFiieLm8KhZANiAASHXbaWeRh2\n"
                                 "g9yIJ9BxF2FD5ThbwAIpGusCg8bmOs3+aUw1tLEgkOTEzT+eryrI78iOOyBCrDl+\n"
                                 "oxsq8uFIB03FmkcUDDBgXC5sEKTX0S97nJ2VcKca8maQG6koO1Ils+I=\n"
                                 "-----END PRIVATE KEY-----\n";

EVP_PKEY *
testjwt_key(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);

	BIO_free(b);
	return k;
}

char *
testjwt_b64url(const void *data, size_t len)
{
	size_t cap = BASE64_ENCODED_LEN(len) + 1;
	char *out = malloc(cap);

	if (out != NULL && base64_encode(data, len, 1, out, cap) < 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* A big number as the fixed-width unsigned big-endian bytes JWK wants. */
static char *
testjwt_bn(EVP_PKEY *k, const char *param, int width)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;

	if (EVP_PKEY_get_bn_param(k, param, &bn) != 1)
		return NULL;
	n = width > 0 ? BN_bn2binpad(bn, buf, width) : BN_bn2bin(bn, buf);
	BN_free(bn);
	return n < 0 ? NULL : testjwt_b64url(buf, (size_t)n);
}

char *
testjwt_jwk(EVP_PKEY *k, const char *kid)
{
	char *a, *b, *out = NULL;
	const char *kidpart = kid != NULL ? kid : "";

	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) {
		a = testjwt_bn(k, OSSL_PKEY_PARAM_RSA_N, 0);
		b = testjwt_bn(k, OSSL_PKEY_PARAM_RSA_E, 0);
		if (asprintf(&out, "{\"kty\":\"RSA\",%s%s%s\"n\":\"%s\",\"e\":\"%s\"}", kid ? "\"kid\":\"" : "",
		             kidpart, kid ? "\"," : "", a, b) < 0)
			out = NULL;
	} else {
		a = testjwt_bn(k, OSSL_PKEY_PARAM_EC_PUB_X, 32);
		b = testjwt_bn(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
		if (asprintf(&out, "{\"kty\":\"EC\",\"crv\":\"P-256\",%s%s%s\"x\":\"%s\",\"y\":\"%s\"}",
		             kid ? "\"kid\":\"" : "", kidpart, kid ? "\"," : "", a, b) < 0)
			out = NULL;
	}
	free(a);
	free(b);
	return out;
}

char *
testjwt_sign(EVP_PKEY *k, const unsigned char *secret, size_t slen, const char *header, const char *payload)
{
	char *h = testjwt_b64url(header, strlen(header)), *p = testjwt_b64url(payload, strlen(payload));
	char *input = NULL, *sig64 = NULL, *out = NULL;
	unsigned char sig[1024], *der = NULL;
	size_t siglen = sizeof(sig);

	if (asprintf(&input, "%s.%s", h, p) < 0)
		goto done;
	if (k == NULL) {
		unsigned int n = 0;

		if (secret != NULL)
			HMAC(EVP_sha256(), secret, (int)slen, (unsigned char *)input, strlen(input), sig, &n);
		siglen = n; /* no secret: an empty signature ("alg": "none") */
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k);
		EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, strlen(input));
		EVP_MD_CTX_free(md);
		if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
			/* DER to JOSE's r||s */
			const unsigned char *q = sig;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)siglen);
			const BIGNUM *r, *s;

			ECDSA_SIG_get0(es, &r, &s);
			BN_bn2binpad(r, sig, 32);
			BN_bn2binpad(s, sig + 32, 32);
			siglen = 64;
			ECDSA_SIG_free(es);
		}
	}
	sig64 = testjwt_b64url(sig, siglen);
	if (asprintf(&out, "%s.%s", input, sig64) < 0)
		out = NULL;
done:
	free(der);
	free(h);
	free(p);
	free(input);
	free(sig64);
	return out;
}
