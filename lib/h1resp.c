/*
 * h1resp.c - HTTP/1.1 response heads and chunked bodies (see h1resp.h).
 *
 * The head parser works on a complete head only: it first looks for the
 * blank line within H1RESP_HEAD_MAX bytes, then walks the lines once.  A
 * client calls it again as bytes arrive; heads from Elasticsearch are a few
 * hundred bytes and come in one read, so re-scanning costs nothing worth a
 * resumable state machine.  The chunked decoder, on the other hand, sees
 * bodies of any size in pieces, so it is a byte-level state machine that
 * keeps its place across calls and moves data down over the framing.
 *
 * The head is parsed twice over, in a way: h1resp_parse_head() is a fast
 * path for the common case (a complete, valid head: each header line walked
 * once, its value checked and its end found 8 bytes at a time, names told
 * apart by length and compared 8 bytes at a time), and anything it does not accept -- an incomplete head,
 * any malformed line, too many fields -- goes to the reference parser
 * h1resp_parse_head_ref(), which decides and says why.  The fast path
 * applies the same rules, so for every input both give the same result
 * (tests/unit/test_h1resp.c and the fuzzer compare them); it only saves
 * the scans for line ends and the blank line, the separate scan for bare
 * CRs (any CR inside a line but right before its LF fails the fast path)
 * and the libc calls: about 2,700 instructions of esdemo's 8-line head (issue 21).
 */
#include "lib/h1resp.h"

#include <string.h>
#include <strings.h>

#include "lib/hex.h"
#include "lib/httptok.h"

enum {
	H1C_SIZE = 0, /* hex digits of a chunk size */
	H1C_EXT,      /* after the size: ";ext" or whitespace until the line end */
	H1C_SIZE_LF,  /* CR seen after the size line, LF expected */
	H1C_DATA,     /* chunk data */
	H1C_DATA_CR,  /* CRLF after the data */
	H1C_DATA_LF,
	H1C_TRAILER,      /* start of a trailer line (or of the final blank line) */
	H1C_TRAILER_LINE, /* inside a trailer field */
	H1C_TRAILER_LF,   /* CR seen in a trailer line, LF expected */
	H1C_END_LF,       /* CR of the final blank line seen, LF expected */
	H1C_DONE,
};

/* Bytes a field value or reason phrase must not hold: controls but HTAB, and DEL. */
static const unsigned char h1resp_ctls[256] = {
    [0x00 ... 0x08] = 1,
    [0x0a ... 0x1f] = 1,
    [0x7f] = 1,
};

static int
h1resp_name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* Parses a Content-Length value: 1*DIGIT, at most 18 digits. */
static int
h1resp_length(const char *v, size_t len, int64_t *out)
{
	int64_t n = 0;

	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	*out = n;
	return 0;
}

/* Walks the comma-separated tokens of a Connection value. */
static void
h1resp_connection(const char *v, size_t len, struct h1resp_head *h)
{
	size_t i = 0;

	while (i < len) {
		size_t start, end;
		while (i < len && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (h1resp_name_is(v + start, end - start, "close"))
			h->conn_close = 1;
		else if (h1resp_name_is(v + start, end - start, "keep-alive"))
			h->conn_keepalive = 1;
	}
}

/* The end of the line starting at P (the LF), or NULL if none before END. */
static const char *
h1resp_eol(const char *p, const char *end)
{
	return memchr(p, '\n', (size_t)(end - p));
}

/* The head's end (just past its blank line) within BUF[0..LEN), or 0. */
static size_t
h1resp_head_end(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *lf;

	while ((lf = h1resp_eol(p, end)) != NULL) {
		/* the line [p, lf) is empty, or just "\r": the head ends here */
		if (lf == p || (lf == p + 1 && p[0] == '\r'))
			return p == buf ? 0 : (size_t)(lf + 1 - buf);
		p = lf + 1;
	}
	return 0;
}

static int
h1resp_status_line(const char *p, const char *e, struct h1resp_head *h, const char **why)
{
	if (e - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ') {
		*why = "bad status line";
		return -1;
	}
	h->minor = p[7] - '0';
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9') {
		*why = "bad status code";
		return -1;
	}
	h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (e - p > 12 && p[12] != ' ') {
		*why = "bad status line";
		return -1;
	}
	/* the reason phrase: text, nothing esgate uses */
	for (const char *c = p + 12; c < e; c++)
		if (h1resp_ctls[(unsigned char)*c]) {
			*why = "control byte in the status line";
			return -1;
		}
	return 0;
}

