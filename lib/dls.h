/*
 * dls.h - document-level security: a principal's filter query AND-ed into
 * every search it sends, and the constructs that would read documents
 * outside that filter refused.
 *
 * The filter comes from a grant (lib/auth.h) as a JSON template whose
 * string values may hold placeholders, "{{principal}}" (the principal's
 * id) and "{{claims.NAME}}" or "{{claims.A.B}}" (a claim of the caller's
 * token, nested objects by dots).  Substitution works on JSON values,
 * never on text: a string that is exactly one placeholder becomes the
 * claim's value (string, number, boolean, or an array of those, for a
 * "terms" filter); a placeholder among other text is replaced inside the
 * string.  Whatever a claim holds, quotes and braces included, it stays
 * one JSON value where the template put it: it cannot add a clause.  A
 * claim that is missing or not of a usable type refuses the request
 * rather than leaving the filter out.
 *
 * All of it is pure code on jansson values, so it can run after the
 * search firewall (lib/dsl.h) has checked and re-serialised a body.
 */
#ifndef ESGATE_DLS_H
#define ESGATE_DLS_H

#include <jansson.h>
#include <stddef.h>

#define DLS_REASON_MAX 256

/*
 * Checks the placeholders in S, a string of the template (config time):
 * every "{{" opens a placeholder closed by "}}", naming "principal" or
 * "claims." and a dotted path of [A-Za-z0-9_-] names.  0, or -1 with ERR
 * saying what is wrong.
 */
int dls_placeholders_check(const char *s, char *err, size_t errlen);

/* Checks every string of template T (keys may not hold placeholders). */
int dls_template_check(const json_t *t, char *err, size_t errlen);

/*
 * The filter for one request: template T with the placeholders replaced
 * from PRINCIPAL (the id, e.g. "jwt:alice") and CLAIMS (a JWT's claims
 * object, or NULL when the principal has none).  Returns a new value, or
 * NULL with REASON ("claim \"tenant\" is missing") when a placeholder
 * cannot be filled: the request must then be refused.
 */
json_t *dls_render(const json_t *t, const char *principal, const json_t *claims, char *reason, size_t reasonlen);

/*
 * ANDs FILTER into a search (MODE DSL_BODY_SEARCH) or count
 * (DSL_BODY_COUNT) body, changed in place:
 *   - a top-level "query" Q becomes {"bool": {"must": [Q], "filter": [FILTER]}};
 *   - no "query": {"bool": {"filter": [FILTER]}}, except in a search with
 *     a top-level "knn" and no query, whose hits come from the knn alone;
 *   - each top-level "knn" gets FILTER added to its "filter" (so the
 *     nearest neighbours are chosen among the allowed documents).
 * Refused first (-1 with REASON, body unchanged) — each reads documents,
 * terms or statistics outside the query, or runs a search of its own:
 *   - aggregations: "global" (ignores the query), "significant_terms" and
 *     "significant_text" (background frequencies from the whole index),
 *     "children" and "parent" (join to documents the filter does not
 *     select), "terms"/"multi_terms" with "min_doc_count": 0 (buckets for
 *     every term in the index, matching or not);
 *   - queries: "has_child", "has_parent", "parent_id" (match on documents
 *     outside the filter and return them as inner hits), "more_like_this"
 *     whose like/unlike names stored documents, "terms" lookups, indexed
 *     shapes and "percolate" of a stored document (each reads a document
 *     by id, past any filter), "wrapper" (an encoded query nobody can
 *     check);
 *   - top-level keys: "suggest" (suggesters read the terms dictionary of
 *     the whole index), "profile" (shows how queries were rewritten
 *     against the whole index's terms), "collapse" (its inner_hits run
 *     searches of their own), "sub_searches", "retriever" and "rank"
 *     (queries outside "query"), "ext", "runtime_mappings",
 *     "script_fields", "stats"... in fact every top-level key not on the
 *     list of those known to stay inside the query's scope.
 */
int dls_apply(json_t *body, int mode, const json_t *filter, char *reason, size_t reasonlen);

/*
 * dls_apply() on a body as text: BODY (LEN bytes) is what
 * dsl_check_body() sent back (compact JSON; for DSL_BODY_MSEARCH NDJSON
 * header/body lines), or empty for no body.  Every _msearch body line
 * gets the filter.  On success *OUT (malloc'ed, NUL-terminated, *OUTLEN
 * bytes) is the body to send upstream.
 */
int dls_apply_text(const char *body, size_t len, int mode, const json_t *filter, char **out, size_t *outlen,
                   char *reason, size_t reasonlen);

/*
 * Query-string parameters of a search or count under a filter: "q" is
 * refused (Elasticsearch puts it in place of the body's query, filter
 * included), and so are the URL suggester's suggest_field, suggest_text,
 * suggest_mode and suggest_size.  0, or -1 with REASON.
 */
int dls_check_param(const char *name, char *reason, size_t reasonlen);

/*
 * A get-by-id under a filter, as a search: {"query": {"bool": {"filter":
 * [{"ids": {"values": [ID]}}, FILTER]}}, "size": 1, "version": true,
 * "seq_no_primary_term": true}.  A document outside the filter is then
 * not found, whatever its id.  NULL when out of memory.
 */
json_t *dls_get_as_search(const char *id, const json_t *filter);

/*
 * The answer to that search turned back into a get answer: {"_index",
 * "_id", "_version", "_seq_no", "_primary_term", "found": true,
 * "_source"} from the first hit.  NULL when there is no hit (answer 404
 * {"_index", "_id", "found": false}) or the answer is not a search answer.
 */
json_t *dls_hit_as_get(const json_t *answer);

#endif
