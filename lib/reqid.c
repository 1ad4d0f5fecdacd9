/*
 * reqid.c - request ids (see reqid.h).  Not secrets: xorshift128+ seeded
 * from getrandom is plenty to keep ids unique across workers and restarts.
 */
#include "reqid.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void
reqid_seed(struct reqid_gen *g)
{
	if (getrandom(g->s, sizeof(g->s), GRND_NONBLOCK) != (ssize_t)sizeof(g->s)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		g->s[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
		g->s[1] = (uint64_t)ts.tv_sec * 0x9e3779b97f4a7c15ULL;
	}
	if (g->s[0] == 0 && g->s[1] == 0)
		g->s[1] = 1;
}

static uint64_t
reqid_next(struct reqid_gen *g)
{
	uint64_t a = g->s[0], b = g->s[1];

	g->s[0] = b;
	a ^= a << 23;
	g->s[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
	return g->s[1] + b;
}

#if defined(__SSE2__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The 32 nibbles of V[0] then V[1], each word's lowest first (a byte's low
 * nibble, then its high one), as lower-case hex digits at OUT: all 16
 * bytes at once, split into low and high nibbles, interleaved, and mapped
 * to '0'..'9', 'a'..'f' by adding '0' and, where over 9, 'a' - '0' - 10. */
static void
reqid_hex32(const uint64_t v[2], char *out)
{
	const __m128i x = _mm_set_epi64x((long long)v[1], (long long)v[0]);
	const __m128i mask = _mm_set1_epi8(0x0f);
	__m128i lo = _mm_and_si128(x, mask);
	__m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), mask);
	__m128i a = _mm_unpacklo_epi8(lo, hi), b = _mm_unpackhi_epi8(lo, hi);

	a = _mm_add_epi8(_mm_add_epi8(a, _mm_set1_epi8('0')),
	                 _mm_and_si128(_mm_cmpgt_epi8(a, _mm_set1_epi8(9)), _mm_set1_epi8('a' - '0' - 10)));
	b = _mm_add_epi8(_mm_add_epi8(b, _mm_set1_epi8('0')),
	                 _mm_and_si128(_mm_cmpgt_epi8(b, _mm_set1_epi8(9)), _mm_set1_epi8('a' - '0' - 10)));
	_mm_storeu_si128((__m128i *)(void *)out, a);
	_mm_storeu_si128((__m128i *)(void *)(out + 16), b);
}
#else
static void
reqid_hex32(const uint64_t v[2], char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (int k = 0; k < 2; k++) {
		uint64_t x = v[k];
		for (int j = 0; j < 16; j++, x >>= 4)
			out[k * 16 + j] = hex[x & 0xf];
	}
}
#endif

void
reqid_generate(struct reqid_gen *g, char out[REQID_GEN_LEN + 1])
{
	uint64_t v[2];

	v[0] = reqid_next(g);
	v[1] = reqid_next(g);
	reqid_hex32(v, out);
	out[REQID_GEN_LEN] = '\0';
}

int
reqid_valid(const char *s, size_t len)
{
	if (len == 0 || len > REQID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.' || c == ':'))
			return 0;
	}
	return 1;
}
