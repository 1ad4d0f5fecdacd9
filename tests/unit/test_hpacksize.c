/*
 * test_hpacksize.c - lib/hpacksize.c against RFC 7541's examples (C.3
 * plain, C.4 Huffman: the same three requests on one connection), cut at
 * every byte, and the amplification the counter exists for.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "lib/hpacksize.h"

static size_t
unhex(const char *s, uint8_t *out)
{
	size_t n = 0;

	for (; s[0] && s[1]; s += 2)
		sscanf(s, "%2hhx", &out[n++]);
	return n;
}

/* The three requests of C.3 or C.4, each fed in two pieces cut at CUT. */
static void
rfc_requests(const char *const blocks[3], size_t cut)
{
	static const uint64_t want[3] = {180, 233, 245};
	struct hpacksize h;
	uint8_t buf[256];

	hpacksize_init(&h, 4096);
	for (int i = 0; i < 3; i++) {
		size_t n = unhex(blocks[i], buf), c = cut < n ? cut : n;

		hpacksize_feed(&h, buf, c, UINT64_MAX);
		hpacksize_feed(&h, buf + c, n - c, UINT64_MAX);
		cr_expect_eq(hpacksize_end(&h), want[i], "request %d cut at %zu", i + 1, cut);
	}
	cr_expect_eq(h.count, 3);
	cr_expect_eq(h.used, 57 + 53 + 54);
}

Test(hpacksize, rfc7541_c3_plain)
{
	static const char *const b[3] = {"828684410f7777772e6578616d706c652e636f6d", "828684be58086e6f2d6361636865",
	                                 "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"};
	for (size_t cut = 0; cut <= 30; cut++)
		rfc_requests(b, cut);
}

Test(hpacksize, rfc7541_c4_huffman)
{
	static const char *const b[3] = {"828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf",
	                                 "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"};
	for (size_t cut = 0; cut <= 24; cut++)
		rfc_requests(b, cut);
}

Test(hpacksize, references_count_what_they_decode_to)
{
	static uint8_t block[4100 + 10000];
	struct hpacksize h;
	size_t n = 0;

	hpacksize_init(&h, 4096);
	/* "x-a: <4000 bytes>" into the table, then 10,000 one-byte references */
	block[n++] = 0x40;
	block[n++] = 3;
	memcpy(block + n, "x-a", 3);
	n += 3;
	block[n++] = 0x7f; /* 4000 = 127 + 3873: 0x7f, 0xa1 0x1e */
	block[n++] = 0xa1;
	block[n++] = 0x1e;
	memset(block + n, 'v', 4000);
	n += 4000;
	memset(block + n, 0xbe, 10000);
	n += 10000;
	cr_expect_eq(hpacksize_feed(&h, block, n, UINT64_MAX), 10001ull * (3 + 4000 + 32));
	/* counting stops soon after the limit: the caller refuses the block */
	hpacksize_init(&h, 4096);
	cr_expect_lt(hpacksize_feed(&h, block, n, 32768), 32768 + 2 * 4035);
}

Test(hpacksize, malformed)
{
	struct hpacksize h;
	uint8_t zero = 0x80, far = 0xbe, bigsize = 0x3f, cont[2] = {0xe2, 0x1f}; /* size update to 31 + 4002 */

	hpacksize_init(&h, 4096);
	cr_expect_eq(hpacksize_feed(&h, &zero, 1, UINT64_MAX), UINT64_MAX, "index 0");
	hpacksize_init(&h, 4096);
	cr_expect_eq(hpacksize_feed(&h, &far, 1, UINT64_MAX), UINT64_MAX, "index 62 of an empty table");
	hpacksize_init(&h, 4096);
	hpacksize_feed(&h, &bigsize, 1, UINT64_MAX);
	cr_expect_eq(hpacksize_feed(&h, cont, 2, UINT64_MAX), UINT64_MAX, "a table bigger than announced");
	hpacksize_init(&h, 4096);
	hpacksize_feed(&h, (const uint8_t *)"\x40\x03x-a", 5, UINT64_MAX);
	cr_expect_eq(hpacksize_end(&h), UINT64_MAX, "a block cut inside a field");
}

Test(hpacksize, a_field_counts_while_it_arrives)
{
	struct hpacksize h;
	uint8_t lit[8] = {0x40, 0x03, 'x', '-', 'a', 0x7f, 0x81, 0x80}; /* value of 127 + 1 + (0 << 7) + ... */
	uint8_t more[2] = {0x06, 'v'};                                  /* ... + (6 << 14) = 98432 bytes */

	hpacksize_init(&h, 4096);
	cr_expect_lt(hpacksize_feed(&h, lit, sizeof(lit), UINT64_MAX), 100);
	cr_expect_eq(hpacksize_feed(&h, more, sizeof(more), UINT64_MAX), 32 + 3 + 98432ull,
	             "a plain value counts its declared length at once");
	hpacksize_init(&h, 4096);
	/* Huffman: what has been decoded so far */
	uint8_t huff[5] = {0x40, 0x01, 'x', 0xff, 0x68}; /* value: Huffman, 127 + 104 bytes declared */
	uint8_t zeros[10] = {0};                         /* '0' is the 5-bit code 00000: 16 of them */
	hpacksize_feed(&h, huff, sizeof(huff), UINT64_MAX);
	cr_expect_eq(hpacksize_feed(&h, zeros, sizeof(zeros), UINT64_MAX), 32 + 1 + 16);
}

/* hpacksize_feed's loop for one-byte indexed fields gives what the
 * byte-at-a-time reference gives, at every stop bound: a client's first
 * request (literals into the table), then repeats of it (all indexed,
 * static and dynamic), a bad index, and the 0xff that needs more bytes. */
Test(hpacksize, fast_is_the_reference)
{
	static const uint8_t first[] = {0x82, 0x84, 0x86, 0x41, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't',
	                                0x40, 0x02, 'u', 'a', 0x03, 'h', '2', 'l'};
	static const uint8_t again[] = {0x82, 0x84, 0x86, 0xbf, 0xbe, 0x80, 0xff, 0x00, 0xc0};
	uint8_t block[sizeof(first) + 3 * sizeof(again)];
	size_t n = 0;

	memcpy(block, first, sizeof(first));
	n = sizeof(first);
	for (int i = 0; i < 3; i++, n += sizeof(again))
		memcpy(block + n, again, sizeof(again));
	for (size_t len = 0; len <= n; len++)
		for (uint64_t stop = 0; stop < 700; stop += 7) {
			struct hpacksize a, b;

			hpacksize_init(&a, 4096);
			hpacksize_init(&b, 4096);
			cr_assert_eq(hpacksize_feed(&a, block, len, stop), hpacksize_feed_ref(&b, block, len, stop),
			             "len %zu stop %llu", len, (unsigned long long)stop);
			cr_assert_eq(a.used, b.used);
			cr_assert_eq(a.count, b.count);
		}
}
