/*
 * hex.h - the value of one hexadecimal digit, for the percent-decoding of
 * request paths (route.c), chunk sizes in upstream answers (h1resp.c) and
 * the demo upstream.
 */
#ifndef ESGATE_HEX_H
#define ESGATE_HEX_H

/* 0..15, or -1 if C is not a hexadecimal digit. */
static inline int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
