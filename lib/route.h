/*
 * route.h - public path templates: matching what a client sent, and
 * building the path esgate sends to Elasticsearch.
 *
 * This is the part of esgate that faces the internet, so it is pure code
 * (no I/O, no allocation after route_compile) and strict: a value is
 * decoded once, checked against Elasticsearch's own rules, and encoded
 * again before it goes upstream, so nothing a client writes can change
 * which API or which index the upstream request reaches.
 *
 * A template is a path starting with '/' whose segments are literals or
 * one of the placeholders {index} and {id}, each a whole segment and used
 * at most once: "/search/{index}", "/{index}/_doc/{id}".
 */
#ifndef ESGATE_ROUTE_H
#define ESGATE_ROUTE_H

#include <stddef.h>
#include <sys/types.h>

#define ROUTE_VAR_INDEX 0x1
#define ROUTE_VAR_ID 0x2

#define ROUTE_INDEX_MAX 255 /* bytes, Elasticsearch's limit */
#define ROUTE_ID_MAX 512    /* bytes, Elasticsearch's limit on _id */
#define ROUTE_TEMPLATE_MAX 1024

struct route_template; /* opaque: a compiled "/search/{index}/x" */

/* Placeholder values of one match, decoded and NUL-terminated. */
struct route_vars {
	char index[ROUTE_INDEX_MAX + 1];
	size_t index_len;
	char id[ROUTE_ID_MAX + 1];
	size_t id_len;
	unsigned set; /* ROUTE_VAR_* present */
};

enum route_result {
	ROUTE_NOMATCH = 0, /* not this template: try the next, or 404 */
	ROUTE_MATCH,
	ROUTE_BAD, /* this template, or no template at all, but a hostile or malformed value: 400 */
};

/* Compiles TMPL.  Literal segments may use letters, digits and
 * - . _ ~ ! $ & ' ( ) * + , ; = : @ only (no '%': a literal is compared with
 * the raw request, undecoded); no empty or dot segments, except that the
 * last segment may be empty ("/" or "/a/": a trailing slash).  Returns NULL
 * with a message in ERR (e.g. "must start with '/'") on error or when out
 * of memory. */
struct route_template *route_compile(const char *tmpl, char *err, size_t errlen);
void route_template_free(struct route_template *t);
/* ROUTE_VAR_INDEX | ROUTE_VAR_ID, the placeholders T uses. */
unsigned route_template_vars(const struct route_template *t);
/* The template as written. */
const char *route_template_source(const struct route_template *t);
/* 1 if A and B match the same paths: the same literals, and placeholders
 * (of any name) in the same places.  Used to refuse duplicate routes. */
int route_template_same(const struct route_template *a, const struct route_template *b);

/*
 * PATH (LEN bytes) is the raw request path without the query, still
 * percent-encoded, as received.  It is split on '/' before decoding, so an
 * encoded "%2F" inside a placeholder is data, not a separator.
 *
 * - A path with a dot segment ("." or "..", also written %2e) anywhere is
 *   ROUTE_BAD ("invalid path") whatever the template: no client has a
 *   reason to send one, and some upstream would normalise it.
 * - Literal segments must match byte for byte; an empty segment ("//"), a
 *   missing or extra segment, or a trailing '/' the template has not, is
 *   ROUTE_NOMATCH; so is a path not starting with '/'.
 * - Placeholder values are percent-decoded once ('+' stays '+'); a
 *   malformed escape, NUL, a control character (< 0x20, 0x7f) or invalid
 *   UTF-8 is ROUTE_BAD.  {index} must then be a valid index name (see
 *   route_index_valid), else ROUTE_BAD "invalid index name"; {id} must be
 *   1..512 bytes, else ROUTE_BAD "invalid document id".
 *
 * *REASON (if REASON is not NULL) gets a short static string on ROUTE_BAD,
 * NULL otherwise.  VARS is filled on ROUTE_MATCH, and is garbage otherwise.
 */
enum route_result route_match(const struct route_template *t, const char *path, size_t len, struct route_vars *vars,
                              const char **reason);

