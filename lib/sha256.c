/*
 * sha256.c - SHA-256 with a digest fetched once and a reused context (see
 * sha256.h).
 */
#include "sha256.h"

#include <openssl/evp.h>
#include <string.h>

static EVP_MD *sha256_md;
static EVP_MD_CTX *sha256_ctx;

int
sha256_two(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[SHA256_LEN])
{
	unsigned int n = 0;

	if (sha256_md == NULL && (sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		goto fail;
	if (sha256_ctx == NULL && (sha256_ctx = EVP_MD_CTX_new()) == NULL)
		goto fail;
	if (EVP_DigestInit_ex(sha256_ctx, sha256_md, NULL) != 1 || EVP_DigestUpdate(sha256_ctx, a, alen) != 1 ||
	    (blen > 0 && EVP_DigestUpdate(sha256_ctx, b, blen) != 1) || EVP_DigestFinal_ex(sha256_ctx, out, &n) != 1 ||
	    n != SHA256_LEN)
		goto fail;
	return 0;
fail:
	memset(out, 0, SHA256_LEN);
	return -1;
}

int
sha256(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
	return sha256_two(data, len, NULL, 0, out);
}
