/*
 * test_dls.c - lib/dls.c and the walk of lib/qwalk.c: the document filter
 * reaches every search, count and _msearch sub-search in the place that
 * binds it, hostile claims stay one JSON value, and every body that tries
 * to read outside the filter is refused with the reason.
 */
#include "lib/dls.h"
#include "lib/dsl.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define FILTER "{\"term\":{\"tenant\":\"a\"}}"

static json_t *
J(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &e);

	cr_assert_not_null(j, "bad test JSON %s: %s", s, e.text);
	return j;
}

/* 1 if F is in LIST (one query or an array of them). */
static int
has_filter(const json_t *list, const json_t *f)
{
	const json_t *e;
	size_t i;

	if (json_equal((json_t *)(uintptr_t)list, (json_t *)(uintptr_t)f))
		return 1;
	json_array_foreach (list, i, e)
		if (json_equal((json_t *)(uintptr_t)e, (json_t *)(uintptr_t)f))
			return 1;
	return 0;
}

/* The invariant of an accepted search body: the top-level query is a
 * bool whose filter is [F] and holds nothing but must and filter, or there
 * is no query and each top-level knn carries F. */
static void
check_bound(const json_t *body, const json_t *f)
{
	const json_t *q = json_object_get(body, "query"), *knn = json_object_get(body, "knn"), *b, *e;
	size_t i;

	if (q == NULL) {
		cr_assert_not_null(knn, "no query and no knn");
		if (json_is_object(knn))
			cr_expect(has_filter(json_object_get(knn, "filter"), f));
		json_array_foreach (knn, i, e)
			cr_expect(has_filter(json_object_get(e, "filter"), f), "knn[%zu]", i);
		return;
	}
	b = json_object_get(q, "bool");
	cr_assert_eq(json_object_size(q), 1);
	cr_assert(json_is_object(b));
	cr_expect(json_object_size(b) == 1 || (json_object_size(b) == 2 && json_object_get(b, "must") != NULL));
	cr_assert(json_is_array(json_object_get(b, "filter")));
	cr_expect_eq(json_array_size(json_object_get(b, "filter")), 1);
	cr_expect(json_equal(json_array_get(json_object_get(b, "filter"), 0), (json_t *)(uintptr_t)f));
	if (knn != NULL) {
		if (json_is_object(knn))
			cr_expect(has_filter(json_object_get(knn, "filter"), f));
		json_array_foreach (knn, i, e)
			cr_expect(has_filter(json_object_get(e, "filter"), f));
	}
}

/* Bodies that try to escape the filter.  REASON NULL: accepted, and then
 * bound by it (check_bound); else refused with exactly that reason. */
