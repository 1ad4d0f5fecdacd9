/*
 * h1req.h - the plain form of an HTTP/1 request head, read 16 bytes a step:
 * what worker/h2oparse.c answers libh2o's phr_parse_request() with before
 * handing anything else to libh2o's own parser.
 *
 * libh2o 2.2.5 (Debian's, built for the x86-64 baseline: no SSE4.2)
 * reads every byte of a header value one at a time, about 6 instructions
 * a byte: the 170-byte bearer token of an authenticated request cost more
 * than a thousand (bench/PROFILE.md, issue 16).  The plain form is the
 * one every ordinary client sends:
 *
 *   METHOD SP TARGET SP "HTTP/1." DIGIT CRLF
 *   (NAME ":" *(SP / HTAB) VALUE CRLF)*
 *   CRLF
 *
 * with METHOD 1-32 letters A-Z, TARGET one or more of the bytes 0x21-0x7e,
 * NAME one or more token characters (RFC 7230), VALUE one or more of the
 * bytes 0x20-0x7e not ending in a space.  On a head of that form every
 * version of picohttpparser gives the same answer (the method, the target,
 * the minor version, each header's name and value as pointers into BUF,
 * the head's length), and so does this; anything else (a bare LF, a
 * leading empty line, a folded line, a tab or a byte over 0x7e in a value,
 * trailing whitespace, an empty value, more headers than the caller has
 * room for, an incomplete head) is not answered here: h1req_parse_plain()
 * says 0 and the caller asks the full parser, which decides (and refuses)
 * exactly as before.  Pure; reads nothing outside BUF[0..LEN).
 */
#ifndef ESGATE_H1REQ_H
#define ESGATE_H1REQ_H

#include <stddef.h>

/* A header: the layout of picohttpparser's struct phr_header. */
struct h1req_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

struct h1req_line {
	const char *method;
	size_t method_len;
	const char *path;
	size_t path_len;
	int minor_version;
};

/*
 * BUF (LEN bytes) starts with a head of the plain form (above) of at most
 * MAX headers: returns its length (up to and including the empty line's
 * LF), *LINE and HEADERS[0..*NHEADERS) filled.  Otherwise 0 (HEADERS and
 * *LINE may have been written).
 */
size_t h1req_parse_plain(const char *buf, size_t len, struct h1req_line *line, struct h1req_header *headers,
                         size_t max, size_t *nheaders);

#endif
