/*
 * microcache.h - a small in-memory cache of whole HTTP answers, one per
 * worker: key -> entry with an expiry time, under a byte budget.
 *
 * It knows nothing of HTTP servers or loops: times are milliseconds the
 * caller passes in (the worker's cached loop time), keys are opaque bytes.
 * Entries are reference-counted and immutable once made, so an answer
 * being written to a client keeps its bytes even if the entry is evicted
 * or replaced meanwhile; the budget counts the entries the cache holds,
 * not those only clients still hold (they go with their requests).
 *
 * A hash table (chained, seeded hash, grown by doubling) finds entries; a
 * least-recently-used list picks what to evict when an insertion would go
 * over the budget.  Expired entries are dropped when looked up, or when
 * the LRU order reaches them.
 */
#ifndef ESGATE_MICROCACHE_H
#define ESGATE_MICROCACHE_H

#include <stddef.h>
#include <stdint.h>

/* One cached answer.  The public fields are read-only once made. */
struct microcache_entry {
	int status;
	const char *content_type;     /* NULL if absent */
	const char *content_encoding; /* NULL if absent */
	const char *elastic_product;  /* X-Elastic-Product, NULL if absent */
	/* their lengths (0 when absent): a hit adds them as header values
	 * without measuring them again */
	size_t content_type_len, content_encoding_len, elastic_product_len;
	const char *body;             /* BODY_LEN bytes (not NUL-terminated) */
	size_t body_len;
	uint64_t stored_ms;  /* when it entered the cache (for Age) */
	uint64_t expires_ms; /* fresh while now < expires_ms */
	size_t size;         /* bytes it costs: header, key, strings, body */
	/* private */
	const char *key;
	size_t keylen;
	uint64_t hash;
	unsigned refs;
	int linked;                           /* held by a cache */
	struct microcache_entry *hnext;       /* hash chain */
	struct microcache_entry *prev, *next; /* LRU list, most recent first */
};

struct microcache_stats {
	uint64_t inserts;   /* entries stored */
	uint64_t evictions; /* dropped to make room (not for expiry or replacement) */
	uint64_t expired;   /* dropped because their time was up */
};

struct microcache;

/* A cache holding at most MAX_BYTES of entries (their SIZE).  NULL when
 * out of memory. */
struct microcache *microcache_new(size_t max_bytes);
/* Drops the cache's references; entries that clients still hold live on
 * until released. */
void microcache_free(struct microcache *mc);

/* A new entry (one reference, the caller's), copying the key, the strings
 * and the body into one allocation.  NULL when out of memory. */
struct microcache_entry *microcache_entry_new(const void *key, size_t keylen, int status, const char *content_type,
                                              const char *content_encoding, const char *elastic_product,
                                              const void *body, size_t body_len);
/* Takes one more reference. */
void microcache_entry_ref(struct microcache_entry *e);
/* Drops one reference; the last one frees the entry. */
void microcache_release(struct microcache_entry *e);

/* The fresh entry for KEY, with a new reference for the caller, or NULL
 * (absent, or expired: an expired entry is dropped).  Marks it recently
 * used. */
struct microcache_entry *microcache_get(struct microcache *mc, const void *key, size_t keylen, uint64_t now_ms);
/* Stores E (which must not be in a cache yet) under its key, fresh from
 * NOW_MS until NOW_MS + TTL_MS, replacing an older entry for the same key,
 * evicting the least recently used entries until it fits; the cache takes
 * its own reference.  Returns 0, or -1 if E alone is bigger
 * than the budget (nothing changes then). */
int microcache_put(struct microcache *mc, struct microcache_entry *e, uint64_t now_ms, uint64_t ttl_ms);
/* Removes KEY's entry, if any. */
void microcache_remove(struct microcache *mc, const void *key, size_t keylen);

size_t microcache_bytes(const struct microcache *mc); /* SIZE of the entries held */
size_t microcache_count(const struct microcache *mc);
size_t microcache_max_bytes(const struct microcache *mc);
const struct microcache_stats *microcache_stats(const struct microcache *mc);

#endif
