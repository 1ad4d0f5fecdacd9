/*
 * dsl.h - the search firewall: Elasticsearch query DSL bodies, search
 * query-string parameters and index expressions checked against a
 * per-route policy before anything goes upstream.
 *
 * A body is parsed (jansson, duplicate keys refused: two parsers that
 * disagree on which duplicate wins are how a check is smuggled past), walked
 * against allow-lists, and serialised again; only that new document may be
 * sent upstream, never the bytes the client wrote.  The walk knows the shape
 * of every query, aggregation, sort and hits option it accepts (a table of
 * keys per type, and which keys hold queries, sub-aggregations, fields or
 * sizes), so a query nested anywhere is checked as a query, and any key it
 * does not know is refused: widening a policy's lists never opens a subtree
 * nobody looked at.  Always refused: scripts anywhere, lookups that read
 * other indices (terms lookup, more_like_this and pinned documents naming
 * an index, geo_shape indexed_shape, percolate documents by id), point in
 * time and scroll unless allowed.  Costs are counted as Elasticsearch will
 * pay them (searches, buckets, aggregations, hits windows) and capped, and
 * the firewall's own work is bounded by the body's size and nesting.  With
 * source_fields set, nothing may return or test a field outside the list:
 * _source, fields, sort, aggregations, queries, highlight, inner_hits,
 * top_hits, collapse.  No I/O; its only state is the arena jansson
 * allocates from during a check, which a worker keeps between checks
 * (lib/dsl.c).
 *
 * A worker calls dsl_check_request() for every request on a route whose
 * upstream path ends in _search, _count or _msearch (struct config_route's
 * "search" field) and sends only the body it returns.
 */
#ifndef ESGATE_DSL_H
#define ESGATE_DSL_H

#include <stddef.h>
#include <stdint.h>

/* What dsl_check_body() is given (its NDJSON argument). */
#define DSL_BODY_SEARCH 0  /* a _search body */
#define DSL_BODY_MSEARCH 1 /* an _msearch body: NDJSON header/body pairs */
#define DSL_BODY_COUNT 2   /* a _count body: "query" only */

#define DSL_REASON_MAX 256 /* a REASON buffer this big never truncates a key */

/* One route's policy.  dsl_policy_defaults() fills in the defaults; the
 * lists then point at static tables, which dsl_policy_clear() knows not to
 * free.  Lists set otherwise are malloc'ed arrays of malloc'ed strings,
 * owned by the policy.  Every type in QUERIES and AGGS must be one the
 * firewall knows (dsl_type_known()); a type it does not know is refused
 * wherever it appears, as if it were not listed. */
struct dsl_policy {
	char **queries; /* allowed query types (exact names); default: match,
	                 * match_phrase, multi_match, term, terms (never a terms
	                 * lookup), range, bool, exists, prefix, ids, match_all,
	                 * simple_query_string */
	size_t nqueries;
	uint64_t max_size; /* a hits "size" (search, inner_hits, top_hits) at most
	                    * this; default 100 */
	uint64_t max_from; /* "from" + "size" at most this, wherever each comes
	                    * from (body or query string); default 10000 */
	char **aggs;       /* allowed aggregation types; default: terms, date_histogram,
	                    * histogram, range, avg, sum, min, max, value_count,
	                    * cardinality, filter, filters, missing */
	size_t naggs;
	unsigned max_agg_depth; /* aggregations nested at most this deep (1 = no
	                         * sub-aggregations, 0 = none at all); default 3 */
	uint64_t max_buckets;   /* cap on the buckets a search's aggregations may
	                         * make (estimated: see README) and on any one
	                         * aggregation's "size", "shard_size" and "buckets";
	                         * default 1000 */
	uint64_t max_aggs;      /* aggregations in one search, at every depth; default 100 */
	uint64_t max_searches;  /* searches one request runs: an _msearch's, and one
	                         * per hit for each collapse inner_hits; default 10 */
	uint64_t max_depth;     /* JSON nesting of a body; default 64 */
	uint64_t max_bytes;     /* the largest body (or source=) the firewall parses;
	                         * default 32 KiB */
	char **source_fields;   /* if set, the only fields a search may return, sort,
	                         * aggregate, highlight or query; default NULL: any */
	size_t nsource_fields;
	int allow_pit;            /* "pit" in the body; default 0 */
	int allow_scroll;         /* the "scroll" parameter; default 0 */
	int allow_remote_indices; /* "cluster:index"; default 0 */
	int allow_date_math;      /* "<logs-{now/d}>"; default 0 */
	int allow_exclusions;     /* "-index" in a list; default 0 */
};

