/*
 * test_h1req.c - lib/h1req.c and worker/h2oparse.c: esgate's
 * phr_parse_request() (the plain heads read 16 bytes a step, the rest
 * passed on) answers exactly what libh2o's own picohttpparser answers, on
 * every prefix of hand-written heads, plain and not, with every header
 * limit and LAST_LEN that matters, and on many thousands of mutated ones;
 * and the plain ones are answered by esgate, not passed on.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/h1req.h"
#include "worker/h2oparse.h"

struct answer {
	int ret;
	const char *method, *path;
	size_t method_len, path_len, nh;
	int minor;
	struct phr_header h[8];
};

static void
ask(h2oparse_fn f, const char *buf, size_t len, size_t max, size_t last_len, struct answer *a)
{
	memset(a, 0, sizeof(*a));
	a->nh = max;
	a->ret = f(buf, len, &a->method, &a->method_len, &a->path, &a->path_len, &a->minor, a->h, &a->nh, last_len);
}

/* Both parsers on BUF[0..LEN): the same answer (what is looked at of a
 * failure: its code). */
static void
same(const char *buf, size_t len, size_t max, size_t last_len)
{
	struct answer m, r;

	cr_assert_not_null(h2oparse_real());
	ask(h2oparse_parse, buf, len, max, last_len, &m);
	ask(h2oparse_real(), buf, len, max, last_len, &r);
	cr_assert_eq(m.ret, r.ret, "%.*s (len %zu, max %zu, last_len %zu): %d, libh2o %d", (int)len, buf, len, max,
	             last_len, m.ret, r.ret);
	if (r.ret <= 0)
		return;
	cr_assert(m.method == r.method && m.method_len == r.method_len && m.path == r.path &&
	          m.path_len == r.path_len && m.minor == r.minor && m.nh == r.nh,
	          "%.*s: request line or header count differ", (int)len, buf);
	for (size_t i = 0; i < r.nh; i++)
		cr_assert(m.h[i].name == r.h[i].name && m.h[i].name_len == r.h[i].name_len &&
		              m.h[i].value == r.h[i].value && m.h[i].value_len == r.h[i].value_len,
		          "%.*s: header %zu differs", (int)len, buf, i);
}

/* Every prefix, header limits 0-8, LAST_LEN 0, 1, 3, and around the head's
 * length. */
static void
same_all(const char *s, size_t len)
{
	char *buf = malloc(len + 1); /* exactly LEN bytes readable past which ASan stops a read */

	cr_assert_not_null(buf);
	memcpy(buf, s, len);
	for (size_t n = 0; n <= len; n++)
		for (size_t max = 0; max <= 8; max++) {
			size_t lasts[] = {0, 1, 3, n > 0 ? n - 1 : 0, n, n + 1};

			for (size_t i = 0; i < sizeof(lasts) / sizeof(lasts[0]); i++)
				same(buf, n, max, lasts[i]);
		}
	free(buf);
}

static const char *const plain[] = {
    "GET / HTTP/1.1\r\n\r\n",
    "GET /info-jwt HTTP/1.1\r\nHost: 127.0.0.1:9200\r\nAuthorization: Bearer "
    "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAiYmVuY2giLCAiYXVkIjogImVzZ2F0ZS1iZW5jaCIsICJleHAiOiAx"
    "NzY1MDAwMDAwfQ.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dQ\r\n\r\n",
    "POST /books/_search?q=a:b&x=%20 HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    "DELETE /x HTTP/1.1\r\nX-A:b\r\nX-B:   c d\r\nX-C:\t e\r\nUser-Agent: h2load nghttp2/1.52.0\r\n\r\nGET / HTTP/1.1\r\n",
    "GET /0123456789abcdef0123456789abcdef HTTP/1.1\r\nx: 0123456789abcdef0\r\n!#$%&'*+-.^_`|~09AZaz: v\r\n\r\n",
};

