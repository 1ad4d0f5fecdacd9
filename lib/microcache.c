/*
 * microcache.c - whole answers by key, under a byte budget (see
 * microcache.h).
 *
 * Entries are one malloc each (struct, key, strings, body), so the budget
 * is what the allocator was asked for, and freeing is one free().  The
 * table's hash is seeded per cache: keys carry client-chosen query
 * strings, and a fixed hash would let a client build one long chain.
 */
#include "microcache.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/hash.h"

#define MICROCACHE_MIN_BUCKETS 64

struct microcache {
	size_t max_bytes, bytes, count;
	struct microcache_entry **buckets;
	size_t nbuckets; /* a power of two */
	uint64_t seed;
	struct microcache_entry *head, *tail; /* LRU: head most recent */
	struct microcache_stats stats;
};

struct microcache *
microcache_new(size_t max_bytes)
{
	struct microcache *mc = calloc(1, sizeof(*mc));
	struct timespec ts;

	if (mc == NULL)
		return NULL;
	mc->nbuckets = MICROCACHE_MIN_BUCKETS;
	if ((mc->buckets = calloc(mc->nbuckets, sizeof(*mc->buckets))) == NULL) {
		free(mc);
		return NULL;
	}
	mc->max_bytes = max_bytes;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	mc->seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^ (uintptr_t)mc;
	return mc;
}

static void
microcache_unlink(struct microcache *mc, struct microcache_entry *e)
{
	struct microcache_entry **pp = &mc->buckets[e->hash & (mc->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		mc->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		mc->tail = e->prev;
	e->prev = e->next = e->hnext = NULL;
	e->linked = 0;
	mc->bytes -= e->size;
	mc->count--;
	microcache_release(e);
}

void
microcache_free(struct microcache *mc)
{
	if (mc == NULL)
		return;
	while (mc->head != NULL)
		microcache_unlink(mc, mc->head);
	free(mc->buckets);
	free(mc);
}

static size_t
microcache_strsize(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

static const char *
microcache_strcpy(char **at, const char *s, size_t *len)
{
	char *out = *at;
	size_t n;

	*len = 0;
	if (s == NULL)
		return NULL;
	n = strlen(s);
	memcpy(out, s, n + 1);
	*at += n + 1;
	*len = n;
	return out;
}

struct microcache_entry *
microcache_entry_new(const void *key, size_t keylen, int status, const char *content_type, const char *content_encoding,
                     const char *elastic_product, const void *body, size_t body_len)
{
	size_t size = sizeof(struct microcache_entry) + keylen + microcache_strsize(content_type) +
	              microcache_strsize(content_encoding) + microcache_strsize(elastic_product) + body_len;
	struct microcache_entry *e = malloc(size);
	char *at;

	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	at = (char *)(e + 1);
	e->status = status;
	e->size = size;
	e->refs = 1;
	memcpy(at, key, keylen);
	e->key = at;
	e->keylen = keylen;
	at += keylen;
	e->content_type = microcache_strcpy(&at, content_type, &e->content_type_len);
	e->content_encoding = microcache_strcpy(&at, content_encoding, &e->content_encoding_len);
	e->elastic_product = microcache_strcpy(&at, elastic_product, &e->elastic_product_len);
	if (body_len > 0)
		memcpy(at, body, body_len);
	e->body = at;
	e->body_len = body_len;
	return e;
}

void
microcache_entry_ref(struct microcache_entry *e)
{
	e->refs++;
}

void
microcache_release(struct microcache_entry *e)
{
	if (e != NULL && --e->refs == 0)
		free(e);
}

static struct microcache_entry *
microcache_find(struct microcache *mc, const void *key, size_t keylen, uint64_t h)
{
	struct microcache_entry *e;

	for (e = mc->buckets[h & (mc->nbuckets - 1)]; e != NULL; e = e->hnext)
		if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
			return e;
	return NULL;
}

struct microcache_entry *
microcache_get(struct microcache *mc, const void *key, size_t keylen, uint64_t now_ms)
{
	uint64_t h = hash_bytes(mc->seed, key, keylen);
	struct microcache_entry *e = microcache_find(mc, key, keylen, h);

	if (e == NULL)
		return NULL;
	if (now_ms >= e->expires_ms) {
		mc->stats.expired++;
		microcache_unlink(mc, e);
		return NULL;
	}
	if (e != mc->head) {
		/* to the front of the LRU list */
		e->prev->next = e->next;
		if (e->next != NULL)
			e->next->prev = e->prev;
		else
			mc->tail = e->prev;
		e->prev = NULL;
		e->next = mc->head;
		mc->head->prev = e;
		mc->head = e;
	}
	e->refs++;
	return e;
}

/* Doubles the table once entries outnumber buckets; a failed allocation
 * only leaves chains longer. */
static void
microcache_grow(struct microcache *mc)
{
	size_t n = mc->nbuckets * 2;
	struct microcache_entry **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return;
	for (size_t i = 0; i < mc->nbuckets; i++) {
		struct microcache_entry *e = mc->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->hnext;
			e->hnext = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(mc->buckets);
	mc->buckets = b;
	mc->nbuckets = n;
}

int
microcache_put(struct microcache *mc, struct microcache_entry *e, uint64_t now_ms, uint64_t ttl_ms)
{
	struct microcache_entry *old;
	size_t slot;

	if (e->size > mc->max_bytes || e->linked)
		return -1;
	e->hash = hash_bytes(mc->seed, e->key, e->keylen);
	if ((old = microcache_find(mc, e->key, e->keylen, e->hash)) != NULL)
		microcache_unlink(mc, old);
	while (mc->bytes + e->size > mc->max_bytes && mc->tail != NULL) {
		if (now_ms >= mc->tail->expires_ms)
			mc->stats.expired++;
		else
			mc->stats.evictions++;
		microcache_unlink(mc, mc->tail);
	}
	if (mc->count >= mc->nbuckets)
		microcache_grow(mc);
	e->stored_ms = now_ms;
	e->expires_ms = now_ms + ttl_ms;
	slot = e->hash & (mc->nbuckets - 1);
	e->hnext = mc->buckets[slot];
	mc->buckets[slot] = e;
	e->prev = NULL;
	e->next = mc->head;
	if (mc->head != NULL)
		mc->head->prev = e;
	mc->head = e;
	if (mc->tail == NULL)
		mc->tail = e;
	e->linked = 1;
	e->refs++;
	mc->bytes += e->size;
	mc->count++;
	mc->stats.inserts++;
	return 0;
}

void
microcache_remove(struct microcache *mc, const void *key, size_t keylen)
{
	struct microcache_entry *e = microcache_find(mc, key, keylen, hash_bytes(mc->seed, key, keylen));

	if (e != NULL)
		microcache_unlink(mc, e);
}

size_t
microcache_bytes(const struct microcache *mc)
{
	return mc->bytes;
}

size_t
microcache_count(const struct microcache *mc)
{
	return mc->count;
}

size_t
microcache_max_bytes(const struct microcache *mc)
{
	return mc->max_bytes;
}

const struct microcache_stats *
microcache_stats(const struct microcache *mc)
{
	return &mc->stats;
}
