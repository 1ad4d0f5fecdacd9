/*
 * test_reqid.c - lib/reqid.c: which incoming ids are kept, and that
 * generated ids are well-formed and do not repeat.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "lib/reqid.h"

Test(reqid, valid_ids_are_kept)
{
	static const char *const ok[] = {"a", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "01ARZ3NDEKTSV4RRFFQ69G5FAV",
					 "trace:span.1_2", "X"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_expect(reqid_valid(ok[i], strlen(ok[i])), "%s", ok[i]);
}

Test(reqid, hostile_ids_are_replaced)
{
	static const char *const bad[] = {"", "a b", "a\"b", "a\\b", "a\nb", "a\rb", "<script>", "a/b", "a;b",
					  "\xc3\xa9", "a%20b", "{}"};
	char big[REQID_MAX + 2];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect(!reqid_valid(bad[i], strlen(bad[i])), "%s", bad[i]);
	cr_expect(!reqid_valid("a\0b", 3), "embedded NUL");
	memset(big, 'a', sizeof(big));
	cr_expect(reqid_valid(big, REQID_MAX));
	cr_expect(!reqid_valid(big, REQID_MAX + 1));
}

Test(reqid, generated_ids_are_hex_valid_and_distinct)
{
	struct reqid_gen g;
	char a[REQID_GEN_LEN + 1], b[REQID_GEN_LEN + 1];

	reqid_seed(&g);
	reqid_generate(&g, a);
	reqid_generate(&g, b);
	cr_assert_eq(strlen(a), REQID_GEN_LEN);
	cr_assert_eq(strspn(a, "0123456789abcdef"), REQID_GEN_LEN);
	cr_assert(reqid_valid(a, strlen(a)));
	cr_assert_str_neq(a, b);
	for (int i = 0; i < 10000; i++) {
		reqid_generate(&g, b);
		cr_assert_str_neq(a, b);
	}
}

/* The ids are the generator's two words, each word's nibbles lowest first
 * (what reqid.c wrote before its 8-digits-at-a-time form). */
Test(reqid, ids_are_the_words_nibbles_lowest_first)
{
	struct reqid_gen g, h;
	char id[REQID_GEN_LEN + 1];

	reqid_seed(&g);
	for (int i = 0; i < 1000; i++) {
		uint64_t v[2];
		h = g;
		/* the same xorshift128+ steps as reqid.c's reqid_next */
		for (int k = 0; k < 2; k++) {
			uint64_t a = h.s[0], b = h.s[1];
			h.s[0] = b;
			a ^= a << 23;
			h.s[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
			v[k] = h.s[1] + b;
		}
		reqid_generate(&g, id);
		for (int k = 0; k < 2; k++)
			for (int j = 0; j < 16; j++)
				cr_assert_eq(id[k * 16 + j], "0123456789abcdef"[(v[k] >> (4 * j)) & 0xf], "%s", id);
		cr_assert_eq(id[REQID_GEN_LEN], '\0');
	}
}
