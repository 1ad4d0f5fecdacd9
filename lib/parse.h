/*
 * parse.h - the value parsers: what one configuration value (a listen
 * address, a node URL, a duration, a size, a rate, an origin, an API key)
 * means, checked strictly, with no YAML, no positions and no messages.
 *
 * lib/config.c calls them from its directive handlers and words the
 * errors; the worker calls parse_node() at run time for nodes it learns by
 * sniffing.  Each is pure: no I/O, nothing kept between calls.  Numbers are
 * decimal only ("010" is ten, "0x10" an error), and nothing is trimmed: a
 * value with a space around it is malformed.
 */
#ifndef ESGATE_PARSE_H
#define ESGATE_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Why a value was refused, where the messages differ. */
enum parse_error {
	PARSE_OK = 0,
	PARSE_BAD,   /* malformed */
	PARSE_RANGE, /* well-formed, but a number (a port) out of range */
	PARSE_NOMEM,
};

enum parse_listen_kind {
	PARSE_LISTEN_TCP,  /* host:port or [v6]:port */
	PARSE_LISTEN_UNIX, /* unix:/path */
};

struct tls_listener;

/* A listen address. */
struct parse_listen {
	char *spec; /* as written, e.g. "127.0.0.1:8080"; identifies the socket across reloads */
	enum parse_listen_kind kind;
	char *host;       /* TCP: host as written without brackets ("127.0.0.1", "::1", "*",
	                   * "localhost"); UNIX: the path */
	uint16_t port;    /* TCP only; 0 asks the kernel for a free port */
	int metrics_only; /* from metrics.listen: serves /metrics and nothing else (set by
	                   * lib/config.c, not by parse_listen) */
	struct tls_listener *tls; /* its "tls:" (lib/tls.h), or NULL: clear text.  Set and freed by
	                           * lib/config.c, not by parse_listen */
};

/* An Elasticsearch node URL. */
struct parse_node {
	char *url;     /* as written, trailing '/' removed: "http://127.0.0.1:9200" */
	char *scheme;  /* "http" or "https" */
	char *host;    /* lower-cased, without brackets */
	uint16_t port; /* default 80 / 443 from the scheme */
	char *path;    /* path prefix, "" when none (no trailing '/') */
};

/* A decimal integer from 0 to MAX, digits only. */
int parse_uint(const char *s, uint64_t max, uint64_t *out);
/* "250ms", "30s", "2m", "1h", or a bare non-negative number of seconds
 * ("5", "1.5"); to milliseconds, rounded down.  0 or -1 (*MS untouched). */
int parse_duration(const char *s, uint64_t *ms);
/* "1048576", "512kb", "1mb": bytes; kb and mb are 1024-based.  0 or -1. */
int parse_size(const char *s, uint64_t *bytes);
/* "N/s" or "N/m", N from 1 to MAX: *PER_S tokens a second (N/60 for
 * "/m") and *N itself.  0 or -1. */
int parse_rate(const char *s, uint64_t max, double *per_s, uint64_t *n);

/* "host:port", "[v6]:port", "*:port" (port 0-65535; a host name, an IPv4
 * or a bracketed IPv6 literal) or "unix:/path" (absolute, fits sun_path).
 * OUT gets malloc'ed strings on PARSE_OK, and is zeroed otherwise. */
enum parse_error parse_listen(const char *s, struct parse_listen *out);
void parse_listen_clear(struct parse_listen *l);

/* "http[s]://host[:port][/prefix]", port 1-65535; no user info, query or
 * fragment.  OUT gets malloc'ed strings on PARSE_OK, and is zeroed
 * otherwise. */
enum parse_error parse_node(const char *s, struct parse_node *out);
void parse_node_clear(struct parse_node *n);

/* 1 if S is what a browser sends as Origin ("scheme://host[:port]",
 * http or https, nothing after), or "*". */
int parse_origin(const char *s);
/* 1 if S is an HTTP header name (an RFC 9110 token). */
int parse_header_name(const char *s);

/* The value for "Authorization: ApiKey ...": "id:key" as Kibana shows it
 * is base64-encoded; a key without ':' is taken as already encoded.
 * malloc'ed; NULL when out of memory. */
char *parse_api_key(const char *s);

#endif
