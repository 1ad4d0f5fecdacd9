/*
 * test_microcache.c - lib/microcache.c: hits and expiry, replacement,
 * the byte budget and LRU eviction, references outliving eviction, and
 * many keys through a growing table.
 */
#include "lib/microcache.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static struct microcache_entry *
entry(const char *key, const char *body)
{
	struct microcache_entry *e =
	    microcache_entry_new(key, strlen(key), 200, "application/json", NULL, "Elasticsearch", body, strlen(body));
	cr_assert_not_null(e);
	return e;
}

Test(microcache, hit_until_expiry)
{
	struct microcache *mc = microcache_new(64 * 1024);
	struct microcache_entry *e = entry("GET /", "{\"a\":1}"), *g;

	cr_assert_not_null(mc);
	cr_expect_null(microcache_get(mc, "GET /", 5, 0));
	cr_expect_eq(microcache_put(mc, e, 1000, 1000), 0);
	microcache_release(e); /* the cache keeps its own reference */
	g = microcache_get(mc, "GET /", 5, 1999);
	cr_assert_not_null(g);
	cr_expect_eq(g->status, 200);
	cr_expect_str_eq(g->content_type, "application/json");
	cr_expect_null(g->content_encoding);
	cr_expect_str_eq(g->elastic_product, "Elasticsearch");
	cr_expect_eq(g->content_type_len, strlen("application/json"));
	cr_expect_eq(g->content_encoding_len, 0);
	cr_expect_eq(g->elastic_product_len, strlen("Elasticsearch"));
	cr_expect_eq(g->body_len, 7);
	cr_expect(memcmp(g->body, "{\"a\":1}", 7) == 0);
	cr_expect_eq(g->stored_ms, 1000);
	cr_expect_eq(g->expires_ms, 2000);
	microcache_release(g);
	cr_expect_null(microcache_get(mc, "GET /x", 6, 1500), "another key");
	cr_expect_null(microcache_get(mc, "GET", 3, 1500), "a prefix is another key");
	cr_expect_null(microcache_get(mc, "GET /", 5, 2000), "expired at expires_ms");
	cr_expect_eq(microcache_count(mc), 0, "an expired entry is dropped when seen");
	cr_expect_eq(microcache_bytes(mc), 0);
	cr_expect_eq(microcache_stats(mc)->expired, 1);
	microcache_free(mc);
}

Test(microcache, replace_same_key)
{
	struct microcache *mc = microcache_new(64 * 1024);
	struct microcache_entry *a = entry("k", "old"), *b = entry("k", "newer"), *g;

	cr_expect_eq(microcache_put(mc, a, 0, 100), 0);
	cr_expect_eq(microcache_put(mc, b, 10, 100), 0);
	cr_expect_eq(microcache_count(mc), 1);
	cr_expect_eq(microcache_bytes(mc), b->size);
	g = microcache_get(mc, "k", 1, 50);
	cr_assert_eq(g, b);
	microcache_release(g);
	/* A still holds its caller's reference: readable after replacement. */
	cr_expect(memcmp(a->body, "old", 3) == 0);
	microcache_release(a);
	microcache_release(b);
	microcache_remove(mc, "k", 1);
	cr_expect_eq(microcache_count(mc), 0);
	microcache_free(mc);
}

