/*
 * dsl.c - the search firewall (see dsl.h).
 *
 * The walk is driven by tables.  For each query type, aggregation type and
 * the objects around them (sorts, inner_hits, top_hits, highlight, collapse)
 * a table lists the keys Elasticsearch's parser reads there (its builders'
 * parse fields) and what each holds: a value, a field name, a query,
 * queries, a hits size, an object with its own table.  A key that is not in
 * its table is refused, so there is no subtree the walk accepts without
 * knowing what Elasticsearch will make of it.  What Elasticsearch reads as
 * data rather than DSL (a percolated document, a shape, an aggregation's
 * meta) is only scanned for the keys refused everywhere.
 *
 * Costs are counted while walking: aggregations (how many, how deep, an
 * estimate of the buckets they make), hits windows, searches.  Before any of
 * that a body's size and nesting are checked on its bytes, so that parsing
 * and walking are bounded too.  While a check runs, jansson allocates from
 * an arena freed at once at the end (dsl_arena_*): a body of many small
 * values would otherwise cost one malloc and one free each, and glibc's
 * malloc, fragmented by earlier requests, made that ten times slower than
 * the parse itself (bench/firewall.c).  The current position is kept as a
 * path ("query.bool.filter[0]") for the refusal message.
 */
#include "dsl.h"

#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DSL_PATH_MAX 512
#define DSL_KEY_SHOWN 64            /* bytes of a client's key put in a message */
#define DSL_SIZE_DEFAULT 10         /* Elasticsearch's hits size when none is given */
#define DSL_HITS_DEFAULT 3          /* inner_hits' and top_hits' */
#define DSL_UNBOUNDED 10            /* buckets counted for what only the data bounds */
#define DSL_SAT (UINT64_C(1) << 62) /* bucket estimates saturate here */

static const char *const dsl_default_queries[] = {
    "match", "match_phrase", "multi_match", "term", "terms",     "range",
    "bool",  "exists",       "prefix",      "ids",  "match_all", "simple_query_string",
};

static const char *const dsl_default_aggs[] = {
    "terms", "date_histogram", "histogram",   "range",  "avg",     "sum",     "min",
    "max",   "value_count",    "cardinality", "filter", "filters", "missing",
};

/* Keys refused wherever they appear: each runs code on the cluster, reads
 * other documents, or makes errors leak internals. */
static const char *const dsl_forbidden[] = {
    "script",          "script_fields",    "script_score",
    "scripted_metric", "runtime_mappings", "_script",
    "error_trace",     "indexed_shape",    "minimum_should_match_script",
};

/* Types no policy may allow: they run a script or hide their query. */
static const char *const dsl_never_queries[] = {"script", "script_score", "wrapper"};
static const char *const dsl_never_aggs[] = {"scripted_metric", "bucket_script", "bucket_selector", "moving_fn"};

/* Fields every hit carries anyway: allowed whatever source_fields says. */
static const char *const dsl_meta_fields[] = {"_id", "_index", "_score", "_doc", "_shard_doc"};

#define DSL_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * What the tables say a key holds.
 */
enum dsl_kind {
	K_SCALAR = 1, /* a string, number, boolean or null */
	K_STRING,
	K_NUMBER,
	K_BOOL,
	K_UINT,      /* a non-negative integer */
	K_BUCKETS,   /* a non-negative integer, at most max_buckets */
	K_SIZE,      /* the size of the hits window being walked */
	K_FROM,      /* its from */
	K_FALSE,     /* false, nothing else */
	K_VALUES,    /* a value or an array of values */
	K_DATA,      /* data, not DSL: scanned for forbidden keys only */
	K_POINT,     /* a geo point: [lon, lat], "lat,lon", a geohash, WKT, {lat, lon} */
	K_POINTS,    /* a point or an array of points */
	K_SHAPE,     /* a GeoJSON or WKT shape */
	K_NEVER,     /* refused: "KEY is not allowed in WHAT" */
	K_QUERY,     /* a query */
	K_QUERIES,   /* a query or an array of queries */
	K_QUERY_MAP, /* {name: query, ...} or [query, ...] */
	K_FIELD,     /* a field name */
	K_FIELDS,    /* a field name or an array of them ("title^2" boosts) */
	K_FIELD_MAP, /* {field: value, ...} */
	K_PATH,      /* a nested path */
	K_OBJ,       /* an object with SUB's keys */
	K_OBJ_LIST,  /* an array of them */
	K_OBJ_ANY,   /* one, or an array of them */
	K_FN,        /* FN checks it */
};

struct dsl_walk;
struct dsl_table;
typedef int (*dsl_fn)(struct dsl_walk *, json_t *v, json_t *parent);

struct dsl_key {
	const char *name;
	unsigned char kind;
	const struct dsl_table *sub; /* K_OBJ* */
	dsl_fn fn;                   /* K_FN */
};

/* The keys of one kind of object; WHAT names it in messages. */
struct dsl_table {
	const char *what;
	const struct dsl_key *keys; /* ends with a NULL name */
};

#define KV(n)                                                                                                          \
	{                                                                                                              \
		n, K_SCALAR, NULL, NULL                                                                                \
	}
#define KSTR(n)                                                                                                        \
	{                                                                                                              \
		n, K_STRING, NULL, NULL                                                                                \
	}
#define KNUM(n)                                                                                                        \
	{                                                                                                              \
		n, K_NUMBER, NULL, NULL                                                                                \
	}
#define KBOOL(n)                                                                                                       \
	{                                                                                                              \
		n, K_BOOL, NULL, NULL                                                                                  \
	}
#define KUINT(n)                                                                                                       \
	{                                                                                                              \
		n, K_UINT, NULL, NULL                                                                                  \
	}
#define KBKT(n)                                                                                                        \
	{                                                                                                              \
		n, K_BUCKETS, NULL, NULL                                                                               \
	}
#define KSIZE(n)                                                                                                       \
	{                                                                                                              \
		n, K_SIZE, NULL, NULL                                                                                  \
	}
#define KFROM(n)                                                                                                       \
	{                                                                                                              \
		n, K_FROM, NULL, NULL                                                                                  \
	}
#define KFALSE(n)                                                                                                      \
	{                                                                                                              \
		n, K_FALSE, NULL, NULL                                                                                 \
	}
#define KVALS(n)                                                                                                       \
	{                                                                                                              \
		n, K_VALUES, NULL, NULL                                                                                \
	}
#define KDATA(n)                                                                                                       \
	{                                                                                                              \
		n, K_DATA, NULL, NULL                                                                                  \
	}
#define KPOINT(n)                                                                                                      \
	{                                                                                                              \
		n, K_POINT, NULL, NULL                                                                                 \
	}
#define KPOINTS(n)                                                                                                     \
	{                                                                                                              \
		n, K_POINTS, NULL, NULL                                                                                \
	}
#define KSHAPE(n)                                                                                                      \
	{                                                                                                              \
		n, K_SHAPE, NULL, NULL                                                                                 \
	}
#define KNEVER(n)                                                                                                      \
	{                                                                                                              \
		n, K_NEVER, NULL, NULL                                                                                 \
	}
#define KQ(n)                                                                                                          \
	{                                                                                                              \
		n, K_QUERY, NULL, NULL                                                                                 \
	}
#define KQS(n)                                                                                                         \
	{                                                                                                              \
		n, K_QUERIES, NULL, NULL                                                                               \
	}
#define KQMAP(n)                                                                                                       \
	{                                                                                                              \
		n, K_QUERY_MAP, NULL, NULL                                                                             \
	}
#define KFLD(n)                                                                                                        \
	{                                                                                                              \
		n, K_FIELD, NULL, NULL                                                                                 \
	}
#define KFLDS(n)                                                                                                       \
	{                                                                                                              \
		n, K_FIELDS, NULL, NULL                                                                                \
	}
#define KFMAP(n)                                                                                                       \
	{                                                                                                              \
		n, K_FIELD_MAP, NULL, NULL                                                                             \
	}
#define KPATH(n)                                                                                                       \
	{                                                                                                              \
		n, K_PATH, NULL, NULL                                                                                  \
	}
#define KOBJ(n, t)                                                                                                     \
	{                                                                                                              \
		n, K_OBJ, &(t), NULL                                                                                   \
	}
#define KOBJS(n, t)                                                                                                    \
	{                                                                                                              \
		n, K_OBJ_LIST, &(t), NULL                                                                              \
	}
#define KOBJANY(n, t)                                                                                                  \
	{                                                                                                              \
		n, K_OBJ_ANY, &(t), NULL                                                                               \
	}
#define KFN(n, f)                                                                                                      \
	{                                                                                                              \
		n, K_FN, NULL, f                                                                                       \
	}
#define KEND                                                                                                           \
	{                                                                                                              \
		NULL, 0, NULL, NULL                                                                                    \
	}
#define KCOMMON KV("boost"), KSTR("_name")

/* A hits window: a search's, an inner_hits', a top_hits'. */
struct dsl_window {
	uint64_t from, size;
	int has_from, has_size;
};

struct dsl_walk {
	const struct dsl_policy *p;
	const struct dsl_trace *trace;
	char path[DSL_PATH_MAX];
	size_t plen;
	size_t base; /* length of the "line N: " prefix, 0 if none */
	char *reason;
	size_t reasonlen;
	struct dsl_window *win;  /* where K_SIZE and K_FROM go */
	uint64_t naggs;          /* aggregations in this search */
	uint64_t collapse_inner; /* collapse inner_hits in this search */
	double now_ms;           /* "now" in date bounds, read once */
};

static int dsl_fail(struct dsl_walk *, const char *, ...) __attribute__((format(printf, 2, 3)));
static int dsl_query(struct dsl_walk *, json_t *);
static int dsl_keys(struct dsl_walk *, json_t *, const struct dsl_table *);

/*
 * The arena jansson allocates from during a check: DSL_ARENA_BLOCK blocks,
 * malloc'ed as needed, all reused by the next check.  Up to DSL_ARENA_KEEP
 * bytes of them stay with the worker between checks, because fresh pages
 * cost a page fault each, which on a virtual machine made a check several
 * times slower (bench/firewall.c); the rest is freed.  A 32 KiB body of
 * the smallest values jansson can make needs about 2.5 MB.  Under
 * AddressSanitizer the arena is off, so that a use after free inside a
 * check is still seen.
 */

#if defined(__SANITIZE_ADDRESS__)
#define DSL_ARENA 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DSL_ARENA 0
#endif
#endif
#ifndef DSL_ARENA
#define DSL_ARENA 1
#endif

#define DSL_ARENA_BLOCK (256 * 1024)
#define DSL_ARENA_KEEP (8 * 1024 * 1024)

struct dsl_block {
	struct dsl_block *next;
	size_t size, used;
	alignas(max_align_t) unsigned char data[];
};

static struct dsl_block *dsl_arena_head;  /* the block being filled, then the full ones */
static struct dsl_block *dsl_arena_spare; /* empty blocks, for the next ones */
static size_t dsl_arena_kept;             /* bytes in dsl_arena_spare and the head */

static void *
dsl_arena_malloc(size_t n)
{
	struct dsl_block *b = dsl_arena_head;
	size_t size;
	void *p;

	n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	if ((b == NULL || b->size - b->used < n) && dsl_arena_spare != NULL && n <= DSL_ARENA_BLOCK) {
		b = dsl_arena_spare;
		dsl_arena_spare = b->next;
		dsl_arena_kept -= b->size;
		b->next = dsl_arena_head;
		b->used = 0;
		dsl_arena_head = b;
	}
	if (b == NULL || b->size - b->used < n) {
		size = n > DSL_ARENA_BLOCK ? n : DSL_ARENA_BLOCK;
		if ((b = malloc(offsetof(struct dsl_block, data) + size)) == NULL)
			return NULL;
		b->next = dsl_arena_head;
		b->size = size;
		b->used = 0;
		dsl_arena_head = b;
	}
	p = b->data + b->used;
	b->used += n;
	return p;
}

static void
dsl_arena_free(void *p)
{
	(void)p; /* all at once, in dsl_arena_end() */
}

struct dsl_arena_saved {
	json_malloc_t malloc_fn;
	json_free_t free_fn;
};

static void
dsl_arena_begin(struct dsl_arena_saved *saved)
{
	json_get_alloc_funcs(&saved->malloc_fn, &saved->free_fn);
	if (DSL_ARENA)
		json_set_alloc_funcs(dsl_arena_malloc, dsl_arena_free);
}

/* Every jansson value of the check is gone by now: the blocks are spare,
 * up to DSL_ARENA_KEEP bytes of them. */
static void
dsl_arena_end(const struct dsl_arena_saved *saved)
{
	struct dsl_block *b, *next;

	json_set_alloc_funcs(saved->malloc_fn, saved->free_fn);
	for (b = dsl_arena_head; b != NULL; b = next) {
		next = b->next;
		if (b->size == DSL_ARENA_BLOCK && dsl_arena_kept + b->size <= DSL_ARENA_KEEP) {
			b->next = dsl_arena_spare;
			dsl_arena_spare = b;
			dsl_arena_kept += b->size;
		} else
			free(b);
	}
	dsl_arena_head = NULL;
}

/*
 * Policy.
 */

void
dsl_policy_defaults(struct dsl_policy *p)
{
	memset(p, 0, sizeof(*p));
	/* static tables, never written: dsl_policy_clear() recognises them */
	p->queries = (char **)(uintptr_t)dsl_default_queries;
	p->nqueries = DSL_NELEM(dsl_default_queries);
	p->aggs = (char **)(uintptr_t)dsl_default_aggs;
	p->naggs = DSL_NELEM(dsl_default_aggs);
	p->max_size = 100;
	p->max_from = 10000;
	p->max_agg_depth = 3;
	p->max_buckets = 1000;
	p->max_aggs = DSL_MAX_AGGS_DEFAULT;
	p->max_searches = DSL_MAX_SEARCHES_DEFAULT;
	p->max_depth = DSL_MAX_DEPTH_DEFAULT;
	p->max_bytes = DSL_MAX_BYTES_DEFAULT;
}

static void
dsl_list_free(char **list, size_t n)
{
	if (list == (char **)(uintptr_t)dsl_default_queries || list == (char **)(uintptr_t)dsl_default_aggs)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void
dsl_policy_clear(struct dsl_policy *p)
{
	if (p == NULL)
		return;
	dsl_list_free(p->queries, p->nqueries);
	dsl_list_free(p->aggs, p->naggs);
	dsl_list_free(p->source_fields, p->nsource_fields);
	memset(p, 0, sizeof(*p));
}

void
dsl_policy_reset_list(struct dsl_policy *p, int which)
{
	char ***list = which == 'q' ? &p->queries : which == 'a' ? &p->aggs : &p->source_fields;
	size_t *n = which == 'q' ? &p->nqueries : which == 'a' ? &p->naggs : &p->nsource_fields;

	dsl_list_free(*list, *n);
	*list = NULL;
	*n = 0;
}

static int
dsl_in(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

#define DSL_IN_STATIC(list, s) dsl_in((char *const *)(uintptr_t)(list), DSL_NELEM(list), (s))

static int
dsl_forbidden_key(const char *k)
{
	return DSL_IN_STATIC(dsl_forbidden, k);
}

/* A field named by a client is allowed if an entry names it exactly or is
 * a prefix of it ("title" allows "title.keyword", as _source filtering on
 * "title" returns all of it), or (when it has no wildcard itself) an
 * entry's pattern matches it: a client's "user.*" is allowed only by the
 * entry "user.*".  The meta fields every hit carries are always allowed. */
static int
dsl_field_allowed(const struct dsl_policy *p, const char *f)
{
	size_t n;

	if (p->source_fields == NULL)
		return 1;
	if (dsl_in(p->source_fields, p->nsource_fields, f) || (f[0] == '_' && DSL_IN_STATIC(dsl_meta_fields, f)))
		return 1;
	if (strpbrk(f, "*?[") != NULL)
		return 0;
	for (size_t i = 0; i < p->nsource_fields; i++) {
		n = strlen(p->source_fields[i]);
		if (fnmatch(p->source_fields[i], f, 0) == 0 || (strncmp(p->source_fields[i], f, n) == 0 && f[n] == '.'))
			return 1;
	}
	return 0;
}

/* A nested path is allowed if a field under it is: the path alone returns
 * no value, and what is queried or fetched under it is checked itself. */
static int
dsl_path_allowed(const struct dsl_policy *p, const char *path)
{
	size_t n = strlen(path);

	if (dsl_field_allowed(p, path))
		return 1;
	for (size_t i = 0; i < p->nsource_fields; i++)
		if (strncmp(p->source_fields[i], path, n) == 0 && p->source_fields[i][n] == '.')
			return 1;
	return 0;
}

/*
 * Messages and the path.
 */

/* Client text into a message: printable ASCII, cut short. */
static void
dsl_clean(char *dst, size_t dstlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < dstlen && i < DSL_KEY_SHOWN; i++)
		dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	dst[i] = '\0';
}

/* C onto the path, if there is room; the path stays NUL-terminated.  (No
 * snprintf: a push is made for every key and element of a body.) */
static void
dsl_path_add(struct dsl_walk *w, char c)
{
	if (w->plen + 1 < sizeof(w->path)) {
		w->path[w->plen++] = c;
		w->path[w->plen] = '\0';
	}
}

static size_t
dsl_push(struct dsl_walk *w, const char *key)
{
	size_t saved = w->plen;

	if (w->plen > w->base)
		dsl_path_add(w, '.');
	for (size_t i = 0; key[i] != '\0' && i < DSL_KEY_SHOWN; i++)
		dsl_path_add(w, key[i] >= 0x20 && key[i] < 0x7f ? key[i] : '?');
	return saved;
}

static size_t
dsl_push_idx(struct dsl_walk *w, size_t i)
{
	size_t saved = w->plen;
	char digits[24];
	int n = 0;

	do
		digits[n++] = (char)('0' + i % 10);
	while ((i /= 10) > 0);
	dsl_path_add(w, '[');
	while (n > 0)
		dsl_path_add(w, digits[--n]);
	dsl_path_add(w, ']');
	return saved;
}

static void
dsl_pop(struct dsl_walk *w, size_t saved)
{
	w->plen = saved;
	w->path[saved] = '\0';
}

static int
dsl_fail(struct dsl_walk *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->reason == NULL || w->reasonlen == 0)
		return DSL_REFUSED;
	va_start(ap, fmt);
	n = vsnprintf(w->reason, w->reasonlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < w->reasonlen && w->plen > 0)
		snprintf(w->reason + n, w->reasonlen - (size_t)n, " (at %s)", w->path);
	return DSL_REFUSED;
}