static const char *const not_plain[] = {
    "\r\nGET / HTTP/1.1\r\n\r\n",                        /* a leading empty line */
    "GET / HTTP/1.1\n\n",                                /* bare LF */
    "GET / HTTP/1.1\r\nA: b\n\r\n",                      /* a bare LF after a value */
    "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",         /* a folded line */
    "GET / HTTP/1.1\r\nA: b\tc\r\n\r\n",                 /* a tab in a value */
    "GET / HTTP/1.1\r\nA: b \r\n\r\n",                   /* trailing whitespace */
    "GET / HTTP/1.1\r\nA: b\t\r\n\r\n",                  /* ... a tab */
    "GET / HTTP/1.1\r\nA:\r\n\r\n",                      /* an empty value */
    "GET / HTTP/1.1\r\nA:  \r\n\r\n",                    /* ... of spaces */
    "GET / HTTP/1.1\r\nA: caf\xc3\xa9\r\n\r\n",          /* a byte over 0x7e */
    "GET / HTTP/1.1\r\nA: \x7f\r\n\r\n",                 /* DEL */
    "GET / HTTP/1.1\r\nA : b\r\n\r\n",                   /* a space before the colon */
    "GET / HTTP/1.1\r\nA b: c\r\n\r\n",                  /* ... in the name */
    "GET / HTTP/1.1\r\nA\x01: c\r\n\r\n",                /* a control byte in the name */
    "GET / HTTP/1.1\r\n: c\r\n\r\n",                     /* no name */
    "GET / HTTP/1.1\r\nAb\r\n\r\n",                      /* no colon */
    "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",                 /* a CR in a value */
    "GET / HTTP/1.1\r\nA: b\r\r\n\r\n",                  /* ... before the CRLF */
    "GET / HTTP/1.1\r\n\rX",                             /* a CR not ending the head */
    "get / HTTP/1.1\r\n\r\n",                            /* a method in lower case */
    "M-SEARCH * HTTP/1.1\r\n\r\n",                       /* ... with a dash */
    "GET  / HTTP/1.1\r\n\r\n",                           /* two spaces */
    "GET /  HTTP/1.1\r\n\r\n",                           /* ... */
    " / HTTP/1.1\r\n\r\n",                               /* no method */
    "GET  HTTP/1.1\r\n\r\n",                             /* no target */
    "GET /a\x01 HTTP/1.1\r\n\r\n",                       /* a control byte in the target */
    "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",                 /* a byte over 0x7e in the target */
    "GET / HTTP/1.10\r\n\r\n",                           /* two digits */
    "GET / HTTP/1.\r\n\r\n",                             /* none */
    "GET / HTTP/2.0\r\n\r\n",                            /* another major version */
    "GET / HTTP/1.1 \r\n\r\n",                           /* a space after the version */
    "GET / HTTP/1.1\r\nA: b\r\n",                        /* no empty line */
    "GET / HTTP/1.1\r\nA: b\r\nB: c\r\nC: d\r\nD: e\r\nE: f\r\nF: g\r\nG: h\r\nH: i\r\nI: j\r\n\r\n", /* 9 */
    "GETGETGETGETGETGETGETGETGETGETGET / HTTP/1.1\r\n\r\n", /* a method over 32 letters */
};

Test(h1req, plain_heads_are_answered_by_esgate_as_libh2o_answers_them)
{
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		struct h1req_line l;
		struct h1req_header h[8];
		size_t n;
		const char *end = strstr(plain[i], "\r\n\r\n");

		cr_assert_not_null(end);
		cr_expect_eq(h1req_parse_plain(plain[i], strlen(plain[i]), &l, h, 8, &n), (size_t)(end + 4 - plain[i]),
		             "%s", plain[i]);
		same_all(plain[i], strlen(plain[i]));
	}
}

Test(h1req, other_heads_go_to_libh2o)
{
	static const char nul[] = "GET\0/ HTTP/1.1\r\nA: \0\r\n\r\n";

	same_all(nul, sizeof(nul) - 1);
	for (size_t i = 0; i < sizeof(not_plain) / sizeof(not_plain[0]); i++) {
		struct h1req_line l;
		struct h1req_header h[8];
		size_t n, len = strlen(not_plain[i]);

		cr_expect_eq(h1req_parse_plain(not_plain[i], len, &l, h, 8, &n), 0, "%zu: %s", i, not_plain[i]);
		same_all(not_plain[i], len);
	}
}

Test(h1req, the_interposition_is_in_place)
{
	uint64_t before = h2oparse_fast_calls();

	cr_assert_eq(h2oparse_check(), 0);
	cr_expect_eq(h2oparse_fast_calls(), before + 1);
}

/* Plain heads with bytes changed, inserted and cut, at random (a fixed
 * seed): the same answers.  Bytes drawn mostly from the ones the grammar
 * turns on. */