Test(microcache, budget_evicts_least_recently_used)
{
	char body[1000];
	struct microcache_entry *e[4], *g;
	struct microcache *mc;
	size_t one;

	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	e[0] = entry("a", body);
	one = e[0]->size;
	mc = microcache_new(3 * one + one / 2); /* room for three */
	e[1] = entry("b", body);
	e[2] = entry("c", body);
	e[3] = entry("d", body);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(microcache_put(mc, e[i], 0, 10000), 0);
	cr_expect_eq(microcache_count(mc), 3);
	/* "a" used again: "b" is now the least recently used */
	g = microcache_get(mc, "a", 1, 1);
	cr_assert_not_null(g);
	microcache_release(g);
	cr_expect_eq(microcache_put(mc, e[3], 2, 10000), 0);
	cr_expect_eq(microcache_count(mc), 3);
	cr_expect_leq(microcache_bytes(mc), microcache_max_bytes(mc));
	cr_expect_null(microcache_get(mc, "b", 1, 3), "b was evicted");
	for (const char *k = "acd"; *k; k++) {
		g = microcache_get(mc, k, 1, 3);
		cr_expect_not_null(g, "%c kept", *k);
		microcache_release(g);
	}
	cr_expect_eq(microcache_stats(mc)->evictions, 1);
	/* the evicted entry is still whole for whoever holds it */
	cr_expect_eq(e[1]->body_len, sizeof(body) - 1);
	for (int i = 0; i < 4; i++)
		microcache_release(e[i]);
	microcache_free(mc);
}

Test(microcache, too_big_for_the_budget)
{
	struct microcache *mc = microcache_new(100);
	struct microcache_entry *e = entry("k", "this entry costs more than a hundred bytes with its header");

	cr_expect_eq(microcache_put(mc, e, 0, 1000), -1);
	cr_expect_eq(microcache_count(mc), 0);
	cr_expect_eq(e->refs, 1, "no reference taken");
	microcache_release(e);
	microcache_free(mc);
}

Test(microcache, entries_outlive_the_cache)
{
	struct microcache *mc = microcache_new(4096);
	struct microcache_entry *e = entry("k", "body"), *g;

	microcache_put(mc, e, 0, 1000);
	microcache_release(e);
	g = microcache_get(mc, "k", 1, 1);
	cr_assert_not_null(g);
	microcache_free(mc);
	cr_expect(memcmp(g->body, "body", 4) == 0, "a client's reference survives the cache");
	microcache_release(g);
}

Test(microcache, many_keys_grow_the_table)
{
	struct microcache *mc = microcache_new(4 * 1024 * 1024);
	char key[32];

	for (int i = 0; i < 5000; i++) {
		int n = snprintf(key, sizeof(key), "GET /doc/%d", i);
		struct microcache_entry *e =
		    microcache_entry_new(key, (size_t)n, 200, NULL, NULL, NULL, key, (size_t)n);
		cr_assert_eq(microcache_put(mc, e, 0, 1000), 0);
		microcache_release(e);
	}
	cr_expect_eq(microcache_count(mc), 5000);
	for (int i = 0; i < 5000; i += 7) {
		int n = snprintf(key, sizeof(key), "GET /doc/%d", i);
		struct microcache_entry *g = microcache_get(mc, key, (size_t)n, 1);
		cr_assert_not_null(g, "%s", key);
		cr_expect_eq(g->body_len, (size_t)n);
		cr_expect(memcmp(g->body, key, (size_t)n) == 0);
		microcache_release(g);
	}
	microcache_free(mc);
}

Test(microcache, budget_with_many_keys)
{
	struct microcache *mc = microcache_new(16 * 1024);
	char key[32], body[200];

	memset(body, 'y', sizeof(body));
	for (int i = 0; i < 2000; i++) {
		int n = snprintf(key, sizeof(key), "k%d", i);
		struct microcache_entry *e =
		    microcache_entry_new(key, (size_t)n, 200, NULL, NULL, NULL, body, sizeof(body));
		cr_assert_eq(microcache_put(mc, e, (uint64_t)i, 100000), 0);
		microcache_release(e);
		cr_assert_leq(microcache_bytes(mc), 16 * 1024);
	}
	cr_expect_gt(microcache_stats(mc)->evictions, 1900);
	struct microcache_entry *g = microcache_get(mc, "k1999", 5, 2000);
	cr_expect_not_null(g, "the newest is kept");
	microcache_remove(mc, "k1999", 5); /* drops the cache's reference only */
	cr_expect_eq(g->refs, 1);
	microcache_release(g);
	microcache_free(mc);
}