#define DSL_MAX_SEARCHES_DEFAULT 10
#define DSL_MAX_AGGS_DEFAULT 100
#define DSL_MAX_DEPTH_DEFAULT 64
#define DSL_MAX_BYTES_DEFAULT 32768

/* Fills P with the defaults above (no allocation). */
void dsl_policy_defaults(struct dsl_policy *p);
/* Frees what P owns and zeroes it. */
void dsl_policy_clear(struct dsl_policy *p);
/* Replaces P's list of query types (WHICH 'q'), aggregation types ('a') or
 * source fields ('s') with an empty, owned one (freeing an owned old one),
 * ready to be appended to.  Used by the config parser. */
void dsl_policy_reset_list(struct dsl_policy *p, int which);

/* Whether NAME is a query type (WHICH 'q') or aggregation type ('a') the
 * firewall knows the shape of: 1 if it does, 0 if it does not, -1 if it is
 * one that can never be allowed (it runs a script or hides its query, e.g.
 * script_score, wrapper, scripted_metric).  dsl_known_type() lists the
 * known ones: the widest policy there is. */
int dsl_type_known(int which, const char *name);
const char *dsl_known_type(int which, size_t i); /* the I-th known type, NULL past the last */

/* Return values of the checks below. */
#define DSL_OK 0
#define DSL_REFUSED (-1)   /* a 400: REASON says why */
#define DSL_TOO_LARGE (-2) /* a 413: the body is over max_bytes */

/* A decoded query-string parameter: VALUE is NUL-terminated, LEN bytes
 * (it may hold a NUL), "" for a bare NAME. */
struct dsl_param {
	const char *name;
	const char *value;
	size_t len;
};

/* Tests and the fuzz target only: told about each JSON object the walk
 * accepted (ROLE one of DSL_ROLE_*), then about each checked document,
 * before it is serialised.  NULL in production. */
struct json_t;
struct dsl_trace {
	void (*object)(void *arg, const struct json_t *o, int role);
	void (*document)(void *arg, const struct json_t *doc);
	void *arg;
};
/* The roles: {"type": body}, a query whose type is allowed; an object whose
 * every key was checked against the table of what it is; keys the client
 * names (aggregations, filters, fields), each value checked; data, not DSL
 * (a document, metadata), only scanned for the keys refused everywhere. */
#define DSL_ROLE_QUERY 1
#define DSL_ROLE_DSL 2
#define DSL_ROLE_NAMES 3
#define DSL_ROLE_DATA 4

/* What dsl_check_request() found. */
struct dsl_result {
	char *body; /* the checked body (malloc'ed, NUL-terminated), or NULL to send
	             * none; the caller frees it */
	size_t len;
	uint64_t searches;   /* what the request costs (rate-limit tokens): 1, an _msearch's
	                      * searches, plus collapse inner_hits expansions */
	uint64_t from, size; /* the hits window of a _search, as Elasticsearch will
	                      * read it (the query string wins over the body) */
};

