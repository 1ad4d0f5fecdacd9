/*
 * reqid.c - request ids (see reqid.h).  Not secrets: xorshift128+ seeded
 * from getrandom is plenty to keep ids unique across workers and restarts.
 */
#include "reqid.h"

#include <string.h>
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

/* The 8 nibbles of X, lowest first, as 8 lower-case hex digits at OUT:
 * each nibble spread to a byte of its own (little-endian: the lowest to the
 * first byte), then '0' added, and 'a' - '0' - 10 more where it is 10 or
 * over (adding 6 carries into the byte's bit 4 exactly then). */
static void
reqid_hex8(uint32_t x, char *out)
{
	uint64_t n = x;

	n = ((n & 0xffff0000ULL) << 16) | (n & 0xffffULL);
	n = ((n & 0x0000ff000000ff00ULL) << 8) | (n & 0x000000ff000000ffULL);
	n = ((n & 0x00f000f000f000f0ULL) << 4) | (n & 0x000f000f000f000fULL);
	n += 0x3030303030303030ULL + (((n + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL) * 0x27;
	memcpy(out, &n, 8);
}

void
reqid_generate(struct reqid_gen *g, char out[REQID_GEN_LEN + 1])
{
	uint64_t v[2] = {reqid_next(g), reqid_next(g)};

	/* each word's nibbles, lowest first */
	for (int k = 0; k < REQID_GEN_LEN / 16; k++) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		reqid_hex8((uint32_t)v[k], out + k * 16);
		reqid_hex8((uint32_t)(v[k] >> 32), out + k * 16 + 8);
#else
		static const char hex[] = "0123456789abcdef";
		uint64_t x = v[k];
		for (int j = 0; j < 16; j++, x >>= 4)
			out[k * 16 + j] = hex[x & 0xf];
#endif
	}
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