static int
h1resp_field(const char *p, const char *e, struct h1resp_head *h, int *seen_te, const char **why)
{
	const char *colon = p, *v, *ve;
	size_t nlen;

	while (colon < e && httptok_tchar[(unsigned char)*colon])
		colon++;
	if (colon == p || colon == e || *colon != ':') {
		/* also a line starting with whitespace: obsolete folding */
		*why = "bad header line";
		return -1;
	}
	nlen = (size_t)(colon - p);
	v = colon + 1;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	ve = e;
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	for (const char *c = v; c < ve; c++)
		if (h1resp_ctls[(unsigned char)*c]) {
			*why = "control byte in a header value";
			return -1;
		}
	if (h1resp_name_is(p, nlen, "content-length")) {
		int64_t n;
		if (h1resp_length(v, (size_t)(ve - v), &n) != 0) {
			*why = "bad Content-Length";
			return -1;
		}
		if (h->content_length >= 0 && h->content_length != n) {
			*why = "conflicting Content-Length headers";
			return -1;
		}
		h->content_length = n;
	} else if (h1resp_name_is(p, nlen, "transfer-encoding")) {
		if (*seen_te || !h1resp_name_is(v, (size_t)(ve - v), "chunked")) {
			*why = "unsupported Transfer-Encoding";
			return -1;
		}
		*seen_te = 1;
		h->chunked = 1;
	} else if (h1resp_name_is(p, nlen, "connection")) {
		h1resp_connection(v, (size_t)(ve - v), h);
	} else {
		struct h1resp_str *dst = NULL;
		if (h1resp_name_is(p, nlen, "content-type"))
			dst = &h->content_type;
		else if (h1resp_name_is(p, nlen, "content-encoding"))
			dst = &h->content_encoding;
		else if (h1resp_name_is(p, nlen, "x-elastic-product"))
			dst = &h->elastic_product;
		if (dst != NULL && dst->p == NULL) {
			dst->p = v;
			dst->len = (size_t)(ve - v);
		}
	}
	return 0;
}

long
h1resp_parse_head_ref(const char *buf, size_t len, struct h1resp_head *h, const char **why)
{
	struct h1resp_head tmp;
	const char *p = buf, *end, *lf;
	size_t total;
	int seen_te = 0;

	*why = NULL;
	if (len > H1RESP_HEAD_MAX)
		len = H1RESP_HEAD_MAX;
	if ((total = h1resp_head_end(buf, len)) == 0) {
		if (len == H1RESP_HEAD_MAX) {
			*why = "response head too large";
			return -1;
		}
		/* a status line that cannot become valid fails now, not at 16 kB */
		if (len >= 5 && memcmp(buf, "HTTP/", 5) != 0) {
			*why = "bad status line";
			return -1;
		}
		return 0;
	}
	end = buf + total;
	memset(&tmp, 0, sizeof(tmp));
	tmp.content_length = -1;
	for (int first = 1;; first = 0) {
		const char *e;
		lf = h1resp_eol(p, end);
		e = lf;
		if (e > p && e[-1] == '\r')
			e--;
		if (memchr(p, '\r', (size_t)(e - p)) != NULL) {
			*why = "bare CR in the head";
			return -1;
		}
		if (first) {
			if (h1resp_status_line(p, e, &tmp, why) != 0)
				return -1;
		} else if (e == p) {
			break; /* the blank line */
		} else {
			if (++tmp.nheaders > H1RESP_HEADERS_MAX) {
				*why = "too many header fields";
				return -1;
			}
			if (h1resp_field(p, e, &tmp, &seen_te, why) != 0)
				return -1;
		}
		p = lf + 1;
	}
	if (tmp.chunked && tmp.content_length >= 0) {
		*why = "both Content-Length and Transfer-Encoding";
		return -1;
	}
	if (tmp.chunked && tmp.minor == 0) {
		*why = "Transfer-Encoding in an HTTP/1.0 answer";
		return -1;
	}
	*h = tmp;
	return (long)total;
}

#define H1RESP_ONES 0x0101010101010101ULL
#define H1RESP_HIGHS 0x8080808080808080ULL