static const struct {
	const char *body, *reason;
} hostile[] = {
    {"{\"aggs\":{\"all\":{\"global\":{},\"aggs\":{\"t\":{\"terms\":{\"field\":\"title\"}}}}}}",
     "a global aggregation is not allowed under a document filter: it ignores the query (at aggs.all.global)"},
    {"{\"aggregations\":{\"t\":{\"terms\":{\"field\":\"x\"},\"aggs\":{\"g\":{\"global\":{}}}}}}",
     "a global aggregation is not allowed under a document filter: it ignores the query (at "
     "aggregations.t.aggs.g.global)"},
    {"{\"aggs\":{\"f\":{\"filters\":{\"filters\":{\"x\":{\"match_all\":{}}}},\"aggs\":{\"g\":{\"global\":{}}}}}}",
     "a global aggregation is not allowed under a document filter: it ignores the query (at aggs.f.aggs.g.global)"},
    {"{\"suggest\":{\"s\":{\"text\":\"x\",\"term\":{\"field\":\"title\"}}}}",
     "suggest is not allowed under a document filter: suggesters read the terms of the whole index"},
    {"{\"profile\":true,\"query\":{\"prefix\":{\"title\":\"a\"}}}",
     "profile is not allowed under a document filter: a profile shows queries rewritten against the whole index"},
    {"{\"query\":{\"has_child\":{\"type\":\"c\",\"query\":{\"match_all\":{}},\"inner_hits\":{}}}}",
     "has_child is not allowed under a document filter: it matches on documents outside it (at query.has_child)"},
    {"{\"post_filter\":{\"has_parent\":{\"parent_type\":\"p\",\"query\":{\"match_all\":{}}}}}",
     "has_parent is not allowed under a document filter: it matches on documents outside it (at "
     "post_filter.has_parent)"},
    {"{\"query\":{\"bool\":{\"should\":[{\"match\":{\"a\":1}},{\"has_child\":{\"type\":\"c\",\"query\":{}}}]}}}",
     "has_child is not allowed under a document filter: it matches on documents outside it (at "
     "query.bool.should[1].has_child)"},
    {"{\"aggs\":{\"f\":{\"filter\":{\"has_child\":{\"type\":\"c\",\"query\":{\"match_all\":{}}}}}}}",
     "has_child is not allowed under a document filter: it matches on documents outside it (at "
     "aggs.f.filter.has_child)"},
    {"{\"highlight\":{\"fields\":{\"t\":{}},\"highlight_query\":{\"has_child\":{\"type\":\"c\",\"query\":{}}}}}",
     "has_child is not allowed under a document filter: it matches on documents outside it (at "
     "highlight.highlight_query.has_child)"},
    {"{\"highlight\":{\"fields\":{\"t\":{\"highlight_query\":{\"has_parent\":{}}}}}}",
     "has_parent is not allowed under a document filter: it matches on documents outside it (at "
     "highlight.fields.t.highlight_query.has_parent)"},
    {"{\"sort\":[{\"c.n\":{\"nested\":{\"path\":\"c\",\"filter\":{\"has_child\":{}}}}}]}",
     "has_child is not allowed under a document filter: it matches on documents outside it (at "
     "sort[0].c.n.nested.filter.has_child)"},
    {"{\"rescore\":{\"query\":{\"rescore_query\":{\"has_child\":{}}}}}",
     "has_child is not allowed under a document filter: it matches on documents outside it (at "
     "rescore.query.rescore_query.has_child)"},
    {"{\"knn\":{\"field\":\"v\",\"query_vector\":[1],\"k\":1,\"filter\":{\"has_parent\":{}}}}",
     "has_parent is not allowed under a document filter: it matches on documents outside it (at "
     "knn.filter.has_parent)"},
    {"{\"query\":{\"parent_id\":{\"type\":\"c\",\"id\":\"1\"}}}",
     "parent_id is not allowed under a document filter: it matches on documents outside it (at query.parent_id)"},
    {"{\"query\":{\"constant_score\":{\"filter\":{\"terms\":{\"user\":{\"index\":\"u\",\"id\":\"1\",\"path\":"
     "\"p\"}}}}}}",
     "a terms lookup is not allowed under a document filter: it reads a document past the filter (at "
     "query.constant_score.filter.terms)"},
    {"{\"query\":{\"more_like_this\":{\"fields\":[\"t\"],\"like\":{\"_id\":\"1\"}}}}",
     "more_like_this naming stored documents is not allowed under a document filter: it reads them past the filter "
     "(at query.more_like_this)"},
    {"{\"query\":{\"more_like_this\":{\"like\":[\"text\",{\"_index\":\"other\",\"_id\":\"2\"}]}}}",
     "more_like_this naming stored documents is not allowed under a document filter: it reads them past the filter "
     "(at query.more_like_this)"},
    {"{\"query\":{\"more_like_this\":{\"like\":\"text\",\"unlike\":[{\"_id\":\"9\"}]}}}",
     "more_like_this naming stored documents is not allowed under a document filter: it reads them past the filter "
     "(at query.more_like_this)"},
    {"{\"query\":{\"percolate\":{\"field\":\"q\",\"index\":\"docs\",\"id\":\"1\"}}}",
     "percolate of a stored document is not allowed under a document filter (at query.percolate)"},
    {"{\"query\":{\"geo_shape\":{\"loc\":{\"indexed_shape\":{\"index\":\"s\",\"id\":\"1\"}}}}}",
     "an indexed shape is not allowed under a document filter (at query.geo_shape)"},
    {"{\"query\":{\"wrapper\":{\"query\":\"eyJtYXRjaF9hbGwiOnt9fQ==\"}}}",
     "wrapper is not allowed under a document filter: its query cannot be checked (at query.wrapper)"},
    {"{\"aggs\":{\"s\":{\"significant_terms\":{\"field\":\"t\"}}}}",
     "significant_terms is not allowed under a document filter: its background is the whole index (at "
     "aggs.s.significant_terms)"},
    {"{\"aggs\":{\"s\":{\"significant_text\":{\"field\":\"t\"}}}}",
     "significant_text is not allowed under a document filter: its background is the whole index (at "
     "aggs.s.significant_text)"},
    {"{\"aggs\":{\"t\":{\"terms\":{\"field\":\"t\",\"min_doc_count\":0}}}}",
     "min_doc_count must be an integer of at least 1 under a document filter: 0 lists terms of documents outside it "
     "(at aggs.t.terms)"},
    {"{\"aggs\":{\"t\":{\"terms\":{\"field\":\"t\",\"min_doc_count\":\"0\"}}}}",
     "min_doc_count must be an integer of at least 1 under a document filter: 0 lists terms of documents outside it "
     "(at aggs.t.terms)"},
    {"{\"aggs\":{\"t\":{\"multi_terms\":{\"terms\":[{\"field\":\"a\"}],\"min_doc_count\":0.0}}}}",
     "min_doc_count must be an integer of at least 1 under a document filter: 0 lists terms of documents outside it "
     "(at aggs.t.multi_terms)"},
    {"{\"aggs\":{\"c\":{\"children\":{\"type\":\"answer\"}}}}",
     "a children aggregation is not allowed under a document filter: it joins documents outside it (at "
     "aggs.c.children)"},
    {"{\"collapse\":{\"field\":\"u\",\"inner_hits\":{\"name\":\"x\"}}}",
     "collapse is not allowed under a document filter: collapsing runs inner searches of its own"},
    {"{\"sub_searches\":[{\"query\":{\"match_all\":{}}}],\"rank\":{\"rrf\":{}}}",
     "sub_searches is not allowed under a document filter: it holds queries outside \"query\""},
    {"{\"retriever\":{\"standard\":{\"query\":{\"match_all\":{}}}}}",
     "retriever is not allowed under a document filter: it holds queries outside \"query\""},
    {"{\"runtime_mappings\":{\"x\":{\"type\":\"keyword\"}}}",
     "runtime_mappings is not allowed under a document filter: runtime fields run scripts over the index"},
    {"{\"ext\":{}}",
     "ext is not allowed under a document filter: only keys known to stay inside the query are allowed"},
    {"{\"query\":null}", "malformed query: an object of one query type expected (at query)"},
    {"{\"query\":{}}", "malformed query: an object of one query type expected (at query)"},
    {"{\"query\":{\"match_all\":{},\"term\":{\"tenant\":\"b\"}}}",
     "malformed query: an object of one query type expected (at query)"},
    {"{\"query\":{\"bool\":{\"must\":[{\"bool\":{\"must\":{}}}]}}}",
     "malformed query: an object of one query type expected (at query.bool.must[0].bool.must)"},
    {"{\"knn\":7}", "malformed knn: an object expected (at knn)"},
    {"[1]", "the body must be a JSON object"},
    /* accepted, and bound */
    {"{}", NULL},
    {"{\"query\":{\"match_all\":{}}}", NULL},
    {"{\"query\":{\"bool\":{\"must_not\":[" FILTER "]}}}", NULL},
    {"{\"query\":{\"bool\":{\"should\":[{\"term\":{\"tenant\":\"b\"}}],\"filter\":[]}}}", NULL},
    {"{\"post_filter\":{\"term\":{\"tenant\":\"b\"}}}", NULL},
    {"{\"knn\":{\"field\":\"v\",\"query_vector\":[1,2],\"k\":3,\"num_candidates\":10}}", NULL},
    {"{\"knn\":[{\"field\":\"v\",\"k\":1,\"filter\":{\"term\":{\"tenant\":\"b\"}}},{\"field\":\"w\",\"k\":1,"
     "\"filter\":[{\"match_all\":{}}]}]}",
     NULL},
    {"{\"query\":{\"match\":{\"t\":\"x\"}},\"knn\":{\"field\":\"v\",\"k\":1}}", NULL},
    {"{\"aggs\":{\"t\":{\"terms\":{\"field\":\"t\",\"min_doc_count\":1},\"aggs\":{\"n\":{\"nested\":{\"path\":"
     "\"c\"}}}}},\"size\":0}",
     NULL},
    {"{\"query\":{\"nested\":{\"path\":\"c\",\"query\":{\"match_all\":{}},\"inner_hits\":{}}}}", NULL},
    {"{\"query\":{\"more_like_this\":{\"like\":[\"text\",{\"doc\":{\"t\":\"x\"}}]}}}", NULL},
    {"{\"query\":{\"terms\":{\"tenant\":[\"b\",\"c\"]}},\"pit\":{\"id\":\"x\"},\"search_after\":[1]}", NULL},
};

