/*
 * apikey.h - client API keys in Elasticsearch's own form:
 * "Authorization: ApiKey base64(id:key)", so the official clients'
 * api_key=(id, key) option works unchanged.
 *
 * esgate never stores a key, only its SHA-256: keys are 256-bit random
 * strings made by `esgate key new` (as OpenSearch does for its API keys),
 * so a fast hash is enough, and a leaked configuration file gives nobody a
 * working key.  A presented key is hashed and compared in constant time
 * (CRYPTO_memcmp) with the hash stored for its id; an unknown id costs the
 * same hash and comparison, so timing tells nothing about which ids exist.
 *
 * Pure code but for apikey_generate() (which reads the random generator).
 */
#ifndef ESGATE_APIKEY_H
#define ESGATE_APIKEY_H

#include <stddef.h>
#include <stdint.h>

#define APIKEY_ID_MAX 64             /* bytes of an id: [A-Za-z0-9._-] */
#define APIKEY_KEY_MAX 256           /* bytes of a presented key */
#define APIKEY_HASH_LEN 32           /* SHA-256 */
#define APIKEY_HASH_STRLEN 72        /* "sha256:" + 64 hex digits + NUL */
#define APIKEY_RANDOM_BYTES 32       /* of a key made by apikey_generate() */
#define APIKEY_KEY_STRLEN 44         /* base64url of those, unpadded, + NUL */
#define APIKEY_CREDENTIAL_STRLEN 160 /* base64("id:key") + NUL, for the longest id */

/* One key as the configuration has it. */
struct apikey {
	char *id;                      /* [A-Za-z0-9._-]{1,64} */
	uint8_t hash[APIKEY_HASH_LEN]; /* SHA-256 of the key */
	int64_t expires;               /* Unix seconds at which it stops working; 0 = never */
	char **groups;                 /* groups the key belongs to (lib/auth.h); may be empty */
	size_t ngroups;
};

/* Every key of a configuration: once apikey_set_sort() has run, sorted by
 * id for apikey_find(). */
struct apikey_set {
	struct apikey *keys;
	size_t n;
};

/* 1 if S (LEN bytes) is a valid id: 1..APIKEY_ID_MAX of A-Z a-z 0-9 . _ -
 * (no ':', which separates the id from the key). */
int apikey_id_valid(const char *s, size_t len);

/* "sha256:" and 64 hexadecimal digits (either case) into OUT.  0 or -1. */
int apikey_hash_parse(const char *s, uint8_t out[APIKEY_HASH_LEN]);
/* The form apikey_hash_parse() reads, lower case. */
void apikey_hash_format(const uint8_t hash[APIKEY_HASH_LEN], char out[APIKEY_HASH_STRLEN]);

/* "2026-12-31" (midnight UTC), "2026-12-31T23:59:59Z" or with an offset
 * "2026-12-31T23:59:59+02:00": Unix seconds in *OUT.  0 or -1. */
int apikey_time_parse(const char *s, int64_t *out);

/* Sorts SET by id.  Returns -1 if every id is distinct, else the index
 * (in the sorted order) of one duplicate. */
long apikey_set_sort(struct apikey_set *set);
/* The key of id ID (LEN bytes) in a sorted SET, or NULL. */
const struct apikey *apikey_find(const struct apikey_set *set, const char *id, size_t len);
/* Frees what SET owns and empties it; apikey_clear() does one key. */
void apikey_set_clear(struct apikey_set *set);
void apikey_clear(struct apikey *k);

enum apikey_result {
	APIKEY_OK = 0,
	APIKEY_BAD,     /* unknown id or wrong key: one answer for both */
	APIKEY_EXPIRED, /* the right key, past its expiry */
};

/*
 * Checks the key KEY (KEYLEN bytes) presented for id ID (IDLEN bytes)
 * against the sorted SET at time NOW (Unix seconds).  On APIKEY_OK and
 * APIKEY_EXPIRED *OUT (if not NULL) is the key's entry.  The work done is
 * the same whether the id exists or not.
 */
enum apikey_result apikey_verify(const struct apikey_set *set, const char *id, size_t idlen, const char *key,
                                 size_t keylen, int64_t now, const struct apikey **out);

/*
 * A worker's cache of the credentials it has verified: the ApiKey header's
 * base64 text ("id:key" encoded, as presented) that apikey_verify() found
 * APIKEY_OK, and its key's entry, so that the next request with the same
 * credential skips the decoding, the SHA-256 and the comparison.  An
 * entry keeps no key and no hash of one: only the credential's
 * SipHash-2-4-128 under the cache's own random key (lib/siphash.h: a tag
 * that cannot be matched without the very credential, nor turned back
 * into it), compared in constant time, and a pointer to the key's entry.
 * ENTRIES (rounded up to a power of two, at least 4) is the most it
 * keeps, in sets of four, least recently used evicted.  A cache belongs
 * to one key set (its entries point into it): a worker builds a new one
 * with each configuration, so a key removed by a reload is gone from it.
 * An expired key stays cached: the caller checks the entry's expiry.
 */
struct apikey_cache;
/* NULL if out of memory or the random generator failed. */
struct apikey_cache *apikey_cache_new(size_t entries);
void apikey_cache_free(struct apikey_cache *c);
/* The key of credential CRED (LEN bytes), or NULL. */
const struct apikey *apikey_cache_get(struct apikey_cache *c, const char *cred, size_t len);
/* Remembers that CRED (LEN bytes) verified as K. */
void apikey_cache_put(struct apikey_cache *c, const char *cred, size_t len, const struct apikey *k);
/* Lookups that found an entry, and the rest. */
void apikey_cache_stats(const struct apikey_cache *c, uint64_t *hits, uint64_t *misses);

/* A new key for id ID (which must be valid): what `esgate key new` prints. */
struct apikey_new {
	char key[APIKEY_KEY_STRLEN];               /* 32 random bytes, base64url */
	char credential[APIKEY_CREDENTIAL_STRLEN]; /* base64("id:key"): the ApiKey header value */
	char hash[APIKEY_HASH_STRLEN];             /* "sha256:...": what the configuration keeps */
};
/* 0, or -1 if ID is invalid or the random generator failed. */
int apikey_generate(const char *id, struct apikey_new *out);

#endif
