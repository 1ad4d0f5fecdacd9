/*
 * test_h1resp.c - lib/h1resp.c: response heads (what is found, what is
 * refused) and the chunked decoder, whole and fed byte by byte.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/h1resp.h"

static long
parse(const char *s, struct h1resp_head *h, const char **why)
{
	return h1resp_parse_head(s, strlen(s), h, why);
}

static int
str_is(struct h1resp_str s, const char *want)
{
	return s.p != NULL && s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

Test(h1resp, elasticsearch_head)
{
	static const char r[] = "HTTP/1.1 200 OK\r\n"
	                        "X-elastic-product: Elasticsearch\r\n"
	                        "content-type: application/json; charset=UTF-8  \r\n"
	                        "Content-Encoding: gzip\r\n"
	                        "content-length: 538\r\n"
	                        "\r\n"
	                        "{\"name\"";
	struct h1resp_head h;
	const char *why;

	cr_assert_eq(parse(r, &h, &why), (long)(strlen(r) - strlen("{\"name\"")));
	cr_expect_eq(h.minor, 1);
	cr_expect_eq(h.status, 200);
	cr_expect_eq(h.content_length, 538);
	cr_expect(!h.chunked && !h.conn_close && !h.conn_keepalive);
	cr_expect(str_is(h.content_type, "application/json; charset=UTF-8"));
	cr_expect(str_is(h.content_encoding, "gzip"));
	cr_expect(str_is(h.elastic_product, "Elasticsearch"));
	cr_expect_eq(h.nheaders, 4);
	cr_expect_eq(h1resp_body_kind(&h, 0), H1RESP_BODY_LENGTH);
	cr_expect_eq(h1resp_body_kind(&h, 1), H1RESP_BODY_NONE);
	cr_expect(h1resp_keepalive(&h, 0));
}

Test(h1resp, incomplete_heads_ask_for_more)
{
	static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
	struct h1resp_head h;
	const char *why;

	for (size_t n = 0; n < strlen(r); n++)
		cr_expect_eq(h1resp_parse_head(r, n, &h, &why), 0, "prefix of %zu bytes", n);
	cr_expect_eq(h1resp_parse_head(r, strlen(r), &h, &why), (long)strlen(r));
}

Test(h1resp, bare_lf_and_no_reason)
{
	struct h1resp_head h;
	const char *why;

	cr_assert_eq(parse("HTTP/1.0 204\nConnection: keep-alive\n\n", &h, &why), 37);
	cr_expect_eq(h.minor, 0);
	cr_expect_eq(h.status, 204);
	cr_expect(h.conn_keepalive);
	cr_expect_eq(h1resp_body_kind(&h, 0), H1RESP_BODY_NONE);
	cr_expect(h1resp_keepalive(&h, 0));
}

Test(h1resp, chunked_close_and_until_close)
{
	struct h1resp_head h;
	const char *why;

	cr_assert_gt(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nConnection: foo, Close\r\n\r\n", &h, &why),
	             0);
	cr_expect(h.chunked && h.conn_close);
	cr_expect_eq(h1resp_body_kind(&h, 0), H1RESP_BODY_CHUNKED);
	cr_expect(!h1resp_keepalive(&h, 0));

	cr_assert_gt(parse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", &h, &why), 0);
	cr_expect_eq(h.content_length, -1);
	cr_expect_eq(h1resp_body_kind(&h, 0), H1RESP_BODY_CLOSE);
	cr_expect(!h1resp_keepalive(&h, 0));

	cr_assert_gt(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &h, &why), 0);
	cr_expect_eq(h1resp_body_kind(&h, 0), H1RESP_BODY_NONE);
	cr_expect(!h1resp_keepalive(&h, 0), "HTTP/1.0 without keep-alive");

	cr_assert_gt(parse("HTTP/1.1 100 Continue\r\n\r\n", &h, &why), 0);
	cr_expect_eq(h.status, 100);
	cr_expect_eq(h1resp_body_kind(&h, 0), H1RESP_BODY_NONE);
}

Test(h1resp, same_content_length_twice_is_fine)
{
	struct h1resp_head h;
	const char *why;

	cr_assert_gt(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &h, &why), 0);
	cr_expect_eq(h.content_length, 5);
}

#define BAD(name, text, reason)                                                                                        \
	Test(h1resp_bad, name)                                                                                         \
	{                                                                                                              \
		struct h1resp_head h;                                                                                  \
		const char *why = NULL;                                                                                \
		cr_expect_eq(parse(text, &h, &why), -1);                                                               \
		cr_expect_str_eq(why != NULL ? why : "(null)", reason);                                                \
	}

BAD(cl_and_te, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "both Content-Length and Transfer-Encoding")
BAD(two_lengths, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "conflicting Content-Length headers")
BAD(length_list, "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", "bad Content-Length")
BAD(negative_length, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length")
BAD(huge_length, "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n", "bad Content-Length")
BAD(empty_length, "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", "bad Content-Length")
BAD(gzip_te, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported Transfer-Encoding")
BAD(te_twice, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    "unsupported Transfer-Encoding")
BAD(te_http10, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding in an HTTP/1.0 answer")
BAD(http2, "HTTP/2 200 OK\r\n\r\n", "bad status line")
BAD(http11_no_space, "HTTP/1.1200 OK\r\n\r\n", "bad status line")
BAD(garbage, "SSH-2.0-OpenSSH_9.2\r\n", "bad status line")
BAD(status_600, "HTTP/1.1 600 Nope\r\n\r\n", "bad status code")
BAD(status_short, "HTTP/1.1 20 OK\r\n\r\n", "bad status code")
BAD(status_long, "HTTP/1.1 2000 OK\r\n\r\n", "bad status line")
BAD(folding, "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n", "bad header line")
BAD(space_before_colon, "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", "bad header line")
BAD(no_colon, "HTTP/1.1 200 OK\r\nContent-Length\r\n\r\n", "bad header line")
BAD(bare_cr, "HTTP/1.1 200 OK\r\nX-A: b\rc\r\n\r\n", "bare CR in the head")
BAD(nul_in_value, "HTTP/1.1 200 OK\r\nX-A: b\001c\r\n\r\n", "control byte in a header value")

Test(h1resp_bad, too_many_headers)
{
	char buf[4096];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n");
	struct h1resp_head h;
	const char *why;

	for (int i = 0; i < H1RESP_HEADERS_MAX; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
	memcpy(buf + n, "\r\n", 3);
	cr_expect_gt(parse(buf, &h, &why), 0, "exactly the maximum");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-last: v\r\n\r\n");
	cr_expect_eq(parse(buf, &h, &why), -1);
	cr_expect_str_eq(why, "too many header fields");
}

Test(h1resp_bad, head_too_large)
{
	size_t len = H1RESP_HEAD_MAX + 10;
	char *buf = malloc(len);
	struct h1resp_head h;
	const char *why;

	memset(buf, 'a', len);
	memcpy(buf, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
	cr_expect_eq(h1resp_parse_head(buf, H1RESP_HEAD_MAX - 1, &h, &why), 0);
	cr_expect_eq(h1resp_parse_head(buf, len, &h, &why), -1);
	cr_expect_str_eq(why, "response head too large");
	free(buf);
}

/* Decodes IN whole, then again one byte at a time; both must give WANT. */
static void
chunked_ok(const char *in, size_t inlen, const char *want, size_t trailing)
{
	struct h1resp_chunked d;
	char *buf = malloc(inlen + 1), out[4096];
	size_t o, used, total = 0;
	const char *why;
	int rc = 0;

	memcpy(buf, in, inlen);
	h1resp_chunked_init(&d);
	cr_assert_eq(h1resp_chunked_decode(&d, buf, inlen, &o, &used, &why), 1, "%s", why ? why : "");
	cr_expect_eq(o, strlen(want));
	cr_expect(memcmp(buf, want, o) == 0);
	cr_expect_eq(inlen - used, trailing);
	cr_expect(memcmp(buf + used, in + used, inlen - used) == 0, "bytes after the body left in place");

	h1resp_chunked_init(&d);
	for (size_t i = 0; i < inlen && rc == 0; i++) {
		char c = in[i];
		rc = h1resp_chunked_decode(&d, &c, 1, &o, &used, &why);
		cr_assert_neq(rc, -1, "byte %zu: %s", i, why);
		cr_assert_eq(used, 1);
		if (o == 1)
			out[total++] = c;
		if (rc == 1)
			cr_expect_eq(inlen - i - 1, trailing);
	}
	cr_expect_eq(rc, 1);
	cr_expect_eq(total, strlen(want));
	cr_expect(memcmp(out, want, total) == 0);
	free(buf);
}

