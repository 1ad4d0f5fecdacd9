/*
 * test_fls.c - lib/fls.c: which names a principal under field rules may
 * use, the bodies refused because they name a hidden field anywhere it
 * leaks (query, sort, aggregation, highlight, field lists), and the
 * _source rewritten so answers carry only allowed fields.
 */
#include "lib/dsl.h"
#include "lib/fls.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static char *allow[] = {"title", "meta.*", "author", "c"};
static char *hide[] = {"meta.secret"};
static const struct fls_rules rules = {allow, 4, hide, 1};

static char *hide_only[] = {"ssn", "salary"};
static const struct fls_rules hiding = {NULL, 0, hide_only, 2};

static int
vis(const struct fls_rules *r, const char *f)
{
	return fls_field_visible(r, f, strlen(f));
}

Test(fls, visibility)
{
	cr_expect(vis(&rules, "title"));
	cr_expect(vis(&rules, "title.keyword"), "a multi-field of an allowed field");
	cr_expect(vis(&rules, "meta.a"));
	cr_expect(vis(&rules, "meta.a.b"));
	cr_expect(vis(&rules, "author^3"), "a boost is not part of the name");
	cr_expect(vis(&rules, "_id"));
	cr_expect(vis(&rules, "_score"));
	cr_expect(vis(&rules, "c.text"));
	cr_expect_not(vis(&rules, "salary"));
	cr_expect_not(vis(&rules, "titles"));
	cr_expect_not(vis(&rules, "meta.secret"));
	cr_expect_not(vis(&rules, "meta.secret.inner"));
	cr_expect_not(vis(&rules, "meta"), "an object holding a hidden field");
	cr_expect_not(vis(&rules, "meta.*"), "a client's wildcard while something is hidden");
	cr_expect_not(vis(&rules, "*"));
	cr_expect_not(vis(&rules, "t*"));
	cr_expect_not(vis(&rules, ""));
	cr_expect_not(vis(&rules, "_source"));
	cr_expect(vis(&hiding, "title"));
	cr_expect(vis(&hiding, "anything.at.all"));
	cr_expect_not(vis(&hiding, "ssn"));
	cr_expect_not(vis(&hiding, "salary.keyword"));
	cr_expect_not(vis(&hiding, "*"));
	/* an allow list and nothing hidden: a wildcard listed as is */
	{
		char *a[] = {"title", "meta.*"};
		struct fls_rules r = {a, 2, NULL, 0};

		cr_expect(vis(&r, "meta.*"));
		cr_expect_not(vis(&r, "met*"));
		cr_expect_not(vis(&r, "title*"));
	}
	struct fls_rules none = {0};
	cr_expect(vis(&none, "anything"));
	cr_expect_not(fls_active(&none));
	cr_expect(fls_active(&hiding));
	cr_expect(fls_pattern_valid("meta.*"));
	cr_expect(fls_pattern_valid("a-b_c.d"));
	cr_expect_not(fls_pattern_valid("*"));
	cr_expect_not(fls_pattern_valid(""));
	cr_expect_not(fls_pattern_valid("a b"));
	cr_expect_not(fls_pattern_valid("a,b"));
	cr_expect_not(fls_pattern_valid("a?"));
	cr_expect_not(fls_pattern_valid("[a]"));
	cr_expect_not(fls_pattern_valid("a^2"));
}