/* 1 if the N (8 or more) bytes at P are WANT (lower case letters, digits
 * and '-') in any case, 8 bytes at a time (the last word overlapping).
 * P's bytes are tchars, and the only tchars that OR 0x20 turns into a
 * lower case letter, a digit or '-' are that letter in either case, that
 * digit, or '-'. */
static inline int
h1resp_lower_is(const char *p, const char *want, size_t n)
{
	uint64_t a, b;
	size_t i;

	for (i = 0; i + 8 < n; i += 8) {
		memcpy(&a, p + i, 8);
		memcpy(&b, want + i, 8);
		if ((a | (H1RESP_ONES * 0x20)) != b)
			return 0;
	}
	memcpy(&a, p + n - 8, 8);
	memcpy(&b, want + n - 8, 8);
	return (a | (H1RESP_ONES * 0x20)) == b;
}

/* The bytes of the word at Q that are below 0x20 or are 0x7f, as the high
 * bit of each (little-endian: the first byte's is bit 7).  The lowest bit
 * set is exact (a borrow runs only upwards from such a byte); bits above
 * it may be wrong. */
static inline uint64_t
h1resp_word_special(const char *q)
{
	uint64_t x, d;

	memcpy(&x, q, 8);
	d = x ^ (H1RESP_ONES * 0x7f);
	return (((x - H1RESP_ONES * 0x20) & ~x) | ((d - H1RESP_ONES) & ~d)) & H1RESP_HIGHS;
}

/* From Q (inside a header line, after its name), the line's LF, checking
 * on the way what h1resp_field() and the bare-CR rule check: NULL if a
 * byte h1resp_ctls forbids comes first (tabs pass; a CR passes only right
 * before the LF), or the buffer ends first (the reference parser then
 * says why, or asks for more).  Eight bytes at a time (on a little-endian
 * machine), to the first byte below 0x20 or 0x7f. */
static inline const char *
h1resp_line_end(const char *q, const char *end)
{
	for (;;) {
		unsigned char c;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		uint64_t m = 0;
		while (end - q >= 8 && (m = h1resp_word_special(q)) == 0)
			q += 8;
		if (m != 0)
			q += __builtin_ctzll(m) >> 3;
#endif
		while (q < end && (unsigned char)*q >= 0x20 && *q != 0x7f)
			q++;
		if (q >= end)
			return NULL;
		c = (unsigned char)*q;
		if (c == '\n')
			return q;
		if (c == '\r' && end - q >= 2 && q[1] == '\n')
			return q + 1;
		if (c != '\t')
			return NULL;
		q++;
	}
}

/* The first byte from P on that is not a tchar, or END: eight bytes to a
 * bound check while 8 are left. */
static inline const char *
h1resp_name_end(const char *p, const char *end)
{
	for (; end - p >= 8; p += 8)
#pragma GCC unroll 8
		for (int k = 0; k < 8; k++)
			if (!httptok_tchar[(unsigned char)p[k]])
				return p + k;
	while (p < end && httptok_tchar[(unsigned char)*p])
		p++;
	return p;
}

/* One header line [P, E) of a complete head whose bytes have been
 * checked (h1resp_line_end), its name [P, COLON); 0 if h1resp_field()
 * would refuse it (the caller then asks the reference parser, which says
 * why). */
static inline int
h1resp_fast_field(const char *p, const char *colon, const char *e, struct h1resp_head *h, int *seen_te)
{
	const char *v, *ve;
	size_t nlen = (size_t)(colon - p);
	struct h1resp_str *dst = NULL;

	v = colon + 1;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	ve = e;
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	switch (nlen) {
	case 10:
		if (h1resp_lower_is(p, "connection", 10)) {
			/* the one token almost every answer has, as h1resp_connection
			 * would take it */
			if (ve - v == 10 && memcmp(v, "keep-alive", 10) == 0)
				h->conn_keepalive = 1;
			else
				h1resp_connection(v, (size_t)(ve - v), h);
		}
		return 1;
	case 12:
		if (h1resp_lower_is(p, "content-type", 12))
			dst = &h->content_type;
		break;
	case 14:
		if (h1resp_lower_is(p, "content-length", 14)) {
			int64_t n;
			if (h1resp_length(v, (size_t)(ve - v), &n) != 0 ||
			    (h->content_length >= 0 && h->content_length != n))
				return 0;
			h->content_length = n;
		}
		return 1;
	case 16:
		if (h1resp_lower_is(p, "content-encoding", 16))
			dst = &h->content_encoding;
		break;
	case 17:
		if (h1resp_lower_is(p, "transfer-encoding", 17)) {
			if (*seen_te || !h1resp_name_is(v, (size_t)(ve - v), "chunked"))
				return 0;
			*seen_te = 1;
			h->chunked = 1;
			return 1;
		}
		if (h1resp_lower_is(p, "x-elastic-product", 17))
			dst = &h->elastic_product;
		break;
	default:
		return 1;
	}
	if (dst != NULL && dst->p == NULL) {
		dst->p = v;
		dst->len = (size_t)(ve - v);
	}
	return 1;
}