Test(h1req, mutated_heads_get_the_same_answers)
{
	static const char pick[] = " \t\r\n:/.-HTTP1019aZz~\x7f\x80\xff\x01";
	unsigned seed = 12345;
	char buf[600];

	for (int round = 0; round < 60000; round++) {
		const char *s = plain[round % (sizeof(plain) / sizeof(plain[0]))];
		size_t len = strlen(s), edits;

		if (len > sizeof(buf) - 8)
			len = sizeof(buf) - 8;
		memcpy(buf, s, len);
		edits = 1 + (size_t)(rand_r(&seed) % 3);
		for (size_t e = 0; e < edits; e++) {
			size_t at = (size_t)rand_r(&seed) % (len + 1);
			char c = pick[(size_t)rand_r(&seed) % (sizeof(pick) - 1)];

			switch (rand_r(&seed) % 3) {
			case 0:
				if (at < len)
					buf[at] = c;
				break;
			case 1:
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = c;
				len++;
				break;
			default:
				if (at < len) {
					memmove(buf + at, buf + at + 1, len - at - 1);
					len--;
				}
				break;
			}
		}
		{
			char *copy = malloc(len ? len : 1);

			cr_assert_not_null(copy);
			memcpy(copy, buf, len);
			for (size_t max = 0; max <= 8; max += 4)
				same(copy, len, max, round % 7 == 0 ? (size_t)rand_r(&seed) % (len + 2) : 0);
			free(copy);
		}
	}
}

static const char *
host_rule(const char *head)
{
	struct phr_header h[16];
	size_t nh = 16, mlen, plen;
	const char *m, *p;
	int minor;

	cr_assert_gt(h2oparse_parse(head, strlen(head), &m, &mlen, &p, &plen, &minor, h, &nh, 0), 0, "%s", head);
	return h2oparse_host_refusal(h, nh, minor);
}

Test(h1req, host_rule_of_rfc9112)
{
	cr_expect_null(host_rule("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"));
	cr_expect_null(host_rule("GET / HTTP/1.1\r\nhOsT: a.example:8080\r\n\r\n"));
	cr_expect_null(host_rule("GET / HTTP/1.1\r\nHost: [::1]:9200\r\n\r\n"));
	cr_expect_null(host_rule("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: y\r\n\r\n"));
	cr_expect_null(host_rule("GET / HTTP/1.1\r\nHost:\r\n\r\n")); /* empty: allowed (RFC 9112 3.2) */
	cr_expect_null(host_rule("GET / HTTP/1.0\r\n\r\n"));
	cr_expect_null(host_rule("GET / HTTP/1.0\r\nHosts: x\r\nHos: y\r\n\r\n"));
	cr_expect_str_eq(host_rule("GET / HTTP/1.1\r\n\r\n"), "no Host header (HTTP/1.1)");
	cr_expect_str_eq(host_rule("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n"), "no Host header (HTTP/1.1)");
	cr_expect_str_eq(host_rule("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), "more than one Host header");
	cr_expect_str_eq(host_rule("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n"), "more than one Host header");
	cr_expect_str_eq(host_rule("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), "invalid Host header");
	cr_expect_str_eq(host_rule("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), "invalid Host header");
	cr_expect_str_eq(host_rule("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), "invalid Host header");
	cr_expect_str_eq(host_rule("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n"), "invalid Host header");
	cr_expect_str_eq(host_rule("GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n"), "invalid Host header");
}

Test(h1req, refused_heads_are_answered_as_json)
{
	static const char h2o_400[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                              "Connection: close\r\nContent-Length: 11\r\n\r\nBad Request";
	h2o_iovec_t theirs = h2o_iovec_init(h2o_400, sizeof(h2o_400) - 1), other = h2o_iovec_init("HTTP/1.1 200 OK", 15);
	const h2o_iovec_t *ours;
	struct phr_header h[4];
	size_t nh = 4, mlen, plen;
	const char *m, *p;
	int minor;

	cr_expect_null(h2oparse_bad_request(&other));
	cr_assert_not_null(ours = h2oparse_bad_request(&theirs));
	cr_expect(strstr(ours->base, "application/json") != NULL);
	cr_expect(strstr(ours->base, "\"reason\":\"malformed request head\"") != NULL, "%.*s", (int)ours->len, ours->base);
	cr_expect_eq(phr_parse_request("GET / HTTP/1.1\r\n\r\n", 18, &m, &mlen, &p, &plen, &minor, h, &nh, 0), -1);
	cr_assert_not_null(ours = h2oparse_bad_request(&theirs));
	cr_expect(strstr(ours->base, "\"reason\":\"no Host header (HTTP/1.1)\"") != NULL, "%.*s", (int)ours->len,
	          ours->base);
	cr_expect(strstr(ours->base, "\r\n\r\n{") != NULL);
}