/* A message naming KEY, cleaned: BEFORE, KEY, AFTER. */
static int
dsl_fail_key(struct dsl_walk *w, const char *before, const char *key, const char *after)
{
	char k[DSL_KEY_SHOWN + 1];

	dsl_clean(k, sizeof(k), key);
	return dsl_fail(w, "%s%s%s", before, k, after);
}

static void
dsl_mark(struct dsl_walk *w, json_t *o, int role)
{
	if (w->trace != NULL && w->trace->object != NULL)
		w->trace->object(w->trace->arg, o, role);
}

/*
 * Values.
 */

static int
dsl_scalar(json_t *v)
{
	return !json_is_object(v) && !json_is_array(v);
}

static int
dsl_uint(struct dsl_walk *w, json_t *v, const char *name, uint64_t max, uint64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v) || (i = json_integer_value(v)) < 0)
		return dsl_fail(w, "%s must be a non-negative integer", name);
	if ((uint64_t)i > max)
		return dsl_fail(w, "%s must be at most %llu", name, (unsigned long long)max);
	if (out != NULL)
		*out = (uint64_t)i;
	return 0;
}

/* Every key anywhere under V, against dsl_forbidden. */
static int
dsl_scan(struct dsl_walk *w, json_t *v)
{
	const char *k;
	json_t *c;
	size_t i, saved;

	if (json_is_object(v)) {
		json_object_foreach (v, k, c) {
			saved = dsl_push(w, k);
			if (dsl_forbidden_key(k))
				return dsl_fail_key(w, "", k, " is not allowed");
			if (dsl_scan(w, c) != 0)
				return DSL_REFUSED;
			dsl_pop(w, saved);
		}
	} else if (json_is_array(v)) {
		json_array_foreach (v, i, c) {
			saved = dsl_push_idx(w, i);
			if (dsl_scan(w, c) != 0)
				return DSL_REFUSED;
			dsl_pop(w, saved);
		}
	}
	return 0;
}

/* Data: not DSL to Elasticsearch, but no forbidden key in it either. */
static int
dsl_data(struct dsl_walk *w, json_t *v)
{
	if (json_is_object(v) || json_is_array(v))
		dsl_mark(w, v, DSL_ROLE_DATA);
	return dsl_scan(w, v);
}

/* V is not what NAME must be: a forbidden key inside says more, if any. */
static int
dsl_bad(struct dsl_walk *w, json_t *v, const char *name, const char *must)
{
	char k[DSL_KEY_SHOWN + 1];

	if (dsl_scan(w, v) != 0)
		return DSL_REFUSED;
	dsl_clean(k, sizeof(k), name);
	return dsl_fail(w, "%s must be %s", k, must);
}

static int
dsl_field(struct dsl_walk *w, const char *f)
{
	return dsl_field_allowed(w->p, f) ? 0 : dsl_fail_key(w, "field ", f, " is not allowed");
}

/* "title^2": the field is "title". */
static int
dsl_field_boosted(struct dsl_walk *w, const char *f)
{
	const char *caret = strrchr(f, '^');
	char buf[256];
	size_t n;

	if (caret == NULL || w->p->source_fields == NULL)
		return dsl_field(w, f);
	n = (size_t)(caret - f);
	if (n >= sizeof(buf))
		return dsl_fail(w, "field name too long");
	memcpy(buf, f, n);
	buf[n] = '\0';
	return dsl_field(w, buf);
}

