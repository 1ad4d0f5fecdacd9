/*
 * h1resp.h - an HTTP/1.1 response parser for the upstream client: the
 * status line and headers, and the chunked transfer coding.
 *
 * Pure functions over caller-owned bytes, no allocation: the worker's
 * client (worker/h1client.c) feeds them its connection buffer, the unit
 * tests and the fuzzer feed them anything.  Strict where leniency would be
 * ambiguous for a proxy (RFC 9112 section 6.3): a head with both
 * Content-Length and Transfer-Encoding, differing Content-Lengths, a
 * transfer coding other than chunked, obsolete line folding, control bytes
 * in a value or a head over H1RESP_HEAD_MAX are malformed, not guessed at.
 * Bare LF line ends are accepted (RFC 9112 section 2.2 allows it).
 */
#ifndef ESGATE_H1RESP_H
#define ESGATE_H1RESP_H

#include <stddef.h>
#include <stdint.h>

#define H1RESP_HEAD_MAX 16384      /* status line + headers + blank line */
#define H1RESP_HEADERS_MAX 64      /* header fields in one head */
#define H1RESP_CHUNK_LINE_MAX 1024 /* a chunk-size line with its extensions, and a trailer line */
#define H1RESP_TRAILERS_MAX 8192   /* all trailer fields of a chunked body */

/* A piece of the parsed buffer (not NUL-terminated); p NULL when absent. */
struct h1resp_str {
	const char *p;
	size_t len;
};

struct h1resp_head {
	int minor;                   /* HTTP/1.<minor>: 0 or 1 */
	int status;                  /* 100..599 */
	int64_t content_length;      /* -1 when absent */
	unsigned chunked : 1;        /* Transfer-Encoding: chunked */
	unsigned conn_close : 1;     /* Connection: close */
	unsigned conn_keepalive : 1; /* Connection: keep-alive */
	/* First occurrence of each, value trimmed, pointing into the buffer. */
	struct h1resp_str content_type;
	struct h1resp_str content_encoding;
	struct h1resp_str elastic_product; /* X-Elastic-Product */
	size_t nheaders;
};

/* How the body of an answer ends. */
enum h1resp_body {
	H1RESP_BODY_NONE,    /* no body: HEAD, 1xx, 204, 304, or Content-Length: 0 */
	H1RESP_BODY_LENGTH,  /* content_length bytes */
	H1RESP_BODY_CHUNKED, /* chunked coding, see h1resp_chunked_decode */
	H1RESP_BODY_CLOSE,   /* until the server closes the connection */
};

/* Parses the head at BUF[0..LEN).  Returns its length (status line to the
 * blank line included) once complete, 0 if more bytes are needed (never
 * when LEN >= H1RESP_HEAD_MAX), or -1 if it is malformed, with a short
 * static reason in *WHY.  H is filled only on success. */
long h1resp_parse_head(const char *buf, size_t len, struct h1resp_head *h, const char **why);

/* The same, the reference parser: slower, simpler, the one that decides
 * whenever h1resp_parse_head() meets anything but a complete valid head.
 * Both give the same results for every input; exported for the tests. */
long h1resp_parse_head_ref(const char *buf, size_t len, struct h1resp_head *h, const char **why);

/* The last complete head parsed, its bytes and what they gave: a node
 * answers the same request with the same head bytes again and again
 * (nginx and esdemo change only Date, once a second), and bytes equal to
 * the memo's parse to the same result, so a copy of that result is as
 * good as a parse.  One per upstream node (worker/h1client.c). */
#define H1RESP_MEMO_MAX 512 /* longer heads are parsed every time */
struct h1resp_memo {
	size_t len;              /* of bytes; 0: empty */
	struct h1resp_head head; /* its strings point into bytes */
	char bytes[H1RESP_MEMO_MAX];
};

/* h1resp_parse_head() with memo M: when BUF starts with M's head, M's
 * result (strings pointing into BUF); else a parse, whose complete head
 * (if it fits) becomes M's.  The same results as h1resp_parse_head() for
 * every input and every memo state (the unit tests and the fuzzer check). */
long h1resp_parse_head_memo(struct h1resp_memo *m, const char *buf, size_t len, struct h1resp_head *h,
                            const char **why);

/* How the body after head H ends; HEAD_REQUEST: the request was a HEAD. */
enum h1resp_body h1resp_body_kind(const struct h1resp_head *h, int head_request);

/* 1 if the connection may carry another request once this answer is read
 * completely: HTTP/1.1 without Connection: close, or HTTP/1.0 with
 * Connection: keep-alive; never for a body that ends with the connection. */
int h1resp_keepalive(const struct h1resp_head *h, int head_request);

/* Chunked decoder state; zero it (or h1resp_chunked_init) per body. */
struct h1resp_chunked {
	int state;
	uint64_t left;   /* data bytes left in the current chunk */
	size_t line;     /* bytes of the current size or trailer line */
	size_t trailers; /* bytes of trailers so far */
	unsigned digits; /* hex digits of the current size */
};

void h1resp_chunked_init(struct h1resp_chunked *d);

/* Decodes BUF[0..LEN) in place: on return BUF[0..*OUT) holds the body
 * bytes found in it (framing removed) and *USED input bytes were consumed.
 * Returns 0 when more input is expected (*USED == LEN), 1 when the body
 * ended (last chunk and trailers read; BUF[*USED..LEN) follows the body,
 * still in place after the moved data only if *OUT <= *USED, which always
 * holds), or -1 if the coding is malformed (*WHY says how). */
int h1resp_chunked_decode(struct h1resp_chunked *d, char *buf, size_t len, size_t *out, size_t *used, const char **why);

#endif
