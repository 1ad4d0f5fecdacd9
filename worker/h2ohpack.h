/*
 * h2ohpack.h - esgate's HPACK encoder for HTTP/2 answer heads, in place of
 * libh2o 2.2.5's h2o_hpack_flatten_response (which it interposes).
 *
 * The same fields in the same order, encoded as libh2o would, except that
 * x-request-id (new with every answer) and date (new every second) go out
 * as literals without indexing instead of filling the connection's dynamic
 * table: see worker/h2ohpack.c and doc/DESIGN.md, section 2.
 */
#ifndef ESGATE_H2OHPACK_H
#define ESGATE_H2OHPACK_H

#include <stdint.h>

/* At start-up: 0 if libh2o's calls reach this file's encoder. */
int h2ohpack_check(void);
/* Answer heads encoded here so far in this process. */
uint64_t h2ohpack_answers(void);

#endif
