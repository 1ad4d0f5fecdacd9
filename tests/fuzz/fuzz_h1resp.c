/*
 * fuzz_h1resp.c - libFuzzer target for lib/h1resp.c: the input is what an
 * upstream node sends back.  The head parser must stay inside the buffer
 * and report only what the rules in h1resp.h allow; what follows the head
 * is decoded as a chunked body twice, whole and cut in two at a point
 * taken from the input, and both runs must agree byte for byte.  The
 * memo (h1resp_parse_head_memo) must give what a parse gives.
 */
#include "lib/h1resp.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_h1resp_inside(const struct h1resp_str *s, const char *buf, long hlen)
{
	if (s->p != NULL && (s->p < buf || s->p + s->len > buf + hlen))
		abort();
}

/* Decodes IN[0..LEN) fed as two pieces cut at CUT: returns the result
 * code, the body in OUT (*OUTLEN bytes), the input used in *USED. */
static int
fuzz_h1resp_decode(const uint8_t *in, size_t len, size_t cut, char *out, size_t *outlen, size_t *used)
{
	struct h1resp_chunked d;
	char *buf = malloc(len + 1);
	size_t off = 0, o, u;
	const char *why;
	int rc = 0;

	memcpy(buf, in, len);
	h1resp_chunked_init(&d);
	*outlen = 0;
	for (int piece = 0; piece < 2 && rc == 0; piece++) {
		size_t n = piece == 0 ? cut : len - cut;
		rc = h1resp_chunked_decode(&d, buf + off, n, &o, &u, &why);
		if (rc == -1 && why == NULL)
			abort();
		if (rc != -1) {
			if (o > u || u > n || (rc == 0 && u != n))
				abort();
			memcpy(out + *outlen, buf + off, o);
			*outlen += o;
			off += u;
		}
	}
	*used = off;
	free(buf);
	return rc;
}

/* The fast path and the reference parser agree: result, reason, head. */
static void
fuzz_h1resp_same(const char *buf, size_t size, long n, const struct h1resp_head *h, const char *why)
{
	struct h1resp_head r;
	const char *rwhy;
	long rn = h1resp_parse_head_ref(buf, size, &r, &rwhy);

	if (rn != n || rwhy != why)
		abort();
	if (n > 0 && (r.minor != h->minor || r.status != h->status || r.content_length != h->content_length ||
	              r.chunked != h->chunked || r.conn_close != h->conn_close || r.conn_keepalive != h->conn_keepalive ||
	              r.content_type.p != h->content_type.p || r.content_type.len != h->content_type.len ||
	              r.content_encoding.p != h->content_encoding.p || r.content_encoding.len != h->content_encoding.len ||
	              r.elastic_product.p != h->elastic_product.p || r.elastic_product.len != h->elastic_product.len ||
	              r.nheaders != h->nheaders))
		abort();
}

/* The memo (h1resp_parse_head_memo) gives what a parse gives, for BUF
 * with the memo the previous inputs left, then for BUF again (a hit when
 * its head was complete and short enough to be kept). */
static void
fuzz_h1resp_memo(const char *buf, size_t size)
{
	static struct h1resp_memo m;

	for (int round = 0; round < 2; round++) {
		struct h1resp_head h, r;
		const char *why, *rwhy;
		long n = h1resp_parse_head(buf, size, &h, &why);
		long rn = h1resp_parse_head_memo(&m, buf, size, &r, &rwhy);

		if (rn != n || rwhy != why)
			abort();
		if (n > 0 &&
		    (r.minor != h.minor || r.status != h.status || r.content_length != h.content_length ||
		     r.chunked != h.chunked || r.conn_close != h.conn_close || r.conn_keepalive != h.conn_keepalive ||
		     r.content_type.p != h.content_type.p || r.content_type.len != h.content_type.len ||
		     r.content_encoding.p != h.content_encoding.p || r.content_encoding.len != h.content_encoding.len ||
		     r.elastic_product.p != h.elastic_product.p || r.elastic_product.len != h.elastic_product.len ||
		     r.nheaders != h.nheaders))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h1resp_head h;
	const char *why;
	char *copy = malloc(size + 1), *a, *b;
	long n;
	size_t rest, alen, blen, aused, bused, cut;
	int ra, rb;

	memcpy(copy, data, size);
	n = h1resp_parse_head(copy, size, &h, &why);
	fuzz_h1resp_same(copy, size, n, &h, why);
	fuzz_h1resp_memo(copy, size);
	if (n > 0 && (size_t)n < size) {
		/* the same head with other bytes after it, in another buffer: a hit */
		char *other = malloc(size + 1);
		memcpy(other, copy, (size_t)n);
		for (size_t i = (size_t)n; i < size; i++)
			other[i] = (char)~copy[i];
		fuzz_h1resp_memo(other, size);
		free(other);
	}
	if (n < -1 || n > (long)size || n > H1RESP_HEAD_MAX || (n == -1 && why == NULL))
		abort();
	if (n == 0 && size >= H1RESP_HEAD_MAX)
		abort();
	if (n > 0) {
		if (h.status < 100 || h.status > 599 || (h.minor != 0 && h.minor != 1) ||
		    h.nheaders > H1RESP_HEADERS_MAX || (h.chunked && h.content_length >= 0))
			abort();
		fuzz_h1resp_inside(&h.content_type, copy, n);
		fuzz_h1resp_inside(&h.content_encoding, copy, n);
		fuzz_h1resp_inside(&h.elastic_product, copy, n);
		if (h1resp_keepalive(&h, 0) && h1resp_body_kind(&h, 0) == H1RESP_BODY_CLOSE)
			abort();
	}
	/* The bytes after a head (or all of them) as a chunked body. */
	if (n < 0)
		n = 0;
	rest = size - (size_t)n;
	cut = rest > 0 ? data[0] % (rest + 1) : 0;
	a = malloc(rest + 1);
	b = malloc(rest + 1);
	ra = fuzz_h1resp_decode(data + n, rest, rest, a, &alen, &aused);
	rb = fuzz_h1resp_decode(data + n, rest, cut, b, &blen, &bused);
	/* the decoder keeps its place byte by byte: the cut changes nothing */
	if (ra != rb || (ra != -1 && (alen != blen || memcmp(a, b, alen) != 0 || aused != bused)))
		abort();
	free(a);
	free(b);
	free(copy);
	return 0;
}