/*
 * Many templates at once.  A route set is a tree of path segments: a node's
 * literal children are found through one hash table (parent, segment), and
 * each node has at most one placeholder child ({index} and {id} match the
 * same paths).  Finding the templates a path can match walks the path's
 * segments down the tree, so its cost grows with the path and with the
 * templates that match it, not with how many there are.
 */
struct route_set;

struct route_set *route_set_new(void);
void route_set_free(struct route_set *s);
/* Adds template T under ID (the caller's: a row number).  -1 when out of memory. */
int route_set_add(struct route_set *s, const struct route_template *t, size_t id);
/* The ids, ascending, of the templates of S whose shape PATH (raw, LEN
 * bytes) has: the same number of segments, their literal segments byte for
 * byte, a non-empty segment where they have a placeholder.  Exactly the
 * templates for which route_match() does not return ROUTE_NOMATCH, given
 * that PATH has no dot segment (route_path_has_dot_segment).  Writes at most
 * MAX ids to IDS and returns how many there are (more than MAX: call again
 * with room, or try every template). */
size_t route_set_candidates(struct route_set *s, const char *path, size_t len, size_t *ids, size_t max);
/* Hash table probes (segment comparisons) route_set_candidates has made on S. */
unsigned long route_set_probes(const struct route_set *s);
/* 1 if PATH (LEN bytes, starting with '/') has a dot segment ("." or "..",
 * also percent-encoded) anywhere: route_match() refuses it whatever the
 * template ("invalid path"). */
int route_path_has_dot_segment(const char *path, size_t len);

/* 1 if S (LEN bytes, decoded) is a valid Elasticsearch index name:
 * 1..255 bytes of valid UTF-8, no A-Z, none of \ / * ? " < > | , # space,
 * no ':' (cross-cluster), no control characters, not starting with - _ +,
 * not "." or "..".  '%' is refused too, although Elasticsearch allows it: a
 * name with '%' in it is most likely an attempt at double encoding.
 * With PREFIX set, S is the part of an allow-list entry before its '*':
 * the same characters, but "." and ".." are fine (".ds-*"). */
int route_index_valid(const char *s, size_t len, int prefix);

/* 1 if INDEX (LEN bytes) is allowed by one of the NALLOW entries of ALLOW:
 * an exact name, or "prefix*", which allows every name starting with the
 * prefix (the prefix alone included).  An entry without '*' is never a
 * prefix match. */
int route_index_allowed(const char *index, size_t len, char *const *allow, size_t nallow);

/* Writes the path for template T into OUT, the placeholders taken from
 * VARS and percent-encoded (everything but A-Za-z0-9 - . _ ~ becomes %XX;
 * a value "." or ".." has its dots encoded as %2E too).  NUL-terminated.
 * Returns the length, or -1 if OUT is too small or T uses a placeholder
 * VARS has not set. */
ssize_t route_build(const struct route_template *t, const struct route_vars *vars, char *out, size_t outlen);

/*
 * Checks and rewrites a query string.  QUERY (LEN bytes, without '?', may
 * be empty) is split on '&'; empty pieces are skipped; each piece is NAME
 * or NAME=VALUE, both form-decoded ('+' is a space, %XX a byte).  Each
 * decoded NAME must be one of the NALLOW entries of ALLOW, exactly.
 *
 * On success OUT gets the allowed pieces again, decoded and then encoded
 * canonically (as route_build does), joined by '&', NUL-terminated; returns
 * the length (0 for none).  On failure returns -1 and BAD (BADLEN bytes,
 * NUL-terminated, may be NULL) gets the decoded name that is not allowed,
 * truncated and with every byte that is not printable ASCII replaced by
 * '?', so it can go in a log line or JSON; or "malformed query string"
 * (bad escape, NUL), or "query string too long" when OUT is too small.
 */
ssize_t route_query(const char *query, size_t len, char *const *allow, size_t nallow, char *out, size_t outlen,
                    char *bad, size_t badlen);

/* Percent-decodes IN (LEN bytes; '+' is kept) into OUT, NUL-terminated.
 * Returns the decoded length, or -1 on a malformed escape, a NUL (raw or
 * %00), or when the result and its NUL do not fit in OUTLEN bytes.
 * Exported for the tests and for fuzzing. */
ssize_t route_decode(const char *in, size_t len, char *out, size_t outlen);

#endif
