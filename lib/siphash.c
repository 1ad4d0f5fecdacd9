/*
 * siphash.c - SipHash-2-4-128 (see siphash.h), after the reference
 * implementation's siphash.c.
 */
#include "siphash.h"

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

static uint64_t
siphash_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static void
siphash_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
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
