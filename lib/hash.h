/*
 * hash.h - the one hash function for esgate's tables (the micro-cache, the
 * cache's fetches in flight, the shared rate-limit buckets): FNV-1a over
 * the seed and the key, then murmur3's 64-bit finaliser, so that every bit
 * of the key moves the low bits used as bucket indices.  A random seed per
 * table keeps clients from choosing colliding keys.
 */
#ifndef ESGATE_HASH_H
#define ESGATE_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t
hash_bytes(uint64_t seed, const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = seed ^ 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

#endif