Test(dls, hostile_bodies)
{
	json_t *f = J(FILTER);
	size_t refused = 0;

	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		json_t *b = J(hostile[i].body), *copy = json_deep_copy(b);
		char reason[DLS_REASON_MAX] = "";
		int rc = dls_apply(b, DSL_BODY_SEARCH, f, reason, sizeof(reason));

		if (hostile[i].reason != NULL) {
			refused++;
			cr_expect_eq(rc, -1, "accepted %s", hostile[i].body);
			cr_expect_str_eq(reason, hostile[i].reason, "for %s", hostile[i].body);
			cr_expect(json_equal(b, copy), "a refused body is left as it was");
		} else {
			cr_expect_eq(rc, 0, "refused %s: %s", hostile[i].body, reason);
			if (rc == 0)
				check_bound(b, f);
		}
		json_decref(b);
		json_decref(copy);
	}
	cr_expect_geq(refused, 30);
	json_decref(f);
}

Test(dls, wrapping)
{
	json_t *f = J(FILTER), *b = J("{\"query\":{\"match\":{\"t\":\"x\"}},\"size\":5}");
	char *s, reason[DLS_REASON_MAX];

	cr_assert_eq(dls_apply(b, DSL_BODY_SEARCH, f, reason, sizeof(reason)), 0);
	s = json_dumps(b, JSON_COMPACT);
	cr_expect_str_eq(s, "{\"query\":{\"bool\":{\"must\":[{\"match\":{\"t\":\"x\"}}],\"filter\":[" FILTER
	                    "]}},\"size\":5}");
	free(s);
	json_decref(b);
	b = J("{\"size\":0}");
	cr_assert_eq(dls_apply(b, DSL_BODY_COUNT, f, reason, sizeof(reason)), -1, "count bodies: query only");
	json_decref(b);
	b = J("{}");
	cr_assert_eq(dls_apply(b, DSL_BODY_COUNT, f, reason, sizeof(reason)), 0);
	s = json_dumps(b, JSON_COMPACT);
	cr_expect_str_eq(s, "{\"query\":{\"bool\":{\"filter\":[" FILTER "]}}}");
	free(s);
	json_decref(b);
	/* a knn search without query: the knn carries it, no query added */
	b = J("{\"knn\":{\"field\":\"v\",\"k\":1,\"filter\":{\"match\":{\"x\":1}}}}");
	cr_assert_eq(dls_apply(b, DSL_BODY_SEARCH, f, reason, sizeof(reason)), 0);
	s = json_dumps(b, JSON_COMPACT);
	cr_expect_str_eq(s, "{\"knn\":{\"field\":\"v\",\"k\":1,\"filter\":[{\"match\":{\"x\":1}}," FILTER "]}}");
	free(s);
	json_decref(b);
	/* a body nested deeper than the walk goes */
	{
		char *deep = malloc(100 * 20 + 100), *p = deep;

		p += sprintf(p, "{\"query\":");
		for (int i = 0; i < 100; i++)
			p += sprintf(p, "{\"bool\":{\"must\":");
		p += sprintf(p, "{\"match_all\":{}}");
		for (int i = 0; i < 100; i++)
			p += sprintf(p, "}}");
		sprintf(p, "}");
		b = J(deep);
		cr_expect_eq(dls_apply(b, DSL_BODY_SEARCH, f, reason, sizeof(reason)), -1);
		cr_expect(strstr(reason, "nested too deep") != NULL, "%s", reason);
		json_decref(b);
		free(deep);
	}
	json_decref(f);
}