long
h1resp_parse_head(const char *buf, size_t len, struct h1resp_head *h, const char **why)
{
	struct h1resp_head tmp;
	const char *p = buf, *end, *lf, *e;
	int seen_te = 0;

	*why = NULL;
	end = buf + (len > H1RESP_HEAD_MAX ? H1RESP_HEAD_MAX : len);
	memset(&tmp, 0, sizeof(tmp));
	tmp.content_length = -1;
	if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
		goto ref;
	e = lf > p && lf[-1] == '\r' ? lf - 1 : lf;
	if (e - p < 12 || h1resp_status_line(p, e, &tmp, why) != 0)
		goto ref;
	for (p = lf + 1;; p = lf + 1) {
		const char *colon = p;

		/* the blank line ends the head */
		if (p < end && *p == '\n') {
			lf = p;
			break;
		}
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
			lf = p + 1;
			break;
		}
		colon = h1resp_name_end(p, end);
		if (colon == p || colon == end || *colon != ':' || (lf = h1resp_line_end(colon + 1, end)) == NULL)
			goto ref;
		e = lf[-1] == '\r' ? lf - 1 : lf;
		if (++tmp.nheaders > H1RESP_HEADERS_MAX || !h1resp_fast_field(p, colon, e, &tmp, &seen_te))
			goto ref;
	}
	if (tmp.chunked && (tmp.content_length >= 0 || tmp.minor == 0))
		goto ref;
	*h = tmp;
	return (long)(lf + 1 - buf);
ref:
	return h1resp_parse_head_ref(buf, len, h, why);
}

/* S, pointing into FROM, made to point at the same offset in TO. */
static void
h1resp_rebase(struct h1resp_str *s, const char *from, const char *to)
{
	if (s->p != NULL)
		s->p = to + (s->p - from);
}

long
h1resp_parse_head_memo(struct h1resp_memo *m, const char *buf, size_t len, struct h1resp_head *h,
                       const char **why)
{
	long n;

	/* M's bytes are a complete head (up to its blank line): a buffer that
	 * starts with them parses to the same head, whatever follows */
	if (m->len != 0 && len >= m->len && memcmp(buf, m->bytes, m->len) == 0) {
		*h = m->head;
		h1resp_rebase(&h->content_type, m->bytes, buf);
		h1resp_rebase(&h->content_encoding, m->bytes, buf);
		h1resp_rebase(&h->elastic_product, m->bytes, buf);
		*why = NULL;
		return (long)m->len;
	}
	if ((n = h1resp_parse_head(buf, len, h, why)) > 0 && (size_t)n <= sizeof(m->bytes)) {
		memcpy(m->bytes, buf, (size_t)n);
		m->head = *h;
		h1resp_rebase(&m->head.content_type, buf, m->bytes);
		h1resp_rebase(&m->head.content_encoding, buf, m->bytes);
		h1resp_rebase(&m->head.elastic_product, buf, m->bytes);
		m->len = (size_t)n;
	}
	return n;
}

enum h1resp_body
h1resp_body_kind(const struct h1resp_head *h, int head_request)
{
	if (head_request || h->status < 200 || h->status == 204 || h->status == 304)
		return H1RESP_BODY_NONE;
	if (h->chunked)
		return H1RESP_BODY_CHUNKED;
	if (h->content_length == 0)
		return H1RESP_BODY_NONE;
	if (h->content_length > 0)
		return H1RESP_BODY_LENGTH;
	return H1RESP_BODY_CLOSE;
}

