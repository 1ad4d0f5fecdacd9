/*
 * h2oparse.h - libh2o's HTTP/1 request heads: the plain ones (lib/h1req.h)
 * read by esgate 16 bytes a step, every other one by libh2o's parser.
 *
 * worker/h2oparse.c interposes picohttpparser's phr_parse_request(), which
 * libh2o 2.2.5 calls through the dynamic linker for every HTTP/1 request
 * head, as worker/h2ofmt.c does __sprintf_chk.  doc/DESIGN.md, section 2.
 */
#ifndef ESGATE_H2OPARSE_H
#define ESGATE_H2OPARSE_H

#include <stddef.h>
#include <stdint.h>

/* picohttpparser.h's (libh2o does not install it): a header as
 * phr_parse_request() answers it, and the function itself, which libh2o
 * exports and worker/h2oparse.c defines again */
struct phr_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);
typedef int (*h2oparse_fn)(const char *, size_t, const char **, size_t *, const char **, size_t *, int *,
                           struct phr_header *, size_t *, size_t);

/* libh2o's own phr_parse_request (the next definition after esgate's),
 * or NULL. */
h2oparse_fn h2oparse_real(void);
/* At start-up: 0 if calls through the dynamic linker reach this file's
 * phr_parse_request, libh2o's exists behind it, and a plain head is
 * answered here; -1 if not. */
int h2oparse_check(void);
/* Heads answered here (not by libh2o's parser) so far in this process. */
uint64_t h2oparse_fast_calls(void);

#endif