static const struct {
	const char *body, *reason;
} refused[] = {
    {"{\"query\":{\"term\":{\"salary\":100}}}", "field \"salary\" is not allowed (at query.term)"},
    {"{\"query\":{\"match\":{\"meta.secret\":{\"query\":\"x\"}}}}",
     "field \"meta.secret\" is not allowed (at query.match)"},
    {"{\"query\":{\"range\":{\"salary\":{\"gte\":1}}}}", "field \"salary\" is not allowed (at query.range)"},
    {"{\"query\":{\"exists\":{\"field\":\"salary\"}}}", "field \"salary\" is not allowed (at query.exists)"},
    {"{\"query\":{\"exists\":{\"field\":\"meta\"}}}", "field \"meta\" is not allowed (at query.exists)"},
    {"{\"query\":{\"prefix\":{\"salary\":\"1\"}}}", "field \"salary\" is not allowed (at query.prefix)"},
    {"{\"query\":{\"wildcard\":{\"meta.secret\":{\"value\":\"a*\"}}}}",
     "field \"meta.secret\" is not allowed (at query.wildcard)"},
    {"{\"query\":{\"terms\":{\"boost\":1,\"salary\":[1]}}}", "field \"salary\" is not allowed (at query.terms)"},
    {"{\"query\":{\"bool\":{\"filter\":[{\"term\":{\"title\":\"a\"}},{\"term\":{\"salary\":1}}]}}}",
     "field \"salary\" is not allowed (at query.bool.filter[1].term)"},
    {"{\"query\":{\"multi_match\":{\"query\":\"x\"}}}",
     "\"fields\" must list the fields under field rules (at query.multi_match)"},
    {"{\"query\":{\"multi_match\":{\"query\":\"x\",\"fields\":[\"title\",\"salary^2\"]}}}",
     "field \"salary^2\" is not allowed (at query.multi_match)"},
    {"{\"query\":{\"multi_match\":{\"query\":\"x\",\"fields\":[\"*\"]}}}",
     "field \"*\" is not allowed (at query.multi_match)"},
    {"{\"query\":{\"simple_query_string\":{\"query\":\"x\"}}}",
     "\"fields\" must list the fields under field rules (at query.simple_query_string)"},
    {"{\"query\":{\"query_string\":{\"query\":\"salary:>1\",\"fields\":[\"title\"]}}}",
     "query type query_string is not allowed under field rules (at query.query_string)"},
    {"{\"query\":{\"span_near\":{\"clauses\":[{\"span_term\":{\"salary\":1}}]}}}",
     "query type span_near is not allowed under field rules (at query.span_near)"},
    {"{\"query\":{\"nested\":{\"path\":\"meta.secret\",\"query\":{\"match_all\":{}}}}}",
     "nested path \"meta.secret\" is not allowed (at query.nested)"},
    {"{\"query\":{\"nested\":{\"path\":\"c\",\"query\":{\"match_all\":{}},\"inner_hits\":{}}}}",
     "inner_hits is not allowed under field rules (at query.nested)"},
    {"{\"query\":{\"function_score\":{\"query\":{\"match_all\":{}},\"field_value_factor\":{\"field\":\"salary\"}}}}",
     "field \"salary\" is not allowed (at query.function_score)"},
    {"{\"query\":{\"function_score\":{\"functions\":[{\"gauss\":{\"salary\":{\"origin\":1}}}]}}}",
     "field \"salary\" is not allowed (at query.function_score)"},
    {"{\"query\":{\"terms_set\":{\"title\":{\"terms\":[\"a\"],\"minimum_should_match_field\":\"salary\"}}}}",
     "field \"salary\" is not allowed (at query.terms_set)"},
    {"{\"post_filter\":{\"term\":{\"salary\":1}}}", "field \"salary\" is not allowed (at post_filter.term)"},
    {"{\"sort\":[\"salary\"]}", "field \"salary\" is not allowed (at sort)"},
    {"{\"sort\":{\"salary\":\"desc\"}}", "field \"salary\" is not allowed (at sort)"},
    {"{\"sort\":[{\"_geo_distance\":{\"meta.secret\":[0,0],\"order\":\"asc\"}}]}",
     "field \"meta.secret\" is not allowed (at sort)"},
    {"{\"sort\":[{\"c.n\":{\"nested\":{\"path\":\"meta.secret\"}}}]}",
     "nested path \"meta.secret\" is not allowed (at sort)"},
    {"{\"aggs\":{\"a\":{\"terms\":{\"field\":\"salary\"}}}}", "field \"salary\" is not allowed (at aggs.a.terms)"},
    {"{\"aggs\":{\"a\":{\"avg\":{\"field\":\"title\"},\"aggs\":{\"b\":{\"max\":{\"field\":\"salary\"}}}}}}",
     "field \"salary\" is not allowed (at aggs.a.aggs.b.max)"},
    {"{\"aggs\":{\"a\":{\"composite\":{\"sources\":[{\"s\":{\"terms\":{\"field\":\"salary\"}}}]}}}}",
     "field \"salary\" is not allowed (at aggs.a.composite)"},
    {"{\"aggs\":{\"a\":{\"filter\":{\"term\":{\"salary\":1}}}}}",
     "field \"salary\" is not allowed (at aggs.a.filter.term)"},
    {"{\"aggs\":{\"a\":{\"weighted_avg\":{\"value\":{\"field\":\"title\"},\"weight\":{\"field\":\"salary\"}}}}}",
     "field \"salary\" is not allowed (at aggs.a.weighted_avg)"},
    {"{\"aggs\":{\"a\":{\"matrix_stats\":{\"fields\":[\"salary\"]}}}}",
     "aggregation type matrix_stats is not allowed under field rules (at aggs.a.matrix_stats)"},
    {"{\"aggs\":{\"a\":{\"top_hits\":{\"docvalue_fields\":[\"salary\"]}}}}",
     "field \"salary\" is not allowed (at aggs.a.top_hits.docvalue_fields)"},
    {"{\"aggs\":{\"a\":{\"top_hits\":{\"_source\":[\"salary\"]}}}}",
     "field \"salary\" is not allowed (at aggs.a.top_hits._source)"},
    {"{\"highlight\":{\"fields\":{\"salary\":{}}}}", "field \"salary\" is not allowed (at highlight)"},
    {"{\"highlight\":{\"fields\":{\"*\":{}}}}", "field \"*\" is not allowed (at highlight)"},
    {"{\"highlight\":{\"fields\":[{\"title\":{\"matched_fields\":[\"salary\"]}}]}}",
     "field \"salary\" is not allowed (at highlight)"},
    {"{\"fields\":[\"title\",\"salary\"]}", "field \"salary\" is not allowed (at fields)"},
    {"{\"docvalue_fields\":[{\"field\":\"salary\",\"format\":\"x\"}]}",
     "field \"salary\" is not allowed (at docvalue_fields)"},
    {"{\"stored_fields\":[\"salary\"]}", "field \"salary\" is not allowed (at stored_fields)"},
    {"{\"_source\":[\"title\",\"salary\"]}", "field \"salary\" is not allowed (at _source)"},
    {"{\"_source\":{\"includes\":[\"meta\"]}}", "field \"meta\" is not allowed (at _source)"},
    {"{\"_source\":{\"includes\":[\"title\"],\"other\":1}}", "malformed _source (at _source)"},
    {"{\"collapse\":{\"field\":\"salary\"}}", "field \"salary\" is not allowed (at collapse)"},
    {"{\"knn\":{\"field\":\"salary\",\"query_vector\":[1],\"k\":1}}", "field \"salary\" is not allowed (at knn)"},
    {"{\"suggest\":{\"s\":{\"text\":\"x\",\"term\":{\"field\":\"title\"}}}}",
     "suggest is not allowed under field rules"},
    {"{\"script_fields\":{\"x\":{}}}", "script_fields is not allowed under field rules"},
};

