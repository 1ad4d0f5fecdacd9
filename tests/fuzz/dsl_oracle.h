/*
 * dsl_oracle.h - what fuzz_dsl asserts of every document the search
 * firewall forwards; the unit tests run it on documented bodies too, so it
 * is known to hold on good input.
 *
 * The firewall's walk reports each JSON object it accepted (struct
 * dsl_trace), then each document before it is serialised.  The oracle then
 * walks the document itself and fails if:
 *   - an object was not reported: a subtree reached the output unchecked;
 *   - an object reported as a query is not {"type": body} with a type the
 *     policy allows;
 *   - an object reported as data (not DSL: only scanned for the keys refused
 *     everywhere) stands anywhere but where Elasticsearch reads documents or
 *     free-form maps: "document", "documents", "doc", "meta", "options".
 * So a query nested where the walk did not look for one (the holes of
 * issue 12: pinned.organic, span_multi.match, inner_hits, nested sort
 * filters...) cannot pass, whatever the tables say.
 */
#ifndef ESGATE_DSL_ORACLE_H
#define ESGATE_DSL_ORACLE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dsl.h"

struct oracle {
	const struct dsl_policy *p;
	const void **keys; /* open addressing on the object's address */
	unsigned char *roles;
	size_t cap, n;
	char problem[512]; /* the first one, "" if none */
};

#define ORACLE_UNUSED __attribute__((unused)) /* not every includer calls everything */

static size_t
oracle_slot(const struct oracle *o, const void *k)
{
	uintptr_t h = (uintptr_t)k;

	h ^= h >> 17;
	h *= (uintptr_t)0x9e3779b97f4a7c15ULL;
	return (size_t)(h ^ (h >> 29)) & (o->cap - 1);
}

static void
oracle_object(void *arg, const struct json_t *obj, int role)
{
	struct oracle *o = arg;
	size_t i;

	if (o->n * 2 >= o->cap) {
		struct oracle old = *o;

		o->cap = o->cap ? o->cap * 2 : 1024;
		o->keys = calloc(o->cap, sizeof(*o->keys));
		o->roles = calloc(o->cap, 1);
		if (o->keys == NULL || o->roles == NULL)
			abort();
		o->n = 0;
		for (i = 0; i < old.cap; i++)
			if (old.keys[i] != NULL)
				oracle_object(o, old.keys[i], old.roles[i]);
		free(old.keys);
		free(old.roles);
	}
	for (i = oracle_slot(o, obj); o->keys[i] != NULL && o->keys[i] != obj; i = (i + 1) & (o->cap - 1))
		;
	if (o->keys[i] == NULL)
		o->n++;
	o->keys[i] = obj;
	o->roles[i] = (unsigned char)role;
}

static int
oracle_role(const struct oracle *o, const void *obj)
{
	size_t i;

	if (o->cap == 0)
		return 0;
	for (i = oracle_slot(o, obj); o->keys[i] != NULL; i = (i + 1) & (o->cap - 1))
		if (o->keys[i] == obj)
			return o->roles[i];
	return 0;
}

static void
oracle_fail(struct oracle *o, const char *what, const char *path)
{
	if (o->problem[0] == '\0')
		snprintf(o->problem, sizeof(o->problem), "%s at %s", what, path[0] ? path : "(root)");
}

static void
oracle_walk(struct oracle *o, json_t *v, const char *key, char *path, size_t plen, size_t cap)
{
	static const char *const data_keys[] = {"document", "documents", "doc", "meta", "options"};
	const char *k;
	json_t *c;
	size_t i;
	int role, ok;

	if (json_is_array(v)) {
		json_array_foreach (v, i, c)
			oracle_walk(o, c, key, path, plen, cap);
		return;
	}
	if (!json_is_object(v))
		return;
	role = oracle_role(o, v);
	if (role == 0) {
		oracle_fail(o, "an object the walk did not check", path);
		return;
	}
	if (role == DSL_ROLE_DATA) {
		ok = 0;
		for (i = 0; i < sizeof(data_keys) / sizeof(data_keys[0]); i++)
			ok |= key != NULL && strcmp(key, data_keys[i]) == 0;
		if (!ok)
			oracle_fail(o, "data where Elasticsearch reads DSL", path);
		return;
	}
	if (role == DSL_ROLE_QUERY) {
		ok = json_object_size(v) == 1;
		json_object_foreach (v, k, c) {
			ok = ok && dsl_type_known('q', k) == 1;
			for (i = 0; ok && i < o->p->nqueries && strcmp(o->p->queries[i], k) != 0; i++)
				;
			ok = ok && i < o->p->nqueries;
		}
		if (!ok)
			oracle_fail(o, "a query the policy does not allow", path);
	}
	json_object_foreach (v, k, c) {
		int n = snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", k);
		size_t np = n > 0 && (size_t)n < cap - plen ? plen + (size_t)n : plen;

		oracle_walk(o, c, k, path, np, cap);
		path[plen] = '\0';
	}
}

/* Forgets every object reported: call it before each check (a refused
 * body leaves reports of objects since freed, whose addresses new ones may
 * take). */
static void
oracle_reset(struct oracle *o)
{
	if (o->cap > 0) {
		memset(o->keys, 0, o->cap * sizeof(*o->keys));
		o->n = 0;
	}
	o->problem[0] = '\0';
}

static void
oracle_document(void *arg, const struct json_t *doc)
{
	struct oracle *o = arg;
	char path[512] = "";

	oracle_walk(o, (json_t *)(uintptr_t)doc, NULL, path, 0, sizeof(path));
	/* the next document (an _msearch line) starts afresh */
	if (o->cap > 0) {
		memset(o->keys, 0, o->cap * sizeof(*o->keys));
		o->n = 0;
	}
}

static void
oracle_init(struct oracle *o, const struct dsl_policy *p, struct dsl_trace *t)
{
	memset(o, 0, sizeof(*o));
	o->p = p;
	t->object = oracle_object;
	t->document = oracle_document;
	t->arg = o;
}

static ORACLE_UNUSED void
oracle_free(struct oracle *o)
{
	free(o->keys);
	free(o->roles);
}

#endif
