/*
 * siphash.h - SipHash-2-4 with its 128-bit output (Aumasson and Bernstein,
 * "SipHash: a fast short-input PRF"; the reference's vectors_sip128), the
 * keyed hash of the caches of verified credentials (lib/apikey.h's
 * apikey_cache, lib/jwt.h's jwt_cache).
 *
 * Why a keyed PRF there and not SHA-256: a cache entry must not be
 * reachable with anything but the very credential that was verified.
 * With a random 128-bit key that never leaves the worker, finding another
 * credential with the same 128-bit tag is a guess that succeeds with
 * probability 2^-128 per entry (every miss goes to the full verification,
 * and a failed one is counted by the failed-authentication limit), and an
 * entry kept in memory tells nothing about the credential: as a hash
 * would, without a hash's cost (SHA-256 of a 250-byte token: about
 * 0.4 us here with SHA-NI and OpenSSL's EVP; this: about 0.1 us).
 * Pure code, but for the sets' random key (OpenSSL's RAND_bytes).
 */
#ifndef ESGATE_SIPHASH_H
#define ESGATE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16
#define SIPHASH128_LEN 16

/* SipHash-2-4-128 of DATA (LEN bytes) under KEY into OUT (two
 * little-endian 64-bit words, as the reference writes them). */
void siphash128(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len, uint8_t out[SIPHASH128_LEN]);

/* The frame both caches of verified credentials share: sets of
 * SIPHASH_SETS_WAYS entries, a credential's set chosen by the first bytes
 * of its tag (its SipHash-2-4-128 under the cache's random key), least
 * recently used evicted.  Each cache keeps its own entries (what a hit
 * gives back differs) after this header. */
#define SIPHASH_SETS_WAYS 4
#define SIPHASH_SETS_MAX_ENTRIES (1u << 20)

struct siphash_sets {
	uint8_t key[SIPHASH_KEY_LEN]; /* random, never leaves the process */
	size_t nsets;		      /* a power of two */
	uint64_t tick;		      /* stamps each use: the set's oldest goes */
	uint64_t hits, misses;
};

/* Sets enough for ENTRIES entries (at most SIPHASH_SETS_MAX_ENTRIES). */
size_t siphash_sets_count(size_t entries);
/* S for NSETS sets (siphash_sets_count's), counts at zero, a fresh random
 * key: 0, or -1 if no randomness could be had. */
int siphash_sets_init(struct siphash_sets *s, size_t nsets);
/* TAG of CRED (LEN bytes); returns the index of its set's first entry. */
size_t siphash_sets_find(const struct siphash_sets *s, const void *cred, size_t len, uint8_t tag[SIPHASH128_LEN]);

#endif
