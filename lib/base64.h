/*
 * base64.h - strict base64 for credentials: the standard alphabet of an
 * "Authorization: ApiKey" value and the URL-safe, unpadded alphabet of
 * JSON Web Tokens and JWKS key material (RFC 4648 sections 4 and 5).
 *
 * Strict means one input decodes one way: characters outside the
 * alphabet (white space included), misplaced or missing padding, and
 * unused low bits that are not zero are all refused, so two different
 * strings never stand for the same credential.  Pure code, no allocation.
 */
#ifndef ESGATE_BASE64_H
#define ESGATE_BASE64_H

#include <stddef.h>
#include <sys/types.h>

/* Bytes the decoding of N characters may need, and characters (without
 * the NUL) the encoding of N bytes takes. */
#define BASE64_DECODED_MAX(n) (((n) + 3) / 4 * 3)
#define BASE64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/* Decodes IN (LEN characters, standard alphabet A-Z a-z 0-9 + /) into OUT.
 * The padding '=' is optional, as Elasticsearch's own decoder has it, but
 * when present it must be exactly what completes the last quantum.
 * Returns the decoded length, or -1 on malformed input or when OUT
 * (OUTLEN bytes) is too small.  An empty input decodes to 0 bytes. */
ssize_t base64_decode(const char *in, size_t len, unsigned char *out, size_t outlen);

/* The same with the URL-safe alphabet (- and _ for + and /) and no
 * padding at all: a '=' is refused, as RFC 7515 has it for JWS. */
ssize_t base64url_decode(const char *in, size_t len, unsigned char *out, size_t outlen);

/* Encodes IN (LEN bytes) into OUT, NUL-terminated: standard alphabet with
 * padding, or with URL set the URL-safe alphabet without padding.
 * Returns the length without the NUL, or -1 when OUT is too small. */
ssize_t base64_encode(const unsigned char *in, size_t len, int url, char *out, size_t outlen);

#endif