Test(fls, refused_bodies)
{
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		json_t *b = json_loads(refused[i].body, 0, NULL);
		char reason[256] = "";

		cr_assert_not_null(b, "%s", refused[i].body);
		cr_expect_eq(fls_apply(&rules, b, DSL_BODY_SEARCH, reason, sizeof(reason)), -1, "accepted %s",
		             refused[i].body);
		cr_expect_str_eq(reason, refused[i].reason, "for %s", refused[i].body);
		json_decref(b);
	}
}

static void
applied(const struct fls_rules *r, const char *body, int mode, const char *want)
{
	json_t *b = json_loads(body, 0, NULL);
	char reason[256] = "", *s;

	cr_assert_not_null(b);
	cr_assert_eq(fls_apply(r, b, mode, reason, sizeof(reason)), 0, "%s: %s", body, reason);
	s = json_dumps(b, JSON_COMPACT);
	cr_expect_str_eq(s, want);
	free(s);
	json_decref(b);
}

#define SRC "\"_source\":{\"includes\":[\"title\",\"meta.*\",\"author\",\"c\"],\"excludes\":[\"meta.secret\"]}"

Test(fls, source_rewritten)
{
	applied(&rules, "{\"query\":{\"match\":{\"title\":\"x\"}}}", DSL_BODY_SEARCH,
	        "{\"query\":{\"match\":{\"title\":\"x\"}}," SRC "}");
	applied(&rules, "{\"_source\":true}", DSL_BODY_SEARCH, "{" SRC "}");
	applied(&rules, "{\"_source\":false}", DSL_BODY_SEARCH, "{\"_source\":false}");
	applied(&rules, "{\"_source\":\"title\"}", DSL_BODY_SEARCH,
	        "{\"_source\":{\"includes\":[\"title\"],\"excludes\":[\"meta.secret\"]}}");
	applied(&rules, "{\"_source\":{\"includes\":[\"meta.a\"],\"excludes\":[\"meta.a.b\"]}}", DSL_BODY_SEARCH,
	        "{\"_source\":{\"includes\":[\"meta.a\"],\"excludes\":[\"meta.a.b\",\"meta.secret\"]}}");
	applied(&rules, "{\"_source\":{\"excludes\":\"author\"}}", DSL_BODY_SEARCH,
	        "{\"_source\":{\"includes\":[\"title\",\"meta.*\",\"author\",\"c\"],\"excludes\":[\"author\",\"meta."
	        "secret\"]}}");
	applied(&hiding, "{}", DSL_BODY_SEARCH, "{\"_source\":{\"excludes\":[\"ssn\",\"salary\"]}}");
	applied(&hiding, "{\"query\":{\"multi_match\":{\"query\":\"x\",\"fields\":[\"title\",\"body^2\"]}}}",
	        DSL_BODY_SEARCH,
	        "{\"query\":{\"multi_match\":{\"query\":\"x\",\"fields\":[\"title\",\"body^2\"]}},\"_source\":{"
	        "\"excludes\":[\"ssn\",\"salary\"]}}");
	/* top_hits gets its own */
	applied(&rules,
	        "{\"size\":0,\"aggs\":{\"a\":{\"terms\":{\"field\":\"author\"},\"aggs\":{\"h\":{\"top_hits\":{}}}}}}",
	        DSL_BODY_SEARCH,
	        "{\"size\":0,\"aggs\":{\"a\":{\"terms\":{\"field\":\"author\"},\"aggs\":{\"h\":{\"top_hits\":{" SRC
	        "}}}}}," SRC "}");
	/* a count has no _source */
	applied(&rules, "{\"query\":{\"term\":{\"author\":\"x\"}}}", DSL_BODY_COUNT,
	        "{\"query\":{\"term\":{\"author\":\"x\"}}}");
	/* every allowed construct at once */
	applied(&rules,
	        "{\"query\":{\"bool\":{\"must\":[{\"match\":{\"title\":\"x\"}}],\"filter\":[{\"range\":{\"meta.n\":{"
	        "\"gte\":1}}"
	        "},{\"nested\":{\"path\":\"c\",\"query\":{\"term\":{\"c.t\":1}}}}]}},\"sort\":[\"_score\",{\"author\":"
	        "\"asc\"}],"
	        "\"highlight\":{\"fields\":{\"title\":{}}},\"fields\":[\"title\"],\"docvalue_fields\":[{\"field\":"
	        "\"author\"}],"
	        "\"stored_fields\":\"_none_\",\"aggs\":{\"a\":{\"date_histogram\":{\"field\":\"meta.d\"}},\"n\":{"
	        "\"nested\":{"
	        "\"path\":\"c\"}}},\"knn\":{\"field\":\"meta.v\",\"k\":1},\"collapse\":{\"field\":\"author\"}}",
	        DSL_BODY_SEARCH,
	        "{\"query\":{\"bool\":{\"must\":[{\"match\":{\"title\":\"x\"}}],\"filter\":[{\"range\":{\"meta.n\":{"
	        "\"gte\":1}}"
	        "},{\"nested\":{\"path\":\"c\",\"query\":{\"term\":{\"c.t\":1}}}}]}},\"sort\":[\"_score\",{\"author\":"
	        "\"asc\"}],"
	        "\"highlight\":{\"fields\":{\"title\":{}}},\"fields\":[\"title\"],\"docvalue_fields\":[{\"field\":"
	        "\"author\"}],"
	        "\"stored_fields\":\"_none_\",\"aggs\":{\"a\":{\"date_histogram\":{\"field\":\"meta.d\"}},\"n\":{"
	        "\"nested\":{"
	        "\"path\":\"c\"}}},\"knn\":{\"field\":\"meta.v\",\"k\":1},\"collapse\":{\"field\":\"author\"}," SRC
	        "}");
	/* inactive rules change nothing */
	struct fls_rules none = {0};
	applied(&none, "{\"query\":{\"term\":{\"salary\":1}}}", DSL_BODY_SEARCH,
	        "{\"query\":{\"term\":{\"salary\":1}}}");
}