Test(dls, text_and_msearch)
{
	json_t *f = J(FILTER);
	char *out = NULL, reason[DLS_REASON_MAX];
	size_t len = 0;
	const char *ms = "{\"index\":\"books\"}\n{\"query\":{\"match_all\":{}}}\n{}\n{}\n";

	cr_assert_eq(dls_apply_text("", 0, DSL_BODY_SEARCH, f, &out, &len, reason, sizeof(reason)), 0);
	cr_expect_str_eq(out, "{\"query\":{\"bool\":{\"filter\":[" FILTER "]}}}");
	cr_expect_eq(len, strlen(out));
	free(out);
	cr_assert_eq(dls_apply_text(ms, strlen(ms), DSL_BODY_MSEARCH, f, &out, &len, reason, sizeof(reason)), 0, "%s",
	             reason);
	cr_expect_str_eq(out, "{\"index\":\"books\"}\n"
	                      "{\"query\":{\"bool\":{\"must\":[{\"match_all\":{}}],\"filter\":[" FILTER "]}}}\n"
	                      "{}\n"
	                      "{\"query\":{\"bool\":{\"filter\":[" FILTER "]}}}\n");
	free(out);
	ms = "{}\r\n{}\r\n\n{}\n{\"suggest\":{}}";
	cr_expect_eq(dls_apply_text(ms, strlen(ms), DSL_BODY_MSEARCH, f, &out, &len, reason, sizeof(reason)), -1);
	cr_expect_str_eq(reason,
	                 "suggest is not allowed under a document filter: suggesters read the terms of the whole "
	                 "index (line 4)");
	cr_expect_null(out);
	ms = "{}\n{}\n{}\n";
	cr_expect_eq(dls_apply_text(ms, strlen(ms), DSL_BODY_MSEARCH, f, &out, &len, reason, sizeof(reason)), -1,
	             "a header without a body");
	cr_expect_eq(dls_apply_text("", 0, DSL_BODY_MSEARCH, f, &out, &len, reason, sizeof(reason)), -1);
	cr_expect_eq(dls_apply_text("[1]\n{}\n", 7, DSL_BODY_MSEARCH, f, &out, &len, reason, sizeof(reason)), -1);
	cr_expect_str_eq(reason, "an _msearch header is not a JSON object (line 1)");
	cr_expect_eq(
	    dls_apply_text("{\"i\":\"a\0b\"}\n{}\n", 15, DSL_BODY_MSEARCH, f, &out, &len, reason, sizeof(reason)), -1,
	    "a NUL in a header");
	cr_expect_null(out);
	cr_expect_eq(dls_apply_text("{", 1, DSL_BODY_SEARCH, f, &out, &len, reason, sizeof(reason)), -1);
	cr_expect_str_eq(reason, "the body is not JSON");
	json_decref(f);
}