/*
 * The whole search request on a search route: INDEX (decoded {index}, NULL
 * if the route has none) through dsl_check_index_expr(); each of the
 * NPARAMS parameters (those the route's "params" let through) through
 * dsl_check_param(), except "source", which is the body: then it is the
 * body, whatever the request carried, and an empty one is refused; then
 * BODY (LEN bytes, the request's entity, NULL or empty for none) as MODE
 * (DSL_BODY_*).  Also refused: from + size over max_from with the two
 * taken from wherever they were given; _source_excludes with source_fields
 * set and no _source or _source_includes parameter.  A _search without a
 * body gets {"_source": source_fields} when source_fields is set and no
 * _source, _source_includes or stored_fields parameter narrows it.  TRACE
 * is NULL but in tests.
 *
 * Returns DSL_OK with *RES filled in, or DSL_REFUSED / DSL_TOO_LARGE with
 * REASON set and nothing to free.  The caller drops "source" and
 * "source_content_type" from what it forwards.
 */
int dsl_check_request(const struct dsl_policy *p, int mode, const char *index, const struct dsl_param *params,
                      size_t nparams, const char *body, size_t len, const struct dsl_trace *trace,
                      struct dsl_result *res, char *reason, size_t reasonlen);

/*
 * Checks BODY (LEN bytes) as MODE, one of DSL_BODY_*: what
 * dsl_check_request() does with a body and no parameters.  An empty body
 * (LEN 0, or only white space) is "{}" for _search and _count, and refused
 * for _msearch.  A body over max_bytes is DSL_TOO_LARGE; one nested deeper
 * than max_depth is refused before it is parsed.
 *
 * For _msearch, lines (LF or CRLF, the last LF optional, empty lines
 * ignored) alternate header and search body, at most max_searches pairs.
 * A header may use only index, preference, routing, request_cache,
 * search_type, ignore_unavailable, allow_no_indices, expand_wildcards
 * ("hidden" and "all" refused) and allow_partial_search_results; its
 * "index" must be absent or the string URL_INDEX exactly (no list, no
 * pattern), and absent when URL_INDEX is NULL (an upstream path without an
 * index).
 *
 * On success returns 0 and *OUT is the re-serialised document (compact JSON,
 * NUL-terminated; for _msearch one '\n' after each line), *OUTLEN its
 * length; the caller frees *OUT.  On refusal (or out of memory) returns
 * DSL_REFUSED or DSL_TOO_LARGE and REASON gets a message like "script is
 * not allowed (at query.bool.filter[0].script)"; for _msearch the place
 * starts with the line number ("at line 3: index").
 */
int dsl_check_body(const struct dsl_policy *p, const char *body, size_t len, int mode, const char *url_index,
                   char **out, size_t *outlen, char *reason, size_t reasonlen);

/* 1 if S (LEN bytes) is empty or only white space (space, tab, CR, LF). */
int dsl_blank(const char *s, size_t len);

/*
 * Checks one query-string parameter NAME=VALUE (both decoded; VALUE "" for
 * a bare NAME) of a search request.  Which names may appear at all is the
 * route's "params" list; this checks the values the firewall cares about:
 * error_trace is always refused, and suggest_field, suggest_text,
 * suggest_size and suggest_mode (a suggester, refused in bodies too);
 * scroll unless allow_scroll; size, from and terminate_after must be
 * non-negative integers, size and from within the caps (from + size is
 * checked by dsl_check_request(), where both are known); q (a Lucene
 * query_string) only if "query_string" is an allowed query type and
 * source_fields is not set (its text can name any field); explain only
 * false; expand_wildcards not hidden or all; _source, _source_includes,
 * docvalue_fields, df and the fields of sort ("f", "f:asc", comma-separated)
 * only fields of source_fields when that is set; stored_fields only _none_;
 * source_content_type only application/json; "source" always (it is a
 * body: see dsl_check_request()).  Any other name returns 0.
 */
int dsl_check_param(const struct dsl_policy *p, const char *name, const char *value, char *reason, size_t reasonlen);

/*
 * Checks INDEX (decoded), a comma-separated list of index names or
 * patterns: no empty names; remote "cluster:index" only with
 * allow_remote_indices, date math "<...>" only with allow_date_math,
 * exclusions "-index" only with allow_exclusions.  The route's index
 * allow-list is checked elsewhere (route_index_allowed).
 */
int dsl_check_index_expr(const struct dsl_policy *p, const char *index, char *reason, size_t reasonlen);

#endif
