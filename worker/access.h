/*
 * access.h - the access log: one line per request, nginx's "combined"
 * format with esgate's fields appended, or one JSON object per line.
 * Each worker appends with one write(2) per line (O_APPEND), so lines from
 * several workers never interleave; USR1 reopens the file after rotation.
 */
#ifndef ESGATE_ACCESS_H
#define ESGATE_ACCESS_H

#include <h2o.h>
#include <stdint.h>

struct access_entry {
	h2o_req_t *req;		   /* NULL: a head refused before any request (worker/guard.h) */
	size_t bytes;		   /* with no REQ: the answer's bytes (else REQ's bytes_sent) */
	const char *client;	   /* the peer's address, taken when the request came */
	const char *principal;	   /* who it authenticated as (worker/stage_auth.c), NULL on open routes */
	int status;		   /* 499 when the client left before its answer */
	const char *request_id;
	unsigned worker;
	const char *upstream_node; /* NULL if none was asked */
	uint64_t upstream_us;
	uint64_t total_us;
	const char *cache;	   /* X-Cache (HIT, MISS, COALESCED, BYPASS), NULL on routes without a cache */
};

struct access_log {
	int fd;		  /* -1: off */
	const char *path; /* NULL for stderr */
	int json;
};

/* Opens PATH ("-" for stderr, NULL for off).  -1 and errno on failure. */
int access_open(struct access_log *a, const char *path, int json);
int access_reopen(struct access_log *a);
void access_write(struct access_log *a, const struct access_entry *e);
/* The combined-format line for E into BUF (no newline); its length. */
size_t access_format_combined(const struct access_entry *e, char *buf, size_t len);

#endif
