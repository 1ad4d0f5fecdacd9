/*
 * siphash.c - SipHash-2-4-128 (see siphash.h), after the reference
 * implementation's siphash.c.
 */
#include "siphash.h"

#include <openssl/rand.h>

#include <string.h>

#define SIPHASH_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPHASH_ROUND                                                                                          \
	do {                                                                                                   \
		v0 += v1;                                                                                      \
		v1 = SIPHASH_ROTL(v1, 13);                                                                     \
		v1 ^= v0;                                                                                      \
		v0 = SIPHASH_ROTL(v0, 32);                                                                     \
		v2 += v3;                                                                                      \
		v3 = SIPHASH_ROTL(v3, 16);                                                                     \
		v3 ^= v2;                                                                                      \
		v0 += v3;                                                                                      \
		v3 = SIPHASH_ROTL(v3, 21);                                                                     \
		v3 ^= v0;                                                                                      \
		v2 += v1;                                                                                      \
		v1 = SIPHASH_ROTL(v1, 17);                                                                     \
		v1 ^= v2;                                                                                      \
		v2 = SIPHASH_ROTL(v2, 32);                                                                     \
	} while (0)

/* Little-endian 64-bit load and store: a plain move on x86 (this is
 * the hot path of the credential caches: a byte-by-byte load and a call
 * per word were a third of the hash's instructions). */
static inline uint64_t
siphash_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline void
siphash_put64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	memcpy(p, &v, sizeof(v));
}

void
siphash128(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len, uint8_t out[SIPHASH128_LEN])
{
	const uint8_t *in = data, *end = in + (len - len % 8);
	uint64_t k0 = siphash_le64(key), k1 = siphash_le64(key + 8);
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t m, b = (uint64_t)len << 56;
	uint8_t last[8] = {0};

	v1 ^= 0xee;
	for (; in != end; in += 8) {
		m = siphash_le64(in);
		v3 ^= m;
		SIPHASH_ROUND;
		SIPHASH_ROUND;
		v0 ^= m;
	}
	memcpy(last, in, len % 8);
	b |= siphash_le64(last);
	v3 ^= b;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	v0 ^= b;
	v2 ^= 0xee;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	siphash_put64(out, v0 ^ v1 ^ v2 ^ v3);
	v1 ^= 0xdd;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	siphash_put64(out + 8, v0 ^ v1 ^ v2 ^ v3);
}

size_t
siphash_sets_count(size_t entries)
{
	size_t nsets = 1;

	if (entries > SIPHASH_SETS_MAX_ENTRIES)
		entries = SIPHASH_SETS_MAX_ENTRIES;
	while (nsets * SIPHASH_SETS_WAYS < entries)
		nsets *= 2;
	return nsets;
}

int
siphash_sets_init(struct siphash_sets *s, size_t nsets)
{
	memset(s, 0, sizeof(*s));
	s->nsets = nsets;
	return RAND_bytes(s->key, sizeof(s->key)) == 1 ? 0 : -1;
}

size_t
siphash_sets_find(const struct siphash_sets *s, const void *cred, size_t len, uint8_t tag[SIPHASH128_LEN])
{
	uint64_t h;

	siphash128(s->key, cred, len, tag);
	memcpy(&h, tag, sizeof(h));
	return (size_t)(h & (s->nsets - 1)) * SIPHASH_SETS_WAYS;
}