static json_t *
render(const char *tmpl, const char *claims, char *reason)
{
	json_t *t = J(tmpl), *c = claims != NULL ? J(claims) : NULL, *r;

	r = dls_render(t, "jwt:alice", c, reason, DLS_REASON_MAX);
	json_decref(t);
	json_decref(c);
	return r;
}

static void
rendered(const char *tmpl, const char *claims, const char *want)
{
	char reason[DLS_REASON_MAX] = "", *s;
	json_t *r = render(tmpl, claims, reason);

	cr_assert_not_null(r, "%s: %s", tmpl, reason);
	s = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
	cr_expect_str_eq(s, want);
	free(s);
	json_decref(r);
}

Test(dls, claim_substitution)
{
	rendered("{\"term\":{\"tenant\":\"{{claims.tenant}}\"}}", "{\"tenant\":\"acme\"}",
	         "{\"term\":{\"tenant\":\"acme\"}}");
	rendered("{\"term\":{\"owner\":\"{{principal}}\"}}", NULL, "{\"term\":{\"owner\":\"jwt:alice\"}}");
	rendered("{\"terms\":{\"tenant\":\"{{claims.tenants}}\"}}", "{\"tenants\":[\"a\",\"b\"]}",
	         "{\"terms\":{\"tenant\":[\"a\",\"b\"]}}");
	rendered("{\"term\":{\"level\":\"{{claims.level}}\"}}", "{\"level\":3}", "{\"term\":{\"level\":3}}");
	rendered("{\"term\":{\"ok\":\"{{claims.ok}}\"}}", "{\"ok\":true}", "{\"term\":{\"ok\":true}}");
	rendered("{\"prefix\":{\"path\":\"/t/{{claims.tenant}}/{{claims.n}}\"}}", "{\"tenant\":\"x\",\"n\":2}",
	         "{\"prefix\":{\"path\":\"/t/x/2\"}}");
	rendered("{\"term\":{\"org\":\"{{claims.org.id}}\"}}", "{\"org\":{\"id\":\"o1\"}}",
	         "{\"term\":{\"org\":\"o1\"}}");
	rendered("{\"term\":{\"t\":\"{{claims.https://example.com/tenant}}\"}}",
	         "{\"https://example.com/tenant\":\"t9\"}", "{\"term\":{\"t\":\"t9\"}}");
	rendered("{\"bool\":{\"should\":[{\"term\":{\"a\":\"{{claims.t}}\"}},{\"range\":{\"n\":{\"gte\":1}}}]}}",
	         "{\"t\":\"v\"}", "{\"bool\":{\"should\":[{\"term\":{\"a\":\"v\"}},{\"range\":{\"n\":{\"gte\":1}}}]}}");
}

