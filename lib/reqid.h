/*
 * reqid.h - request ids: kept from the client when sane, made up otherwise.
 *
 * An incoming X-Request-Id is kept only if it is 1..REQID_MAX bytes of
 * letters, digits and - _ . : (what uuids, ULIDs and the usual tracing ids
 * use), so it can go into logs, JSON and the upstream's X-Opaque-Id
 * without escaping.  Anything else is replaced by a fresh id.
 */
#ifndef ESGATE_REQID_H
#define ESGATE_REQID_H

#include <stddef.h>
#include <stdint.h>

#define REQID_MAX 128
#define REQID_GEN_LEN 32 /* generated ids: 32 lower-case hex digits */

struct reqid_gen {
	uint64_t s[2]; /* xorshift128+ state, seeded per process */
};

/* Seeds G from the kernel's random source (getrandom), once per worker. */
void reqid_seed(struct reqid_gen *g);
/* Writes a new id (REQID_GEN_LEN chars + NUL) into OUT. */
void reqid_generate(struct reqid_gen *g, char out[REQID_GEN_LEN + 1]);
/* 1 if S (LEN bytes) may be kept as a request id. */
int reqid_valid(const char *s, size_t len);

#endif
