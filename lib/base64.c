/*
 * base64.c - strict base64 and base64url (see base64.h).
 */
#include "base64.h"

#include <stdint.h>
#include <string.h>

static const char base64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char base64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63, or -1 for a character outside ALPHABET's. */
static int
base64_value(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static ssize_t
base64_decode_any(const char *in, size_t len, unsigned char *out, size_t outlen, int url)
{
	size_t n = len, o = 0, i, rem;
	uint32_t acc = 0;
	int v;

	if (!url) {
		/* at most two '=', only at the end, and only to complete a
		 * quantum of four */
		size_t pad = 0;

		while (pad < 2 && n > 0 && in[n - 1] == '=') {
			n--;
			pad++;
		}
		if (pad > 0 && (len % 4 != 0 || n % 4 != 4 - pad))
			return -1;
	}
	rem = n % 4;
	if (rem == 1)
		return -1; /* six bits make no byte */
	if (n / 4 * 3 + (rem > 0 ? rem - 1 : 0) > outlen)
		return -1;
	for (i = 0; i < n; i++) {
		if ((v = base64_value((unsigned char)in[i], url)) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		if (i % 4 == 3) {
			out[o++] = (unsigned char)(acc >> 16);
			out[o++] = (unsigned char)(acc >> 8);
			out[o++] = (unsigned char)acc;
			acc = 0;
		}
	}
	if (rem == 2) {
		if (acc & 0xf)
			return -1; /* not the canonical encoding */
		out[o++] = (unsigned char)(acc >> 4);
	} else if (rem == 3) {
		if (acc & 0x3)
			return -1;
		out[o++] = (unsigned char)(acc >> 10);
		out[o++] = (unsigned char)(acc >> 2);
	}
	return (ssize_t)o;
}

ssize_t
base64_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	return base64_decode_any(in, len, out, outlen, 0);
}

ssize_t
base64url_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	return base64_decode_any(in, len, out, outlen, 1);
}

ssize_t
base64_encode(const unsigned char *in, size_t len, int url, char *out, size_t outlen)
{
	const char *tab = url ? base64_url : base64_std;
	size_t i, o = 0, need;

	need = url ? len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1) : BASE64_ENCODED_LEN(len);
	if (need >= outlen)
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		out[o++] = tab[in[i] >> 2];
		out[o++] = tab[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
		out[o++] = tab[((in[i + 1] & 0x0f) << 2) | (in[i + 2] >> 6)];
		out[o++] = tab[in[i + 2] & 0x3f];
	}
	if (len - i == 1) {
		out[o++] = tab[in[i] >> 2];
		out[o++] = tab[(in[i] & 0x03) << 4];
		if (!url) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (len - i == 2) {
		out[o++] = tab[in[i] >> 2];
		out[o++] = tab[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
		out[o++] = tab[(in[i + 1] & 0x0f) << 2];
		if (!url)
			out[o++] = '=';
	}
	out[o] = '\0';
	return (ssize_t)o;
}