Test(dls, hostile_claims_stay_one_value)
{
	/* each claim tries to close the string and add a clause */
	static const char *const evil[] = {
	    "a\"}},{\"match_all\":{}}",
	    "a\\\" } }, {\"match_all\": {",
	    "\"}}]}},\"query\":{\"match_all\":{}}",
	    "{{claims.other}}",
	    "a\nb\tc\u2028d",
	    "",
	};

	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		json_t *claims = json_pack("{s:s,s:s}", "tenant", evil[i], "other", "x"),
		       *t = J("{\"term\":{\"tenant\":"
		              "\"{{claims.tenant}}\"}}");
		json_t *t2 = J("{\"term\":{\"tenant\":\"pre-{{claims.tenant}}\"}}"), *r, *r2;
		char reason[DLS_REASON_MAX], *s;
		json_t *back;

		r = dls_render(t, "p", claims, reason, sizeof(reason));
		r2 = dls_render(t2, "p", claims, reason, sizeof(reason));
		cr_assert_not_null(r);
		cr_assert_not_null(r2);
		cr_expect_str_eq(json_string_value(json_object_get(json_object_get(r, "term"), "tenant")), evil[i]);
		/* serialised and read back, it is still one term on one string */
		s = json_dumps(r2, JSON_COMPACT);
		back = J(s);
		cr_expect_eq(json_object_size(back), 1);
		cr_expect_eq(json_object_size(json_object_get(back, "term")), 1);
		cr_expect(strncmp(json_string_value(json_object_get(json_object_get(back, "term"), "tenant")), "pre-",
		                  4) == 0);
		cr_expect_str_eq(json_string_value(json_object_get(json_object_get(back, "term"), "tenant")) + 4,
		                 evil[i]);
		free(s);
		json_decref(back);
		json_decref(r);
		json_decref(r2);
		json_decref(t);
		json_decref(t2);
		json_decref(claims);
	}
}

Test(dls, unusable_claims_refuse)
{
	static const struct {
		const char *claims, *reason;
	} cases[] = {
	    {"{}", "claim \"tenant\" needed by the document filter is missing"},
	    {"{\"tenant\":null}",
	     "claim \"tenant\" needed by the document filter is not a string, number, boolean or array of them"},
	    {"{\"tenant\":{\"match_all\":{}}}",
	     "claim \"tenant\" needed by the document filter is not a string, number, boolean or array of them"},
	    {"{\"tenant\":[\"a\",{\"b\":1}]}",
	     "claim \"tenant\" needed by the document filter is not a string, number, boolean or array of them"},
	    {"{\"tenant\":[]}",
	     "claim \"tenant\" needed by the document filter is not a string, number, boolean or array of them"},
	};
	char reason[DLS_REASON_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_null(render("{\"term\":{\"t\":\"{{claims.tenant}}\"}}", cases[i].claims, reason));
		cr_expect_str_eq(reason, cases[i].reason);
	}
	cr_expect_null(render("{\"term\":{\"t\":\"{{claims.tenant}}\"}}", NULL, reason), "an API key has no claims");
	cr_expect_null(render("{\"term\":{\"t\":\"x-{{claims.tenant}}\"}}", "{\"tenant\":[\"a\"]}", reason));
	cr_expect_str_eq(reason, "an array claim must be a whole string of the document filter");
}

