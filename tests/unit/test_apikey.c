/*
 * test_apikey.c - lib/apikey.c: ids, hashes and expiry as the
 * configuration writes them, verification (unknown id and wrong key give
 * one answer), and new keys that verify against the hash printed.
 */
#include "lib/apikey.h"
#include "lib/base64.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static void
sha256(const char *s, uint8_t out[32])
{
	unsigned int n;

	EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

Test(apikey, ids)
{
	cr_expect(apikey_id_valid("reporting", 9));
	cr_expect(apikey_id_valid("a.b_c-D9", 8));
	cr_expect(apikey_id_valid("x", 1));
	cr_expect_not(apikey_id_valid("", 0));
	cr_expect_not(apikey_id_valid("a:b", 3), "the colon separates id and key");
	cr_expect_not(apikey_id_valid("a b", 3));
	cr_expect_not(apikey_id_valid("a/b", 3));
	cr_expect_not(apikey_id_valid("é", 2));
	cr_expect_not(apikey_id_valid("a\0b", 3));
	char long_id[APIKEY_ID_MAX + 2];
	memset(long_id, 'a', sizeof(long_id));
	cr_expect(apikey_id_valid(long_id, APIKEY_ID_MAX));
	cr_expect_not(apikey_id_valid(long_id, APIKEY_ID_MAX + 1));
}

Test(apikey, hashes)
{
	uint8_t h[32], want[32];
	char s[APIKEY_HASH_STRLEN];

	sha256("test", want);
	cr_assert_eq(apikey_hash_parse("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", h),
	             0);
	cr_expect(memcmp(h, want, 32) == 0);
	cr_assert_eq(apikey_hash_parse("sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", h),
	             0);
	cr_expect(memcmp(h, want, 32) == 0, "upper case too");
	apikey_hash_format(h, s);
	cr_expect_str_eq(s, "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
	cr_expect_eq(apikey_hash_parse("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", h), -1,
	             "the algorithm is named");
	cr_expect_eq(apikey_hash_parse("sha1:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", h), -1);
	cr_expect_eq(apikey_hash_parse("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0", h),
	             -1);
	cr_expect_eq(apikey_hash_parse("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a080", h),
	             -1);
	cr_expect_eq(apikey_hash_parse("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g", h),
	             -1);
	cr_expect_eq(apikey_hash_parse("sha256:", h), -1);
	cr_expect_eq(apikey_hash_parse("", h), -1);
}

Test(apikey, times)
{
	int64_t t;

	cr_assert_eq(apikey_time_parse("2026-12-31", &t), 0);
	cr_expect_eq(t, 1798675200);
	cr_assert_eq(apikey_time_parse("2026-12-31T23:59:59Z", &t), 0);
	cr_expect_eq(t, 1798761599);
	cr_assert_eq(apikey_time_parse("2026-12-31T23:59:59+02:00", &t), 0);
	cr_expect_eq(t, 1798761599 - 7200);
	cr_assert_eq(apikey_time_parse("2026-12-31T23:59:59-01:30", &t), 0);
	cr_expect_eq(t, 1798761599 + 5400);
	cr_assert_eq(apikey_time_parse("2024-02-29", &t), 0, "a leap day");
	static const char *const bad[] = {
	    "",
	    "2026",
	    "2026-12",
	    "2026-13-01",
	    "2026-02-30",
	    "2025-02-29",
	    "2026-12-31T24:00:00Z",
	    "2026-12-31T23:59:59",
	    "2026-12-31 23:59:59Z",
	    "2026-12-31T23:59Z",
	    "26-12-31",
	    "2026-12-31x",
	    "1969-12-31",
	    "2026-12-31T23:59:59+2",
	    "+2026-12-31",
	    "2026-12-31T23:59:60Z",
	    "2026-1-01",
	    "2026-12-31T23:59:59+24:00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(apikey_time_parse(bad[i], &t), -1, "accepted \"%s\"", bad[i]);
}

/* Three keys, "a" (key "ka"), "m" (expired, key "km") and "z" (key "kz"),
 * given out of order. */
static struct apikey_set *
three(void)
{
	static struct apikey keys[3];
	static struct apikey_set set = {keys, 3};

	memset(keys, 0, sizeof(keys));
	keys[0].id = (char *)"z";
	sha256("kz", keys[0].hash);
	keys[1].id = (char *)"a";
	sha256("ka", keys[1].hash);
	keys[2].id = (char *)"m";
	sha256("km", keys[2].hash);
	keys[2].expires = 1000;
	cr_assert_eq(apikey_set_sort(&set), -1);
	return &set;
}

Test(apikey, find)
{
	struct apikey_set *set = three();

	cr_expect_str_eq(set->keys[0].id, "a");
	cr_expect_str_eq(set->keys[2].id, "z");
	cr_expect_not_null(apikey_find(set, "m", 1));
	cr_expect_not_null(apikey_find(set, "mx", 1), "LEN counts, not the NUL");
	cr_expect_null(apikey_find(set, "mx", 2));
	cr_expect_null(apikey_find(set, "", 0));
	cr_expect_null(apikey_find(set, "b", 1));
}

Test(apikey, duplicates)
{
	struct apikey keys[3] = {{.id = (char *)"b"}, {.id = (char *)"a"}, {.id = (char *)"b"}};
	struct apikey_set set = {keys, 3};

	cr_expect_eq(apikey_set_sort(&set), 2);
}

Test(apikey, verify)
{
	struct apikey_set *set = three();
	const struct apikey *k = NULL;

	cr_expect_eq(apikey_verify(set, "a", 1, "ka", 2, 5000, &k), APIKEY_OK);
	cr_assert_not_null(k);
	cr_expect_str_eq(k->id, "a");
	cr_expect_eq(apikey_verify(set, "z", 1, "kz", 2, 5000, NULL), APIKEY_OK);
	cr_expect_eq(apikey_verify(set, "a", 1, "kz", 2, 5000, NULL), APIKEY_BAD, "another key's key");
	cr_expect_eq(apikey_verify(set, "a", 1, "ka ", 3, 5000, NULL), APIKEY_BAD);
	cr_expect_eq(apikey_verify(set, "a", 1, "k", 1, 5000, NULL), APIKEY_BAD);
	cr_expect_eq(apikey_verify(set, "a", 1, "", 0, 5000, NULL), APIKEY_BAD);
	cr_expect_eq(apikey_verify(set, "q", 1, "ka", 2, 5000, NULL), APIKEY_BAD, "an unknown id: the same answer");
	/* a hash as the key is no key */
	cr_expect_eq(apikey_verify(set, "a", 1, "sha256:0", 8, 5000, NULL), APIKEY_BAD);
	cr_expect_eq(apikey_verify(set, "m", 1, "km", 2, 999, NULL), APIKEY_OK, "before its expiry");
	k = NULL;
	cr_expect_eq(apikey_verify(set, "m", 1, "km", 2, 1000, &k), APIKEY_EXPIRED, "at its expiry");
	cr_expect_not_null(k);
	cr_expect_eq(apikey_verify(set, "m", 1, "kx", 2, 5000, NULL), APIKEY_BAD, "expired and wrong: wrong");
	struct apikey_set empty = {NULL, 0};
	cr_expect_eq(apikey_verify(&empty, "a", 1, "ka", 2, 0, NULL), APIKEY_BAD);
}

Test(apikey, generate)
{
	struct apikey_new a, b;
	struct apikey key = {.id = (char *)"reporting"};
	struct apikey_set set = {&key, 1};
	unsigned char dec[256];
	ssize_t n;

	cr_assert_eq(apikey_generate("reporting", &a), 0);
	cr_assert_eq(apikey_generate("reporting", &b), 0);
	cr_expect_eq(strlen(a.key), 43, "32 bytes, base64url");
	cr_expect_str_neq(a.key, b.key);
	cr_expect_eq(strspn(a.key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
	/* the credential is what the official clients send for (id, key) */
	n = base64_decode(a.credential, strlen(a.credential), dec, sizeof(dec));
	cr_assert_eq(n, (ssize_t)(strlen("reporting:") + 43));
	cr_expect(memcmp(dec, "reporting:", 10) == 0);
	cr_expect(memcmp(dec + 10, a.key, 43) == 0);
	/* and the hash printed verifies the key */
	cr_assert_eq(apikey_hash_parse(a.hash, key.hash), 0);
	cr_expect_eq(apikey_verify(&set, "reporting", 9, a.key, 43, 0, NULL), APIKEY_OK);
	cr_expect_eq(apikey_verify(&set, "reporting", 9, b.key, 43, 0, NULL), APIKEY_BAD);
	cr_expect_eq(apikey_generate("bad id", &a), -1);
	cr_expect_eq(apikey_generate("", &a), -1);
	cr_expect_eq(a.key[0], '\0', "nothing left behind on failure");
}

/* The cache of verified credentials: exact text only, bounded, LRU. */
Test(apikey, cache)
{
	struct apikey keys[2] = {{.id = (char *)"a"}, {.id = (char *)"b"}};
	struct apikey_cache *c = apikey_cache_new(4), *other = apikey_cache_new(4);
	uint64_t hits, misses;
	char cred[32];

	cr_assert_not_null(c);
	cr_assert_not_null(other);
	cr_expect_null(apikey_cache_get(c, "YTpr", 4));
	apikey_cache_put(c, "YTpr", 4, &keys[0]);
	cr_expect_eq(apikey_cache_get(c, "YTpr", 4), &keys[0]);
	/* one byte more, less or other: not it */
	cr_expect_null(apikey_cache_get(c, "YTprCg", 6));
	cr_expect_null(apikey_cache_get(c, "YTp", 3));
	cr_expect_null(apikey_cache_get(c, "YTps", 4));
	/* another cache (another random key) knows nothing of it */
	cr_expect_null(apikey_cache_get(other, "YTpr", 4));
	/* storing again replaces, in place */
	apikey_cache_put(c, "YTpr", 4, &keys[1]);
	cr_expect_eq(apikey_cache_get(c, "YTpr", 4), &keys[1]);
	apikey_cache_stats(c, &hits, &misses);
	cr_expect_eq(hits, 2);
	cr_expect_eq(misses, 4);
	/* many credentials through four entries: bounded, never a wrong answer */
	for (int i = 0; i < 200; i++) {
		snprintf(cred, sizeof(cred), "cred%d", i);
		apikey_cache_put(c, cred, strlen(cred), &keys[i % 2]);
		cr_expect_eq(apikey_cache_get(c, cred, strlen(cred)), &keys[i % 2]);
	}
	for (int i = 0; i < 200; i++) {
		const struct apikey *k;

		snprintf(cred, sizeof(cred), "cred%d", i);
		k = apikey_cache_get(c, cred, strlen(cred));
		cr_expect(k == NULL || k == &keys[i % 2]);
		if (i >= 196)
			cr_expect_eq(k, &keys[i % 2], "the last four are kept");
	}
	apikey_cache_put(NULL, "x", 1, &keys[0]);
	cr_expect_null(apikey_cache_get(NULL, "x", 1));
	apikey_cache_free(c);
	apikey_cache_free(other);
	apikey_cache_free(NULL);
}
