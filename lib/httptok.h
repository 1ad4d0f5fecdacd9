/*
 * httptok.h - the byte classes of HTTP's grammar that more than one parser
 * of lib/ needs (lib/h1req.c for request heads, lib/h1resp.c for answer
 * heads): one table, so that the two parsers cannot disagree on what a
 * token is.
 */
#ifndef ESGATE_HTTPTOK_H
#define ESGATE_HTTPTOK_H

/* RFC 9110's tchar ("!#$%&'*+-.^_`|~", digits, letters): 1, else 0. */
extern const unsigned char httptok_tchar[256];

#endif