static int
dsl_fields(struct dsl_walk *w, json_t *v, const char *name)
{
	json_t *c;
	size_t i, saved;

	if (json_is_string(v))
		return dsl_field_boosted(w, json_string_value(v));
	if (!json_is_array(v))
		return dsl_bad(w, v, name, "a field name or an array of them");
	json_array_foreach (v, i, c) {
		saved = dsl_push_idx(w, i);
		if (!json_is_string(c))
			return dsl_bad(w, c, name, "a field name or an array of them");
		if (dsl_field_boosted(w, json_string_value(c)) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	return 0;
}

/* The source_fields list as a JSON array. */
static json_t *
dsl_field_list(const struct dsl_policy *p)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < p->nsource_fields; i++)
		if (json_array_append_new(a, json_string(p->source_fields[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* With source_fields set, KEY of OBJ (a list of fields to search or
 * return, whose default is every field) becomes the allowed list when
 * absent.  A hits window with stored_fields (which may only be _none_)
 * returns no _source, and Elasticsearch refuses one asked for beside it. */
static int
dsl_narrow(struct dsl_walk *w, json_t *obj, const char *key)
{
	json_t *list;

	if (w->p->source_fields == NULL || json_object_get(obj, key) != NULL ||
	    (strcmp(key, "_source") == 0 && json_object_get(obj, "stored_fields") != NULL))
		return 0;
	if ((list = dsl_field_list(w->p)) == NULL || json_object_set_new(obj, key, list) != 0)
		return dsl_fail(w, "out of memory");
	return 0;
}

/* ONE on V, or, if V is an array, on each element (a query or queries, a
 * sort or sorts...). */
static int
dsl_one_or_each(struct dsl_walk *w, json_t *v, int (*one)(struct dsl_walk *, json_t *))
{
	size_t i, saved;
	json_t *c;

	if (!json_is_array(v))
		return one(w, v);
	json_array_foreach (v, i, c) {
		saved = dsl_push_idx(w, i);
		if (one(w, c) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	return 0;
}

static int
dsl_query_or_list(struct dsl_walk *w, json_t *v)
{
	return dsl_one_or_each(w, v, dsl_query);
}

static int
dsl_query_map(struct dsl_walk *w, json_t *v, const char *name)
{
	const char *k;
	json_t *q;
	size_t saved;

	if (json_is_array(v))
		return dsl_query_or_list(w, v);
	if (!json_is_object(v))
		return dsl_bad(w, v, name, "an object or an array of queries");
	dsl_mark(w, v, DSL_ROLE_NAMES);
	json_object_foreach (v, k, q) {
		saved = dsl_push(w, k);
		if (dsl_query(w, q) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	return 0;
}

static int
dsl_objects(struct dsl_walk *w, const struct dsl_key *k, json_t *v)
{
	json_t *c;
	size_t i, saved;

	if (json_is_object(v) && k->kind != K_OBJ_LIST)
		return dsl_keys(w, v, k->sub);
	if (!json_is_array(v) || k->kind == K_OBJ)
		return dsl_bad(w, v, k->name, k->kind == K_OBJ ? "an object" : "an array of objects");
	json_array_foreach (v, i, c) {
		saved = dsl_push_idx(w, i);
		if (dsl_keys(w, c, k->sub) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	return 0;
}

/* A geo point: a string ("lat,lon", a geohash, WKT), a number array
 * [lon, lat(, z)], {"lat", "lon"} or GeoJSON {"type", "coordinates"};
 * with LIST, also an array of points. */
static const struct dsl_key k_point[] = {
    {"lat", K_SCALAR, NULL, NULL},         {"lon", K_SCALAR, NULL, NULL}, {"type", K_STRING, NULL, NULL},
    {"coordinates", K_VALUES, NULL, NULL}, {NULL, 0, NULL, NULL},
};
static const struct dsl_table t_point = {"geo point", k_point};

static int
dsl_points(struct dsl_walk *w, json_t *v, const char *name, int list)
{
	json_t *c;
	size_t i, saved;

	if (json_is_string(v) || json_is_number(v)) /* a decay origin may be a number */
		return 0;
	if (json_is_object(v))
		return dsl_keys(w, v, &t_point);
	if (!json_is_array(v))
		return dsl_bad(w, v, name, "a geo point");
	json_array_foreach (v, i, c) {
		if (json_is_number(c))
			continue;
		if (!list || (i > 0 && json_is_number(json_array_get(v, 0))))
			return dsl_bad(w, v, name, "a geo point");
		saved = dsl_push_idx(w, i);
		if (dsl_points(w, c, name, 0) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	return 0;
}

/* GeoJSON coordinates: numbers in arrays, DEPTH deep at most. */
static int
dsl_coordinates(struct dsl_walk *w, json_t *v, int depth)
{
	json_t *c;
	size_t i;

	if (json_is_number(v))
		return 0;
	if (!json_is_array(v) || depth > 4)
		return dsl_bad(w, v, "coordinates", "arrays of numbers");
	json_array_foreach (v, i, c)
		if (dsl_coordinates(w, c, depth + 1) != 0)
			return DSL_REFUSED;
	return 0;
}

/* A shape: WKT, or GeoJSON {type, coordinates | geometries, orientation,
 * radius}. */
static int
dsl_shape(struct dsl_walk *w, json_t *v, const char *name, int depth)
{
	const char *k;
	json_t *c, *g;
	size_t saved, i, s2;

	if (json_is_string(v))
		return 0;
	if (!json_is_object(v) || depth > 2)
		return dsl_bad(w, v, name, "a shape");
	dsl_mark(w, v, DSL_ROLE_DSL);
	json_object_foreach (v, k, c) {
		saved = dsl_push(w, k);
		if (strcmp(k, "type") == 0 || strcmp(k, "orientation") == 0 || strcmp(k, "radius") == 0) {
			if (!dsl_scalar(c))
				return dsl_bad(w, c, k, "a single value");
		} else if (strcmp(k, "coordinates") == 0) {
			if (dsl_coordinates(w, c, 0) != 0)
				return DSL_REFUSED;
		} else if (strcmp(k, "geometries") == 0 && json_is_array(c)) {
			json_array_foreach (c, i, g) {
				s2 = dsl_push_idx(w, i);
				if (dsl_shape(w, g, k, depth + 1) != 0)
					return DSL_REFUSED;
				dsl_pop(w, s2);
			}
		} else if (dsl_forbidden_key(k)) {
			return dsl_fail_key(w, "", k, " is not allowed");
		} else
			return dsl_fail_key(w, "unknown key ", k, " in a shape");
		dsl_pop(w, saved);
	}
	return 0;
}

/* V, the value of key K in PARENT (an object of type WHAT). */
static int
dsl_value(struct dsl_walk *w, const struct dsl_key *k, json_t *v, json_t *parent, const char *what)
{
	const char *f, *kf;
	json_t *c;
	size_t i, saved;

	switch (k->kind) {
	case K_SCALAR: return dsl_scalar(v) ? 0 : dsl_bad(w, v, k->name, "a single value");
	case K_STRING: return json_is_string(v) ? 0 : dsl_bad(w, v, k->name, "a string");
	case K_NUMBER: return json_is_number(v) ? 0 : dsl_bad(w, v, k->name, "a number");
	case K_BOOL: return json_is_boolean(v) ? 0 : dsl_bad(w, v, k->name, "a boolean");
	case K_UINT: return dsl_uint(w, v, k->name, UINT32_MAX, NULL);
	case K_BUCKETS: return dsl_uint(w, v, k->name, w->p->max_buckets, NULL);
	case K_SIZE: w->win->has_size = 1; return dsl_uint(w, v, k->name, w->p->max_size, &w->win->size);
	case K_FROM: w->win->has_from = 1; return dsl_uint(w, v, k->name, w->p->max_from, &w->win->from);
	case K_FALSE: return json_is_false(v) ? 0 : dsl_bad(w, v, k->name, "false");
	case K_VALUES:
		if (json_is_array(v)) {
			json_array_foreach (v, i, c)
				if (!dsl_scalar(c))
					return dsl_bad(w, v, k->name, "a value or an array of values");
			return 0;
		}
		return dsl_scalar(v) ? 0 : dsl_bad(w, v, k->name, "a value or an array of values");
	case K_DATA: return dsl_data(w, v);
	case K_POINT:
	case K_POINTS: return dsl_points(w, v, k->name, k->kind == K_POINTS);
	case K_SHAPE: return dsl_shape(w, v, k->name, 0);
	case K_NEVER: return dsl_fail(w, "%s is not allowed in %s", k->name, what);
	case K_QUERY: return dsl_query(w, v);
	case K_QUERIES: return dsl_query_or_list(w, v);
	case K_QUERY_MAP: return dsl_query_map(w, v, k->name);
	case K_FIELD:
		if (!json_is_string(v))
			return dsl_bad(w, v, k->name, "a field name");
		return dsl_field(w, json_string_value(v));
	case K_FIELDS: return dsl_fields(w, v, k->name);
	case K_FIELD_MAP:
		if (!json_is_object(v))
			return dsl_bad(w, v, k->name, "an object");
		dsl_mark(w, v, DSL_ROLE_NAMES);
		json_object_foreach (v, kf, c) {
			saved = dsl_push(w, kf);
			if (dsl_field(w, kf) != 0 || (!dsl_scalar(c) && dsl_bad(w, c, kf, "a single value") != 0))
				return DSL_REFUSED;
			dsl_pop(w, saved);
		}
		return 0;
	case K_PATH:
		if (!json_is_string(v))
			return dsl_bad(w, v, k->name, "a path");
		f = json_string_value(v);
		return dsl_path_allowed(w->p, f) ? 0 : dsl_fail_key(w, "path ", f, " is not allowed");
	case K_OBJ:
	case K_OBJ_LIST:
	case K_OBJ_ANY: return dsl_objects(w, k, v);
	case K_FN: return k->fn(w, v, parent);
	}
	return dsl_fail(w, "internal error");
}

static const struct dsl_key *
dsl_find(const struct dsl_key *keys, const char *name)
{
	for (; keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

/* OBJ against table T: every key known, every value what its key holds;
 * WHAT names OBJ in messages. */
static int
dsl_keys_as(struct dsl_walk *w, json_t *obj, const struct dsl_table *t, const char *what)
{
	const struct dsl_key *kd;
	const char *k;
	json_t *v;
	size_t saved;
	void *tmp;

	if (!json_is_object(obj))
		return dsl_bad(w, obj, what, "an object");
	dsl_mark(w, obj, DSL_ROLE_DSL);
	/* _safe: a value may be replaced (a narrowed _source) */
	json_object_foreach_safe (obj, tmp, k, v) {
		saved = dsl_push(w, k);
		if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		if ((kd = dsl_find(t->keys, k)) == NULL) {
			char shown[DSL_KEY_SHOWN + 1];

			dsl_clean(shown, sizeof(shown), k);
			return dsl_fail(w, "unknown key %s in %s", shown, what);
		}
		if (dsl_value(w, kd, v, obj, what) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	return 0;
}

static int
dsl_keys(struct dsl_walk *w, json_t *obj, const struct dsl_table *t)
{
	return dsl_keys_as(w, obj, t, t->what);
}

/*
 * Hits: inner_hits, top_hits, sort, _source, fields, highlight.  Queries
 * and aggregations hold them, so they come first.
 */

static int dsl_fn_sort(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_source(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_fetch_fields(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_stored_fields(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_highlight(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_hl_fields(struct dsl_walk *, json_t *, json_t *);

/* sort: {"field": {...}}; "nested" nests, as deep as the mapping does. */
static const struct dsl_table t_nested_sort;
static const struct dsl_key k_nested_sort[] = {
    KPATH("path"), KQ("filter"), KUINT("max_children"), KOBJ("nested", t_nested_sort), KEND,
};
static const struct dsl_table t_nested_sort = {"nested sort", k_nested_sort};

static const struct dsl_key k_sort_field[] = {
    KSTR("order"),
    KSTR("mode"),
    KV("missing"),
    KSTR("unmapped_type"),
    KSTR("numeric_type"),
    KSTR("format"),
    KOBJ("nested", t_nested_sort),
    KPATH("nested_path"),
    KQ("nested_filter"),
    KEND,
};
static const struct dsl_table t_sort_field = {"sort", k_sort_field};

/* _geo_distance: these keys, and one field whose value is the point(s). */
static const struct dsl_key k_geo_sort[] = {
    KSTR("unit"),
    KSTR("distance_type"),
    KSTR("order"),
    KSTR("mode"),
    KOBJ("nested", t_nested_sort),
    KPATH("nested_path"),
    KQ("nested_filter"),
    KSTR("validation_method"),
    KBOOL("ignore_unmapped"),
    KEND,
};
static const struct dsl_table t_geo_sort = {"_geo_distance", k_geo_sort};

static const struct dsl_table t_inner_collapse;
static const struct dsl_key k_inner_collapse[] = {KFLD("field"), KEND};
static const struct dsl_table t_inner_collapse = {"collapse", k_inner_collapse};

#define KHITS                                                                                                          \
	KFROM("from"), KSIZE("size"), KFALSE("explain"), KBOOL("version"), KBOOL("seq_no_primary_term"),               \
	    KBOOL("track_scores"), KFN("stored_fields", dsl_fn_stored_fields),                                         \
	    KFN("docvalue_fields", dsl_fn_fetch_fields), KFN("fields", dsl_fn_fetch_fields), KFN("sort", dsl_fn_sort), \
	    KFN("_source", dsl_fn_source), KFN("highlight", dsl_fn_highlight)

static const struct dsl_key k_inner_hits[] = {
    KHITS, KSTR("name"), KBOOL("ignore_unmapped"), KOBJ("collapse", t_inner_collapse), KEND,
};
static const struct dsl_table t_inner_hits = {"inner_hits", k_inner_hits};
static const struct dsl_key k_top_hits[] = {KHITS, KEND};
static const struct dsl_table t_top_hits = {"top_hits", k_top_hits};

/* A hits window of its own (inner_hits, top_hits): its size and from
 * within the caps, and its _source narrowed like the search's. */
static int
dsl_hits(struct dsl_walk *w, json_t *v, const struct dsl_table *t)
{
	struct dsl_window win = {.size = DSL_HITS_DEFAULT}, *outer = w->win;
	size_t saved;
	int rc;

	w->win = &win;
	rc = dsl_keys(w, v, t);
	w->win = outer;
	if (rc != 0)
		return rc;
	if (win.from + win.size > w->p->max_from) {
		saved = dsl_push(w, "from");
		rc = dsl_fail(w, "from + size must be at most %llu", (unsigned long long)w->p->max_from);
		dsl_pop(w, saved);
		return rc;
	}
	return dsl_narrow(w, v, "_source");
}

static int
dsl_fn_inner_hits(struct dsl_walk *w, json_t *v, json_t *parent)
{
	return dsl_hits(w, v, &t_inner_hits);
}

/* collapse's inner_hits: one or several; each is a search per hit. */
static int
dsl_fn_collapse_inner(struct dsl_walk *w, json_t *v, json_t *parent)
{
	json_t *c;
	size_t i, saved;

	if (json_is_object(v)) {
		w->collapse_inner++;
		return dsl_hits(w, v, &t_inner_hits);
	}
	if (!json_is_array(v))
		return dsl_bad(w, v, "inner_hits", "an object or an array of objects");
	json_array_foreach (v, i, c) {
		saved = dsl_push_idx(w, i);
		w->collapse_inner++;
		if (dsl_hits(w, c, &t_inner_hits) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	return 0;
}

static int dsl_field_keyed(struct dsl_walk *, json_t *, const struct dsl_table *, const struct dsl_table *, int,
                           const char *);

/* One sort: "field", {"field": "asc"}, {"field": {...}}, {"_geo_distance":
 * {...}}, several of them in one object; "_script" is refused. */
static int
dsl_sort_one(struct dsl_walk *w, json_t *v)
{
	const char *k;
	json_t *c;
	size_t saved;

	if (json_is_string(v))
		return dsl_field(w, json_string_value(v));
	if (!json_is_object(v))
		return dsl_fail(w, "a sort must be a field name or an object");
	dsl_mark(w, v, DSL_ROLE_NAMES);
	json_object_foreach (v, k, c) {
		saved = dsl_push(w, k);
		if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		if (strcmp(k, "_geo_distance") == 0 || strcmp(k, "_geoDistance") == 0) {
			if (dsl_field_keyed(w, c, &t_geo_sort, NULL, K_POINTS, "_geo_distance") != 0)
				return DSL_REFUSED;
		} else if (dsl_field(w, k) != 0) {
			return DSL_REFUSED;
		} else if (json_is_object(c)) {
			if (dsl_keys(w, c, &t_sort_field) != 0)
				return DSL_REFUSED;
		} else if (!json_is_string(c)) {
			return dsl_bad(w, c, k, "asc, desc or an object");
		}
		dsl_pop(w, saved);
	}
	return 0;
}

static int
dsl_fn_sort(struct dsl_walk *w, json_t *v, json_t *parent)
{
	return dsl_one_or_each(w, v, dsl_sort_one);
}

/* _source: false, true, a pattern, a list, or {includes, excludes}.  With
 * source_fields set, what would return every field (true, or an object
 * without includes) is narrowed to the allow-list instead of refused, so
 * clients that always send "_source": true keep working. */
static int
dsl_fn_source(struct dsl_walk *w, json_t *v, json_t *parent)
{
	const char *k;
	json_t *c, *inc = NULL;
	size_t saved;

	if (json_is_false(v))
		return 0;
	if (json_is_true(v)) {
		if (w->p->source_fields == NULL)
			return 0;
		if ((inc = dsl_field_list(w->p)) == NULL || json_object_set_new(parent, "_source", inc) != 0)
			return dsl_fail(w, "out of memory");
		return 0;
	}
	if (!json_is_object(v))
		return dsl_fields(w, v, "_source");
	dsl_mark(w, v, DSL_ROLE_DSL);
	json_object_foreach (v, k, c) {
		saved = dsl_push(w, k);
		if (strcmp(k, "includes") == 0 || strcmp(k, "include") == 0) {
			if (inc != NULL)
				return dsl_fail(w, "include and includes cannot be used together");
			inc = c;
			if (dsl_fields(w, c, k) != 0)
				return DSL_REFUSED;
		} else if (strcmp(k, "excludes") == 0 || strcmp(k, "exclude") == 0) {
			if (!json_is_string(c) && !json_is_array(c))
				return dsl_bad(w, c, k, "a string or an array of strings");
			if (dsl_scan(w, c) != 0)
				return DSL_REFUSED;
		} else if (dsl_forbidden_key(k)) {
			return dsl_fail_key(w, "", k, " is not allowed");
		} else
			return dsl_fail_key(w, "unknown key ", k, " in _source");
		dsl_pop(w, saved);
	}
	if (inc == NULL && w->p->source_fields != NULL) {
		if ((inc = dsl_field_list(w->p)) == NULL || json_object_set_new(v, "includes", inc) != 0)
			return dsl_fail(w, "out of memory");
	}
	return 0;
}

/* "fields" and "docvalue_fields": [name, {"field": name, "format": ...}] */
static const struct dsl_key k_fetch_field[] = {KFLD("field"), KV("format"), KBOOL("include_unmapped"), KEND};
static const struct dsl_table t_fetch_field = {"fields", k_fetch_field};

static int
dsl_fn_fetch_fields(struct dsl_walk *w, json_t *v, json_t *parent)
{
	json_t *c;
	size_t i, saved;

	if (!json_is_array(v))
		return dsl_bad(w, v, "fields", "an array");
	json_array_foreach (v, i, c) {
		saved = dsl_push_idx(w, i);
		if (json_is_object(c)) {
			if (dsl_keys(w, c, &t_fetch_field) != 0)
				return DSL_REFUSED;
			if (json_object_get(c, "field") == NULL)
				return dsl_fail(w, "fields entry needs a field");
		} else if (json_is_string(c)) {
			if (dsl_field(w, json_string_value(c)) != 0)
				return DSL_REFUSED;
		} else
			return dsl_bad(w, c, "fields entries", "strings or objects");
		dsl_pop(w, saved);
	}
	return 0;
}

/* Stored fields are whatever the mapping stores: none may be asked for. */
static int
dsl_fn_stored_fields(struct dsl_walk *w, json_t *v, json_t *parent)
{
	if (!(json_is_string(v) && strcmp(json_string_value(v), "_none_") == 0) &&
	    !(json_is_array(v) && json_array_size(v) == 1 && json_is_string(json_array_get(v, 0)) &&
	      strcmp(json_string_value(json_array_get(v, 0)), "_none_") == 0))
		return dsl_fail(w, "stored_fields must be _none_");
	return 0;
}

#define KHIGHLIGHT                                                                                                     \
	KVALS("pre_tags"), KVALS("post_tags"), KSTR("order"), KBOOL("highlight_filter"), KUINT("fragment_size"),       \
	    KUINT("number_of_fragments"), KSTR("encoder"), KBOOL("require_field_match"), KSTR("boundary_scanner"),     \
	    KUINT("boundary_max_scan"), KSTR("boundary_chars"), KSTR("boundary_scanner_locale"), KSTR("type"),         \
	    KSTR("fragmenter"), KUINT("no_match_size"), KBOOL("force_source"), KUINT("phrase_limit"),                  \
	    KUINT("max_analyzed_offset"), KDATA("options"), KQ("highlight_query")

static const struct dsl_key k_highlight[] = {KHIGHLIGHT, KSTR("tags_schema"), KFN("fields", dsl_fn_hl_fields), KEND};
static const struct dsl_table t_highlight = {"highlight", k_highlight};
static const struct dsl_key k_hl_field[] = {KHIGHLIGHT, KUINT("fragment_offset"), KFLDS("matched_fields"), KEND};
static const struct dsl_table t_hl_field = {"highlight field", k_hl_field};

static int
dsl_fn_highlight(struct dsl_walk *w, json_t *v, json_t *parent)
{
	return dsl_keys(w, v, &t_highlight);
}

/* highlight.fields: {"field": {options}} or an array of such objects. */
static int
dsl_hl_field_map(struct dsl_walk *w, json_t *one)
{
	const char *name;
	json_t *f;
	size_t saved;

	if (!json_is_object(one))
		return dsl_fail(w, "highlight fields must be objects");
	dsl_mark(w, one, DSL_ROLE_NAMES);
	json_object_foreach (one, name, f) {
		saved = dsl_push(w, name);
		if (dsl_field(w, name) != 0 || dsl_keys(w, f, &t_hl_field) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	return 0;
}

static int
dsl_fn_hl_fields(struct dsl_walk *w, json_t *v, json_t *parent)
{
	return dsl_one_or_each(w, v, dsl_hl_field_map);
}

/*
 * Queries.  One entry per type Elasticsearch's query builders parse:
 * either an object of keys (BODY), or one field whose value is a value
 * (SHORTV) or an object of keys (FIELD), beside some keys of its own
 * (BODY); then CHECK, for what a table cannot say.
 */

#define Q_OBJECT 0
#define Q_FIELD 1

struct dsl_qtype {
	const char *name;
	unsigned char form;
	const struct dsl_table *body;
	const struct dsl_table *field; /* Q_FIELD: NULL when the field's value is data */
	unsigned char shortv;          /* Q_FIELD: what a non-object field value may be, 0 none */
	dsl_fn check;
};

static const struct dsl_key k_common[] = {KCOMMON, KEND};

#define TABLE(name, what, ...)                                                                                         \
	static const struct dsl_key k_##name[] = {__VA_ARGS__, KEND};                                                  \
	static const struct dsl_table t_##name = {what, k_##name}

/* full text */
TABLE(q_match, "match", KV("query"), KSTR("analyzer"), KBOOL("auto_generate_synonyms_phrase_query"), KV("fuzziness"),
      KUINT("max_expansions"), KUINT("prefix_length"), KBOOL("fuzzy_transpositions"), KSTR("fuzzy_rewrite"),
      KBOOL("lenient"), KSTR("operator"), KV("minimum_should_match"), KSTR("zero_terms_query"), KV("cutoff_frequency"),
      KCOMMON);
TABLE(q_match_phrase, "match_phrase", KV("query"), KSTR("analyzer"), KUINT("slop"), KSTR("zero_terms_query"), KCOMMON);
TABLE(q_match_phrase_prefix, "match_phrase_prefix", KV("query"), KSTR("analyzer"), KUINT("max_expansions"),
      KUINT("slop"), KSTR("zero_terms_query"), KCOMMON);
TABLE(q_match_bool_prefix, "match_bool_prefix", KV("query"), KSTR("analyzer"), KSTR("operator"),
      KV("minimum_should_match"), KV("fuzziness"), KUINT("prefix_length"), KUINT("max_expansions"),
      KBOOL("fuzzy_transpositions"), KSTR("fuzzy_rewrite"), KCOMMON);
TABLE(q_multi_match, "multi_match", KV("query"), KFLDS("fields"), KSTR("type"), KSTR("analyzer"), KUINT("slop"),
      KV("fuzziness"), KUINT("prefix_length"), KUINT("max_expansions"), KSTR("operator"), KV("minimum_should_match"),
      KSTR("fuzzy_rewrite"), KV("tie_breaker"), KBOOL("lenient"), KV("cutoff_frequency"), KSTR("zero_terms_query"),
      KBOOL("auto_generate_synonyms_phrase_query"), KBOOL("fuzzy_transpositions"), KCOMMON);
TABLE(q_combined_fields, "combined_fields", KV("query"), KFLDS("fields"), KBOOL("auto_generate_synonyms_phrase_query"),
      KSTR("operator"), KV("minimum_should_match"), KSTR("zero_terms_query"), KCOMMON);
TABLE(q_query_string, "query_string", KV("query"), KFLD("default_field"), KFLDS("fields"), KSTR("default_operator"),
      KSTR("analyzer"), KSTR("quote_analyzer"), KBOOL("allow_leading_wildcard"),
      KBOOL("auto_generate_synonyms_phrase_query"), KBOOL("enable_position_increments"), KUINT("fuzzy_max_expansions"),
      KV("fuzziness"), KUINT("fuzzy_prefix_length"), KBOOL("fuzzy_transpositions"), KSTR("fuzzy_rewrite"),
      KUINT("phrase_slop"), KV("tie_breaker"), KBOOL("analyze_wildcard"), KSTR("rewrite"), KV("minimum_should_match"),
      KSTR("quote_field_suffix"), KBOOL("lenient"), KUINT("max_determinized_states"), KSTR("time_zone"), KSTR("type"),
      KBOOL("escape"), KCOMMON);
TABLE(q_simple_query_string, "simple_query_string", KV("query"), KFLDS("fields"), KSTR("default_operator"),
      KSTR("analyzer"), KBOOL("analyze_wildcard"), KBOOL("auto_generate_synonyms_phrase_query"), KV("flags"),
      KUINT("fuzzy_max_expansions"), KUINT("fuzzy_prefix_length"), KBOOL("fuzzy_transpositions"), KBOOL("lenient"),
      KV("minimum_should_match"), KSTR("quote_field_suffix"), KCOMMON);

/* intervals: a field whose value is one rule; rules nest and filter. */
static const struct dsl_table t_rule, t_ifilter;
TABLE(ir_match, "match", KV("query"), KUINT("max_gaps"), KBOOL("ordered"), KSTR("analyzer"), KOBJ("filter", t_ifilter),
      KFLD("use_field"));
TABLE(ir_any_of, "any_of", KOBJS("intervals", t_rule), KOBJ("filter", t_ifilter));
TABLE(ir_all_of, "all_of", KOBJS("intervals", t_rule), KUINT("max_gaps"), KBOOL("ordered"), KOBJ("filter", t_ifilter));
TABLE(ir_prefix, "prefix", KV("prefix"), KSTR("analyzer"), KFLD("use_field"));
TABLE(ir_wildcard, "wildcard", KV("pattern"), KSTR("analyzer"), KFLD("use_field"));
TABLE(ir_fuzzy, "fuzzy", KV("term"), KUINT("prefix_length"), KBOOL("transpositions"), KV("fuzziness"), KSTR("analyzer"),
      KFLD("use_field"));
TABLE(ir_regexp, "regexp", KV("pattern"), KSTR("analyzer"), KFLD("use_field"));
TABLE(ir_range, "range", KV("gt"), KV("gte"), KV("lt"), KV("lte"), KSTR("analyzer"), KFLD("use_field"));
#define KRULES                                                                                                         \
	KOBJ("match", t_ir_match), KOBJ("any_of", t_ir_any_of), KOBJ("all_of", t_ir_all_of),                           \
	    KOBJ("prefix", t_ir_prefix), KOBJ("wildcard", t_ir_wildcard), KOBJ("fuzzy", t_ir_fuzzy),                   \
	    KOBJ("regexp", t_ir_regexp), KOBJ("range", t_ir_range)
static const struct dsl_key k_rule[] = {KRULES, KEND};
static const struct dsl_table t_rule = {"intervals rule", k_rule};
static const struct dsl_key k_ifilter[] = {
    KOBJ("after", t_rule),           KOBJ("before", t_rule),           KOBJ("contained_by", t_rule),
    KOBJ("containing", t_rule),      KOBJ("not_contained_by", t_rule), KOBJ("not_containing", t_rule),
    KOBJ("not_overlapping", t_rule), KOBJ("overlapping", t_rule),      KEND,
};
static const struct dsl_table t_ifilter = {"intervals filter", k_ifilter};
TABLE(q_intervals_field, "intervals", KRULES, KCOMMON);

/* term level */
TABLE(q_term, "term", KV("value"), KBOOL("case_insensitive"), KCOMMON);
TABLE(q_terms_set, "terms_set", KVALS("terms"), KFLD("minimum_should_match_field"), KV("minimum_should_match"),
      KCOMMON);
TABLE(q_range, "range", KV("gt"), KV("gte"), KV("lt"), KV("lte"), KV("from"), KV("to"), KBOOL("include_lower"),
      KBOOL("include_upper"), KSTR("format"), KSTR("relation"), KSTR("time_zone"), KCOMMON);
TABLE(q_exists, "exists", KFLD("field"), KCOMMON);
TABLE(q_prefix, "prefix", KV("value"), KSTR("rewrite"), KBOOL("case_insensitive"), KCOMMON);
TABLE(q_wildcard, "wildcard", KV("value"), KV("wildcard"), KSTR("rewrite"), KBOOL("case_insensitive"), KCOMMON);
TABLE(q_regexp, "regexp", KV("value"), KV("flags"), KUINT("flags_value"), KBOOL("case_insensitive"),
      KUINT("max_determinized_states"), KSTR("rewrite"), KCOMMON);
TABLE(q_fuzzy, "fuzzy", KV("value"), KV("fuzziness"), KUINT("prefix_length"), KUINT("max_expansions"),
      KBOOL("transpositions"), KSTR("rewrite"), KCOMMON);
TABLE(q_ids, "ids", KVALS("values"), KCOMMON);

/* compound */
TABLE(q_bool, "bool", KQS("must"), KQS("filter"), KQS("should"), KQS("must_not"), KV("minimum_should_match"), KCOMMON);
TABLE(q_boosting, "boosting", KQ("positive"), KQ("negative"), KNUM("negative_boost"), KCOMMON);
TABLE(q_constant_score, "constant_score", KQ("filter"), KCOMMON);
TABLE(q_dis_max, "dis_max", KQS("queries"), KNUM("tie_breaker"), KCOMMON);

static int dsl_fn_decay(struct dsl_walk *, json_t *, json_t *);
TABLE(fs_random, "random_score", KV("seed"), KFLD("field"));
TABLE(fs_fvf, "field_value_factor", KFLD("field"), KNUM("factor"), KSTR("modifier"), KNUM("missing"));
TABLE(fs_decay_field, "decay function", KPOINT("origin"), KV("scale"), KV("offset"), KNUM("decay"));
TABLE(fs_decay, "decay function", KSTR("multi_value_mode"));
#define KFUNCTIONS                                                                                                     \
	KNUM("weight"), KOBJ("random_score", t_fs_random), KOBJ("field_value_factor", t_fs_fvf),                       \
	    KFN("gauss", dsl_fn_decay), KFN("linear", dsl_fn_decay), KFN("exp", dsl_fn_decay)
TABLE(fs_function, "function_score function", KQ("filter"), KFUNCTIONS);
TABLE(q_function_score, "function_score", KQ("query"), KOBJS("functions", t_fs_function), KSTR("score_mode"),
      KSTR("boost_mode"), KNUM("max_boost"), KNUM("min_score"), KFUNCTIONS, KCOMMON);

/* joining */
TABLE(q_nested, "nested", KPATH("path"), KQ("query"), KSTR("score_mode"), KBOOL("ignore_unmapped"),
      KFN("inner_hits", dsl_fn_inner_hits), KCOMMON);
TABLE(q_has_child, "has_child", KSTR("type"), KQ("query"), KSTR("score_mode"), KUINT("min_children"),
      KUINT("max_children"), KBOOL("ignore_unmapped"), KFN("inner_hits", dsl_fn_inner_hits), KCOMMON);
TABLE(q_has_parent, "has_parent", KSTR("parent_type"), KQ("query"), KBOOL("score"), KBOOL("ignore_unmapped"),
      KFN("inner_hits", dsl_fn_inner_hits), KCOMMON);
TABLE(q_parent_id, "parent_id", KSTR("type"), KV("id"), KBOOL("ignore_unmapped"), KCOMMON);

/* geo and shapes: the field's value is points or a shape, data */
TABLE(q_geo_bbox, "geo_bounding_box", KSTR("validation_method"), KSTR("type"), KBOOL("ignore_unmapped"), KCOMMON);
TABLE(q_geo_bbox_field, "geo_bounding_box", KPOINT("top_left"), KPOINT("bottom_right"), KPOINT("top_right"),
      KPOINT("bottom_left"), KV("top"), KV("left"), KV("bottom"), KV("right"), KSTR("wkt"));
TABLE(q_geo_distance, "geo_distance", KV("distance"), KSTR("distance_type"), KSTR("validation_method"),
      KBOOL("ignore_unmapped"), KCOMMON);
TABLE(q_geo_polygon, "geo_polygon", KSTR("validation_method"), KBOOL("ignore_unmapped"), KCOMMON);
TABLE(q_geo_polygon_field, "geo_polygon", KPOINTS("points"));
TABLE(q_shape, "geo_shape", KBOOL("ignore_unmapped"), KCOMMON);
TABLE(q_shape_field, "geo_shape", KSHAPE("shape"), KSTR("relation"), KSTR("strategy"));

/* specialised */
TABLE(q_distance_feature, "distance_feature", KFLD("field"), KPOINT("origin"), KV("pivot"), KCOMMON);
TABLE(rf_saturation, "saturation", KNUM("pivot"));
TABLE(rf_log, "log", KNUM("scaling_factor"));
TABLE(rf_sigmoid, "sigmoid", KNUM("pivot"), KNUM("exponent"));
TABLE(rf_linear, "linear", KNUM("factor"));
TABLE(q_rank_feature, "rank_feature", KFLD("field"), KOBJ("saturation", t_rf_saturation), KOBJ("log", t_rf_log),
      KOBJ("sigmoid", t_rf_sigmoid), KOBJ("linear", t_rf_linear), KCOMMON);
static int dsl_fn_mlt_items(struct dsl_walk *, json_t *, json_t *);
TABLE(mlt_item, "more_like_this", KNEVER("_index"), KV("_id"), KDATA("doc"), KFLDS("fields"),
      KFMAP("per_field_analyzer"), KV("routing"), KV("version"), KSTR("version_type"));
TABLE(q_mlt, "more_like_this", KFLDS("fields"), KFN("like", dsl_fn_mlt_items), KFN("unlike", dsl_fn_mlt_items),
      KUINT("max_query_terms"), KUINT("min_term_freq"), KUINT("min_doc_freq"), KUINT("max_doc_freq"),
      KUINT("min_word_length"), KUINT("max_word_length"), KVALS("stop_words"), KSTR("analyzer"),
      KV("minimum_should_match"), KNUM("boost_terms"), KBOOL("include"), KBOOL("fail_on_unsupported_field"), KCOMMON);
TABLE(q_percolate, "percolate", KFLD("field"), KSTR("name"), KDATA("document"), KDATA("documents"), KNEVER("index"),
      KNEVER("id"), KNEVER("routing"), KNEVER("preference"), KNEVER("version"), KCOMMON);
TABLE(pinned_doc, "pinned", KNEVER("_index"), KV("_id"));
TABLE(q_pinned, "pinned", KVALS("ids"), KOBJS("docs", t_pinned_doc), KQ("organic"), KCOMMON);
TABLE(q_knn, "knn", KFLD("field"), KVALS("query_vector"), KUINT("k"), KUINT("num_candidates"), KQS("filter"),
      KNUM("similarity"), KCOMMON);

/* span */
TABLE(q_span_term, "span_term", KV("value"), KV("term"), KCOMMON);
TABLE(q_span_first, "span_first", KQ("match"), KUINT("end"), KCOMMON);
TABLE(q_span_near, "span_near", KQS("clauses"), KUINT("slop"), KBOOL("in_order"), KCOMMON);
TABLE(q_span_or, "span_or", KQS("clauses"), KCOMMON);
TABLE(q_span_not, "span_not", KQ("include"), KQ("exclude"), KUINT("pre"), KUINT("post"), KUINT("dist"), KCOMMON);
TABLE(q_span_containing, "span_containing", KQ("big"), KQ("little"), KCOMMON);
TABLE(q_span_within, "span_within", KQ("big"), KQ("little"), KCOMMON);
TABLE(q_span_multi, "span_multi", KQ("match"), KCOMMON);
TABLE(q_span_masking, "field_masking_span", KQ("query"), KFLD("field"), KCOMMON);
static const struct dsl_table t_none = {"query", k_common};

static int dsl_check_narrow_fields(struct dsl_walk *, json_t *, json_t *);
static int dsl_check_query_string(struct dsl_walk *, json_t *, json_t *);

static const struct dsl_qtype dsl_queries[] = {
    {"match", Q_FIELD, &t_none, &t_q_match, K_SCALAR, NULL},
    {"match_phrase", Q_FIELD, &t_none, &t_q_match_phrase, K_SCALAR, NULL},
    {"match_phrase_prefix", Q_FIELD, &t_none, &t_q_match_phrase_prefix, K_SCALAR, NULL},
    {"match_bool_prefix", Q_FIELD, &t_none, &t_q_match_bool_prefix, K_SCALAR, NULL},
    {"multi_match", Q_OBJECT, &t_q_multi_match, NULL, 0, dsl_check_narrow_fields},
    {"combined_fields", Q_OBJECT, &t_q_combined_fields, NULL, 0, NULL},
    {"query_string", Q_OBJECT, &t_q_query_string, NULL, 0, dsl_check_query_string},
    {"simple_query_string", Q_OBJECT, &t_q_simple_query_string, NULL, 0, dsl_check_narrow_fields},
    {"intervals", Q_FIELD, &t_none, &t_q_intervals_field, 0, NULL},
    {"term", Q_FIELD, &t_none, &t_q_term, K_SCALAR, NULL},
    {"terms", Q_FIELD, &t_none, NULL, K_VALUES, NULL},
    {"terms_set", Q_FIELD, &t_none, &t_q_terms_set, 0, NULL},
    {"range", Q_FIELD, &t_none, &t_q_range, 0, NULL},
    {"exists", Q_OBJECT, &t_q_exists, NULL, 0, NULL},
    {"prefix", Q_FIELD, &t_none, &t_q_prefix, K_SCALAR, NULL},
    {"wildcard", Q_FIELD, &t_none, &t_q_wildcard, K_SCALAR, NULL},
    {"regexp", Q_FIELD, &t_none, &t_q_regexp, K_SCALAR, NULL},
    {"fuzzy", Q_FIELD, &t_none, &t_q_fuzzy, K_SCALAR, NULL},
    {"ids", Q_OBJECT, &t_q_ids, NULL, 0, NULL},
    {"match_all", Q_OBJECT, &t_none, NULL, 0, NULL},
    {"match_none", Q_OBJECT, &t_none, NULL, 0, NULL},
    {"bool", Q_OBJECT, &t_q_bool, NULL, 0, NULL},
    {"boosting", Q_OBJECT, &t_q_boosting, NULL, 0, NULL},
    {"constant_score", Q_OBJECT, &t_q_constant_score, NULL, 0, NULL},
    {"dis_max", Q_OBJECT, &t_q_dis_max, NULL, 0, NULL},
    {"function_score", Q_OBJECT, &t_q_function_score, NULL, 0, NULL},
    {"nested", Q_OBJECT, &t_q_nested, NULL, 0, NULL},
    {"has_child", Q_OBJECT, &t_q_has_child, NULL, 0, NULL},
    {"has_parent", Q_OBJECT, &t_q_has_parent, NULL, 0, NULL},
    {"parent_id", Q_OBJECT, &t_q_parent_id, NULL, 0, NULL},
    {"geo_bounding_box", Q_FIELD, &t_q_geo_bbox, &t_q_geo_bbox_field, 0, NULL},
    {"geo_distance", Q_FIELD, &t_q_geo_distance, NULL, K_POINT, NULL},
    {"geo_polygon", Q_FIELD, &t_q_geo_polygon, &t_q_geo_polygon_field, 0, NULL},
    {"geo_shape", Q_FIELD, &t_q_shape, &t_q_shape_field, 0, NULL},
    {"shape", Q_FIELD, &t_q_shape, &t_q_shape_field, 0, NULL},
    {"distance_feature", Q_OBJECT, &t_q_distance_feature, NULL, 0, NULL},
    {"rank_feature", Q_OBJECT, &t_q_rank_feature, NULL, 0, NULL},
    {"more_like_this", Q_OBJECT, &t_q_mlt, NULL, 0, dsl_check_narrow_fields},
    {"percolate", Q_OBJECT, &t_q_percolate, NULL, 0, NULL},
    {"pinned", Q_OBJECT, &t_q_pinned, NULL, 0, NULL},
    {"knn", Q_OBJECT, &t_q_knn, NULL, 0, NULL},
    {"span_term", Q_FIELD, &t_none, &t_q_span_term, K_SCALAR, NULL},
    {"span_first", Q_OBJECT, &t_q_span_first, NULL, 0, NULL},
    {"span_near", Q_OBJECT, &t_q_span_near, NULL, 0, NULL},
    {"span_or", Q_OBJECT, &t_q_span_or, NULL, 0, NULL},
    {"span_not", Q_OBJECT, &t_q_span_not, NULL, 0, NULL},
    {"span_containing", Q_OBJECT, &t_q_span_containing, NULL, 0, NULL},
    {"span_within", Q_OBJECT, &t_q_span_within, NULL, 0, NULL},
    {"span_multi", Q_OBJECT, &t_q_span_multi, NULL, 0, NULL},
    {"field_masking_span", Q_OBJECT, &t_q_span_masking, NULL, 0, NULL},
    {"span_field_masking", Q_OBJECT, &t_q_span_masking, NULL, 0, NULL},
    {"span_gap", Q_FIELD, &t_none, NULL, K_UINT, NULL},
};

/* multi_match, simple_query_string and more_like_this search every field
 * when they name none: with source_fields set, they get the allowed ones,
 * and, as Elasticsearch does for its own "every field", leniency (a number
 * field among them is not an error). */
static int
dsl_check_narrow_fields(struct dsl_walk *w, json_t *body, json_t *parent)
{
	const char *lenient =
	    json_object_get(parent, "more_like_this") != NULL ? "fail_on_unsupported_field" : "lenient";

	if (w->p->source_fields == NULL || json_object_get(body, "fields") != NULL)
		return 0;
	if (json_object_get(body, lenient) == NULL &&
	    json_object_set_new(body, lenient, json_boolean(strcmp(lenient, "lenient") == 0)) != 0)
		return dsl_fail(w, "out of memory");
	return dsl_narrow(w, body, "fields");
}

/* Its query text names fields ("secret:x"): no field rule can hold. */
static int
dsl_check_query_string(struct dsl_walk *w, json_t *body, json_t *parent)
{
	if (w->p->source_fields != NULL)
		return dsl_fail(w,
		                "query_string is not allowed when fields are restricted (its text can name any field)");
	return 0;
}

/* more_like_this like/unlike: text, a document, or an array of them. */
static int
dsl_fn_mlt_items(struct dsl_walk *w, json_t *v, json_t *parent)
{
	json_t *c;
	size_t i, saved;

	if (json_is_string(v))
		return 0;
	if (json_is_object(v))
		return dsl_keys(w, v, &t_mlt_item);
	if (!json_is_array(v))
		return dsl_bad(w, v, "like", "text, a document or an array of them");
	json_array_foreach (v, i, c) {
		saved = dsl_push_idx(w, i);
		if (!json_is_string(c) && dsl_keys(w, c, &t_mlt_item) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	return 0;
}

/* gauss, linear, exp: {"field": {origin, scale, ...}, "multi_value_mode"} */
static int
dsl_fn_decay(struct dsl_walk *w, json_t *v, json_t *parent)
{
	return dsl_field_keyed(w, v, &t_fs_decay, &t_fs_decay_field, 0, "decay function");
}

/* A body of one field (its name a key) beside the keys of table T: the
 * field's value is an object of table FIELD (or data, if FIELD is NULL and
 * SHORTV is K_DATA), or a value of kind SHORTV. */
static int
dsl_field_keyed(struct dsl_walk *w, json_t *body, const struct dsl_table *t, const struct dsl_table *field, int shortv,
                const char *what)
{
	const struct dsl_key *kd;
	const char *k, *name = NULL;
	json_t *v;
	size_t saved;

	if (!json_is_object(body))
		return dsl_bad(w, body, what, "an object");
	dsl_mark(w, body, DSL_ROLE_DSL);
	json_object_foreach (body, k, v) {
		saved = dsl_push(w, k);
		if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		if ((kd = dsl_find(t->keys, k)) != NULL) {
			if (dsl_value(w, kd, v, body, what) != 0)
				return DSL_REFUSED;
			dsl_pop(w, saved);
			continue;
		}
		if (name != NULL)
			return dsl_fail(w, "%s takes one field", what);
		name = k;
		if (dsl_field(w, k) != 0)
			return DSL_REFUSED;
		if (json_is_object(v) && field != NULL) {
			if (dsl_keys(w, v, field) != 0)
				return DSL_REFUSED;
		} else if (json_is_object(v) && shortv != K_POINT && shortv != K_POINTS) {
			/* an object instead of the values: a lookup, which reads a
			 * document of any index the cluster user can read */
			if (strcmp(what, "terms") == 0)
				return dsl_fail(w, "terms lookup is not allowed");
			return dsl_bad(w, v, k, "a value");
		} else if (shortv == 0) {
			return dsl_bad(w, v, k, "an object");
		} else {
			const struct dsl_key fk = {k, (unsigned char)shortv, NULL, NULL};

			if (dsl_value(w, &fk, v, body, what) != 0)
				return DSL_REFUSED;
		}
		dsl_pop(w, saved);
	}
	if (name == NULL)
		return dsl_fail(w, "%s needs a field", what);
	return 0;
}

static const struct dsl_qtype *
dsl_qtype_find(const char *name)
{
	for (size_t i = 0; i < DSL_NELEM(dsl_queries); i++)
		if (strcmp(dsl_queries[i].name, name) == 0)
			return &dsl_queries[i];
	return NULL;
}

static int
dsl_query(struct dsl_walk *w, json_t *q)
{
	const struct dsl_qtype *qt;
	const char *type = NULL;
	json_t *body = NULL;
	size_t saved;
	int rc;

	if (!json_is_object(q) || json_object_size(q) != 1)
		return dsl_fail(w, "a query must be an object with exactly one key");
	json_object_foreach (q, type, body)
		break;
	saved = dsl_push(w, type);
	if (dsl_forbidden_key(type))
		return dsl_fail_key(w, "", type, " is not allowed");
	if (!dsl_in(w->p->queries, w->p->nqueries, type))
		return dsl_fail_key(w, "query type ", type, " is not allowed");
	if ((qt = dsl_qtype_find(type)) == NULL)
		return dsl_fail_key(w, "query type ", type, " is not known to the firewall");
	dsl_mark(w, q, DSL_ROLE_QUERY);
	if (qt->form == Q_FIELD)
		rc = dsl_field_keyed(w, body, qt->body, qt->field, qt->shortv, qt->name);
	else
		rc = dsl_keys_as(w, body, qt->body, qt->name);
	if (rc == 0 && qt->check != NULL)
		rc = qt->check(w, body, q);
	if (rc == 0)
		dsl_pop(w, saved);
	return rc;
}

/*
 * Aggregations.  One entry per type, with how many buckets it makes:
 * E_METRIC none (and no sub-aggregations), E_ONE one, E_SIZE its "size"
 * (default DFLT), E_BUCKETS its "buckets", E_RANGES one per range,
 * E_FILTERS one per filter (and the other bucket), E_ADJ n + n(n-1)/2
 * for n filters, E_HISTO and E_DHISTO its bounds over its interval,
 * E_UNBOUNDED what only the data bounds (counted DSL_UNBOUNDED).
 */

enum { E_METRIC, E_ONE, E_SIZE, E_BUCKETS, E_RANGES, E_FILTERS, E_ADJ, E_HISTO, E_DHISTO, E_UNBOUNDED };

struct dsl_atype {
	const char *name;
	const struct dsl_table *body; /* NULL: the body is a query (filter) */
	unsigned char est;
	uint32_t dflt;
};

static int dsl_fn_composite_sources(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_include(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_order(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_after(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_geo_bounds(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_bucket_sort(struct dsl_walk *, json_t *, json_t *);
static int dsl_fn_hits_size(struct dsl_walk *, json_t *, json_t *);

/* a values source: field (or script, refused), missing, format, value_type */
#define KVS KFLD("field"), KV("missing"), KSTR("format"), KSTR("value_type")
#define KVSD KVS, KSTR("time_zone")
#define KTERMS                                                                                                         \
	KBKT("size"), KBKT("shard_size"), KUINT("min_doc_count"), KUINT("shard_min_doc_count"),                        \
	    KFN("include", dsl_fn_include), KFN("exclude", dsl_fn_include), KSTR("execution_hint")
static const struct dsl_key k_empty[] = {KEND};
static const struct dsl_table t_empty = {"object", k_empty};
TABLE(heur, "significance heuristic", KBOOL("include_negatives"), KBOOL("background_is_superset"));
TABLE(heur_gnd, "gnd", KBOOL("background_is_superset"));
#define KHEUR                                                                                                          \
	KOBJ("jlh", t_empty), KOBJ("mutual_information", t_heur), KOBJ("chi_square", t_heur), KOBJ("gnd", t_heur_gnd), \
	    KOBJ("percentage", t_empty)
TABLE(bounds, "bounds", KV("min"), KV("max"));
TABLE(range_item, "range", KV("from"), KV("to"), KSTR("key"));
TABLE(ip_range_item, "range", KV("from"), KV("to"), KSTR("mask"), KSTR("key"));
TABLE(mt_source, "multi_terms", KFLD("field"), KV("missing"), KSTR("format"), KSTR("value_type"), KSTR("time_zone"));
TABLE(mv_source, "value source", KFLD("field"), KV("missing"));
TABLE(tdigest, "tdigest", KNUM("compression"), KSTR("execution_hint"));
TABLE(hdr, "hdr", KUINT("number_of_significant_value_digits"));
TABLE(tm_metric, "top_metrics", KFLD("field"));
TABLE(tt_pop, "t_test", KFLD("field"), KQ("filter"));

TABLE(a_terms, "terms", KVS, KTERMS, KBOOL("show_term_doc_count_error"), KFN("order", dsl_fn_order),
      KSTR("collect_mode"));
TABLE(a_sig_terms, "significant_terms", KVS, KTERMS, KQ("background_filter"), KHEUR);
TABLE(a_sig_text, "significant_text", KFLD("field"), KTERMS, KQ("background_filter"), KBOOL("filter_duplicate_text"),
      KFLDS("source_fields"), KHEUR);
TABLE(a_rare_terms, "rare_terms", KVS, KUINT("max_doc_count"), KNUM("precision"), KFN("include", dsl_fn_include),
      KFN("exclude", dsl_fn_include));
TABLE(a_multi_terms, "multi_terms", KOBJS("terms", t_mt_source), KBKT("size"), KBKT("shard_size"),
      KUINT("min_doc_count"), KUINT("shard_min_doc_count"), KBOOL("show_term_doc_count_error"),
      KFN("order", dsl_fn_order), KSTR("collect_mode"));
#define KHISTO                                                                                                         \
	KV("offset"), KUINT("min_doc_count"), KOBJ("extended_bounds", t_bounds), KOBJ("hard_bounds", t_bounds),        \
	    KFN("order", dsl_fn_order), KBOOL("keyed")
TABLE(a_histogram, "histogram", KVS, KV("interval"), KHISTO);
TABLE(a_date_histogram, "date_histogram", KVSD, KSTR("calendar_interval"), KSTR("fixed_interval"), KV("interval"),
      KHISTO);
TABLE(a_auto_date_histogram, "auto_date_histogram", KVSD, KBKT("buckets"), KSTR("minimum_interval"));
TABLE(a_vw_histogram, "variable_width_histogram", KVS, KBKT("buckets"), KBKT("shard_size"), KUINT("initial_buffer"));
TABLE(a_range, "range", KVS, KOBJS("ranges", t_range_item), KBOOL("keyed"));
TABLE(a_date_range, "date_range", KVSD, KOBJS("ranges", t_range_item), KBOOL("keyed"));
TABLE(a_ip_range, "ip_range", KVS, KOBJS("ranges", t_ip_range_item), KBOOL("keyed"));
TABLE(a_geo_distance, "geo_distance", KFLD("field"), KPOINT("origin"), KOBJS("ranges", t_range_item), KSTR("unit"),
      KSTR("distance_type"), KBOOL("keyed"));
TABLE(a_geo_grid, "geo grid", KFLD("field"), KV("precision"), KFN("bounds", dsl_fn_geo_bounds), KBKT("size"),
      KBKT("shard_size"));
TABLE(a_filters, "filters", KQMAP("filters"), KBOOL("other_bucket"), KSTR("other_bucket_key"), KBOOL("keyed"));
TABLE(a_adjacency, "adjacency_matrix", KQMAP("filters"), KSTR("separator"));
TABLE(a_vs, "aggregation", KVS);
TABLE(a_nested, "nested", KPATH("path"));
TABLE(a_join, "children", KSTR("type"));
TABLE(a_sampler, "sampler", KUINT("shard_size"));
TABLE(a_div_sampler, "diversified_sampler", KVS, KUINT("shard_size"), KUINT("max_docs_per_value"),
      KSTR("execution_hint"));
TABLE(a_composite, "composite", KFN("sources", dsl_fn_composite_sources), KBKT("size"), KFN("after", dsl_fn_after));
TABLE(a_ip_prefix, "ip_prefix", KFLD("field"), KUINT("prefix_length"), KBOOL("is_ipv6"), KBOOL("append_prefix_length"),
      KBOOL("keyed"), KUINT("min_doc_count"));
TABLE(a_cardinality, "cardinality", KVS, KUINT("precision_threshold"), KSTR("execution_hint"));
TABLE(a_ext_stats, "extended_stats", KVS, KNUM("sigma"));
TABLE(a_mad, "median_absolute_deviation", KVS, KNUM("compression"));
TABLE(a_percentiles, "percentiles", KVS, KVALS("percents"), KBOOL("keyed"), KOBJ("tdigest", t_tdigest),
      KOBJ("hdr", t_hdr));
TABLE(a_percentile_ranks, "percentile_ranks", KVS, KVALS("values"), KBOOL("keyed"), KOBJ("tdigest", t_tdigest),
      KOBJ("hdr", t_hdr));
TABLE(a_boxplot, "boxplot", KVS, KNUM("compression"), KSTR("execution_hint"));
TABLE(a_string_stats, "string_stats", KVS, KBOOL("show_distribution"));
TABLE(a_geo_bounds, "geo_bounds", KVS, KBOOL("wrap_longitude"));
TABLE(a_matrix_stats, "matrix_stats", KFLDS("fields"), KSTR("mode"), KFMAP("missing"));
TABLE(a_weighted_avg, "weighted_avg", KOBJ("value", t_mv_source), KOBJ("weight", t_mv_source), KSTR("format"),
      KSTR("value_type"));
TABLE(a_top_metrics, "top_metrics", KOBJANY("metrics", t_tm_metric), KFN("sort", dsl_fn_sort),
      KFN("size", dsl_fn_hits_size));
TABLE(a_rate, "rate", KVS, KSTR("unit"), KSTR("mode"));
TABLE(a_t_test, "t_test", KOBJ("a", t_tt_pop), KOBJ("b", t_tt_pop), KSTR("type"));
#define KBP KSTR("buckets_path"), KSTR("gap_policy"), KSTR("format")
TABLE(p_bucket, "pipeline aggregation", KBP);
TABLE(p_ext_stats_bucket, "extended_stats_bucket", KBP, KNUM("sigma"));
TABLE(p_percentiles_bucket, "percentiles_bucket", KBP, KVALS("percents"), KBOOL("keyed"));
TABLE(p_cumulative, "cumulative_sum", KSTR("buckets_path"), KSTR("format"));
TABLE(p_derivative, "derivative", KBP, KSTR("unit"));
TABLE(p_serial_diff, "serial_diff", KBP, KUINT("lag"));
TABLE(p_bucket_sort, "bucket_sort", KFN("sort", dsl_fn_bucket_sort), KUINT("from"), KUINT("size"), KSTR("gap_policy"));
TABLE(p_normalize, "normalize", KSTR("buckets_path"), KSTR("method"), KSTR("format"));
TABLE(p_moving_percentiles, "moving_percentiles", KSTR("buckets_path"), KUINT("window"), KUINT("shift"));

static const struct dsl_atype dsl_aggregations[] = {
    {"terms", &t_a_terms, E_SIZE, 10},
    {"significant_terms", &t_a_sig_terms, E_SIZE, 10},
    {"significant_text", &t_a_sig_text, E_SIZE, 10},
    {"rare_terms", &t_a_rare_terms, E_UNBOUNDED, 0},
    {"multi_terms", &t_a_multi_terms, E_SIZE, 10},
    {"histogram", &t_a_histogram, E_HISTO, 0},
    {"date_histogram", &t_a_date_histogram, E_DHISTO, 0},
    {"auto_date_histogram", &t_a_auto_date_histogram, E_BUCKETS, 10},
    {"variable_width_histogram", &t_a_vw_histogram, E_BUCKETS, 10},
    {"range", &t_a_range, E_RANGES, 0},
    {"date_range", &t_a_date_range, E_RANGES, 0},
    {"ip_range", &t_a_ip_range, E_RANGES, 0},
    {"geo_distance", &t_a_geo_distance, E_RANGES, 0},
    {"geohash_grid", &t_a_geo_grid, E_SIZE, 10000},
    {"geotile_grid", &t_a_geo_grid, E_SIZE, 10000},
    {"geohex_grid", &t_a_geo_grid, E_SIZE, 10000},
    {"filter", NULL, E_ONE, 0},
    {"filters", &t_a_filters, E_FILTERS, 0},
    {"adjacency_matrix", &t_a_adjacency, E_ADJ, 0},
    {"missing", &t_a_vs, E_ONE, 0},
    {"nested", &t_a_nested, E_ONE, 0},
    {"reverse_nested", &t_a_nested, E_ONE, 0},
    {"children", &t_a_join, E_ONE, 0},
    {"parent", &t_a_join, E_ONE, 0},
    {"global", &t_empty, E_ONE, 0},
    {"sampler", &t_a_sampler, E_ONE, 0},
    {"diversified_sampler", &t_a_div_sampler, E_ONE, 0},
    {"composite", &t_a_composite, E_SIZE, 10},
    {"ip_prefix", &t_a_ip_prefix, E_UNBOUNDED, 0},
    {"avg", &t_a_vs, E_METRIC, 0},
    {"sum", &t_a_vs, E_METRIC, 0},
    {"min", &t_a_vs, E_METRIC, 0},
    {"max", &t_a_vs, E_METRIC, 0},
    {"value_count", &t_a_vs, E_METRIC, 0},
    {"stats", &t_a_vs, E_METRIC, 0},
    {"geo_centroid", &t_a_vs, E_METRIC, 0},
    {"cardinality", &t_a_cardinality, E_METRIC, 0},
    {"extended_stats", &t_a_ext_stats, E_METRIC, 0},
    {"median_absolute_deviation", &t_a_mad, E_METRIC, 0},
    {"percentiles", &t_a_percentiles, E_METRIC, 0},
    {"percentile_ranks", &t_a_percentile_ranks, E_METRIC, 0},
    {"boxplot", &t_a_boxplot, E_METRIC, 0},
    {"string_stats", &t_a_string_stats, E_METRIC, 0},
    {"geo_bounds", &t_a_geo_bounds, E_METRIC, 0},
    {"matrix_stats", &t_a_matrix_stats, E_METRIC, 0},
    {"weighted_avg", &t_a_weighted_avg, E_METRIC, 0},
    {"top_hits", &t_top_hits, E_METRIC, 0}, /* a hits window: dsl_hits() */
    {"top_metrics", &t_a_top_metrics, E_METRIC, 0},
    {"rate", &t_a_rate, E_METRIC, 0},
    {"t_test", &t_a_t_test, E_METRIC, 0},
    {"avg_bucket", &t_p_bucket, E_METRIC, 0},
    {"max_bucket", &t_p_bucket, E_METRIC, 0},
    {"min_bucket", &t_p_bucket, E_METRIC, 0},
    {"sum_bucket", &t_p_bucket, E_METRIC, 0},
    {"stats_bucket", &t_p_bucket, E_METRIC, 0},
    {"extended_stats_bucket", &t_p_ext_stats_bucket, E_METRIC, 0},
    {"percentiles_bucket", &t_p_percentiles_bucket, E_METRIC, 0},
    {"cumulative_sum", &t_p_cumulative, E_METRIC, 0},
    {"cumulative_cardinality", &t_p_cumulative, E_METRIC, 0},
    {"derivative", &t_p_derivative, E_METRIC, 0},
    {"serial_diff", &t_p_serial_diff, E_METRIC, 0},
    {"bucket_sort", &t_p_bucket_sort, E_METRIC, 0},
    {"normalize", &t_p_normalize, E_METRIC, 0},
    {"moving_percentiles", &t_p_moving_percentiles, E_METRIC, 0},
};

/* top_metrics' size: hits, like a search's */
static int
dsl_fn_hits_size(struct dsl_walk *w, json_t *v, json_t *parent)
{
	return dsl_uint(w, v, "size", w->p->max_size, NULL);
}

/* terms include/exclude: a regular expression, values, or a partition */
TABLE(partition, "include", KUINT("partition"), KUINT("num_partitions"));

static int
dsl_fn_include(struct dsl_walk *w, json_t *v, json_t *parent)
{
	static const struct dsl_key values = KVALS("include");

	if (json_is_object(v))
		return dsl_keys(w, v, &t_partition);
	return dsl_value(w, &values, v, parent, "include");
}

/* {name: value}, or an array of such objects: names the client chose
 * (bucket paths, composite sources), values only. */
static int
dsl_name_values(struct dsl_walk *w, json_t *v, const char *name, int list)
{
	const char *k;
	json_t *c;
	size_t i, saved;

	if (list && json_is_array(v)) {
		json_array_foreach (v, i, c) {
			saved = dsl_push_idx(w, i);
			if (dsl_name_values(w, c, name, 0) != 0)
				return DSL_REFUSED;
			dsl_pop(w, saved);
		}
		return 0;
	}
	if (!json_is_object(v))
		return dsl_bad(w, v, name, "an object");
	dsl_mark(w, v, DSL_ROLE_NAMES);
	json_object_foreach (v, k, c) {
		saved = dsl_push(w, k);
		if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		if (!dsl_scalar(c))
			return dsl_bad(w, c, k, "a single value");
		dsl_pop(w, saved);
	}
	return 0;
}

/* a bucket order: {"_count": "asc"}, {"agg.value": "desc"}, or an array */
static int
dsl_fn_order(struct dsl_walk *w, json_t *v, json_t *parent)
{
	return dsl_name_values(w, v, "order", 1);
}

/* composite's after: {source name: value} */
static int
dsl_fn_after(struct dsl_walk *w, json_t *v, json_t *parent)
{
	return dsl_name_values(w, v, "after", 0);
}

/* a geo grid's bounds: a bounding box or WKT */
static int
dsl_fn_geo_bounds(struct dsl_walk *w, json_t *v, json_t *parent)
{
	return json_is_string(v) ? 0 : dsl_keys(w, v, &t_q_geo_bbox_field);
}

/* composite sources: [{"name": {"terms"|"histogram"|...: {...}}}, ...] */
TABLE(cs_terms, "terms", KFLD("field"), KBOOL("missing_bucket"), KSTR("missing_order"), KSTR("order"),
      KSTR("value_type"), KSTR("format"));
TABLE(cs_histogram, "histogram", KFLD("field"), KBOOL("missing_bucket"), KSTR("missing_order"), KSTR("order"),
      KSTR("value_type"), KSTR("format"), KNUM("interval"));
TABLE(cs_date_histogram, "date_histogram", KFLD("field"), KBOOL("missing_bucket"), KSTR("missing_order"), KSTR("order"),
      KSTR("value_type"), KSTR("format"), KSTR("calendar_interval"), KSTR("fixed_interval"), KV("interval"),
      KSTR("time_zone"), KV("offset"));
TABLE(cs_geotile, "geotile_grid", KFLD("field"), KBOOL("missing_bucket"), KSTR("missing_order"), KSTR("order"),
      KV("precision"), KFN("bounds", dsl_fn_geo_bounds));
TABLE(cs_source, "composite source", KOBJ("terms", t_cs_terms), KOBJ("histogram", t_cs_histogram),
      KOBJ("date_histogram", t_cs_date_histogram), KOBJ("geotile_grid", t_cs_geotile));

static int
dsl_fn_composite_sources(struct dsl_walk *w, json_t *v, json_t *parent)
{
	const char *name;
	json_t *c, *src;
	size_t i, saved, s2;

	if (!json_is_array(v))
		return dsl_bad(w, v, "sources", "an array");
	json_array_foreach (v, i, c) {
		saved = dsl_push_idx(w, i);
		if (!json_is_object(c) || json_object_size(c) != 1)
			return dsl_fail(w, "a composite source must be an object with one name");
		dsl_mark(w, c, DSL_ROLE_NAMES);
		json_object_foreach (c, name, src) {
			s2 = dsl_push(w, name);
			if (dsl_keys(w, src, &t_cs_source) != 0)
				return DSL_REFUSED;
			if (json_object_size(src) != 1)
				return dsl_fail(w, "a composite source must have exactly one type");
			dsl_pop(w, s2);
		}
		dsl_pop(w, saved);
	}
	return 0;
}

/* bucket_sort sorts buckets by their paths ("_key", "_count", "agg.value"):
 * names, not fields. */
static const struct dsl_key k_bucket_order[] = {KSTR("order"), KEND};
static const struct dsl_table t_bucket_order = {"bucket_sort", k_bucket_order};

static int
dsl_bucket_sort_one(struct dsl_walk *w, json_t *v)
{
	const char *k;
	json_t *c;
	size_t saved;

	if (json_is_string(v))
		return 0;
	if (!json_is_object(v))
		return dsl_fail(w, "a sort must be a bucket path or an object");
	dsl_mark(w, v, DSL_ROLE_NAMES);
	json_object_foreach (v, k, c) {
		saved = dsl_push(w, k);
		if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		if (!json_is_string(c) && dsl_keys(w, c, &t_bucket_order) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	return 0;
}

static int
dsl_fn_bucket_sort(struct dsl_walk *w, json_t *v, json_t *parent)
{
	return dsl_one_or_each(w, v, dsl_bucket_sort_one);
}

/*
 * Histogram buckets: (max - min) / interval + 1 over hard_bounds, else
 * extended_bounds; without both ends of either, the data decides (and
 * Elasticsearch's own search.max_buckets limits it).  Dates are epoch
 * milliseconds, ISO 8601 dates or now-based date math; calendar units are
 * counted at their shortest (a month as 28 days), date math at its longest,
 * so that the estimate errs high.
 */

#define DSL_DAY_MS 86400000.0

static const struct {
	const char *name, *unit;
	double ms; /* shortest length, for counting buckets */
} dsl_calendar[] = {
    {"minute", "1m", 60000.0},        {"hour", "1h", 3600000.0},        {"day", "1d", DSL_DAY_MS},
    {"week", "1w", 7 * DSL_DAY_MS},   {"month", "1M", 28 * DSL_DAY_MS}, {"quarter", "1q", 90 * DSL_DAY_MS},
    {"year", "1y", 365 * DSL_DAY_MS},
};

/* "30s", "1ms", "5m": a fixed interval in milliseconds, or -1. */
static double
dsl_fixed_ms(const char *s)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"nanos", 1e-6}, {"micros", 1e-3}, {"ms", 1},        {"s", 1e3},
	             {"m", 6e4},      {"h", 3.6e6},     {"d", DSL_DAY_MS}};
	char *end;
	double n;

	if (*s < '0' || *s > '9')
		return -1;
	n = strtod(s, &end);
	for (size_t i = 0; i < DSL_NELEM(units); i++)
		if (strcmp(end, units[i].unit) == 0)
			return n * units[i].ms;
	return -1;
}

static double
dsl_calendar_ms(const char *s)
{
	for (size_t i = 0; i < DSL_NELEM(dsl_calendar); i++)
		if (strcmp(s, dsl_calendar[i].name) == 0 || strcmp(s, dsl_calendar[i].unit) == 0)
			return dsl_calendar[i].ms;
	return -1;
}

static int
dsl_positive(struct dsl_walk *w, const char *key, double v)
{
	size_t saved;

	if (v > 0 && isfinite(v))
		return 0;
	saved = dsl_push(w, key);
	dsl_fail(w, "%s must be a positive number", key);
	dsl_pop(w, saved);
	return DSL_REFUSED;
}

static int
dsl_interval(struct dsl_walk *w, json_t *body, int date, double *ms)
{
	json_t *v;

	if (!date) {
		v = json_object_get(body, "interval");
		if (v == NULL)
			return dsl_fail(w, "histogram needs an interval");
		*ms = json_is_number(v)   ? json_number_value(v)
		      : json_is_string(v) ? strtod(json_string_value(v), NULL)
		                          : -1;
		return dsl_positive(w, "interval", *ms);
	}
	if ((v = json_object_get(body, "calendar_interval")) != NULL) {
		*ms = dsl_calendar_ms(json_string_value(v));
		return dsl_positive(w, "calendar_interval", *ms);
	}
	if ((v = json_object_get(body, "fixed_interval")) != NULL) {
		*ms = dsl_fixed_ms(json_string_value(v));
		return dsl_positive(w, "fixed_interval", *ms);
	}
	if ((v = json_object_get(body, "interval")) != NULL) {
		*ms = json_is_number(v)   ? json_number_value(v)
		      : json_is_string(v) ? dsl_calendar_ms(json_string_value(v))
		                          : -1;
		if (json_is_string(v) && *ms < 0)
			*ms = dsl_fixed_ms(json_string_value(v));
		return dsl_positive(w, "interval", *ms);
	}
	return dsl_fail(w, "date_histogram needs calendar_interval or fixed_interval");
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's). */
static double
dsl_days(long y, unsigned m, unsigned d)
{
	long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (double)(era * 146097 + (long)doe - 719468);
}

/* N digits at *S into *OUT; 0 if there were exactly N. */
static int
dsl_digits(const char **s, int n, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++, (*s)++) {
		if (**s < '0' || **s > '9')
			return -1;
		v = v * 10 + (unsigned)(**s - '0');
	}
	*out = v;
	return 0;
}

/* yyyy[-MM[-dd[(T| )HH[:mm[:ss[.SSS]]]]]][Z|(+|-)HH[:]mm], whole. */
static int
dsl_iso_ms(const char *s, const char *end, double *ms)
{
	unsigned y, mo = 1, d = 1, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
	double frac = 0;
	int sign = 0;

	if (dsl_digits(&s, 4, &y) != 0)
		return -1;
	if (s < end && *s == '-' && (s++, dsl_digits(&s, 2, &mo) != 0 || mo < 1 || mo > 12))
		return -1;
	if (s < end && *s == '-' && (s++, dsl_digits(&s, 2, &d) != 0 || d < 1 || d > 31))
		return -1;
	if (s < end && (*s == 'T' || *s == ' ') && (s++, dsl_digits(&s, 2, &h) != 0 || h > 24))
		return -1;
	if (s < end && *s == ':' && (s++, dsl_digits(&s, 2, &mi) != 0 || mi > 59))
		return -1;
	if (s < end && *s == ':' && (s++, dsl_digits(&s, 2, &sec) != 0 || sec > 60))
		return -1;
	if (s < end && (*s == '.' || *s == ',')) {
		double scale = 0.1;

		for (s++; s < end && *s >= '0' && *s <= '9'; s++, scale /= 10)
			frac += (*s - '0') * scale;
	}
	if (s < end && *s == 'Z')
		s++;
	else if (s < end && (*s == '+' || *s == '-')) {
		sign = *s++ == '-' ? -1 : 1;
		if (dsl_digits(&s, 2, &oh) != 0)
			return -1;
		if (s < end && *s == ':')
			s++;
		if (dsl_digits(&s, 2, &om) != 0)
			return -1;
	}
	if (s != end)
		return -1;
	*ms = (dsl_days((long)y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + sec + frac) * 1000.0 -
	      sign * (oh * 3600.0 + om * 60.0) * 1000.0;
	return 0;
}

/* Date math after "now" or "date||": +1d, -2h, /d; units at their
 * longest.  *SLACK gets how far a rounding may move the date. */
static int
dsl_date_math(const char *s, double *ms, double *slack)
{
	static const char units[] = "yMwdhHms";
	static const double unit_ms[] = {
	    366 * DSL_DAY_MS, 31 * DSL_DAY_MS, 7 * DSL_DAY_MS, DSL_DAY_MS, 3.6e6, 3.6e6, 6e4, 1e3};
	const char *u;
	double n;
	char op;

	while (*s != '\0') {
		op = *s++;
		n = 1;
		if (op == '+' || op == '-') {
			if (*s < '0' || *s > '9')
				return -1;
			for (n = 0; *s >= '0' && *s <= '9'; s++)
				n = n * 10 + (*s - '0');
		} else if (op != '/')
			return -1;
		if (*s == '\0' || (u = strchr(units, *s)) == NULL)
			return -1;
		s++;
		if (op == '/')
			*slack += unit_ms[u - units];
		else
			*ms += (op == '+' ? n : -n) * unit_ms[u - units];
	}
	return 0;
}

/* A date bound: a number (epoch ms), or a string in a format esgate
 * reads: epoch milliseconds (seconds if FORMAT says epoch_second), ISO
 * 8601, now-based math. */
static int
dsl_date_bound(struct dsl_walk *w, json_t *v, const char *format, double *ms, double *slack)
{
	const char *s, *bar, *end, *p;

	if (json_is_number(v)) {
		*ms = json_number_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	if (strncmp(s, "now", 3) == 0) {
		if (w->now_ms == 0)
			w->now_ms = (double)time(NULL) * 1000.0;
		*ms = w->now_ms;
		return dsl_date_math(s + 3, ms, slack);
	}
	bar = strstr(s, "||");
	end = bar != NULL ? bar : s + strlen(s);
	for (p = s + (*s == '-'); p < end && *p >= '0' && *p <= '9'; p++)
		;
	if (p == end && end > s + (*s == '-')) {
		*ms = strtod(s, NULL) * (format != NULL && strstr(format, "epoch_second") != NULL ? 1000.0 : 1.0);
	} else if (format != NULL && strstr(format, "date") == NULL && strstr(format, "yyyy-MM-dd") == NULL) {
		return -1; /* a format of its own: esgate cannot tell what the text means */
	} else if (dsl_iso_ms(s, end, ms) != 0)
		return -1;
	return bar != NULL ? dsl_date_math(bar + 2, ms, slack) : 0;
}

static int
dsl_bound(struct dsl_walk *w, json_t *body, json_t *b, const char *key, int date, double *out, double *slack)
{
	json_t *v = json_object_get(b, key), *fmt = json_object_get(body, "format");
	size_t saved = dsl_push(w, key);
	int rc;

	if (date)
		rc = dsl_date_bound(w, v, json_is_string(fmt) ? json_string_value(fmt) : NULL, out, slack);
	else if (json_is_number(v))
		*out = json_number_value(v), rc = 0;
	else
		rc = json_is_string(v) && (*out = strtod(json_string_value(v), NULL), isfinite(*out)) ? 0 : -1;
	if (rc != 0 || !isfinite(*out)) {
		dsl_fail(w, "cannot read this %s",
		         date ? "date (use epoch milliseconds, ISO 8601 or now-based math)" : "number");
		return DSL_REFUSED;
	}
	dsl_pop(w, saved);
	return 0;
}

static int
dsl_histo_buckets(struct dsl_walk *w, json_t *body, int date, uint64_t *n)
{
	const char *which = "hard_bounds";
	json_t *b = json_object_get(body, which);
	double interval = 0, lo = 0, hi = 0, slack = 0, count;
	size_t saved;

	if (dsl_interval(w, body, date, &interval) != 0)
		return DSL_REFUSED;
	if (b == NULL)
		b = json_object_get(body, which = "extended_bounds");
	if (b == NULL || json_object_get(b, "min") == NULL || json_object_get(b, "max") == NULL) {
		*n = DSL_UNBOUNDED;
		return 0;
	}
	saved = dsl_push(w, which);
	if (dsl_bound(w, body, b, "min", date, &lo, &slack) != 0 ||
	    dsl_bound(w, body, b, "max", date, &hi, &slack) != 0)
		return DSL_REFUSED;
	dsl_pop(w, saved);
	count = hi + slack > lo ? ceil((hi + slack - lo) / interval) + 1 : 1;
	*n = !(count < (double)DSL_SAT) ? DSL_SAT : (uint64_t)count;
	return 0;
}

static uint64_t
dsl_sat_add(uint64_t a, uint64_t b)
{
	return a >= DSL_SAT - b || b >= DSL_SAT ? DSL_SAT : a + b;
}

static uint64_t
dsl_sat_mul(uint64_t a, uint64_t b)
{
	if (a == 0 || b == 0)
		return 0;
	return a >= DSL_SAT / b ? DSL_SAT : a * b;
}

/* How many buckets one aggregation of type AT with body BODY makes. */
static int
dsl_agg_buckets(struct dsl_walk *w, const struct dsl_atype *at, json_t *body, uint64_t *n)
{
	json_t *v;
	uint64_t k;

	switch (at->est) {
	case E_METRIC: *n = 0; return 0;
	case E_SIZE:
	case E_BUCKETS:
		v = json_object_get(body, at->est == E_SIZE ? "size" : "buckets");
		*n = json_is_integer(v) ? (uint64_t)json_integer_value(v) : at->dflt;
		return 0;
	case E_RANGES: *n = json_array_size(json_object_get(body, "ranges")); return 0;
	case E_FILTERS:
	case E_ADJ:
		v = json_object_get(body, "filters");
		k = json_is_object(v) ? json_object_size(v) : json_array_size(v);
		if (at->est == E_ADJ)
			*n = dsl_sat_add(k, dsl_sat_mul(k, k > 0 ? k - 1 : 0) / 2);
		else
			*n = k + (json_is_true(json_object_get(body, "other_bucket")) ||
			          json_object_get(body, "other_bucket_key") != NULL);
		return 0;
	case E_HISTO:
	case E_DHISTO: return dsl_histo_buckets(w, body, at->est == E_DHISTO, n);
	case E_UNBOUNDED: *n = DSL_UNBOUNDED; return 0;
	default: *n = 1; return 0;
	}
}

static const struct dsl_atype *
dsl_atype_find(const char *name)
{
	for (size_t i = 0; i < DSL_NELEM(dsl_aggregations); i++)
		if (strcmp(dsl_aggregations[i].name, name) == 0)
			return &dsl_aggregations[i];
	return NULL;
}

static int dsl_aggs(struct dsl_walk *, json_t *, unsigned, uint64_t *);

/* One aggregation definition: {type: body, "aggs": {...}, "meta": {...}};
 * *BUCKETS gets what it makes, its sub-aggregations' included. */
static int
dsl_agg(struct dsl_walk *w, json_t *def, unsigned depth, uint64_t *buckets)
{
	const struct dsl_atype *at;
	const char *k, *type = NULL;
	json_t *c, *body = NULL, *sub = NULL;
	uint64_t n = 0, subn = 0;
	size_t saved;

	if (!json_is_object(def))
		return dsl_fail(w, "an aggregation must be an object");
	dsl_mark(w, def, DSL_ROLE_DSL);
	json_object_foreach (def, k, c) {
		saved = dsl_push(w, k);
		if (strcmp(k, "aggs") == 0 || strcmp(k, "aggregations") == 0) {
			if (sub != NULL)
				return dsl_fail(w, "aggs and aggregations cannot be used together");
			sub = c;
		} else if (strcmp(k, "meta") == 0) {
			if (dsl_data(w, c) != 0)
				return DSL_REFUSED;
		} else if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		else if (type != NULL)
			return dsl_fail(w, "an aggregation must have exactly one type");
		else if (!dsl_in(w->p->aggs, w->p->naggs, k))
			return dsl_fail_key(w, "aggregation type ", k, " is not allowed");
		else {
			type = k;
			body = c;
		}
		dsl_pop(w, saved);
	}
	if (type == NULL)
		return dsl_fail(w, "an aggregation must have a type");
	saved = dsl_push(w, type);
	if ((at = dsl_atype_find(type)) == NULL)
		return dsl_fail_key(w, "aggregation type ", type, " is not known to the firewall");
	if (at->body == NULL          ? dsl_query(w, body) != 0
	    : at->body == &t_top_hits ? dsl_hits(w, body, &t_top_hits) != 0
	                              : dsl_keys_as(w, body, at->body, at->name) != 0)
		return DSL_REFUSED;
	if (dsl_agg_buckets(w, at, body, &n) != 0)
		return DSL_REFUSED;
	if (n > w->p->max_buckets)
		return dsl_fail(w, "%s may make up to %llu buckets, more than max_buckets %llu", at->name,
		                (unsigned long long)n, (unsigned long long)w->p->max_buckets);
	dsl_pop(w, saved);
	if (sub != NULL) {
		saved = dsl_push(w, json_object_get(def, "aggs") == sub ? "aggs" : "aggregations");
		if (at->est == E_METRIC)
			return dsl_fail(w, "%s cannot have sub-aggregations", at->name);
		if (dsl_aggs(w, sub, depth + 1, &subn) != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	*buckets = at->est == E_METRIC ? 0 : dsl_sat_mul(n, dsl_sat_add(1, subn));
	return 0;
}

static int
dsl_aggs(struct dsl_walk *w, json_t *aggs, unsigned depth, uint64_t *buckets)
{
	const char *name;
	json_t *def;
	uint64_t n = 0;
	size_t saved;

	*buckets = 0;
	if (!json_is_object(aggs))
		return dsl_fail(w, "aggregations must be an object");
	if (depth > w->p->max_agg_depth)
		return dsl_fail(w, "aggregation depth %u exceeds %u", depth, w->p->max_agg_depth);
	dsl_mark(w, aggs, DSL_ROLE_NAMES);
	json_object_foreach (aggs, name, def) {
		saved = dsl_push(w, name);
		/* a name is only a name to Elasticsearch, but the rule stays
		 * simple: those keys appear nowhere (found by fuzz_dsl) */
		if (dsl_forbidden_key(name))
			return dsl_fail_key(w, "aggregation name ", name, " is not allowed");
		if (++w->naggs > w->p->max_aggs)
			return dsl_fail(w, "more than max_aggs %llu aggregations", (unsigned long long)w->p->max_aggs);
		if (dsl_agg(w, def, depth, &n) != 0)
			return DSL_REFUSED;
		*buckets = dsl_sat_add(*buckets, n);
		dsl_pop(w, saved);
	}
	return 0;
}

static int
dsl_fn_aggs(struct dsl_walk *w, json_t *v, json_t *parent)
{
	uint64_t buckets;

	if (dsl_aggs(w, v, 1, &buckets) != 0)
		return DSL_REFUSED;
	if (buckets > w->p->max_buckets)
		return dsl_fail(w, "aggregations may make up to %llu buckets, more than max_buckets %llu",
		                (unsigned long long)buckets, (unsigned long long)w->p->max_buckets);
	return 0;
}

/*
 * A search body.
 */

static int
dsl_fn_track_total_hits(struct dsl_walk *w, json_t *v, json_t *parent)
{
	if (!json_is_boolean(v) && dsl_uint(w, v, "track_total_hits", UINT32_MAX, NULL) != 0)
		return dsl_fail(w, "track_total_hits must be a boolean or a non-negative integer");
	return 0;
}

static int
dsl_fn_search_after(struct dsl_walk *w, json_t *v, json_t *parent)
{
	json_t *e;
	size_t i;

	if (!json_is_array(v))
		return dsl_fail(w, "search_after must be an array");
	json_array_foreach (v, i, e)
		if (!dsl_scalar(e))
			return dsl_fail(w, "search_after must be an array of values");
	return 0;
}

static int
dsl_fn_pit(struct dsl_walk *w, json_t *v, json_t *parent)
{
	const char *k;
	json_t *c;

	if (!w->p->allow_pit)
		return dsl_fail(w, "pit is not allowed");
	if (!json_is_object(v) || !json_is_string(json_object_get(v, "id")))
		return dsl_fail(w, "pit must be an object with an id");
	dsl_mark(w, v, DSL_ROLE_DSL);
	json_object_foreach (v, k, c)
		if ((strcmp(k, "id") != 0 && strcmp(k, "keep_alive") != 0) || !json_is_string(c))
			return dsl_fail_key(w, "unknown key ", k, " in pit");
	return 0;
}

TABLE(collapse, "collapse", KFLD("field"), KFN("inner_hits", dsl_fn_collapse_inner),
      KUINT("max_concurrent_group_searches"));

static const struct dsl_key k_search[] = {
    KQ("query"),
    KQ("post_filter"),
    KSIZE("size"),
    KFROM("from"),
    KFN("sort", dsl_fn_sort),
    KFN("_source", dsl_fn_source),
    KFN("fields", dsl_fn_fetch_fields),
    KFN("docvalue_fields", dsl_fn_fetch_fields),
    KFN("stored_fields", dsl_fn_stored_fields),
    KFN("aggs", dsl_fn_aggs),
    KFN("aggregations", dsl_fn_aggs),
    KFN("highlight", dsl_fn_highlight),
    KFN("track_total_hits", dsl_fn_track_total_hits),
    KSTR("timeout"),
    KFN("search_after", dsl_fn_search_after),
    KNUM("min_score"),
    KUINT("terminate_after"),
    KFALSE("explain"),
    KBOOL("version"),
    KBOOL("seq_no_primary_term"),
    KBOOL("track_scores"),
    KFN("pit", dsl_fn_pit),
    KOBJ("collapse", t_collapse),
    KEND,
};

/* What one search costs and returns. */
struct dsl_search_cost {
	uint64_t searches, from, size;
};

/* A _search (or, COUNT, a _count) body ROOT.  URL is the hits window the
 * query string gave (NULL for an _msearch line): it wins over the body's,
 * as in Elasticsearch, and from + size is checked on what results. */
static int
dsl_search(struct dsl_walk *w, json_t *root, int count, const struct dsl_window *url, struct dsl_search_cost *cost)
{
	struct dsl_window win = {0};
	const struct dsl_key *kd;
	const char *k;
	json_t *c;
	size_t saved;
	void *tmp;

	if (!json_is_object(root))
		return dsl_fail(w, "the body must be a JSON object");
	dsl_mark(w, root, DSL_ROLE_DSL);
	if (json_object_get(root, "aggs") != NULL && json_object_get(root, "aggregations") != NULL) {
		dsl_push(w, "aggregations");
		return dsl_fail(w, "aggs and aggregations cannot be used together");
	}
	w->win = &win;
	w->naggs = w->collapse_inner = 0;
	json_object_foreach_safe (root, tmp, k, c) {
		saved = dsl_push(w, k);
		if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		if ((count && strcmp(k, "query") != 0) || (kd = dsl_find(k_search, k)) == NULL)
			return dsl_fail_key(w, "unknown or forbidden key ", k, "");
		if (dsl_value(w, kd, c, root, "search") != 0)
			return DSL_REFUSED;
		dsl_pop(w, saved);
	}
	cost->searches = 1;
	if (count)
		return 0;
	cost->size = url != NULL && url->has_size ? url->size : win.has_size ? win.size : DSL_SIZE_DEFAULT;
	cost->from = url != NULL && url->has_from ? url->from : win.has_from ? win.from : 0;
	if (cost->from + cost->size > w->p->max_from) {
		if (url != NULL && (url->has_from || url->has_size))
			return dsl_fail(w, "from + size must be at most %llu (from %llu, size %llu)",
			                (unsigned long long)w->p->max_from, (unsigned long long)cost->from,
			                (unsigned long long)cost->size);
		dsl_push(w, win.has_from ? "from" : "size");
		return dsl_fail(w, "from + size must be at most %llu", (unsigned long long)w->p->max_from);
	}
	/* each collapse inner_hits is one more search per hit returned */
	cost->searches = dsl_sat_add(1, dsl_sat_mul(w->collapse_inner, cost->size));
	if (cost->searches > w->p->max_searches) {
		dsl_push(w, "collapse");
		return dsl_fail(w, "collapse inner_hits make %llu searches (one per hit), more than max_searches %llu",
		                (unsigned long long)cost->searches, (unsigned long long)w->p->max_searches);
	}
	/* every field unless narrowed: a search without _source returns all */
	return dsl_narrow(w, root, "_source");
}

static int
dsl_expand_wildcards_ok(const char *v)
{
	/* hidden and system indices stay out of reach */
	return strstr(v, "hidden") == NULL && strstr(v, "all") == NULL;
}

static int
dsl_msearch_header(struct dsl_walk *w, json_t *h, const char *url_index)
{
	static const char *const keys[] = {
	    "index",
	    "preference",
	    "routing",
	    "request_cache",
	    "search_type",
	    "ignore_unavailable",
	    "allow_no_indices",
	    "expand_wildcards",
	    "allow_partial_search_results",
	};
	const char *k;
	json_t *c;
	size_t saved;

	if (!json_is_object(h))
		return dsl_fail(w, "an msearch header must be a JSON object");
	dsl_mark(w, h, DSL_ROLE_DSL);
	json_object_foreach (h, k, c) {
		saved = dsl_push(w, k);
		if (!DSL_IN_STATIC(keys, k))
			return dsl_fail_key(w, "unknown or forbidden key ", k, "");
		if (!dsl_scalar(c) && strcmp(k, "index") != 0)
			return dsl_fail_key(w, "", k, " must be a scalar");
		if (strcmp(k, "index") == 0) {
			if (url_index == NULL)
				return dsl_fail(w, "index is not allowed in an msearch header here");
			if (!json_is_string(c) || strcmp(json_string_value(c), url_index) != 0)
				return dsl_fail(w, "index must be absent or the URL's index");
		}
		if (strcmp(k, "expand_wildcards") == 0 &&
		    (!json_is_string(c) || !dsl_expand_wildcards_ok(json_string_value(c))))
			return dsl_fail(w, "expand_wildcards must not include hidden or all");
		dsl_pop(w, saved);
	}
	return 0;
}

/* A growing output buffer, always NUL-terminated; doubled as it grows, so
 * an _msearch of many lines is not copied once per line. */
struct dsl_buf {
	char *s;
	size_t len, cap;
};

static int
dsl_buf_add(const char *p, size_t n, void *arg)
{
	struct dsl_buf *b = arg;
	size_t cap;
	char *ns;

	if (b->len + n + 2 > b->cap) {
		for (cap = b->cap > 0 ? b->cap : 256; cap < b->len + n + 2; cap *= 2)
			;
		if ((ns = realloc(b->s, cap)) == NULL)
			return -1;
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

/* J, compact, and a '\n' if NL, onto B; after the trace has seen it. */
static int
dsl_emit(struct dsl_walk *w, json_t *j, struct dsl_buf *b, int nl)
{
	if (w->trace != NULL && w->trace->document != NULL)
		w->trace->document(w->trace->arg, j);
	if (json_dump_callback(j, dsl_buf_add, b, JSON_COMPACT) != 0 || (nl && dsl_buf_add("\n", 1, b) != 0))
		return dsl_fail(w, "out of memory");
	return 0;
}

static json_t *
dsl_parse(struct dsl_walk *w, const char *s, size_t len)
{
	json_error_t jerr;
	json_t *j;

	/* duplicate keys: the upstream might take the other one */
	if ((j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		char t[DSL_KEY_SHOWN + 1];

		dsl_clean(t, sizeof(t), jerr.text);
		dsl_fail(w, "invalid JSON: %s", t);
	}
	return j;
}

int
dsl_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

/* Deeper than MAX?  Read on the bytes, before jansson recurses into them. */
static int
dsl_too_deep(const char *s, size_t len, uint64_t max)
{
	uint64_t depth = 0;
	int in_string = 0;

	for (size_t i = 0; i < len; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = 0;
		} else if (s[i] == '"') {
			in_string = 1;
		} else if (s[i] == '{' || s[i] == '[') {
			if (++depth > max)
				return 1;
		} else if ((s[i] == '}' || s[i] == ']') && depth > 0) {
			depth--;
		}
	}
	return 0;
}

static int
dsl_msearch(struct dsl_walk *w, const char *body, size_t len, const char *url_index, struct dsl_buf *out,
            uint64_t *searches)
{
	const char *line = body, *end = body + len, *nl;
	size_t lineno = 0, llen;
	struct dsl_search_cost cost;
	int header = 1, rc;
	json_t *j;

	*searches = 0;
	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		llen = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);
		lineno++;
		if (!dsl_blank(line, llen)) {
			if (!header && *searches >= w->p->max_searches) {
				w->plen = w->base = (size_t)snprintf(w->path, sizeof(w->path), "line %zu", lineno);
				return dsl_fail(w, "more than max_searches %llu searches in one _msearch",
				                (unsigned long long)w->p->max_searches);
			}
			w->plen = w->base = (size_t)snprintf(w->path, sizeof(w->path), "line %zu: ", lineno);
			if ((j = dsl_parse(w, line, llen)) == NULL)
				return DSL_REFUSED;
			rc = header ? dsl_msearch_header(w, j, url_index) : dsl_search(w, j, 0, NULL, &cost);
			if (rc == 0)
				rc = dsl_emit(w, j, out, 1);
			json_decref(j);
			if (rc != 0)
				return DSL_REFUSED;
			if (!header && (*searches = dsl_sat_add(*searches, cost.searches)) > w->p->max_searches) {
				w->plen = w->base = (size_t)snprintf(w->path, sizeof(w->path), "line %zu", lineno);
				return dsl_fail(w, "more than max_searches %llu searches in one _msearch",
				                (unsigned long long)w->p->max_searches);
			}
			header = !header;
		}
		line += llen + 1;
	}
	w->plen = w->base = 0;
	w->path[0] = '\0';
	if (!header)
		return dsl_fail(w, "msearch header on line %zu has no search body", lineno);
	if (*searches == 0)
		return dsl_fail(w, "empty msearch body");
	return 0;
}

/* BODY as MODE, its size and depth first; RES gets the checked body and
 * the costs.  URL: the query string's hits window, or NULL. */
static int
dsl_body(struct dsl_walk *w, const char *body, size_t len, int mode, const char *url_index,
         const struct dsl_window *url, struct dsl_result *res)
{
	struct dsl_search_cost cost = {0};
	struct dsl_buf out = {0};
	json_t *j;
	int rc;

	if (len > w->p->max_bytes) {
		dsl_fail(w, "the body is larger than max_bytes (%llu bytes)", (unsigned long long)w->p->max_bytes);
		return DSL_TOO_LARGE;
	}
	if (dsl_too_deep(body, len, w->p->max_depth))
		return dsl_fail(w, "the body is nested deeper than max_depth %llu",
		                (unsigned long long)w->p->max_depth);
	if (mode == DSL_BODY_MSEARCH) {
		rc = dsl_msearch(w, body, len, url_index, &out, &cost.searches);
	} else {
		if (len == 0 || dsl_blank(body, len))
			j = json_object();
		else if ((j = dsl_parse(w, body, len)) == NULL)
			return DSL_REFUSED;
		if (j == NULL)
			return dsl_fail(w, "out of memory");
		rc = dsl_search(w, j, mode == DSL_BODY_COUNT, url, &cost);
		if (rc == 0)
			rc = dsl_emit(w, j, &out, 0);
		json_decref(j);
	}
	if (rc != 0) {
		free(out.s);
		return DSL_REFUSED;
	}
	res->body = out.s;
	res->len = out.len;
	res->searches = cost.searches;
	res->from = cost.from;
	res->size = cost.size;
	return DSL_OK;
}

int
dsl_check_body(const struct dsl_policy *p, const char *body, size_t len, int mode, const char *url_index, char **out,
               size_t *outlen, char *reason, size_t reasonlen)
{
	struct dsl_walk w = {.p = p, .reason = reason, .reasonlen = reasonlen};
	struct dsl_result res = {0};
	struct dsl_arena_saved saved;
	int rc;

	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	dsl_arena_begin(&saved);
	rc = dsl_body(&w, body, len, mode, url_index, NULL, &res);
	dsl_arena_end(&saved);
	*out = res.body;
	*outlen = res.len;
	return rc;
}

/*
 * Parameters and index expressions.
 */

static int dsl_reason(char *reason, size_t reasonlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
dsl_reason(char *reason, size_t reasonlen, const char *fmt, ...)
{
	va_list ap;

	if (reason != NULL && reasonlen > 0) {
		va_start(ap, fmt);
		vsnprintf(reason, reasonlen, fmt, ap);
		va_end(ap);
	}
	return DSL_REFUSED;
}

static int
dsl_param_uint(const char *v, uint64_t *out)
{
	uint64_t n = 0;

	if (*v == '\0')
		return -1;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	*out = n;
	return 0;
}

/* Each comma-separated field of V against the allow-list; with SORT, a
 * field may end in ":asc" or ":desc". */
static int
dsl_param_fields(const struct dsl_policy *p, const char *name, const char *v, int sort, char *reason, size_t reasonlen)
{
	char f[DSL_KEY_SHOWN + 1], shown[DSL_KEY_SHOWN + 1];
	const char *colon;
	size_t n, fn;

	if (p->source_fields == NULL)
		return 0;
	for (;;) {
		n = strcspn(v, ",");
		fn = n;
		if (sort && (colon = memchr(v, ':', n)) != NULL)
			fn = (size_t)(colon - v);
		if (fn >= sizeof(f))
			return dsl_reason(reason, reasonlen, "%s names a field that is too long", name);
		memcpy(f, v, fn);
		f[fn] = '\0';
		if (!dsl_field_allowed(p, f)) {
			dsl_clean(shown, sizeof(shown), f);
			return dsl_reason(reason, reasonlen, "field %s is not allowed (in %s)", shown, name);
		}
		if (v[n] == '\0')
			return 0;
		v += n + 1;
	}
}

int
dsl_check_param(const struct dsl_policy *p, const char *name, const char *value, char *reason, size_t reasonlen)
{
	uint64_t n;

	if (strcmp(name, "error_trace") == 0)
		return dsl_reason(reason, reasonlen, "error_trace is not allowed");
	if (strncmp(name, "suggest_", 8) == 0)
		return dsl_reason(reason, reasonlen, "%s is not allowed (suggesters are not)",
		                  strlen(name) < 32 ? name : "suggest_*");
	if (strcmp(name, "scroll") == 0 && !p->allow_scroll)
		return dsl_reason(reason, reasonlen, "scroll is not allowed");
	if (strcmp(name, "source") == 0)
		return dsl_reason(reason, reasonlen, "source must be checked as a body");
	if (strcmp(name, "size") == 0 || strcmp(name, "from") == 0 || strcmp(name, "terminate_after") == 0) {
		uint64_t max = name[0] == 's' ? p->max_size : name[0] == 'f' ? p->max_from : UINT32_MAX;

		if (dsl_param_uint(value, &n) != 0)
			return dsl_reason(reason, reasonlen, "%s must be a non-negative integer", name);
		if (n > max)
			return dsl_reason(reason, reasonlen, "%s must be at most %llu", name, (unsigned long long)max);
		return 0;
	}
	if (strcmp(name, "q") == 0) {
		if (!dsl_in(p->queries, p->nqueries, "query_string"))
			return dsl_reason(reason, reasonlen,
			                  "q is not allowed (query type query_string is not allowed)");
		if (p->source_fields != NULL)
			return dsl_reason(reason, reasonlen,
			                  "q is not allowed when fields are restricted (its text can name any field)");
	}
	if (strcmp(name, "explain") == 0 && strcmp(value, "false") != 0)
		return dsl_reason(reason, reasonlen, "explain must be false");
	if (strcmp(name, "expand_wildcards") == 0 && !dsl_expand_wildcards_ok(value))
		return dsl_reason(reason, reasonlen, "expand_wildcards must not include hidden or all");
	if (strcmp(name, "source_content_type") == 0 && strcasecmp(value, "application/json") != 0)
		return dsl_reason(reason, reasonlen, "source_content_type must be application/json");
	if (strcmp(name, "stored_fields") == 0 && strcmp(value, "_none_") != 0)
		return dsl_reason(reason, reasonlen, "stored_fields must be _none_");
	if (strcmp(name, "_source") == 0) {
		if (strcmp(value, "false") == 0)
			return 0;
		if (strcmp(value, "true") == 0 || value[0] == '\0')
			return p->source_fields == NULL
			           ? 0
			           : dsl_reason(reason, reasonlen,
			                        "_source must name the fields (fields are restricted)");
		return dsl_param_fields(p, name, value, 0, reason, reasonlen);
	}
	if (strcmp(name, "_source_includes") == 0 || strcmp(name, "docvalue_fields") == 0 || strcmp(name, "df") == 0)
		return dsl_param_fields(p, name, value, 0, reason, reasonlen);
	if (strcmp(name, "sort") == 0)
		return dsl_param_fields(p, name, value, 1, reason, reasonlen);
	return 0;
}

int
dsl_check_index_expr(const struct dsl_policy *p, const char *index, char *reason, size_t reasonlen)
{
	char shown[DSL_KEY_SHOWN + 1], part[DSL_KEY_SHOWN + 1];
	const char *s = index;
	size_t n;

	for (;;) {
		n = strcspn(s, ",");
		memcpy(part, s, n < DSL_KEY_SHOWN ? n : DSL_KEY_SHOWN);
		part[n < DSL_KEY_SHOWN ? n : DSL_KEY_SHOWN] = '\0';
		dsl_clean(shown, sizeof(shown), part);
		if (n == 0)
			return dsl_reason(reason, reasonlen, "empty index name");
		/* date math first: "<logs-{now/d{yyyy.MM.dd|+12:00}}>" has a ':' */
		if (s[0] == '<') {
			if (!p->allow_date_math)
				return dsl_reason(reason, reasonlen, "date math is not allowed (in %s)", shown);
		} else if (s[0] == '-') {
			if (!p->allow_exclusions)
				return dsl_reason(reason, reasonlen, "index exclusion is not allowed (in %s)", shown);
		} else if (memchr(s, ':', n) != NULL && !p->allow_remote_indices)
			return dsl_reason(reason, reasonlen, "remote index is not allowed (in %s)", shown);
		if (s[n] == '\0')
			return 0;
		s += n + 1;
	}
}

/*
 * The whole request.
 */

static int
dsl_request_body(struct dsl_walk *w, const char *body, size_t len, int mode, const char *index,
                 const struct dsl_window *url, struct dsl_result *res)
{
	struct dsl_arena_saved saved;
	int rc;

	dsl_arena_begin(&saved);
	rc = dsl_body(w, body, len, mode, index, url, res);
	dsl_arena_end(&saved);
	return rc;
}

int
dsl_check_request(const struct dsl_policy *p, int mode, const char *index, const struct dsl_param *params,
                  size_t nparams, const char *body, size_t len, const struct dsl_trace *trace, struct dsl_result *res,
                  char *reason, size_t reasonlen)
{
	struct dsl_walk w = {.p = p, .trace = trace, .reason = reason, .reasonlen = reasonlen};
	struct dsl_window url = {0};
	const struct dsl_param *src = NULL;
	int narrowed = 0, excludes = 0;
	uint64_t n;

	memset(res, 0, sizeof(*res));
	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	if (index != NULL && dsl_check_index_expr(p, index, reason, reasonlen) != 0)
		return DSL_REFUSED;
	for (size_t i = 0; i < nparams; i++) {
		const char *name = params[i].name;

		if (strcmp(name, "source") == 0) {
			if (src != NULL)
				return dsl_reason(reason, reasonlen, "source given twice");
			src = &params[i];
			continue;
		}
		if (dsl_check_param(p, name, params[i].value, reason, reasonlen) != 0)
			return DSL_REFUSED;
		/* a name given twice: the larger value counts */
		if (strcmp(name, "size") == 0 && dsl_param_uint(params[i].value, &n) == 0) {
			url.size = url.has_size && url.size > n ? url.size : n;
			url.has_size = 1;
		} else if (strcmp(name, "from") == 0 && dsl_param_uint(params[i].value, &n) == 0) {
			url.from = url.has_from && url.from > n ? url.from : n;
			url.has_from = 1;
		}
		/* these say what comes back: no narrowing added (stored_fields
		 * may only be _none_, and Elasticsearch refuses a _source
		 * asked for beside it) */
		narrowed |= strcmp(name, "_source") == 0 || strcmp(name, "_source_includes") == 0 ||
		            strcmp(name, "stored_fields") == 0;
		excludes |= strcmp(name, "_source_excludes") == 0;
	}
	/* _source_excludes alone asks for every other field */
	if (excludes && !narrowed && p->source_fields != NULL)
		return dsl_reason(reason, reasonlen,
		                  "_source_excludes needs _source or _source_includes here (fields are restricted)");
	if (src != NULL) {
		/* there but empty: a body source that says nothing is refused,
		 * never replaced by the client's own body */
		if (dsl_blank(src->value, src->len))
			return dsl_reason(reason, reasonlen, "source must be a JSON document, not empty");
		body = src->value;
		len = src->len;
	}
	if (body == NULL || len == 0) {
		if (mode == DSL_BODY_MSEARCH)
			return dsl_reason(reason, reasonlen, "an _msearch request needs a body");
		if (mode == DSL_BODY_SEARCH && p->source_fields != NULL && !narrowed) {
			body = "{}"; /* checked, and narrowed to source_fields */
			len = 2;
		} else {
			res->searches = 1;
			res->size = url.has_size ? url.size : DSL_SIZE_DEFAULT;
			res->from = url.has_from ? url.from : 0;
			if (mode == DSL_BODY_SEARCH && res->from + res->size > p->max_from)
				return dsl_reason(reason, reasonlen,
				                  "from + size must be at most %llu (from %llu, size %llu)",
				                  (unsigned long long)p->max_from, (unsigned long long)res->from,
				                  (unsigned long long)res->size);
			return DSL_OK;
		}
	}
	return dsl_request_body(&w, body, len, mode, index, mode == DSL_BODY_SEARCH ? &url : NULL, res);
}

/*
 * The types a policy may list.
 */

int
dsl_type_known(int which, const char *name)
{
	if (which == 'q')
		return DSL_IN_STATIC(dsl_never_queries, name) ? -1 : dsl_qtype_find(name) != NULL;
	return DSL_IN_STATIC(dsl_never_aggs, name) ? -1 : dsl_atype_find(name) != NULL;
}

const char *
dsl_known_type(int which, size_t i)
{
	if (which == 'q')
		return i < DSL_NELEM(dsl_queries) ? dsl_queries[i].name : NULL;
	return i < DSL_NELEM(dsl_aggregations) ? dsl_aggregations[i].name : NULL;
}