int
h1resp_keepalive(const struct h1resp_head *h, int head_request)
{
	if (h1resp_body_kind(h, head_request) == H1RESP_BODY_CLOSE)
		return 0;
	if (h->minor == 0)
		return h->conn_keepalive && !h->conn_close;
	return !h->conn_close;
}

void
h1resp_chunked_init(struct h1resp_chunked *d)
{
	memset(d, 0, sizeof(*d));
	d->state = H1C_SIZE;
}

int
h1resp_chunked_decode(struct h1resp_chunked *d, char *buf, size_t len, size_t *out, size_t *used, const char **why)
{
	size_t i = 0, o = 0;
	int v;

	*why = NULL;
	while (i < len) {
		unsigned char c = (unsigned char)buf[i];

		switch (d->state) {
		case H1C_SIZE:
			if ((v = hex_value(c)) >= 0) {
				/* 15 hex digits: 2^60, more than any answer */
				if (++d->digits > 15) {
					*why = "chunk size too large";
					return -1;
				}
				d->left = d->left * 16 + (uint64_t)v;
				d->line++;
				i++;
				break;
			}
			if (d->digits == 0) {
				*why = "bad chunk size";
				return -1;
			}
			d->state = H1C_EXT;
			break; /* the same byte again, in H1C_EXT */
		case H1C_EXT:
			if (c == '\r') {
				d->state = H1C_SIZE_LF;
			} else if (c == '\n') {
				goto size_done;
			} else if (c < 0x20 && c != '\t') {
				*why = "control byte in a chunk size line";
				return -1;
			} else if (++d->line > H1RESP_CHUNK_LINE_MAX) {
				*why = "chunk size line too long";
				return -1;
			} else if (d->line == d->digits + 1 && c != ';' && c != ' ' && c != '\t') {
				*why = "bad chunk size";
				return -1;
			}
			i++;
			break;
		case H1C_SIZE_LF:
			if (c != '\n') {
				*why = "bad chunk size line end";
				return -1;
			}
		size_done:
			i++;
			d->line = 0;
			d->digits = 0;
			d->state = d->left > 0 ? H1C_DATA : H1C_TRAILER;
			break;
		case H1C_DATA: {
			size_t n = len - i;
			if (n > d->left)
				n = (size_t)d->left;
			if (o != i)
				memmove(buf + o, buf + i, n);
			o += n;
			i += n;
			d->left -= n;
			if (d->left == 0)
				d->state = H1C_DATA_CR;
			break;
		}
		case H1C_DATA_CR:
			i++;
			if (c == '\r') {
				d->state = H1C_DATA_LF;
			} else if (c == '\n') {
				d->state = H1C_SIZE;
			} else {
				*why = "no line end after chunk data";
				return -1;
			}
			break;
		case H1C_DATA_LF:
			i++;
			if (c != '\n') {
				*why = "no line end after chunk data";
				return -1;
			}
			d->state = H1C_SIZE;
			break;
		case H1C_TRAILER:
			i++;
			if (c == '\r') {
				d->state = H1C_END_LF;
			} else if (c == '\n') {
				d->state = H1C_DONE;
			} else {
				d->line = 1;
				d->state = H1C_TRAILER_LINE;
				goto trailer_byte;
			}
			break;
		case H1C_TRAILER_LINE:
			i++;
			if (c == '\r') {
				d->state = H1C_TRAILER_LF;
				break;
			}
			if (c == '\n') {
				d->state = H1C_TRAILER;
				break;
			}
			d->line++;
		trailer_byte:
			if (d->line > H1RESP_CHUNK_LINE_MAX || ++d->trailers > H1RESP_TRAILERS_MAX) {
				*why = "chunked trailers too large";
				return -1;
			}
			if (c < 0x20 && c != '\t') {
				*why = "control byte in a trailer";
				return -1;
			}
			break;
		case H1C_TRAILER_LF:
			i++;
			if (c != '\n') {
				*why = "bad trailer line end";
				return -1;
			}
			d->state = H1C_TRAILER;
			break;
		case H1C_END_LF:
			i++;
			if (c != '\n') {
				*why = "bad line end after the last chunk";
				return -1;
			}
			d->state = H1C_DONE;
			break;
		}
		if (d->state == H1C_DONE)
			break;
	}
	*out = o;
	*used = i;
	return d->state == H1C_DONE ? 1 : 0;
}