#define CHUNKED_OK(s, want, trailing) chunked_ok(s, sizeof(s) - 1, want, trailing)

Test(h1resp_chunked, decodes)
{
	CHUNKED_OK("5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n", "hello, world", 0);
	CHUNKED_OK("0\r\n\r\n", "", 0);
	CHUNKED_OK("A\r\n0123456789\r\n0\r\n\r\nHTTP/1.1", "0123456789", 8);
	CHUNKED_OK("a;name=value\r\n0123456789\r\n0 ; last\r\n\r\n", "0123456789", 0);
	CHUNKED_OK("3\nabc\n0\n\n", "abc", 0);
	CHUNKED_OK("3\r\nabc\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n", "abc", 0);
	CHUNKED_OK("000003\r\nabc\r\n0\r\n\r\n", "abc", 0);
}

static void
chunked_bad(const char *in, const char *reason)
{
	struct h1resp_chunked d;
	char *buf = strdup(in);
	size_t o, used;
	const char *why = NULL;

	h1resp_chunked_init(&d);
	cr_expect_eq(h1resp_chunked_decode(&d, buf, strlen(buf), &o, &used, &why), -1, "%s", in);
	cr_expect_str_eq(why != NULL ? why : "(null)", reason, "%s", in);
	free(buf);
}

