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
 * Pure code.
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

#endif
