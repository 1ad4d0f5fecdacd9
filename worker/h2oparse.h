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

#include <h2o.h>
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

/* What picohttpparser answers for the head (esgate's for the plain ones,
 * libh2o's for the rest): phr_parse_request before the Host rule. */
int h2oparse_parse(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                   size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                   size_t last_len);
/* RFC 9112 3.2 for a parsed head: NULL if its Host is fine (one, a host
 * and port's characters; none only before HTTP/1.1), else why not. */
const char *h2oparse_host_refusal(const struct phr_header *h, size_t n, int minor_version);
/* BUF is one buffer h2o is writing to a socket: if it is libh2o's own
 * "400 Bad Request" (text/plain, to a head it refused), esgate's JSON
 * answer to write instead (static), else NULL. */
const h2o_iovec_t *h2oparse_bad_request(const h2o_iovec_t *buf);
/* That answer, BYTES long, is being written to SOCK (which closes after
 * it): CB(ARG, PEER, PEERLEN, 400, BYTES) of h2oparse_on_refused, PEER
 * SOCK's client: the worker's exchange_refused (the access log, the
 * metrics), as worker/guard.h reports its 431. */
typedef void (*h2oparse_refused_cb)(void *arg, const struct sockaddr *peer, socklen_t peerlen, int status,
                                    size_t bytes);
void h2oparse_on_refused(h2oparse_refused_cb cb, void *arg);
void h2oparse_refused(h2o_socket_t *sock, size_t bytes);

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
