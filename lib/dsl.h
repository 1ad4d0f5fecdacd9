/*
 * dsl.h - the search firewall: Elasticsearch query DSL bodies, search
 * query-string parameters and index expressions checked against a
 * per-route policy before anything goes upstream.
 *
 * A body is parsed (jansson, duplicate keys refused: two parsers that
 * disagree on which duplicate wins are how a check is smuggled past), walked
 * against allow-lists, and serialised again; only that new document may be
 * sent upstream, never the bytes the client wrote.  Everything not known to
 * be harmless is refused: unknown top-level keys, query and aggregation
 * types not in the policy, scripts anywhere, lookups that read other
 * indices (terms lookup, more_like_this "like" documents, geo_shape
 * indexed_shape, percolate documents), point-in-time and scroll unless
 * allowed.  Pure code: no I/O, no state, safe in any worker.
 *
 * How a worker uses it for a route whose upstream path ends in _search,
 * _count or _msearch (struct config_route's "search" field):
 *   1. each query parameter (decoded) through dsl_check_param(); "source"
 *      is not a parameter but a body: its decoded value goes through
 *      dsl_check_body() and the result is sent as the request body (a POST
 *      upstream), with "source" and "source_content_type" dropped;
 *   2. the decoded {index} through dsl_check_index_expr();
 *   3. the body (GET or POST) through dsl_check_body(), forwarding *OUT.
 * Any -1 is a 400 whose message may include REASON: it names the offending
 * key and where it was, and holds printable ASCII only.
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
 * owned by the policy. */
struct dsl_policy {
	char **queries;		/* allowed query types (exact names); default: match,
				 * match_phrase, multi_match, term, terms (never a terms
				 * lookup), range, bool, exists, prefix, ids, match_all,
				 * simple_query_string */
	size_t nqueries;
	uint64_t max_size;	/* "size" at most this; default 100 */
	uint64_t max_from;	/* "from" + "size" at most this; default 10000 */
	char **aggs;		/* allowed aggregation types; default: terms, date_histogram,
				 * histogram, range, avg, sum, min, max, value_count,
				 * cardinality, filter, filters, missing */
	size_t naggs;
	unsigned max_agg_depth; /* aggregations nested at most this deep (1 = no
				 * sub-aggregations, 0 = none at all); default 3 */
	uint64_t max_buckets;	/* cap on an aggregation's "size", "shard_size" and
				 * "buckets"; default 1000 */
	char **source_fields;	/* if set, the only fields _source, fields, highlight and
				 * the _source* parameters may name; default NULL: any */
	size_t nsource_fields;
	int allow_pit;		/* "pit" in the body; default 0 */
	int allow_scroll;	/* the "scroll" parameter; default 0 */
	int allow_remote_indices; /* "cluster:index"; default 0 */
	int allow_date_math;	/* "<logs-{now/d}>"; default 0 */
	int allow_exclusions;	/* "-index" in a list; default 0 */
};

/* Fills P with the defaults above (no allocation). */
void dsl_policy_defaults(struct dsl_policy *p);
/* Frees what P owns and zeroes it. */
void dsl_policy_clear(struct dsl_policy *p);
/* Replaces P's list of query types (WHICH 'q'), aggregation types ('a') or
 * source fields ('s') with an empty, owned one (freeing an owned old one),
 * ready to be appended to.  Used by the config parser. */
void dsl_policy_reset_list(struct dsl_policy *p, int which);

/*
 * Checks BODY (LEN bytes) as MODE, one of DSL_BODY_*.  An empty body (LEN
 * 0, or only white space) is "{}" for _search and _count, and refused for
 * _msearch.
 *
 * For _msearch, lines (LF or CRLF, the last LF optional, empty lines
 * ignored) alternate header and search body.  A header may use only index,
 * preference, routing, request_cache, search_type, ignore_unavailable,
 * allow_no_indices, expand_wildcards ("hidden" and "all" refused) and
 * allow_partial_search_results; its "index" must be absent or the string
 * URL_INDEX exactly (no list, no pattern), and absent when URL_INDEX is
 * NULL (an upstream path without an index).
 *
 * On success returns 0 and *OUT is the re-serialised document (compact JSON,
 * NUL-terminated; for _msearch one '\n' after each line), *OUTLEN its
 * length; the caller frees *OUT.  On refusal (or out of memory) returns -1
 * and REASON gets a message like "script is not allowed (at
 * query.bool.filter[0].script)"; for _msearch the place starts with the
 * line number ("at line 3: index").
 */
int dsl_check_body(const struct dsl_policy *p, const char *body, size_t len, int mode, const char *url_index,
                   char **out, size_t *outlen, char *reason, size_t reasonlen);

/* 1 if S (LEN bytes) is empty or only white space (space, tab, CR, LF). */
int dsl_blank(const char *s, size_t len);

/*
 * Checks one query-string parameter NAME=VALUE (both decoded; VALUE "" for
 * a bare NAME) of a search request.  Which names may appear at all is the
 * route's "params" list; this checks the values the firewall cares about:
 * error_trace is always refused; scroll unless allow_scroll; size, from and
 * terminate_after must be non-negative integers, size and from within the
 * caps (from + size is checked in the body, where both are known); q (a
 * Lucene query_string) only if "query_string" is an allowed query type;
 * explain only false; expand_wildcards not hidden or all; _source,
 * _source_includes, stored_fields and docvalue_fields only fields of
 * source_fields when that is set; source_content_type only
 * application/json; "source" always (it is a body: see above).  Any other
 * name returns 0.
 */
int dsl_check_param(const struct dsl_policy *p, const char *name, const char *value, char *reason,
                    size_t reasonlen);

/*
 * Checks INDEX (decoded), a comma-separated list of index names or
 * patterns: no empty names; remote "cluster:index" only with
 * allow_remote_indices, date math "<...>" only with allow_date_math,
 * exclusions "-index" only with allow_exclusions.  The route's index
 * allow-list is checked elsewhere (route_index_allowed).
 */
int dsl_check_index_expr(const struct dsl_policy *p, const char *index, char *reason, size_t reasonlen);

#endif