Test(h1resp_chunked, refuses)
{
	chunked_bad("x\r\n", "bad chunk size");
	chunked_bad("\r\n", "bad chunk size");
	chunked_bad("-1\r\n", "bad chunk size");
	chunked_bad("5x\r\nhello\r\n", "bad chunk size");
	chunked_bad("1000000000000000\r\n", "chunk size too large");
	chunked_bad("5\r\nhelloX\r\n", "no line end after chunk data");
	chunked_bad("5\rX", "bad chunk size line end");
	chunked_bad("5;\001\r\n", "control byte in a chunk size line");
	chunked_bad("0\r\n\rX", "bad line end after the last chunk");
	chunked_bad("0\r\nA: \001\r\n", "control byte in a trailer");
}

Test(h1resp_chunked, long_lines_are_refused)
{
	char buf[H1RESP_CHUNK_LINE_MAX + 16];

	memset(buf, 'a', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	buf[0] = '1';
	buf[1] = ';';
	chunked_bad(buf, "chunk size line too long");
	memcpy(buf, "0\r\nX: ", 6);
	chunked_bad(buf, "chunked trailers too large");
}

/* Two parses of BUF gave the same fields (pointers into BUF included). */
static void
same_fields(const struct h1resp_head *a, const struct h1resp_head *b, const char *buf, size_t len)
{
	cr_assert(a->minor == b->minor && a->status == b->status && a->content_length == b->content_length &&
	              a->chunked == b->chunked && a->conn_close == b->conn_close &&
	              a->conn_keepalive == b->conn_keepalive && a->content_type.p == b->content_type.p &&
	              a->content_type.len == b->content_type.len && a->content_encoding.p == b->content_encoding.p &&
	              a->content_encoding.len == b->content_encoding.len &&
	              a->elastic_product.p == b->elastic_product.p && a->elastic_product.len == b->elastic_product.len &&
	              a->nheaders == b->nheaders,
	          "%.*s", (int)len, buf);
}

/* h1resp_parse_head's fast path against the reference parser: every
 * single-byte change (and every cut) of heads that exercise each rule must
 * give the same length, reason and fields. */
static void
same_as_ref(const char *buf, size_t len)
{
	struct h1resp_head a, b;
	const char *wa, *wb;
	long na, nb;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	na = h1resp_parse_head(buf, len, &a, &wa);
	nb = h1resp_parse_head_ref(buf, len, &b, &wb);
	cr_assert_eq(na, nb, "%.*s: %ld vs %ld", (int)len, buf, na, nb);
	cr_assert_eq(wa, wb, "%.*s: %s vs %s", (int)len, buf, wa ? wa : "-", wb ? wb : "-");
	if (na > 0)
		same_fields(&a, &b, buf, len);
}

Test(h1resp, fast_path_is_the_reference)
{
	static const char *heads[] = {
	    "HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 22:32:17 GMT\r\nConnection: keep-alive\r\nContent-Length: 432\r\n"
	    "Server: esdemo\r\ncontent-type: application/json; charset=UTF-8\r\nX-Elastic-Product: Elasticsearch\r\n\r\n{}",
	    "HTTP/1.0 404 Not\tFound\nConnection: Keep-Alive, x\nContent-Encoding:gzip \nTransfer-Encoding: chunked\n\n",
	    "HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: Chunked\r\nCONTENT-TYPE:\ttext/plain\t\r\nX-A: \x7f\x80\xff\r\n\r\n",
	    "HTTP/1.1 204\r\nContent-Length: 1\r\ncontent-length: 1\r\nconnection: close\r\nx-elastic-product: a\r\n\r\n",
	};
	static const char subst[] = {'\0', '\t', '\r', '\n', ' ', ':', 'A', 'a', '0', '-', 0x7f, (char)0x80};
	char buf[512];

	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		size_t len = strlen(heads[i]);
		cr_assert(len < sizeof(buf));
		for (size_t cut = 0; cut <= len; cut++)
			same_as_ref(heads[i], cut);
		for (size_t at = 0; at < len; at++)
			for (size_t k = 0; k < sizeof(subst); k++) {
				memcpy(buf, heads[i], len);
				buf[at] = subst[k];
				same_as_ref(buf, len);
			}
	}
}

