/*
 * h2ofmt.h - libh2o's HTTP/1 answer heads, formatted by esgate instead of
 * glibc's printf.
 *
 * libh2o 2.2.5 formats the status line, Date, Connection, Content-Length
 * and Server of every HTTP/1 answer with sprintf (as __sprintf_chk, Debian
 * builds it fortified).  worker/h2ofmt.c interposes __sprintf_chk and
 * writes exactly those formats itself, the same bytes; every other call
 * goes on to libc.  doc/DESIGN.md, section 2.
 */
#ifndef ESGATE_H2OFMT_H
#define ESGATE_H2OFMT_H

#include <stdarg.h>
#include <stdint.h>

enum {
	H2OFMT_HEAD_LENGTH, /* "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\nContent-Length: %zu\r\n" */
	H2OFMT_HEAD,        /* the same without Content-Length */
	H2OFMT_SERVER,      /* "Server: %s\r\n" */
	H2OFMT_N
};

/* Which of the formats FORMAT is (by its text), or -1. */
int h2ofmt_which(const char *format);
/* Writes format WHICH with AP's arguments to S, NUL-terminated, as
 * vsprintf would; returns the length written. */
int h2ofmt_format(char *s, int which, va_list ap);
/* At start-up: 0 if calls through the dynamic linker reach this file's
 * __sprintf_chk, the next definition exists and a head comes out right;
 * -1 if not (then libh2o's heads would still be right, just slower, but
 * something about the build is not what doc/DESIGN.md says). */
int h2ofmt_check(void);
/* V's decimal digits written at D (no NUL); returns their end.  Also
 * worker/h2ohpack.c's content-length value. */
char *h2ofmt_uint(char *d, unsigned long long v);
/* Calls answered here (not by libc) so far in this process. */
uint64_t h2ofmt_fast_calls(void);

#endif
