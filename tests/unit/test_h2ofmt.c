/*
 * test_h2ofmt.c - worker/h2ofmt.c: libh2o's HTTP/1 head formats, written
 * without printf, give exactly vsnprintf's bytes; other formats are not
 * taken for them.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "worker/h2ofmt.h"

static int
fmt_ours(char *buf, int which, ...)
{
	va_list ap;
	int n;

	va_start(ap, which);
	n = h2ofmt_format(buf, which, ap);
	va_end(ap);
	return n;
}

static int
fmt_libc(char *buf, size_t size, const char *format, ...)
{
	va_list ap;
	int n;

	va_start(ap, format);
	n = vsnprintf(buf, size, format, ap);
	va_end(ap);
	return n;
}

#define HEAD_LENGTH "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\nContent-Length: %zu\r\n"
#define HEAD "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\n"
#define SERVER "Server: %s\r\n"

Test(h2ofmt, formats_are_recognised_by_their_text)
{
	char copy[sizeof(HEAD_LENGTH)];

	memcpy(copy, HEAD_LENGTH, sizeof(copy));
	cr_expect_eq(h2ofmt_which(copy), H2OFMT_HEAD_LENGTH);
	cr_expect_eq(h2ofmt_which(HEAD), H2OFMT_HEAD);
	cr_expect_eq(h2ofmt_which(SERVER), H2OFMT_SERVER);
	copy[sizeof(copy) - 2] = 'x';
	cr_expect_eq(h2ofmt_which(copy), -1);
	cr_expect_eq(h2ofmt_which("HTTP/1.1 %d"), -1);
	cr_expect_eq(h2ofmt_which("Server: %s"), -1);
	cr_expect_eq(h2ofmt_which("%s"), -1);
	cr_expect_eq(h2ofmt_which(""), -1);
}

Test(h2ofmt, same_bytes_as_printf)
{
	static const int statuses[] = {200, 100, 999, 404, 0, 7, -1, INT_MIN, INT_MAX};
	static const char *strs[] = {"OK", "", "Sun, 06 Dec 2026 22:32:17 GMT", "keep-alive", NULL};
	static const size_t lengths[] = {0, 1, 432, 1048576, SIZE_MAX};
	char ours[512], libc[512];

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		for (size_t j = 0; j < sizeof(strs) / sizeof(strs[0]); j++)
			for (size_t k = 0; k < sizeof(lengths) / sizeof(lengths[0]); k++) {
				const char *s = strs[j], *t = strs[(j + 1) % 5], *u = strs[(j + 2) % 5];
				int a, b;

				a = fmt_ours(ours, H2OFMT_HEAD_LENGTH, statuses[i], s, t, u, lengths[k]);
				b = fmt_libc(libc, sizeof(libc), HEAD_LENGTH, statuses[i], s, t, u, lengths[k]);
				cr_assert(a == b && strcmp(ours, libc) == 0, "%s vs %s", ours, libc);
				a = fmt_ours(ours, H2OFMT_HEAD, statuses[i], s, t, u);
				b = fmt_libc(libc, sizeof(libc), HEAD, statuses[i], s, t, u);
				cr_assert(a == b && strcmp(ours, libc) == 0, "%s vs %s", ours, libc);
				a = fmt_ours(ours, H2OFMT_SERVER, s);
				b = fmt_libc(libc, sizeof(libc), SERVER, s);
				cr_assert(a == b && strcmp(ours, libc) == 0, "%s vs %s", ours, libc);
			}
}

Test(h2ofmt, reached_through_the_dynamic_linker)
{
	cr_expect_eq(h2ofmt_check(), 0);
}

/* h2ofmt_uint (also the cache's key prefix and Age, and HTTP/2's
 * content-length): printf's digits for every value up to 100,000, around
 * each power of ten, and the extremes. */
Test(h2ofmt, uint_same_digits_as_printf)
{
	char ours[32], libc[32];
	unsigned long long v, p;

	for (v = 0; v <= 100000; v++) {
		char *end = h2ofmt_uint(ours, v);
		*end = '\0';
		snprintf(libc, sizeof(libc), "%llu", v);
		cr_assert_str_eq(ours, libc, "%llu", v);
	}
	for (p = 10; p != 0 && p <= ULLONG_MAX / 10; p *= 10)
		for (v = p - 2; v <= p + 2; v++) {
			*h2ofmt_uint(ours, v) = '\0';
			snprintf(libc, sizeof(libc), "%llu", v);
			cr_assert_str_eq(ours, libc, "%llu", v);
		}
	*h2ofmt_uint(ours, ULLONG_MAX) = '\0';
	snprintf(libc, sizeof(libc), "%llu", ULLONG_MAX);
	cr_assert_str_eq(ours, libc);
}