Test(dls, template_check)
{
	static const struct {
		const char *s, *err;
	} bad[] = {
	    {"{{claims}}", "unknown placeholder \"{{claims}}\" (use {{principal}} or {{claims.NAME}})"},
	    {"{{claims.}}", "unknown placeholder \"{{claims.}}\" (use {{principal}} or {{claims.NAME}})"},
	    {"{{claims.a..b}}", "unknown placeholder \"{{claims.a..b}}\" (use {{principal}} or {{claims.NAME}})"},
	    {"{{ claims.a }}", "unknown placeholder \"{{ claims.a }}\" (use {{principal}} or {{claims.NAME}})"},
	    {"{{claims.a b}}", "unknown placeholder \"{{claims.a b}}\" (use {{principal}} or {{claims.NAME}})"},
	    {"{{env.HOME}}", "unknown placeholder \"{{env.HOME}}\" (use {{principal}} or {{claims.NAME}})"},
	    {"x{{claims.a", "\"{{\" without \"}}\""},
	    {"a}}", "\"}}\" without \"{{\""},
	};
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(dls_placeholders_check(bad[i].s, err, sizeof(err)), -1, "%s", bad[i].s);
		cr_expect_str_eq(err, bad[i].err);
	}
	cr_expect_eq(dls_placeholders_check("t-{{claims.tenant}}-{{principal}}", err, sizeof(err)), 0);
	cr_expect_eq(dls_placeholders_check("no placeholder {", err, sizeof(err)), 0);
	json_t *t = J("{\"term\":{\"{{claims.field}}\":\"x\"}}");
	cr_expect_eq(dls_template_check(t, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "a key may not hold a placeholder (a token must not choose a field)");
	json_decref(t);
	t = J("{\"bool\":{\"filter\":[{\"term\":{\"a\":\"{{claims.x}}\"}},{\"term\":{\"b\":\"{{bad}}\"}}]}}");
	cr_expect_eq(dls_template_check(t, err, sizeof(err)), -1);
	json_decref(t);
}

Test(dls, params)
{
	char reason[DLS_REASON_MAX];

	cr_expect_eq(dls_check_param("q", reason, sizeof(reason)), -1);
	cr_expect_str_eq(reason, "q is not allowed under a document filter: it takes the place of the query");
	cr_expect_eq(dls_check_param("suggest_field", reason, sizeof(reason)), -1);
	cr_expect_eq(dls_check_param("suggest_text", reason, sizeof(reason)), -1);
	cr_expect_eq(dls_check_param("size", reason, sizeof(reason)), 0);
	cr_expect_eq(dls_check_param("from", reason, sizeof(reason)), 0);
}

Test(dls, get_by_id)
{
	json_t *f = J(FILTER), *s = dls_get_as_search("doc/1\"x", f), *ans, *g;
	char *txt;

	cr_assert_not_null(s);
	txt = json_dumps(s, JSON_COMPACT);
	cr_expect_str_eq(txt, "{\"query\":{\"bool\":{\"filter\":[{\"ids\":{\"values\":[\"doc/1\\\"x\"]}}," FILTER
	                      "]}},\"size\":1,\"version\":true,\"seq_no_primary_term\":true}");
	free(txt);
	ans = J(
	    "{\"took\":1,\"hits\":{\"total\":{\"value\":1},\"hits\":[{\"_index\":\"books\",\"_id\":\"1\",\"_version\":"
	    "3,\"_seq_no\":7,\"_primary_term\":1,\"_score\":0,\"_source\":{\"t\":\"x\"}}]}}");
	g = dls_hit_as_get(ans);
	cr_assert_not_null(g);
	txt = json_dumps(g, JSON_COMPACT);
	cr_expect_str_eq(txt, "{\"_index\":\"books\",\"_id\":\"1\",\"_version\":3,\"_seq_no\":7,\"_primary_term\":1,"
	                      "\"found\":true,\"_source\":{\"t\":\"x\"}}");
	free(txt);
	json_decref(g);
	json_decref(ans);
	ans = J("{\"hits\":{\"total\":{\"value\":0},\"hits\":[]}}");
	cr_expect_null(dls_hit_as_get(ans), "outside the filter: not found");
	json_decref(ans);
	ans = J("{\"error\":{}}");
	cr_expect_null(dls_hit_as_get(ans));
	json_decref(ans);
	json_decref(s);
	json_decref(f);
}
