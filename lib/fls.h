/*
 * fls.h - field-level rules: which fields of the documents a principal may
 * see and name.
 *
 * A grant (lib/auth.h) may list the fields allowed (nothing else is) and
 * the fields hidden (never, even if allowed), as exact names or patterns
 * ("meta.*").  An entry also covers the fields under it: "meta" allows
 * "meta.a" and "title" covers the multi-field "title.keyword".  Answers
 * are narrowed by rewriting the request's _source (Elasticsearch then
 * filters every hit); and because a query, sort or aggregation on a hidden
 * field leaks it even when it is not returned, a body naming a field
 * outside the rules anywhere is refused: in queries (each known query
 * type's field positions; an unknown type, query_string, wrapper, span
 * compounds and scripts are refused as unreadable), sorts, aggregations
 * (each known type's fields; unknown types refused), highlight,
 * fields/docvalue_fields/stored_fields, top_hits, knn and collapse;
 * inner_hits and suggest are refused.  A client's own wildcard is taken
 * only if it is an allowed entry written as is and nothing is hidden.
 * Metadata fields (_id, _index, _score, _doc, _shard_doc, _routing) are
 * always visible.  Pure code on jansson values.
 */
#ifndef ESGATE_FLS_H
#define ESGATE_FLS_H

#include <jansson.h>
#include <stddef.h>

struct fls_rules {
	char **allow; /* if set (n > 0), only these fields */
	size_t nallow;
	char **hide; /* never these */
	size_t nhide;
};

/* 1 if RULES restrict anything. */
int fls_active(const struct fls_rules *rules);
/* Frees what RULES own and zeroes it. */
void fls_rules_clear(struct fls_rules *rules);

/* 1 if S is a valid entry for allow/hide: printable, no space, comma,
 * quote or backslash, not empty, not "*" alone, at most 255 bytes. */
int fls_pattern_valid(const char *s);

/* 1 if the field NAME (LEN bytes) as a client wrote it may be named:
 * a concrete name by the rules; one with '*' only as said above; a name
 * with a boost suffix ("title^2") is judged without it. */
int fls_field_visible(const struct fls_rules *rules, const char *name, size_t len);

/*
 * Checks search (DSL_BODY_SEARCH) or count (DSL_BODY_COUNT) body BODY
 * against RULES and rewrites its _source (and that of each top_hits
 * aggregation) to the rules.  0, or -1 with REASON such as "field
 * \"salary\" is not allowed (at sort[0])" (body then unspecified).
 * Inactive rules change nothing.
 */
int fls_apply(const struct fls_rules *rules, json_t *body, int mode, char *reason, size_t reasonlen);

/* fls_apply() on text, as dls_apply_text() (lib/dls.h). */
int fls_apply_text(const struct fls_rules *rules, const char *body, size_t len, int mode, char **out, size_t *outlen,
                   char *reason, size_t reasonlen);

/*
 * A query-string parameter NAME=VALUE of a search or count under active
 * RULES: "_source", "_source_includes" and "_source_excludes" are refused
 * (they would replace the rewritten _source), so are "q" (Lucene syntax
 * names fields freely) and the suggest_* parameters; "sort",
 * "stored_fields" and "docvalue_fields" (comma lists, sort entries
 * "field:order") must name visible fields.  0, or -1 with REASON.
 */
int fls_check_param(const struct fls_rules *rules, const char *name, const char *value, char *reason, size_t reasonlen);

#endif