/* The memo gives what a parse gives: the same head again (with other
 * bytes after it, in another buffer), then every one-byte change and
 * cut of it, each parsed with the memo of the one before and alone. */
static void
same_with_memo(struct h1resp_memo *m, const char *buf, size_t len)
{
	struct h1resp_head a, b;
	const char *wa, *wb;
	long na, nb;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	na = h1resp_parse_head_memo(m, buf, len, &a, &wa);
	nb = h1resp_parse_head(buf, len, &b, &wb);
	cr_assert_eq(na, nb, "%.*s: %ld vs %ld", (int)len, buf, na, nb);
	cr_assert_eq(wa, wb, "%.*s", (int)len, buf);
	if (na > 0)
		same_fields(&a, &b, buf, len);
}

Test(h1resp, memo_is_the_parse)
{
	static const char *heads[] = {
	    "HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 22:32:17 GMT\r\nConnection: keep-alive\r\nContent-Length: 432\r\n"
	    "Server: esdemo\r\ncontent-type: application/json; charset=UTF-8\r\nX-Elastic-Product: Elasticsearch\r\n\r\n{}",
	    "HTTP/1.1 404 Not\tFound\nConnection: Keep-Alive, x\nContent-Encoding:gzip \nTransfer-Encoding: chunked\n\n",
	    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	};
	static const char subst[] = {'\0', '\r', '\n', ' ', ':', 'A', '0', 0x7f};
	static struct h1resp_memo m; /* 4 KiB of zeros: an empty memo */
	char buf[512], other[600];

	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		size_t len = strlen(heads[i]);
		struct h1resp_head h;
		const char *why;
		long n;

		memcpy(buf, heads[i], len);
		same_with_memo(&m, buf, len); /* fills the memo */
		n = h1resp_parse_head(buf, len, &h, &why);
		cr_assert_gt(n, 0, "head %zu: %ld %s", i, n, why ? why : "-");
		cr_assert_eq(m.len, (size_t)n);
		/* the same head elsewhere, other bytes after it: a hit */
		memset(other, 'x', sizeof(other));
		memcpy(other + 7, heads[i], (size_t)n);
		same_with_memo(&m, other + 7, sizeof(other) - 7);
		cr_assert_eq(m.len, (size_t)n);
		for (size_t cut = 0; cut <= len; cut++) {
			same_with_memo(&m, heads[i], cut);
			same_with_memo(&m, heads[i], len); /* back to the head */
		}
		for (size_t at = 0; at < len; at++)
			for (size_t k = 0; k < sizeof(subst); k++) {
				memcpy(buf, heads[i], len);
				buf[at] = subst[k];
				same_with_memo(&m, buf, len);
				memcpy(buf, heads[i], len);
				same_with_memo(&m, buf, len);
			}
	}
}