Test(fls, text)
{
	char *out = NULL, reason[256];
	size_t len = 0;
	const char *ms = "{\"index\":\"b\"}\n{\"query\":{\"match_all\":{}}}\n{}\n{\"sort\":[\"salary\"]}\n";

	cr_assert_eq(fls_apply_text(&hiding, "", 0, DSL_BODY_SEARCH, &out, &len, reason, sizeof(reason)), 0);
	cr_expect_str_eq(out, "{\"_source\":{\"excludes\":[\"ssn\",\"salary\"]}}");
	cr_expect_eq(len, strlen(out));
	free(out);
	cr_expect_eq(fls_apply_text(&hiding, ms, strlen(ms), DSL_BODY_MSEARCH, &out, &len, reason, sizeof(reason)), -1);
	cr_expect_str_eq(reason, "field \"salary\" is not allowed (at sort)");
	cr_expect_eq(fls_apply_text(&hiding, "x\n{}\n", 5, DSL_BODY_MSEARCH, &out, &len, reason, sizeof(reason)), -1);
	cr_expect_str_eq(reason, "the body is not a JSON object");
	cr_expect_eq(fls_apply_text(&hiding, "", 0, DSL_BODY_MSEARCH, &out, &len, reason, sizeof(reason)), -1);
	cr_expect_eq(fls_apply_text(&hiding, "{}\n", 3, DSL_BODY_MSEARCH, &out, &len, reason, sizeof(reason)), -1);
	cr_expect_str_eq(reason, "an _msearch body must be header and body lines in pairs");
	ms = "{\"index\":\"b\"}\n{\"query\":{\"match_all\":{}}}\n";
	cr_assert_eq(fls_apply_text(&hiding, ms, strlen(ms), DSL_BODY_MSEARCH, &out, &len, reason, sizeof(reason)), 0);
	cr_expect_str_eq(out, "{\"index\":\"b\"}\n{\"query\":{\"match_all\":{}},\"_source\":{\"excludes\":[\"ssn\","
	                      "\"salary\"]}}\n");
	free(out);
}

Test(fls, params)
{
	char reason[256];

	cr_expect_eq(fls_check_param(&rules, "_source", "title", reason, sizeof(reason)), -1);
	cr_expect_str_eq(reason, "parameter _source is not allowed under field rules");
	cr_expect_eq(fls_check_param(&rules, "_source_excludes", "x", reason, sizeof(reason)), -1);
	cr_expect_eq(fls_check_param(&rules, "_source_includes", "title", reason, sizeof(reason)), -1);
	cr_expect_eq(fls_check_param(&rules, "q", "title:x", reason, sizeof(reason)), -1);
	cr_expect_eq(fls_check_param(&rules, "sort", "title:asc,author", reason, sizeof(reason)), 0);
	cr_expect_eq(fls_check_param(&rules, "sort", "title:asc,salary:desc", reason, sizeof(reason)), -1);
	cr_expect_str_eq(reason, "field \"salary\" is not allowed (at parameter sort)");
	cr_expect_eq(fls_check_param(&rules, "stored_fields", "_none_", reason, sizeof(reason)), 0);
	cr_expect_eq(fls_check_param(&rules, "docvalue_fields", "author,meta.secret", reason, sizeof(reason)), -1);
	cr_expect_eq(fls_check_param(&rules, "size", "10", reason, sizeof(reason)), 0);
	struct fls_rules none = {0};
	cr_expect_eq(fls_check_param(&none, "_source", "x", reason, sizeof(reason)), 0);
}
