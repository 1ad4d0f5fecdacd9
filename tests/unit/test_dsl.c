/*
 * test_dsl.c - lib/dsl.c: hostile search bodies, parameters and index
 * expressions are refused with the offending key named; accepted bodies
 * come back re-serialised with the same meaning.
 */
#include "lib/dsl.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/dsl_oracle.h"

struct refusal {
	const char *body;
	const char *reason; /* exact */
};

static const struct refusal refused[] = {
    {"{\"query\":{\"script\":{\"script\":\"1\"}}}", "script is not allowed (at query.script)"},
    {"{\"query\":{\"bool\":{\"filter\":[{\"script\":{\"script\":{\"source\":\"x\"}}}]}}}",
     "script is not allowed (at query.bool.filter[0].script)"},
    {"{\"query\":{\"bool\":{\"must\":{\"bool\":{\"should\":[{\"term\":{\"a\":1}},{\"match\":{\"b\":{\"query\":\"x\","
     "\"script\":1}}}]}}}}}",
     "script is not allowed (at query.bool.must.bool.should[1].match.b.script)"},
    {"{\"query\":{\"function_score\":{\"query\":{\"match_all\":{}},\"script_score\":{}}}}",
     "query type function_score is not allowed (at query.function_score)"},
    {"{\"query\":{\"script_score\":{\"query\":{\"match_all\":{}},\"script\":{\"source\":\"1\"}}}}",
     "script_score is not allowed (at query.script_score)"},
    {"{\"runtime_mappings\":{\"x\":{\"type\":\"long\"}}}", "runtime_mappings is not allowed (at runtime_mappings)"},
    {"{\"script_fields\":{\"x\":{\"script\":\"1\"}}}", "script_fields is not allowed (at script_fields)"},
    {"{\"aggs\":{\"a\":{\"scripted_metric\":{\"map_script\":\"x\"}}}}",
     "scripted_metric is not allowed (at aggs.a.scripted_metric)"},
    {"{\"query\":{\"match\":{\"t\":{\"query\":\"x\",\"minimum_should_match_script\":{\"source\":\"1\"}}}}}",
     "minimum_should_match_script is not allowed (at query.match.t.minimum_should_match_script)"},
    {"{\"aggs\":{\"a\":{\"terms\":{\"script\":\"doc['x']\"}}}}", "script is not allowed (at aggs.a.terms.script)"},
    {"{\"aggs\":{\"a\":{\"terms\":{\"field\":\"x\"},\"aggs\":{\"b\":{\"max\":{\"script\":{\"source\":\"1\"}}}}}}}",
     "script is not allowed (at aggs.a.aggs.b.max.script)"},
    {"{\"sort\":{\"_script\":{\"type\":\"number\",\"script\":\"1\"}}}", "_script is not allowed (at sort._script)"},
    {"{\"sort\":[\"a\",{\"_script\":{}}]}", "_script is not allowed (at sort[1]._script)"},
    {"{\"highlight\":{\"fields\":{\"body\":{\"highlight_query\":{\"script\":{}}}}}}",
     "script is not allowed (at highlight.fields.body.highlight_query.script)"},
    {"{\"post_filter\":{\"script\":{}}}", "script is not allowed (at post_filter.script)"},
    {"{\"query\":{\"terms\":{\"user\":{\"index\":\"users\",\"id\":\"2\",\"path\":\"followers\"}}}}",
     "terms lookup is not allowed (at query.terms.user)"},
    {"{\"query\":{\"bool\":{\"filter\":{\"terms\":{\"u\":{\"index\":\"secret\"}}}}}}",
     "terms lookup is not allowed (at query.bool.filter.terms.u)"},
    {"{\"aggs\":{\"by\":{\"terms\":{\"y\":{\"index\":{\"terms\":{}}},\"field\":\"f\"}}}}",
     "unknown key y in terms (at aggs.by.terms.y)"},
    {"{\"aggs\":{\"script\":{\"terms\":{\"field\":\"f\"}}}}",
     "aggregation name script is not allowed (at aggs.script)"},
    {"{\"query\":{\"more_like_this\":{\"like\":[{\"_index\":\"secret\",\"_id\":\"1\"}]}}}",
     "query type more_like_this is not allowed (at query.more_like_this)"},
    {"{\"query\":{\"geo_shape\":{\"l\":{\"indexed_shape\":{\"index\":\"s\",\"id\":\"1\"}}}}}",
     "query type geo_shape is not allowed (at query.geo_shape)"},
    {"{\"query\":{\"percolate\":{\"field\":\"q\",\"index\":\"other\",\"id\":\"1\"}}}",
     "query type percolate is not allowed (at query.percolate)"},
    {"{\"query\":{\"query_string\":{\"query\":\"a\"}}}",
     "query type query_string is not allowed (at query.query_string)"},
    {"{\"query\":{\"regexp\":{\"a\":\".*\"}}}", "query type regexp is not allowed (at query.regexp)"},
    {"{\"query\":{\"bool\":{\"must_not\":[{\"wildcard\":{\"a\":\"*x*\"}}]}}}",
     "query type wildcard is not allowed (at query.bool.must_not[0].wildcard)"},
    {"{\"pit\":{\"id\":\"abc\",\"keep_alive\":\"1m\"}}", "pit is not allowed (at pit)"},
    {"{\"error_trace\":true}", "error_trace is not allowed (at error_trace)"},
    {"{\"size\":10000}", "size must be at most 100 (at size)"},
    {"{\"from\":20000}", "from must be at most 10000 (at from)"},
    {"{\"from\":9950,\"size\":100}", "from + size must be at most 10000 (at from)"},
    {"{\"from\":9995}", "from + size must be at most 10000 (at from)"},
    {"{\"size\":-1}", "size must be a non-negative integer (at size)"},
    {"{\"size\":\"10\"}", "size must be a non-negative integer (at size)"},
    {"{\"size\":1.5}", "size must be a non-negative integer (at size)"},
    {"{\"foo\":1}", "unknown or forbidden key foo (at foo)"},
    {"{\"id\":\"my-template\",\"params\":{\"q\":\"x\"}}", "unknown or forbidden key id (at id)"},
    {"{\"source\":\"{{#toJson}}x{{/toJson}}\",\"params\":{}}", "unknown or forbidden key source (at source)"},
    {"{\"profile\":true}", "unknown or forbidden key profile (at profile)"},
    {"{\"stored_fields\":[\"secret\"]}", "stored_fields must be _none_ (at stored_fields)"},
    {"{\"explain\":true}", "explain must be false (at explain)"},
    {"{\"aggs\":{\"a\":{\"terms\":{\"field\":\"x\"},\"aggs\":{\"b\":{\"terms\":{\"field\":\"y\"},\"aggs\":{\"c\":{"
     "\"terms\":"
     "{\"field\":\"z\"},\"aggs\":{\"d\":{\"avg\":{\"field\":\"w\"}}}}}}}}}}",
     "aggregation depth 4 exceeds 3 (at aggs.a.aggs.b.aggs.c.aggs)"},
    {"{\"aggs\":{\"a\":{\"significant_terms\":{\"field\":\"x\"}}}}",
     "aggregation type significant_terms is not allowed (at aggs.a.significant_terms)"},
    {"{\"aggs\":{\"a\":{\"top_hits\":{}}}}", "aggregation type top_hits is not allowed (at aggs.a.top_hits)"},
    {"{\"aggs\":{\"a\":{\"terms\":{\"field\":\"x\",\"size\":100000}}}}",
     "size must be at most 1000 (at aggs.a.terms.size)"},
    {"{\"aggregations\":{\"a\":{\"terms\":{\"field\":\"x\",\"shard_size\":5000}}}}",
     "shard_size must be at most 1000 (at aggregations.a.terms.shard_size)"},
    {"{\"aggs\":{\"a\":{\"filter\":{\"script\":{\"script\":\"1\"}}}}}",
     "script is not allowed (at aggs.a.filter.script)"},
    {"{\"aggs\":{\"a\":{\"filters\":{\"filters\":{\"x\":{\"regexp\":{\"a\":\"b\"}}}}}}}",
     "query type regexp is not allowed (at aggs.a.filters.filters.x.regexp)"},
    {"{\"aggs\":{\"a\":{\"terms\":{\"field\":\"x\"},\"avg\":{\"field\":\"y\"}}}}",
     "an aggregation must have exactly one type (at aggs.a.avg)"},
    {"{\"aggs\":{\"a\":{\"terms\":{\"field\":\"x\"}}},\"aggregations\":{}}",
     "aggs and aggregations cannot be used together (at aggregations)"},
    {"{\"query\":{\"match\":{\"a\":\"x\"},\"term\":{\"b\":1}}}",
     "a query must be an object with exactly one key (at query)"},
    {"{\"query\":{\"bool\":{\"must\":[],\"adjust_pure_negative\":false,\"x\":1}}}",
     "unknown key adjust_pure_negative in bool (at query.bool.adjust_pure_negative)"},
    {"{\"query\":{\"match_all\":{}},\"query\":{\"script\":{}}}", NULL /* duplicate key: message from jansson */},
    {"{\"query\":{\"match_all\":{}}} x", NULL},
    {"[1,2]", "the body must be a JSON object"},
    {"{\"query\":{\"term\":{\"a\\u0000b\":1}}}", NULL},
    {"{\"query\":{\"bool\":{\"should\":[{\"terms\":{\"a\":[1,{\"script\":1}]}}]}}}",
     "script is not allowed (at query.bool.should[0].terms.a[1].script)"},
    {"{\"track_total_hits\":\"yes\"}",
     "track_total_hits must be a boolean or a non-negative integer (at track_total_hits)"},
    {"{\"search_after\":[{\"script\":1}]}", "search_after must be an array of values (at search_after)"},
};

static void
check_refused(const struct dsl_policy *p, int mode, const char *url_index, const char *body, const char *want)
{
	char reason[DSL_REASON_MAX], *out = (char *)1;
	size_t outlen = 7;
	int rc;

	rc = dsl_check_body(p, body, strlen(body), mode, url_index, &out, &outlen, reason, sizeof(reason));
	cr_expect_eq(rc, -1, "accepted: %s -> %s", body, rc == 0 ? out : "");
	cr_expect_null(out);
	cr_expect_eq(outlen, 0);
	if (want != NULL)
		cr_expect_str_eq(reason, want, "for %s\n  got  %s\n  want %s", body, reason, want);
	else
		cr_expect_neq(reason[0], '\0', "a reason for %s", body);
	if (rc == 0)
		free(out);
}

Test(dsl, hostile_bodies)
{
	struct dsl_policy p;

	dsl_policy_defaults(&p);
	cr_assert_geq(sizeof(refused) / sizeof(refused[0]), 40);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		check_refused(&p, DSL_BODY_SEARCH, NULL, refused[i].body, refused[i].reason);
	dsl_policy_clear(&p);
}

/* Types a policy may allow keep their own checks. */
Test(dsl, allowed_types_keep_their_checks)
{
	static char *queries[] = {"more_like_this", "geo_shape", "percolate", "bool", "function_score", "nested"};
	struct dsl_policy p;

	dsl_policy_defaults(&p);
	p.queries = queries;
	p.nqueries = sizeof(queries) / sizeof(queries[0]);
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"query\":{\"more_like_this\":{\"like\":[\"text\",{\"_index\":\"s\",\"_id\":\"1\"}]}}}",
	              "_index is not allowed in more_like_this (at query.more_like_this.like[1]._index)");
	check_refused(&p, DSL_BODY_SEARCH, NULL, "{\"query\":{\"more_like_this\":{\"unlike\":{\"_index\":\"s\"}}}}",
	              "_index is not allowed in more_like_this (at query.more_like_this.unlike._index)");
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"query\":{\"geo_shape\":{\"l\":{\"indexed_shape\":{\"index\":\"s\"}}}}}",
	              "indexed_shape is not allowed (at query.geo_shape.l.indexed_shape)");
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"query\":{\"percolate\":{\"field\":\"q\",\"index\":\"other\",\"id\":\"1\"}}}",
	              "index is not allowed in percolate (at query.percolate.index)");
	check_refused(
	    &p, DSL_BODY_SEARCH, NULL,
	    "{\"query\":{\"function_score\":{\"query\":{\"bool\":{}},\"functions\":[{\"script_score\":{}}]}}}",
	    "script_score is not allowed (at query.function_score.functions[0].script_score)");
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"query\":{\"nested\":{\"path\":\"a\",\"query\":{\"match\":{\"a.b\":1}}}}}",
	              "query type match is not allowed (at query.nested.query.match)");
	p.queries = NULL;
	p.nqueries = 0;
	dsl_policy_clear(&p);
}

Test(dsl, count_body)
{
	struct dsl_policy p;
	char reason[DSL_REASON_MAX], *out;
	size_t outlen;

	dsl_policy_defaults(&p);
	check_refused(&p, DSL_BODY_COUNT, NULL, "{\"query\":{\"match_all\":{}},\"size\":1}",
	              "unknown or forbidden key size (at size)");
	check_refused(&p, DSL_BODY_COUNT, NULL, "{\"query\":{\"script\":{}}}",
	              "script is not allowed (at query.script)");
	cr_assert_eq(dsl_check_body(&p, "{\"query\":{\"term\":{\"a\":1}}}", 26, DSL_BODY_COUNT, NULL, &out, &outlen,
	                            reason, sizeof(reason)),
	             0, "%s", reason);
	cr_expect_str_eq(out, "{\"query\":{\"term\":{\"a\":1}}}");
	free(out);
	dsl_policy_clear(&p);
}

Test(dsl, msearch_refused)
{
	struct dsl_policy p;

	dsl_policy_defaults(&p);
	check_refused(&p, DSL_BODY_MSEARCH, "books", "{\"index\":\"secret\"}\n{\"query\":{\"match_all\":{}}}\n",
	              "index must be absent or the URL's index (at line 1: index)");
	check_refused(&p, DSL_BODY_MSEARCH, "books", "{}\n{}\n{\"index\":[\"books\",\"secret\"]}\n{}\n",
	              "index must be absent or the URL's index (at line 3: index)");
	check_refused(&p, DSL_BODY_MSEARCH, NULL, "{\"index\":\"books\"}\n{}\n",
	              "index is not allowed in an msearch header here (at line 1: index)");
	check_refused(&p, DSL_BODY_MSEARCH, "books", "{}\n{\"query\":{\"script\":{}}}\n",
	              "script is not allowed (at line 2: query.script)");
	check_refused(&p, DSL_BODY_MSEARCH, "books", "{\"expand_wildcards\":\"all\"}\n{}\n",
	              "expand_wildcards must not include hidden or all (at line 1: expand_wildcards)");
	check_refused(&p, DSL_BODY_MSEARCH, "books", "{\"error_trace\":true}\n{}\n",
	              "unknown or forbidden key error_trace (at line 1: error_trace)");
	check_refused(&p, DSL_BODY_MSEARCH, "books", "{}\n{}\n{}\n", "msearch header on line 3 has no search body");
	check_refused(&p, DSL_BODY_MSEARCH, "books", "", "empty msearch body");
	check_refused(&p, DSL_BODY_MSEARCH, "books", "{}\n{\"size\":500}\n",
	              "size must be at most 100 (at line 2: size)");
	dsl_policy_clear(&p);
}

/* Same JSON value, whatever the spacing. */
static void
check_accepted(const struct dsl_policy *p, int mode, const char *body, const char *want)
{
	char reason[DSL_REASON_MAX], *out;
	size_t outlen;
	json_t *a, *b;

	cr_assert_eq(dsl_check_body(p, body, strlen(body), mode, "books", &out, &outlen, reason, sizeof(reason)), 0,
	             "refused %s: %s", body, reason);
	cr_assert_not_null(out);
	cr_expect_eq(strlen(out), outlen);
	if (mode == DSL_BODY_MSEARCH) {
		cr_expect_str_eq(out, want);
	} else {
		a = json_loads(out, 0, NULL);
		b = json_loads(want, 0, NULL);
		cr_assert_not_null(a, "output is JSON: %s", out);
		cr_assert_not_null(b);
		cr_expect(json_equal(a, b), "got %s want %s", out, want);
		cr_expect_null(strchr(out, '\n'), "compact");
		json_decref(a);
		json_decref(b);
	}
	free(out);
}

Test(dsl, accepted_reserialised)
{
	static const char big[] =
	    "{ \"query\" : { \"bool\" : { \"must\" : [ { \"match\" : { \"title\" : { \"query\" : \"war\", \"operator\" "
	    ": \"and\" } } } ],\n"
	    "  \"filter\" : { \"range\" : { \"year\" : { \"gte\" : 1900 } } }, \"should\": [{\"terms\": {\"tag\": "
	    "[\"a\", \"b\"]}},\n"
	    "  {\"multi_match\": {\"query\": \"x\", \"fields\": [\"a\", \"b^2\"]}}, {\"exists\": {\"field\": \"c\"}},\n"
	    "  {\"prefix\": {\"p\": \"ab\"}}, {\"ids\": {\"values\": [\"1\"]}}, {\"simple_query_string\": {\"query\": "
	    "\"x\"}},\n"
	    "  {\"match_phrase\": {\"t\": \"a b\"}}], \"must_not\": {\"term\": {\"d\": true}}, "
	    "\"minimum_should_match\": 1 } },\n"
	    "  \"size\": 100, \"from\": 9900, \"sort\": [{\"year\": \"desc\"}, \"_score\"], \"_source\": [\"title\", "
	    "\"year\"],\n"
	    "  \"aggs\": {\"by_year\": {\"date_histogram\": {\"field\": \"d\", \"calendar_interval\": \"year\"},\n"
	    "     \"aggs\": {\"top\": {\"terms\": {\"field\": \"t\", \"size\": 50}, \"aggs\": {\"m\": {\"max\": "
	    "{\"field\": \"p\"}}}}}},\n"
	    "     \"f\": {\"filters\": {\"filters\": {\"a\": {\"term\": {\"x\": 1}}}}}, \"g\": {\"filter\": "
	    "{\"match_all\": {}}}},\n"
	    "  \"highlight\": {\"fields\": {\"title\": {}}}, \"track_total_hits\": true, \"timeout\": \"1s\",\n"
	    "  \"search_after\": [1, \"x\"], \"min_score\": 0.5, \"terminate_after\": 10, \"explain\": false, "
	    "\"version\": true,\n"
	    "  \"seq_no_primary_term\": false, \"stored_fields\": \"_none_\", \"post_filter\": {\"term\": {\"x\": "
	    "1}},\n"
	    "  \"fields\": [\"a\", {\"field\": \"d\", \"format\": \"epoch_millis\"}] }";
	struct dsl_policy p;

	dsl_policy_defaults(&p);
	check_accepted(&p, DSL_BODY_SEARCH, big, big);
	check_accepted(&p, DSL_BODY_SEARCH, "", "{}");
	check_accepted(&p, DSL_BODY_SEARCH, " \n", "{}");
	check_accepted(&p, DSL_BODY_SEARCH, "{\"query\":{\"match_all\":{}},\"_source\":false}",
	               "{\"query\":{\"match_all\":{}},\"_source\":false}");
	check_accepted(&p, DSL_BODY_SEARCH, "{\"size\":0,\"aggs\":{\"n\":{\"cardinality\":{\"field\":\"u\"}}}}",
	               "{\"size\":0,\"aggs\":{\"n\":{\"cardinality\":{\"field\":\"u\"}}}}");
	check_accepted(&p, DSL_BODY_SEARCH, "{\"query\":{\"match\":{\"t\":\"caf\\u00e9 \\\"x\\\"\"}}}",
	               "{\"query\":{\"match\":{\"t\":\"caf\xc3\xa9 \\\"x\\\"\"}}}");
	check_accepted(&p, DSL_BODY_MSEARCH,
	               "{}\n{ \"query\" : {\"match_all\":{}} }\r\n\n{\"index\": \"books\", \"preference\": \"x\"}\n{}",
	               "{}\n{\"query\":{\"match_all\":{}}}\n{\"index\":\"books\",\"preference\":\"x\"}\n{}\n");
	p.allow_pit = 1;
	check_accepted(&p, DSL_BODY_SEARCH, "{\"pit\":{\"id\":\"abc\",\"keep_alive\":\"1m\"}}",
	               "{\"pit\":{\"id\":\"abc\",\"keep_alive\":\"1m\"}}");
	dsl_policy_clear(&p);
}

Test(dsl, source_fields)
{
	static char *fields[] = {"title", "year", "author.*"};
	struct dsl_policy p;

	dsl_policy_defaults(&p);
	p.source_fields = fields;
	p.nsource_fields = 3;
	check_accepted(&p, DSL_BODY_SEARCH, "{\"_source\":[\"title\",\"author.name\"]}",
	               "{\"_source\":[\"title\",\"author.name\"]}");
	check_accepted(&p, DSL_BODY_SEARCH, "{\"_source\":\"author.*\"}", "{\"_source\":\"author.*\"}");
	check_accepted(&p, DSL_BODY_SEARCH, "{\"_source\":false}", "{\"_source\":false}");
	check_accepted(&p, DSL_BODY_SEARCH, "{}", "{\"_source\":[\"title\",\"year\",\"author.*\"]}");
	check_accepted(&p, DSL_BODY_SEARCH, "{\"_source\":true}", "{\"_source\":[\"title\",\"year\",\"author.*\"]}");
	check_accepted(&p, DSL_BODY_SEARCH, "{\"_source\":{\"excludes\":[\"year\"]}}",
	               "{\"_source\":{\"excludes\":[\"year\"],\"includes\":[\"title\",\"year\",\"author.*\"]}}");
	check_refused(&p, DSL_BODY_SEARCH, NULL, "{\"_source\":[\"title\",\"secret\"]}",
	              "field secret is not allowed (at _source[1])");
	check_refused(&p, DSL_BODY_SEARCH, NULL, "{\"_source\":\"*\"}", "field * is not allowed (at _source)");
	check_refused(&p, DSL_BODY_SEARCH, NULL, "{\"_source\":{\"includes\":[\"a*\"]}}",
	              "field a* is not allowed (at _source.includes[0])");
	check_refused(&p, DSL_BODY_SEARCH, NULL, "{\"fields\":[{\"field\":\"secret\"}]}",
	              "field secret is not allowed (at fields[0].field)");
	check_refused(&p, DSL_BODY_SEARCH, NULL, "{\"highlight\":{\"fields\":{\"secret\":{}}}}",
	              "field secret is not allowed (at highlight.fields.secret)");
	p.source_fields = NULL;
	p.nsource_fields = 0;
	dsl_policy_clear(&p);
}

Test(dsl, reason_is_clean_and_bounded)
{
	struct dsl_policy p;
	char reason[32], *out;
	size_t outlen;
	const char *body = "{\"\\u0001\\u00ff\\n\":1}";

	dsl_policy_defaults(&p);
	cr_assert_eq(
	    dsl_check_body(&p, body, strlen(body), DSL_BODY_SEARCH, NULL, &out, &outlen, reason, sizeof(reason)), -1);
	cr_expect_eq(strlen(reason), sizeof(reason) - 1);
	for (const char *c = reason; *c != '\0'; c++)
		cr_expect(*c >= 0x20 && *c < 0x7f, "printable: %s", reason);
	dsl_policy_clear(&p);
}

Test(dsl, params)
{
	static char *fields[] = {"title"};
	struct dsl_policy p;
	char r[DSL_REASON_MAX];

	dsl_policy_defaults(&p);
	cr_expect_eq(dsl_check_param(&p, "error_trace", "true", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "error_trace is not allowed");
	cr_expect_eq(dsl_check_param(&p, "scroll", "1m", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "scroll is not allowed");
	cr_expect_eq(dsl_check_param(&p, "size", "10000", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "size must be at most 100");
	cr_expect_eq(dsl_check_param(&p, "from", "20000", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "from must be at most 10000");
	cr_expect_eq(dsl_check_param(&p, "size", "-1", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "size must be a non-negative integer");
	cr_expect_eq(dsl_check_param(&p, "q", "a:b", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "q is not allowed (query type query_string is not allowed)");
	cr_expect_eq(dsl_check_param(&p, "explain", "true", r, sizeof(r)), -1);
	cr_expect_eq(dsl_check_param(&p, "expand_wildcards", "open,hidden", r, sizeof(r)), -1);
	cr_expect_eq(dsl_check_param(&p, "source", "{}", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "source must be checked as a body");
	cr_expect_eq(dsl_check_param(&p, "source_content_type", "text/plain", r, sizeof(r)), -1);
	cr_expect_eq(dsl_check_param(&p, "source_content_type", "application/json", r, sizeof(r)), 0);
	cr_expect_eq(dsl_check_param(&p, "size", "100", r, sizeof(r)), 0);
	cr_expect_eq(dsl_check_param(&p, "from", "0", r, sizeof(r)), 0);
	cr_expect_eq(dsl_check_param(&p, "explain", "false", r, sizeof(r)), 0);
	cr_expect_eq(dsl_check_param(&p, "preference", "_local", r, sizeof(r)), 0);
	cr_expect_eq(dsl_check_param(&p, "_source", "secret", r, sizeof(r)), 0, "no allow-list");
	p.allow_scroll = 1;
	cr_expect_eq(dsl_check_param(&p, "scroll", "1m", r, sizeof(r)), 0);
	p.source_fields = fields;
	p.nsource_fields = 1;
	cr_expect_eq(dsl_check_param(&p, "_source", "title,secret", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "field secret is not allowed (in _source)");
	cr_expect_eq(dsl_check_param(&p, "_source", "true", r, sizeof(r)), -1);
	cr_expect_eq(dsl_check_param(&p, "_source", "title", r, sizeof(r)), 0);
	cr_expect_eq(dsl_check_param(&p, "_source_includes", "secret", r, sizeof(r)), -1);
	cr_expect_eq(dsl_check_param(&p, "stored_fields", "secret", r, sizeof(r)), -1);
	p.source_fields = NULL;
	p.nsource_fields = 0;
	dsl_policy_clear(&p);
}

Test(dsl, index_expr)
{
	struct dsl_policy p;
	char r[DSL_REASON_MAX];

	dsl_policy_defaults(&p);
	cr_expect_eq(dsl_check_index_expr(&p, "books", r, sizeof(r)), 0);
	cr_expect_eq(dsl_check_index_expr(&p, "books,logs-1", r, sizeof(r)), 0);
	cr_expect_eq(dsl_check_index_expr(&p, "other:books", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "remote index is not allowed (in other:books)");
	cr_expect_eq(dsl_check_index_expr(&p, "<logs-{now/d}>", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "date math is not allowed (in <logs-{now/d}>)");
	cr_expect_eq(dsl_check_index_expr(&p, "logs-*,-logs-secret", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "index exclusion is not allowed (in -logs-secret)");
	cr_expect_eq(dsl_check_index_expr(&p, "books,", r, sizeof(r)), -1);
	cr_expect_str_eq(r, "empty index name");
	p.allow_remote_indices = p.allow_date_math = p.allow_exclusions = 1;
	cr_expect_eq(dsl_check_index_expr(&p, "c:books,<logs-{now/d{yyyy.MM.dd|+12:00}}>,-x", r, sizeof(r)), 0);
	dsl_policy_clear(&p);
}

Test(dsl, defaults)
{
	struct dsl_policy p;

	dsl_policy_defaults(&p);
	cr_expect_eq(p.nqueries, 12);
	cr_expect_eq(p.naggs, 13);
	cr_expect_eq(p.max_size, 100);
	cr_expect_eq(p.max_from, 10000);
	cr_expect_eq(p.max_agg_depth, 3);
	cr_expect_eq(p.max_buckets, 1000);
	cr_expect_null(p.source_fields);
	cr_expect_eq(p.allow_pit + p.allow_scroll + p.allow_remote_indices + p.allow_date_math + p.allow_exclusions, 0);
	dsl_policy_reset_list(&p, 'q'); /* a static default is not freed */
	cr_expect_null(p.queries);
	dsl_policy_clear(&p);
}

/* The nested sort of Elasticsearch's documentation once looped forever (the
 * inner loop reused the outer loop's iterator); its filter is a query. */
Test(dsl, nested_sort_filter, .timeout = 5)
{
	static const char ok[] = "{\"sort\":[{\"offers.price\":{\"mode\":\"min\",\"nested\":{\"path\":\"offers\","
	                         "\"filter\":{\"term\":{\"offers.color\":\"blue\"}}}}},\"_score\"]}";
	static const char bad[] = "{\"sort\":{\"a\":{\"nested\":{\"path\":\"a\",\"filter\":{\"wrapper\":{}}}}}}";
	char reason[DSL_REASON_MAX], *out = NULL;
	size_t outlen;
	struct dsl_policy p;

	dsl_policy_defaults(&p);
	check_accepted(&p, DSL_BODY_SEARCH, ok, ok);
	cr_expect_eq(dsl_check_body(&p, bad, strlen(bad), DSL_BODY_SEARCH, NULL, &out, &outlen, reason, sizeof(reason)),
	             -1);
	cr_expect_str_eq(reason, "query type wrapper is not allowed (at sort.a.nested.filter.wrapper)");
	dsl_policy_clear(&p);
}

/*
 * Issue 12: every place Elasticsearch reads a query is walked, unknown keys
 * are refused, costs are counted, and field rules cover everything that
 * returns or tests a field's values.
 */

#define LOOKUP "{\"index\":\"secrets\",\"id\":\"1\",\"path\":\"p\"}"

/* Sort forms carry queries: nested.nested.filter, the legacy nested_filter,
 * the object form, _geo_distance. */
static const struct refusal refused_sorts[] = {
    {"{\"sort\":[{\"a.b.c\":{\"nested\":{\"path\":\"a\",\"nested\":{\"path\":\"a.b\",\"filter\":{\"terms\":{"
     "\"u\":" LOOKUP "}}}}}}]}",
     "terms lookup is not allowed (at sort[0].a.b.c.nested.nested.filter.terms.u)"},
    {"{\"sort\":[{\"price\":{\"nested_path\":\"offers\",\"nested_filter\":{\"wildcard\":{\"offers.c\":\"*\"}}}}]}",
     "query type wildcard is not allowed (at sort[0].price.nested_filter.wildcard)"},
    {"{\"sort\":[{\"price\":{\"nested_filter\":{\"terms\":{\"u\":" LOOKUP "}}}}]}",
     "terms lookup is not allowed (at sort[0].price.nested_filter.terms.u)"},
    {"{\"sort\":{\"price\":{\"order\":\"asc\",\"nested\":{\"path\":\"o\",\"nested\":{\"path\":\"o.x\",\"filter\":{"
     "\"regexp\":"
     "{\"a\":\"b\"}}}}}}}",
     "query type regexp is not allowed (at sort.price.nested.nested.filter.regexp)"},
    {"{\"sort\":[{\"_geo_distance\":{\"loc\":[0,0],\"nested\":{\"path\":\"n\",\"filter\":{\"more_like_this\":{\"like\":"
     "[{\"_"
     "index\":\"secret\",\"_id\":\"1\"}]}}}}}]}",
     "query type more_like_this is not allowed (at sort[0]._geo_distance.nested.filter.more_like_this)"},
    {"{\"sort\":{\"_geo_distance\":{\"loc\":\"drm3btev3e86\",\"nested_filter\":{\"terms\":{\"u\":" LOOKUP "}}}}}",
     "terms lookup is not allowed (at sort._geo_distance.nested_filter.terms.u)"},
    {"{\"sort\":[{\"price\":{\"foo\":{\"terms\":{\"u\":" LOOKUP "}}}}]}",
     "unknown key foo in sort (at sort[0].price.foo)"},
    {"{\"sort\":[{\"price\":{\"nested\":{\"path\":\"o\",\"bar\":1}}}]}",
     "unknown key bar in nested sort (at sort[0].price.nested.bar)"},
    {"{\"sort\":[[\"a\"]]}", "a sort must be a field name or an object (at sort[0])"},
};

Test(dsl, issue12_sort_forms_are_walked)
{
	struct dsl_policy p;

	dsl_policy_defaults(&p);
	for (size_t i = 0; i < sizeof(refused_sorts) / sizeof(refused_sorts[0]); i++)
		check_refused(&p, DSL_BODY_SEARCH, NULL, refused_sorts[i].body, refused_sorts[i].reason);
	/* and in an _msearch line */
	check_refused(&p, DSL_BODY_MSEARCH, "books",
	              "{}\n{\"sort\":[{\"p\":{\"nested_filter\":{\"terms\":{\"u\":" LOOKUP "}}}}]}\n",
	              "terms lookup is not allowed (at line 2: sort[0].p.nested_filter.terms.u)");
	dsl_policy_clear(&p);
}

/* A widened policy: queries nest under keys the old walker only scanned. */
static char *wide_queries[] = {"match",     "match_all", "term",      "terms",         "bool",   "range",
                               "exists",    "nested",    "has_child", "has_parent",    "pinned", "span_multi",
                               "span_term", "span_near", "prefix",    "function_score"};
static char *wide_aggs[] = {"terms",  "top_hits", "significant_text", "adjacency_matrix",
                            "filter", "filters",  "histogram",        "date_histogram",
                            "range",  "max",      "top_metrics"};

static void
wide_policy(struct dsl_policy *p)
{
	dsl_policy_defaults(p);
	p->queries = wide_queries;
	p->nqueries = sizeof(wide_queries) / sizeof(wide_queries[0]);
	p->aggs = wide_aggs;
	p->naggs = sizeof(wide_aggs) / sizeof(wide_aggs[0]);
}

static void
wide_policy_clear(struct dsl_policy *p)
{
	p->queries = p->aggs = p->source_fields = NULL;
	p->nqueries = p->naggs = p->nsource_fields = 0;
	dsl_policy_clear(p);
}

static const struct refusal refused_wide[] = {
    {"{\"query\":{\"pinned\":{\"ids\":[\"1\"],\"organic\":{\"terms\":{\"u\":" LOOKUP "}}}}}",
     "terms lookup is not allowed (at query.pinned.organic.terms.u)"},
    {"{\"query\":{\"pinned\":{\"ids\":[\"1\"],\"organic\":{\"wildcard\":{\"a\":\"*\"}}}}}",
     "query type wildcard is not allowed (at query.pinned.organic.wildcard)"},
    {"{\"query\":{\"pinned\":{\"docs\":[{\"_index\":\"secret\",\"_id\":\"1\"}],\"organic\":{\"match_all\":{}}}}}",
     "_index is not allowed in pinned (at query.pinned.docs[0]._index)"},
    {"{\"query\":{\"span_multi\":{\"match\":{\"wildcard\":{\"a\":\"x*\"}}}}}",
     "query type wildcard is not allowed (at query.span_multi.match.wildcard)"},
    {"{\"query\":{\"span_near\":{\"clauses\":[{\"span_term\":{\"a\":\"x\"}},{\"span_multi\":{\"match\":{\"terms\":{"
     "\"u\":" LOOKUP "}}}}]}}}",
     "terms lookup is not allowed (at query.span_near.clauses[1].span_multi.match.terms.u)"},
    {"{\"query\":{\"nested\":{\"path\":\"c\",\"query\":{\"match_all\":{}},\"inner_hits\":{\"size\":10000}}}}",
     "size must be at most 100 (at query.nested.inner_hits.size)"},
    {"{\"query\":{\"nested\":{\"path\":\"c\",\"query\":{\"match_all\":{}},\"inner_hits\":{\"from\":9950,\"size\":100}}}"
     "}",
     "from + size must be at most 10000 (at query.nested.inner_hits.from)"},
    {"{\"query\":{\"has_child\":{\"type\":\"c\",\"query\":{\"match_all\":{}},\"inner_hits\":{\"sort\":[{\"x\":{"
     "\"nested\":{"
     "\"path\":\"x\",\"filter\":{\"terms\":{\"u\":" LOOKUP "}}}}}]}}}}",
     "terms lookup is not allowed (at query.has_child.inner_hits.sort[0].x.nested.filter.terms.u)"},
    {"{\"query\":{\"has_parent\":{\"parent_type\":\"p\",\"query\":{\"match_all\":{}},\"inner_hits\":{\"script_fields\":"
     "{}}}}}",
     "script_fields is not allowed (at query.has_parent.inner_hits.script_fields)"},
    {"{\"query\":{\"has_parent\":{\"parent_type\":\"p\",\"query\":{\"match_all\":{}},\"inner_hits\":{\"highlight\":{"
     "\"fields\":{"
     "\"a\":{\"highlight_query\":{\"wildcard\":{\"a\":\"*\"}}}}}}}}}",
     "query type wildcard is not allowed (at query.has_parent.inner_hits.highlight.fields.a.highlight_query.wildcard)"},
    {"{\"aggs\":{\"t\":{\"top_hits\":{\"size\":10000}}}}", "size must be at most 100 (at aggs.t.top_hits.size)"},
    {"{\"aggs\":{\"t\":{\"top_hits\":{\"sort\":[{\"p\":{\"nested_filter\":{\"terms\":{\"u\":" LOOKUP "}}}}]}}}}",
     "terms lookup is not allowed (at aggs.t.top_hits.sort[0].p.nested_filter.terms.u)"},
    {"{\"aggs\":{\"s\":{\"significant_text\":{\"field\":\"body\",\"background_filter\":{\"terms\":{\"u\":" LOOKUP
     "}}}}}}",
     "terms lookup is not allowed (at aggs.s.significant_text.background_filter.terms.u)"},
    {"{\"aggs\":{\"m\":{\"adjacency_matrix\":{\"filters\":{\"a\":{\"wildcard\":{\"x\":\"*\"}}}}}}}",
     "query type wildcard is not allowed (at aggs.m.adjacency_matrix.filters.a.wildcard)"},
    {"{\"query\":{\"function_score\":{\"functions\":[{\"filter\":{\"wildcard\":{\"a\":\"*\"}},\"weight\":2}]}}}",
     "query type wildcard is not allowed (at query.function_score.functions[0].filter.wildcard)"},
    /* a key the walker does not know is refused, whatever it holds */
    {"{\"query\":{\"match\":{\"title\":{\"query\":\"x\",\"foo\":{\"terms\":{\"u\":" LOOKUP "}}}}}}",
     "unknown key foo in match (at query.match.title.foo)"},
    {"{\"query\":{\"nested\":{\"path\":\"c\",\"query\":{\"match_all\":{}},\"filter\":{\"wildcard\":{}}}}}",
     "unknown key filter in nested (at query.nested.filter)"},
    {"{\"aggs\":{\"a\":{\"terms\":{\"field\":\"x\",\"foo\":{}}}}}", "unknown key foo in terms (at aggs.a.terms.foo)"},
    {"{\"aggs\":{\"a\":{\"max\":{\"field\":\"x\"},\"aggs\":{\"b\":{\"max\":{\"field\":\"y\"}}}}}}",
     "max cannot have sub-aggregations (at aggs.a.aggs)"},
};

Test(dsl, issue12_nested_queries_under_a_wide_policy_are_walked)
{
	struct dsl_policy p;

	wide_policy(&p);
	for (size_t i = 0; i < sizeof(refused_wide) / sizeof(refused_wide[0]); i++)
		check_refused(&p, DSL_BODY_SEARCH, NULL, refused_wide[i].body, refused_wide[i].reason);
	check_refused(&p, DSL_BODY_MSEARCH, "books",
	              "{}\n{\"query\":{\"match_all\":{}}}\n{}\n{\"query\":{\"pinned\":{\"ids\":[\"1\"],\"organic\":{"
	              "\"terms\":{\"u\":" LOOKUP "}}}}}\n",
	              "terms lookup is not allowed (at line 4: query.pinned.organic.terms.u)");
	wide_policy_clear(&p);
}

/* {"aggs":{"a0":{"max":{"field":"p"}},...}} with N siblings */
static char *
sibling_aggs(unsigned n)
{
	size_t cap = 64 + (size_t)n * 48, len;
	char *s = malloc(cap);

	cr_assert_not_null(s);
	len = (size_t)snprintf(s, cap, "{\"aggs\":{");
	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "\"a%u\":{\"max\":{\"field\":\"p\"}}%s", i,
		                        i + 1 < n ? "," : "");
	snprintf(s + len, cap - len, "}}");
	return s;
}

/* Costs are counted as Elasticsearch will pay them. */
Test(dsl, issue12_costs_are_capped)
{
	struct dsl_policy p;
	char *body, *b2;
	size_t len;

	wide_policy(&p);
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"aggs\":{\"a\":{\"terms\":{\"field\":\"a\",\"size\":1000},\"aggs\":{\"b\":{\"terms\":{"
	              "\"field\":\"b\",\"size\":1000},"
	              "\"aggs\":{\"c\":{\"terms\":{\"field\":\"c\",\"size\":1000}}}}}}}}",
	              "aggregations may make up to 1001001000 buckets, more than max_buckets 1000 (at aggs)");
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"aggs\":{\"d\":{\"date_histogram\":{\"field\":\"t\",\"fixed_interval\":\"1ms\",\"extended_"
	              "bounds\":{\"min\":0,"
	              "\"max\":4102444800000}}}}}",
	              "date_histogram may make up to 4102444800001 buckets, more than max_buckets 1000 (at "
	              "aggs.d.date_histogram)");
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"aggs\":{\"d\":{\"date_histogram\":{\"field\":\"t\",\"calendar_interval\":\"day\",\"hard_"
	              "bounds\":{\"min\":\"1900-01-01\","
	              "\"max\":\"now\"}}}}}",
	              NULL);
	check_refused(
	    &p, DSL_BODY_SEARCH, NULL,
	    "{\"aggs\":{\"h\":{\"histogram\":{\"field\":\"p\",\"interval\":1e-9,\"extended_bounds\":{\"min\":0,\"max\":"
	    "1000}}}}}",
	    "histogram may make up to 1000000000001 buckets, more than max_buckets 1000 (at aggs.h.histogram)");
	check_refused(&p, DSL_BODY_SEARCH, NULL, "{\"aggs\":{\"h\":{\"histogram\":{\"field\":\"p\",\"interval\":0}}}}",
	              "interval must be a positive number (at aggs.h.histogram.interval)");
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"aggs\":{\"r\":{\"range\":{\"field\":\"p\",\"ranges\":[{\"to\":1},{\"from\":1}]},\"aggs\":{"
	              "\"t\":{\"terms\":{\"field\":"
	              "\"x\",\"size\":600}}}}}}",
	              "aggregations may make up to 1202 buckets, more than max_buckets 1000 (at aggs)");
	/* 1001 ranges, 1001 filters */
	body = malloc(64 + 1001 * 3);
	len = (size_t)sprintf(body, "{\"aggs\":{\"r\":{\"range\":{\"field\":\"p\",\"ranges\":[");
	for (int i = 0; i < 1001; i++)
		len += (size_t)sprintf(body + len, "{}%s", i < 1000 ? "," : "");
	sprintf(body + len, "]}}}}");
	check_refused(&p, DSL_BODY_SEARCH, NULL, body,
	              "range may make up to 1001 buckets, more than max_buckets 1000 (at aggs.r.range)");
	free(body);
	b2 = malloc(64 + 1001 * 20);
	len = (size_t)sprintf(b2, "{\"aggs\":{\"f\":{\"filters\":{\"filters\":[");
	for (int i = 0; i < 1001; i++)
		len += (size_t)sprintf(b2 + len, "{\"match_all\":{}}%s", i < 1000 ? "," : "");
	sprintf(b2 + len, "]}}}}");
	check_refused(&p, DSL_BODY_SEARCH, NULL, b2,
	              "filters may make up to 1001 buckets, more than max_buckets 1000 (at aggs.f.filters)");
	free(b2);
	/* 500 sibling aggregations */
	body = sibling_aggs(500);
	check_refused(&p, DSL_BODY_SEARCH, NULL, body, "more than max_aggs 100 aggregations (at aggs.a100)");
	free(body);
	/* adjacency_matrix: n filters make n + n(n-1)/2 buckets */
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"aggs\":{\"m\":{\"adjacency_matrix\":{\"filters\":{\"a\":{\"match_all\":{}},\"b\":{\"match_"
	              "all\":{}}}},\"aggs\":{\"t\":"
	              "{\"terms\":{\"field\":\"x\",\"size\":400}}}}}}",
	              "aggregations may make up to 1203 buckets, more than max_buckets 1000 (at aggs)");
	/* 11 searches in one _msearch */
	body = malloc(11 * 5 + 1);
	body[0] = '\0';
	for (int i = 0; i < 11; i++)
		strcat(body, "{}\n{}");
	check_refused(&p, DSL_BODY_MSEARCH, "books", body, NULL);
	free(body);
	wide_policy_clear(&p);
}

/* Field rules: nothing returns or tests a field outside source_fields. */
static const struct refusal refused_fields[] = {
    {"{\"sort\":[{\"secret\":\"asc\"}]}", "field secret is not allowed (at sort[0].secret)"},
    {"{\"sort\":\"secret\"}", "field secret is not allowed (at sort)"},
    {"{\"sort\":[\"title\",{\"secret\":{\"order\":\"desc\"}}]}", "field secret is not allowed (at sort[1].secret)"},
    {"{\"sort\":[{\"_geo_distance\":{\"secret\":[0,0]}}]}",
     "field secret is not allowed (at sort[0]._geo_distance.secret)"},
    {"{\"aggs\":{\"a\":{\"terms\":{\"field\":\"secret\"}}}}", "field secret is not allowed (at aggs.a.terms.field)"},
    {"{\"aggs\":{\"m\":{\"max\":{\"field\":\"secret\"}}}}", "field secret is not allowed (at aggs.m.max.field)"},
    {"{\"aggs\":{\"t\":{\"top_metrics\":{\"metrics\":{\"field\":\"secret\"},\"sort\":{\"year\":\"desc\"}}}}}",
     "field secret is not allowed (at aggs.t.top_metrics.metrics.field)"},
    {"{\"aggs\":{\"t\":{\"top_metrics\":{\"metrics\":[{\"field\":\"year\"}],\"sort\":{\"secret\":\"desc\"}}}}}",
     "field secret is not allowed (at aggs.t.top_metrics.sort.secret)"},
    {"{\"aggs\":{\"t\":{\"top_hits\":{\"_source\":{\"includes\":[\"secret\"]}}}}}",
     "field secret is not allowed (at aggs.t.top_hits._source.includes[0])"},
    {"{\"aggs\":{\"t\":{\"top_hits\":{\"docvalue_fields\":[\"secret\"]}}}}",
     "field secret is not allowed (at aggs.t.top_hits.docvalue_fields[0])"},
    {"{\"query\":{\"term\":{\"secret\":\"x\"}}}", "field secret is not allowed (at query.term.secret)"},
    {"{\"query\":{\"bool\":{\"filter\":[{\"range\":{\"secret\":{\"gte\":1}}}]}}}",
     "field secret is not allowed (at query.bool.filter[0].range.secret)"},
    {"{\"query\":{\"nested\":{\"path\":\"c\",\"query\":{\"match_all\":{}},\"inner_hits\":{\"_source\":[\"secret\"]}}}}",
     "field secret is not allowed (at query.nested.inner_hits._source[0])"},
    {"{\"highlight\":{\"fields\":{\"title\":{\"matched_fields\":[\"title\",\"secret\"]}}}}",
     "field secret is not allowed (at highlight.fields.title.matched_fields[1])"},
    {"{\"docvalue_fields\":[{\"field\":\"secret\"}]}", "field secret is not allowed (at docvalue_fields[0].field)"},
    {"{\"collapse\":{\"field\":\"secret\"}}", "field secret is not allowed (at collapse.field)"},
};

Test(dsl, issue12_field_rules_cover_sort_aggs_and_queries)
{
	static char *fields[] = {"title", "year", "c.text"};
	struct dsl_policy p;

	wide_policy(&p);
	p.source_fields = fields;
	p.nsource_fields = 3;
	for (size_t i = 0; i < sizeof(refused_fields) / sizeof(refused_fields[0]); i++)
		check_refused(&p, DSL_BODY_SEARCH, NULL, refused_fields[i].body, refused_fields[i].reason);
	check_refused(&p, DSL_BODY_MSEARCH, "books", "{}\n{\"sort\":[{\"secret\":\"asc\"}]}\n",
	              "field secret is not allowed (at line 2: sort[0].secret)");
	wide_policy_clear(&p);
}

/* The widest policy: every query and aggregation type the firewall knows. */
static void
widest_policy(struct dsl_policy *p)
{
	size_t n;

	dsl_policy_defaults(p);
	dsl_policy_reset_list(p, 'q');
	dsl_policy_reset_list(p, 'a');
	for (n = 0; dsl_known_type('q', n) != NULL; n++)
		;
	p->queries = calloc(n, sizeof(char *));
	for (p->nqueries = 0; p->nqueries < n; p->nqueries++)
		p->queries[p->nqueries] = strdup(dsl_known_type('q', p->nqueries));
	for (n = 0; dsl_known_type('a', n) != NULL; n++)
		;
	p->aggs = calloc(n, sizeof(char *));
	for (p->naggs = 0; p->naggs < n; p->naggs++)
		p->aggs[p->naggs] = strdup(dsl_known_type('a', p->naggs));
}

/* Bodies from Elasticsearch's reference, one or more per known type: the
 * tables must not refuse what Elasticsearch documents. */
static const char *const documented[] = {
    "{\"query\":{\"match\":{\"message\":{\"query\":\"this is a test\",\"operator\":\"and\",\"fuzziness\":\"AUTO\","
    "\"zero_terms_query\":\"all\",\"auto_generate_synonyms_phrase_query\":false}}}}",
    "{\"query\":{\"match_phrase\":{\"message\":{\"query\":\"this is a "
    "test\",\"analyzer\":\"my_analyzer\",\"slop\":1}}}}",
    "{\"query\":{\"match_phrase_prefix\":{\"message\":{\"query\":\"quick brown f\",\"max_expansions\":10}}}}",
    "{\"query\":{\"match_bool_prefix\":{\"message\":\"quick brown f\"}}}",
    "{\"query\":{\"multi_match\":{\"query\":\"brown "
    "fox\",\"type\":\"best_fields\",\"fields\":[\"subject\",\"message^3\"],"
    "\"tie_breaker\":0.3}}}",
    "{\"query\":{\"combined_fields\":{\"query\":\"database "
    "systems\",\"fields\":[\"title\",\"abstract\"],\"operator\":\"and\"}}}",
    "{\"query\":{\"query_string\":{\"query\":\"(new york city) OR (big apple)\",\"default_field\":\"content\"}}}",
    "{\"query\":{\"simple_query_string\":{\"query\":\"\\\"fried eggs\\\" +(eggplant | "
    "potato)\",\"fields\":[\"title^5\",\"body\"],"
    "\"default_operator\":\"and\",\"flags\":\"OR|AND|PREFIX\"}}}",
    "{\"query\":{\"intervals\":{\"my_text\":{\"all_of\":{\"ordered\":true,\"intervals\":[{\"match\":{\"query\":\"my "
    "favorite food\","
    "\"max_gaps\":0,\"ordered\":true}},{\"any_of\":{\"intervals\":[{\"match\":{\"query\":\"hot "
    "water\"}},{\"match\":{\"query\":"
    "\"cold porridge\"}}]}}]}}}}}",
    "{\"query\":{\"intervals\":{\"my_text\":{\"match\":{\"query\":\"hot "
    "porridge\",\"max_gaps\":10,\"filter\":{\"not_containing\":{"
    "\"match\":{\"query\":\"salty\"}}}}}}}}",
    "{\"query\":{\"term\":{\"user.id\":{\"value\":\"kimchy\",\"boost\":1.0}}}}",
    "{\"query\":{\"terms\":{\"user.id\":[\"kimchy\",\"elkbee\"],\"boost\":1.0}}}",
    "{\"query\":{\"terms_set\":{\"programming_languages\":{\"terms\":[\"c++\",\"java\"],\"minimum_should_match_field\":"
    "\"required\"}}}}",
    "{\"query\":{\"range\":{\"timestamp\":{\"time_zone\":\"+01:00\",\"gte\":\"2020-01-01T00:00:00\",\"lte\":\"now\"}}}"
    "}",
    "{\"query\":{\"exists\":{\"field\":\"user\"}}}",
    "{\"query\":{\"prefix\":{\"user.id\":{\"value\":\"ki\"}}}}",
    "{\"query\":{\"wildcard\":{\"user.id\":{\"value\":\"ki*y\",\"boost\":1.0,\"rewrite\":\"constant_score\"}}}}",
    "{\"query\":{\"regexp\":{\"user.id\":{\"value\":\"k.*y\",\"flags\":\"ALL\",\"case_insensitive\":true,"
    "\"max_determinized_states\":10000,\"rewrite\":\"constant_score_blended\"}}}}",
    "{\"query\":{\"fuzzy\":{\"user.id\":{\"value\":\"ki\",\"fuzziness\":\"AUTO\",\"max_expansions\":50,\"prefix_"
    "length\":0,"
    "\"transpositions\":true}}}}",
    "{\"query\":{\"ids\":{\"values\":[\"1\",\"4\",\"100\"]}}}",
    "{\"query\":{\"match_none\":{}}}",
    "{\"query\":{\"boosting\":{\"positive\":{\"term\":{\"text\":\"apple\"}},\"negative\":{\"term\":{\"text\":\"pie\"}},"
    "\"negative_boost\":0.5}}}",
    "{\"query\":{\"constant_score\":{\"filter\":{\"term\":{\"user.id\":\"kimchy\"}},\"boost\":1.2}}}",
    "{\"query\":{\"dis_max\":{\"queries\":[{\"term\":{\"title\":\"Quick pets\"}},{\"term\":{\"body\":\"Quick pets\"}}],"
    "\"tie_breaker\":0.7}}}",
    "{\"query\":{\"function_score\":{\"query\":{\"match_all\":{}},\"boost\":\"5\",\"functions\":[{\"filter\":{"
    "\"match\":{\"test\":"
    "\"bar\"}},\"random_score\":{},\"weight\":23},{\"filter\":{\"match\":{\"test\":\"cat\"}},\"weight\":42}],\"max_"
    "boost\":42,"
    "\"score_mode\":\"max\",\"boost_mode\":\"multiply\",\"min_score\":42}}}",
    "{\"query\":{\"function_score\":{\"field_value_factor\":{\"field\":\"my-int\",\"factor\":1.2,\"modifier\":\"sqrt\","
    "\"missing\":1}}}}",
    "{\"query\":{\"function_score\":{\"gauss\":{\"@timestamp\":{\"origin\":\"2013-09-17\",\"scale\":\"10d\",\"offset\":"
    "\"5d\","
    "\"decay\":0.5},\"multi_value_mode\":\"avg\"}}}}",
    "{\"query\":{\"function_score\":{\"functions\":[{\"exp\":{\"location\":{\"origin\":{\"lat\":1,\"lon\":2},\"scale\":"
    "\"2km\"}}},"
    "{\"linear\":{\"price\":{\"origin\":0,\"scale\":20}}}],\"score_mode\":\"multiply\"}}}",
    "{\"query\":{\"nested\":{\"path\":\"obj1\",\"query\":{\"bool\":{\"must\":[{\"match\":{\"obj1.name\":\"blue\"}},{"
    "\"range\":{"
    "\"obj1.count\":{\"gt\":5}}}]}},\"score_mode\":\"avg\"}}}",
    "{\"query\":{\"nested\":{\"path\":\"comments\",\"query\":{\"match\":{\"comments.number\":2}},\"inner_hits\":{\"_"
    "source\":false,"
    "\"docvalue_fields\":[\"comments.text.keyword\"]}}}}",
    "{\"query\":{\"has_child\":{\"type\":\"child\",\"query\":{\"match_all\":{}},\"max_children\":10,\"min_children\":2,"
    "\"score_mode\":\"min\",\"inner_hits\":{\"name\":\"kids\",\"size\":2,\"sort\":[{\"date\":\"desc\"}]}}}}",
    "{\"query\":{\"has_parent\":{\"parent_type\":\"parent\",\"query\":{\"term\":{\"tag\":{\"value\":\"Elasticsearch\"}}"
    "},"
    "\"score\":true}}}",
    "{\"query\":{\"parent_id\":{\"type\":\"my-child\",\"id\":\"1\"}}}",
    "{\"query\":{\"geo_bounding_box\":{\"pin.location\":{\"top_left\":{\"lat\":40.73,\"lon\":-74.1},\"bottom_right\":{"
    "\"lat\":40.01,"
    "\"lon\":-71.12}}}}}",
    "{\"query\":{\"geo_bounding_box\":{\"pin.location\":{\"wkt\":\"BBOX (-74.1, -71.12, 40.73, 40.01)\"}}}}",
    "{\"query\":{\"geo_distance\":{\"distance\":\"200km\",\"pin.location\":{\"lat\":40,\"lon\":-70}}}}",
    "{\"query\":{\"geo_distance\":{\"distance\":\"12km\",\"pin.location\":\"drm3btev3e86\"}}}",
    "{\"query\":{\"geo_polygon\":{\"person.location\":{\"points\":[{\"lat\":40,\"lon\":-70},{\"lat\":30,\"lon\":-80},{"
    "\"lat\":20,"
    "\"lon\":-90}]}}}}",
    "{\"query\":{\"geo_shape\":{\"location\":{\"shape\":{\"type\":\"envelope\",\"coordinates\":[[13.0,53.0],[14.0,52.0]"
    "]},"
    "\"relation\":\"within\"}}}}",
    "{\"query\":{\"shape\":{\"geometry\":{\"shape\":{\"type\":\"envelope\",\"coordinates\":[[1355,5355],[1400,5200]]},"
    "\"relation\":\"within\"}}}}",
    "{\"query\":{\"distance_feature\":{\"field\":\"production_date\",\"pivot\":\"7d\",\"origin\":\"now\"}}}",
    "{\"query\":{\"rank_feature\":{\"field\":\"pagerank\",\"saturation\":{\"pivot\":8}}}}",
    "{\"query\":{\"more_like_this\":{\"fields\":[\"title\",\"description\"],\"like\":\"Once upon a "
    "time\",\"min_term_freq\":1,"
    "\"max_query_terms\":12}}}",
    "{\"query\":{\"more_like_this\":{\"fields\":[\"title\"],\"like\":[{\"_id\":\"1\"},{\"doc\":{\"name\":{\"first\":"
    "\"Ben\"}}},"
    "\"text\"],\"unlike\":\"x\",\"min_term_freq\":1}}}",
    "{\"query\":{\"percolate\":{\"field\":\"query\",\"document\":{\"message\":\"A new bonsai tree in the office\"}}}}",
    "{\"query\":{\"pinned\":{\"ids\":[\"1\",\"4\",\"100\"],\"organic\":{\"match\":{\"description\":\"iphone\"}}}}}",
    "{\"query\":{\"pinned\":{\"docs\":[{\"_id\":\"1\"}],\"organic\":{\"match\":{\"description\":\"iphone\"}}}}}",
    "{\"query\":{\"knn\":{\"field\":\"image-vector\",\"query_vector\":[-5,9,-12],\"k\":10,\"num_candidates\":100,"
    "\"filter\":{"
    "\"term\":{\"file-type\":\"png\"}}}}}",
    "{\"query\":{\"span_near\":{\"clauses\":[{\"span_term\":{\"field\":\"value1\"}},{\"span_gap\":{\"field\":2}},{"
    "\"span_term\":{"
    "\"field\":{\"value\":\"value3\"}}}],\"slop\":12,\"in_order\":false}}}",
    "{\"query\":{\"span_first\":{\"match\":{\"span_term\":{\"user.id\":\"kimchy\"}},\"end\":3}}}",
    "{\"query\":{\"span_multi\":{\"match\":{\"prefix\":{\"user.id\":{\"value\":\"ki\"}}}}}}",
    "{\"query\":{\"span_not\":{\"include\":{\"span_term\":{\"field1\":\"hoya\"}},\"exclude\":{\"span_or\":{\"clauses\":"
    "[{"
    "\"span_term\":{\"field1\":\"la\"}}]}}}}}",
    "{\"query\":{\"span_containing\":{\"little\":{\"span_term\":{\"field1\":\"foo\"}},\"big\":{\"span_term\":{"
    "\"field1\":\"bar\"}}}}}",
    "{\"query\":{\"span_within\":{\"little\":{\"span_term\":{\"field1\":\"foo\"}},\"big\":{\"span_term\":{\"field1\":"
    "\"bar\"}}}}}",
    "{\"query\":{\"span_field_masking\":{\"query\":{\"span_term\":{\"text.stems\":\"fox\"}},\"field\":\"text\"}}}",
    /* sorts */
    "{\"sort\":[{\"post_date\":{\"order\":\"asc\",\"format\":\"strict_date_optional_time_nanos\"}},\"user\",{\"name\":"
    "\"desc\"},"
    "\"_score\",{\"_shard_doc\":\"desc\"},{\"_doc\":{\"order\":\"asc\"}}]}",
    "{\"sort\":[{\"_geo_distance\":{\"pin.location\":[-70,40],\"order\":\"asc\",\"unit\":\"km\",\"mode\":\"min\","
    "\"distance_type\":\"arc\",\"ignore_unmapped\":true}}]}",
    "{\"sort\":[{\"offer.price\":{\"mode\":\"avg\",\"order\":\"asc\",\"nested\":{\"path\":\"offer\",\"filter\":{"
    "\"term\":{"
    "\"offer.color\":\"blue\"}},\"max_children\":10,\"nested\":{\"path\":\"offer.x\"}}}},{\"price\":{\"missing\":\"_"
    "last\","
    "\"unmapped_type\":\"long\",\"numeric_type\":\"double\"}}]}",
    /* hits options */
    "{\"highlight\":{\"pre_tags\":[\"<tag1>\"],\"post_tags\":[\"</tag1>\"],\"fields\":{\"body\":{\"fragment_size\":150,"
    "\"number_of_fragments\":3,\"no_match_size\":150,\"type\":\"fvh\",\"matched_fields\":[\"body\",\"body.plain\"]}},"
    "\"require_field_match\":false,\"order\":\"score\",\"tags_schema\":\"styled\",\"boundary_scanner\":\"sentence\","
    "\"encoder\":\"html\",\"highlight_query\":{\"match\":{\"body\":\"x\"}}}}",
    "{\"collapse\":{\"field\":\"user.id\",\"inner_hits\":{\"name\":\"most_recent\",\"size\":5,\"sort\":[{\"@"
    "timestamp\":\"desc\"}]},"
    "\"max_concurrent_group_searches\":4},\"size\":1}",
    "{\"docvalue_fields\":[{\"field\":\"my_date_field\",\"format\":\"epoch_millis\"},\"my_ip*\"],\"fields\":[{"
    "\"field\":\"x\","
    "\"include_unmapped\":true}],\"track_scores\":true,\"version\":true}",
    /* aggregations */
    "{\"aggs\":{\"genres\":{\"terms\":{\"field\":\"genre\",\"order\":{\"_count\":\"asc\"},\"include\":\".*sport.*\","
    "\"min_doc_count\":2,\"shard_size\":100,\"execution_hint\":\"map\",\"missing\":\"N/"
    "A\",\"collect_mode\":\"breadth_first\"}}}}",
    "{\"aggs\":{\"t\":{\"terms\":{\"field\":\"x\",\"include\":{\"partition\":0,\"num_partitions\":20},\"size\":10}}}}",
    "{\"aggs\":{\"sig\":{\"significant_terms\":{\"field\":\"crime_type\",\"background_filter\":{\"term\":{\"text\":"
    "\"spain\"}},"
    "\"jlh\":{},\"min_doc_count\":10}}}}",
    "{\"aggs\":{\"sig\":{\"significant_terms\":{\"field\":\"x\",\"mutual_information\":{\"include_negatives\":true}}}}"
    "}",
    "{\"aggs\":{\"kw\":{\"significant_text\":{\"field\":\"content\",\"filter_duplicate_text\":true,\"source_fields\":["
    "\"content\"],\"chi_square\":{}}}}}",
    "{\"aggs\":{\"genres\":{\"rare_terms\":{\"field\":\"genre\",\"max_doc_count\":2}}}}",
    "{\"aggs\":{\"genres_and_products\":{\"multi_terms\":{\"terms\":[{\"field\":\"genre\"},{\"field\":\"product\","
    "\"missing\":"
    "\"Product Z\"}]}}}}",
    "{\"aggs\":{\"prices\":{\"histogram\":{\"field\":\"price\",\"interval\":50,\"min_doc_count\":0,\"extended_bounds\":"
    "{\"min\":0,"
    "\"max\":500}}}}}",
    "{\"aggs\":{\"sales\":{\"date_histogram\":{\"field\":\"date\",\"fixed_interval\":\"1h\",\"format\":\"yyyy-MM-dd\","
    "\"time_zone\":\"-01:00\",\"min_doc_count\":0,\"extended_bounds\":{\"min\":\"now-1d/d\",\"max\":\"now/d\"}}}}}",
    "{\"aggs\":{\"sales\":{\"date_histogram\":{\"field\":\"date\",\"calendar_interval\":\"month\",\"hard_bounds\":{"
    "\"min\":"
    "\"2015-01-01\",\"max\":\"2015-12-31T23:59:59Z\"}}}}}",
    "{\"aggs\":{\"sales\":{\"auto_date_histogram\":{\"field\":\"date\",\"buckets\":10,\"minimum_interval\":\"minute\"}}"
    "}}",
    "{\"aggs\":{\"prices\":{\"variable_width_histogram\":{\"field\":\"price\",\"buckets\":2}}}}",
    "{\"aggs\":{\"price_ranges\":{\"range\":{\"field\":\"price\",\"ranges\":[{\"to\":100.0},{\"from\":100.0,\"to\":200."
    "0},{"
    "\"from\":200.0,\"key\":\"high\"}],\"keyed\":true}}}}",
    "{\"aggs\":{\"range\":{\"date_range\":{\"field\":\"date\",\"format\":\"MM-yyyy\",\"ranges\":[{\"to\":\"now-10M/"
    "M\"},{\"from\":"
    "\"now-10M/M\"}]}}}}",
    "{\"aggs\":{\"ip_ranges\":{\"ip_range\":{\"field\":\"ip\",\"ranges\":[{\"mask\":\"10.0.0.0/"
    "25\"},{\"to\":\"10.0.0.5\"}]}}}}",
    "{\"aggs\":{\"rings\":{\"geo_distance\":{\"field\":\"location\",\"origin\":\"POINT (4.894 "
    "52.3760)\",\"unit\":\"km\","
    "\"ranges\":[{\"to\":100},{\"from\":100,\"to\":300}]}}}}",
    "{\"aggs\":{\"grid\":{\"geotile_grid\":{\"field\":\"location\",\"precision\":8,\"size\":100}}}}",
    "{\"aggs\":{\"messages\":{\"filters\":{\"other_bucket_key\":\"other\",\"filters\":{\"errors\":{\"match\":{\"body\":"
    "\"error\"}},"
    "\"warnings\":{\"match\":{\"body\":\"warning\"}}}}}}}",
    "{\"aggs\":{\"interactions\":{\"adjacency_matrix\":{\"filters\":{\"grpA\":{\"terms\":{\"accounts\":[\"hillary\"]}},"
    "\"grpB\":{"
    "\"terms\":{\"accounts\":[\"donald\"]}}}}}}}",
    "{\"aggs\":{\"resellers\":{\"nested\":{\"path\":\"resellers\"},\"aggs\":{\"min_price\":{\"min\":{\"field\":"
    "\"resellers.price\"}},"
    "\"back\":{\"reverse_nested\":{},\"aggs\":{\"n\":{\"value_count\":{\"field\":\"_id\"}}}}}}}}",
    "{\"aggs\":{\"kids\":{\"children\":{\"type\":\"answer\"}},\"up\":{\"parent\":{\"type\":\"answer\"}},\"all\":{"
    "\"global\":{},"
    "\"aggs\":{\"avg_price\":{\"avg\":{\"field\":\"price\"}}}}}}",
    "{\"aggs\":{\"sample\":{\"sampler\":{\"shard_size\":200},\"aggs\":{\"k\":{\"significant_terms\":{\"field\":"
    "\"tags\"}}}},"
    "\"div\":{\"diversified_sampler\":{\"shard_size\":200,\"field\":\"author\"}}}}",
    "{\"aggs\":{\"my_buckets\":{\"composite\":{\"size\":2,\"sources\":[{\"date\":{\"date_histogram\":{\"field\":"
    "\"timestamp\","
    "\"calendar_interval\":\"1d\",\"order\":\"desc\"}}},{\"product\":{\"terms\":{\"field\":\"product\",\"missing_"
    "bucket\":true}}}],"
    "\"after\":{\"date\":1494288000000,\"product\":\"mad max\"}}}}}",
    "{\"aggs\":{\"ipv4\":{\"ip_prefix\":{\"field\":\"ipv4\",\"prefix_length\":24}}}}",
    "{\"aggs\":{\"a\":{\"sum\":{\"field\":\"price\",\"missing\":100}},\"c\":{\"cardinality\":{\"field\":\"type\","
    "\"precision_threshold\":100}},\"s\":{\"extended_stats\":{\"field\":\"grade\",\"sigma\":3}},\"p\":{\"percentiles\":"
    "{"
    "\"field\":\"load_time\",\"percents\":[95,99],\"tdigest\":{\"compression\":200}}},\"r\":{\"percentile_ranks\":{"
    "\"field\":"
    "\"load_time\",\"values\":[500,600],\"hdr\":{\"number_of_significant_value_digits\":3}}},\"b\":{\"boxplot\":{"
    "\"field\":"
    "\"load_time\"}},\"ss\":{\"string_stats\":{\"field\":\"message.keyword\",\"show_distribution\":true}},\"gb\":{"
    "\"geo_bounds\":{"
    "\"field\":\"location\",\"wrap_longitude\":true}},\"gc\":{\"geo_centroid\":{\"field\":\"location\"}},\"ms\":{"
    "\"matrix_stats\":{"
    "\"fields\":[\"poverty\",\"income\"]}},\"w\":{\"weighted_avg\":{\"value\":{\"field\":\"grade\"},\"weight\":{"
    "\"field\":\"weight\","
    "\"missing\":3}}},\"md\":{\"median_absolute_deviation\":{\"field\":\"rating\",\"compression\":100}},\"st\":{"
    "\"stats\":{\"field\":"
    "\"grade\"}}}}",
    "{\"aggs\":{\"top_tags\":{\"terms\":{\"field\":\"type\",\"size\":3},\"aggs\":{\"top\":{\"top_hits\":{\"sort\":[{"
    "\"date\":{"
    "\"order\":\"desc\"}}],\"_source\":{\"includes\":[\"date\",\"price\"]},\"size\":1}},\"tm\":{\"top_metrics\":{"
    "\"metrics\":{"
    "\"field\":\"m\"},\"sort\":{\"s\":\"desc\"}}}}}}}",
    "{\"aggs\":{\"by_date\":{\"date_histogram\":{\"field\":\"date\",\"calendar_interval\":\"month\"},\"aggs\":{\"my_"
    "rate\":{\"rate\":"
    "{\"unit\":\"year\"}},\"sales\":{\"sum\":{\"field\":\"price\"}},\"cs\":{\"cumulative_sum\":{\"buckets_path\":"
    "\"sales\"}},\"cc\":"
    "{\"cumulative_cardinality\":{\"buckets_path\":\"sales\"}},\"d\":{\"derivative\":{\"buckets_path\":\"sales\"}},"
    "\"sd\":{"
    "\"serial_diff\":{\"buckets_path\":\"sales\",\"lag\":7}},\"bs\":{\"bucket_sort\":{\"sort\":[{\"sales\":{\"order\":"
    "\"desc\"}}],"
    "\"size\":3}},\"n\":{\"normalize\":{\"buckets_path\":\"sales\",\"method\":\"percent_of_sum\"}},\"mp\":{\"moving_"
    "percentiles\":{"
    "\"buckets_path\":\"sales\",\"window\":10}}}},\"avg_monthly\":{\"avg_bucket\":{\"buckets_path\":\"by_date>sales\","
    "\"gap_policy\":\"skip\"}},\"max_m\":{\"max_bucket\":{\"buckets_path\":\"by_date>sales\"}},\"st\":{\"stats_"
    "bucket\":{"
    "\"buckets_path\":\"by_date>sales\"}},\"es\":{\"extended_stats_bucket\":{\"buckets_path\":\"by_date>sales\","
    "\"sigma\":2}},"
    "\"pb\":{\"percentiles_bucket\":{\"buckets_path\":\"by_date>sales\",\"percents\":[25,50]}},\"mb\":{\"min_bucket\":{"
    "\"buckets_path\":\"by_date>sales\"}},\"sb\":{\"sum_bucket\":{\"buckets_path\":\"by_date>sales\"}}}}",
    "{\"aggs\":{\"tt\":{\"t_test\":{\"a\":{\"field\":\"startup_time_before\",\"filter\":{\"term\":{\"group\":\"A\"}}},"
    "\"b\":{\"field\":"
    "\"startup_time_after\"},\"type\":\"heteroscedastic\"}}}}",
};

Test(dsl, issue12_documented_bodies_pass_the_widest_policy)
{
	struct dsl_policy p;

	widest_policy(&p);
	cr_assert_geq(p.nqueries, 50);
	cr_assert_geq(p.naggs, 60);
	for (size_t i = 0; i < sizeof(documented) / sizeof(documented[0]); i++)
		check_accepted(&p, DSL_BODY_SEARCH, documented[i], documented[i]);
	dsl_policy_clear(&p);
}

/* The fuzz target's oracle holds on every documented body, with and
 * without field rules, and catches what it is there to catch. */
Test(dsl, issue12_every_forwarded_object_was_checked)
{
	static char *fields[] = {"title", "message", "user", "user.id", "comments"};
	struct dsl_policy p;
	struct dsl_trace t;
	struct dsl_result res;
	struct oracle o;
	char reason[DSL_REASON_MAX];
	int accepted = 0;

	widest_policy(&p);
	oracle_init(&o, &p, &t);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < sizeof(documented) / sizeof(documented[0]); i++) {
			oracle_reset(&o);
			if (dsl_check_request(&p, DSL_BODY_SEARCH, NULL, NULL, 0, documented[i], strlen(documented[i]),
			                      &t, &res, reason, sizeof(reason)) != DSL_OK)
				continue; /* with field rules, most name other fields */
			accepted++;
			cr_expect_str_eq(o.problem, "", "%s: %s", documented[i], o.problem);
			free(res.body);
		}
		p.source_fields = fields;
		p.nsource_fields = sizeof(fields) / sizeof(fields[0]);
	}
	cr_expect_geq(accepted, 100);
	p.source_fields = NULL;
	p.nsource_fields = 0;
	/* an object nobody reported is caught */
	{
		json_t *doc = json_pack("{s:{s:{s:{}}}}", "query", "pinned", "organic");

		oracle_reset(&o);
		oracle_object(&o, doc, DSL_ROLE_DSL);
		oracle_object(&o, json_object_get(doc, "query"), DSL_ROLE_QUERY);
		oracle_document(&o, doc);
		cr_expect_str_eq(o.problem, "an object the walk did not check at query.pinned");
		oracle_reset(&o);
		oracle_object(&o, doc, DSL_ROLE_DSL);
		oracle_object(&o, json_object_get(doc, "query"), DSL_ROLE_QUERY);
		oracle_object(&o, json_object_get(json_object_get(doc, "query"), "pinned"), DSL_ROLE_DATA);
		oracle_document(&o, doc);
		cr_expect_str_eq(o.problem, "data where Elasticsearch reads DSL at query.pinned");
		json_decref(doc);
	}
	oracle_free(&o);
	dsl_policy_clear(&p);
}

/* With field rules, what would search or return every field is narrowed. */
Test(dsl, issue12_field_rules_narrow_what_names_no_field)
{
	static char *fields[] = {"title", "year", "c.text"};
	struct dsl_policy p;

	wide_policy(&p);
	p.source_fields = fields;
	p.nsource_fields = 3;
	check_accepted(&p, DSL_BODY_SEARCH,
	               "{\"query\":{\"nested\":{\"path\":\"c\",\"query\":{\"match_all\":{}},\"inner_hits\":{}}},\"_"
	               "source\":false}",
	               "{\"query\":{\"nested\":{\"path\":\"c\",\"query\":{\"match_all\":{}},\"inner_hits\":{\"_"
	               "source\":[\"title\","
	               "\"year\",\"c.text\"]}}},\"_source\":false}");
	check_accepted(&p, DSL_BODY_SEARCH, "{\"aggs\":{\"t\":{\"top_hits\":{\"size\":1}}},\"_source\":false}",
	               "{\"aggs\":{\"t\":{\"top_hits\":{\"size\":1,\"_source\":[\"title\",\"year\",\"c.text\"]}}},\"_"
	               "source\":false}");
	check_accepted(
	    &p, DSL_BODY_SEARCH, "{\"sort\":[\"_score\",{\"year\":\"desc\"},{\"title.keyword\":\"asc\"},\"_doc\"]}",
	    "{\"sort\":[\"_score\",{\"year\":\"desc\"},{\"title.keyword\":\"asc\"},\"_doc\"],\"_source\":[\"title\","
	    "\"year\",\"c.text\"]}");
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"query\":{\"nested\":{\"path\":\"d\",\"query\":{\"match_all\":{}}}}}",
	              "path d is not allowed (at query.nested.path)");
	p.queries = (char *[]){"multi_match", "simple_query_string", "query_string"};
	p.nqueries = 3;
	check_accepted(&p, DSL_BODY_SEARCH, "{\"query\":{\"multi_match\":{\"query\":\"x\"}},\"_source\":false}",
	               "{\"query\":{\"multi_match\":{\"query\":\"x\",\"lenient\":true,\"fields\":[\"title\",\"year\","
	               "\"c.text\"]}},\"_source\":false}");
	check_accepted(
	    &p, DSL_BODY_SEARCH, "{\"query\":{\"simple_query_string\":{\"query\":\"x\",\"fields\":[\"title^2\"]}}}",
	    "{\"query\":{\"simple_query_string\":{\"query\":\"x\",\"fields\":[\"title^2\"]}},\"_source\":[\"title\","
	    "\"year\",\"c.text\"]}");
	check_refused(&p, DSL_BODY_SEARCH, NULL,
	              "{\"query\":{\"multi_match\":{\"query\":\"x\",\"fields\":[\"secret^3\"]}}}",
	              "field secret is not allowed (at query.multi_match.fields[0])");
	check_refused(&p, DSL_BODY_SEARCH, NULL, "{\"query\":{\"query_string\":{\"query\":\"secret:x\"}}}",
	              "query_string is not allowed when fields are restricted (its text can name any field) (at "
	              "query.query_string)");
	wide_policy_clear(&p);
}

static int
request(const struct dsl_policy *p, int mode, const char *index, const char *const *kv, const char *body,
        struct dsl_result *res, char *reason)
{
	struct dsl_param params[8];
	size_t n = 0;

	for (; kv != NULL && kv[2 * n] != NULL; n++) {
		params[n].name = kv[2 * n];
		params[n].value = kv[2 * n + 1];
		params[n].len = strlen(kv[2 * n + 1]);
	}
	return dsl_check_request(p, mode, index, params, n, body, body != NULL ? strlen(body) : 0, NULL, res, reason,
	                         DSL_REASON_MAX);
}

#define PARAMS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* from and size are capped together, wherever each comes from; the query
 * string wins over the body, as in Elasticsearch. */
Test(dsl, issue12_request_from_and_size)
{
	struct dsl_policy p;
	struct dsl_result res;
	char reason[DSL_REASON_MAX];

	dsl_policy_defaults(&p);
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("size", "50"), "{\"from\":9990}", &res, reason),
	             DSL_REFUSED);
	cr_expect_str_eq(reason, "from + size must be at most 10000 (from 9990, size 50)");
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("from", "9990"), "{\"size\":50}", &res, reason),
	             DSL_REFUSED);
	cr_expect_str_eq(reason, "from + size must be at most 10000 (from 9990, size 50)");
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("from", "9991"), NULL, &res, reason), DSL_REFUSED);
	cr_expect_str_eq(reason, "from + size must be at most 10000 (from 9991, size 10)");
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("size", "50", "source", "{\"from\":9990}"), NULL,
	                     &res, reason),
	             DSL_REFUSED);
	cr_expect_eq(
	    request(&p, DSL_BODY_SEARCH, "books", PARAMS("size", "1", "size", "60"), "{\"from\":9950}", &res, reason),
	    DSL_REFUSED, "the larger of two sizes counts");
	cr_assert_eq(
	    request(&p, DSL_BODY_SEARCH, "books", PARAMS("size", "10"), "{\"from\":9990,\"size\":100}", &res, reason),
	    DSL_OK, "%s", reason);
	cr_expect_eq(res.from, 9990);
	cr_expect_eq(res.size, 10);
	cr_expect_eq(res.searches, 1);
	cr_expect_str_eq(res.body, "{\"from\":9990,\"size\":100}");
	free(res.body);
	cr_assert_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("from", "5"), NULL, &res, reason), DSL_OK, "%s",
	             reason);
	cr_expect_null(res.body, "no body, none sent");
	cr_expect_eq(res.from, 5);
	dsl_policy_clear(&p);
}

Test(dsl, issue12_request_source_and_parameters)
{
	static char *fields[] = {"title", "year"};
	struct dsl_policy p;
	struct dsl_result res;
	char reason[DSL_REASON_MAX];

	dsl_policy_defaults(&p);
	/* source= is the body, whatever the request carried */
	cr_assert_eq(request(&p, DSL_BODY_SEARCH, "books",
	                     PARAMS("source", "{ \"size\" : 1 }", "source_content_type", "application/json"),
	                     "{\"query\":{\"script\":{}}}", &res, reason),
	             DSL_OK, "%s", reason);
	cr_expect_str_eq(res.body, "{\"size\":1}");
	free(res.body);
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("source", ""), "{}", &res, reason), DSL_REFUSED);
	cr_expect_str_eq(reason, "source must be a JSON document, not empty");
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("source", "{}", "source", "{}"), NULL, &res, reason),
	             DSL_REFUSED);
	cr_expect_str_eq(reason, "source given twice");
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "a:books", NULL, NULL, &res, reason), DSL_REFUSED);
	cr_expect_str_eq(reason, "remote index is not allowed (in a:books)");
	cr_expect_eq(request(&p, DSL_BODY_MSEARCH, "books", NULL, NULL, &res, reason), DSL_REFUSED);
	cr_expect_str_eq(reason, "an _msearch request needs a body");
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("suggest_field", "title"), NULL, &res, reason),
	             DSL_REFUSED);
	cr_expect_str_eq(reason, "suggest_field is not allowed (suggesters are not)");
	/* field rules reach the parameters and the empty body */
	p.source_fields = fields;
	p.nsource_fields = 2;
	cr_assert_eq(request(&p, DSL_BODY_SEARCH, "books", NULL, NULL, &res, reason), DSL_OK, "%s", reason);
	cr_expect_str_eq(res.body, "{\"_source\":[\"title\",\"year\"]}");
	free(res.body);
	cr_assert_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("_source", "title", "sort", "year:desc,title"), NULL,
	                     &res, reason),
	             DSL_OK, "%s", reason);
	cr_expect_null(res.body, "_source= narrows it");
	cr_assert_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("stored_fields", "_none_"), NULL, &res, reason),
	             DSL_OK, "%s", reason);
	cr_expect_null(res.body, "no _source comes back");
	cr_assert_eq(request(&p, DSL_BODY_SEARCH, "books", NULL, "{\"stored_fields\":\"_none_\"}", &res, reason),
	             DSL_OK, "%s", reason);
	cr_expect_str_eq(res.body, "{\"stored_fields\":\"_none_\"}", "Elasticsearch refuses _source beside it");
	free(res.body);
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("sort", "title,secret:asc"), NULL, &res, reason),
	             DSL_REFUSED);
	cr_expect_str_eq(reason, "field secret is not allowed (in sort)");
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("df", "secret"), NULL, &res, reason), DSL_REFUSED);
	cr_expect_str_eq(reason, "field secret is not allowed (in df)");
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("_source_excludes", "year"), NULL, &res, reason),
	             DSL_REFUSED);
	cr_expect_str_eq(reason, "_source_excludes needs _source or _source_includes here (fields are restricted)");
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books",
	                     PARAMS("_source_includes", "title", "_source_excludes", "year"), NULL, &res, reason),
	             DSL_OK);
	p.queries = (char *[]){"query_string"};
	p.nqueries = 1;
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("q", "secret:x"), NULL, &res, reason), DSL_REFUSED);
	cr_expect_str_eq(reason, "q is not allowed when fields are restricted (its text can name any field)");
	p.queries = NULL;
	p.nqueries = 0;
	p.source_fields = NULL;
	p.nsource_fields = 0;
	dsl_policy_clear(&p);
}

/* What a request costs, and the firewall's own work, are bounded. */
Test(dsl, issue12_request_costs)
{
	struct dsl_policy p;
	struct dsl_result res;
	char reason[DSL_REASON_MAX], *body;

	dsl_policy_defaults(&p);
	cr_assert_eq(request(&p, DSL_BODY_MSEARCH, "books", NULL, "{}\n{}\n{}\n{\"size\":1}\n\n{}\n{}\n", &res, reason),
	             DSL_OK, "%s", reason);
	cr_expect_eq(res.searches, 3);
	free(res.body);
	body = malloc(11 * 6 + 1);
	body[0] = '\0';
	for (int i = 0; i < 11; i++)
		strcat(body, "{}\n{}\n");
	cr_expect_eq(request(&p, DSL_BODY_MSEARCH, "books", NULL, body, &res, reason), DSL_REFUSED);
	cr_expect_str_eq(reason, "more than max_searches 10 searches in one _msearch (at line 22)");
	body[60] = '\0';
	cr_assert_eq(request(&p, DSL_BODY_MSEARCH, "books", NULL, body, &res, reason), DSL_OK, "%s", reason);
	cr_expect_eq(res.searches, 10);
	free(res.body);
	free(body);
	/* collapse inner_hits: one search per hit */
	cr_assert_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("size", "4"),
	                     "{\"collapse\":{\"field\":\"u\",\"inner_hits\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}",
	                     &res, reason),
	             DSL_OK, "%s", reason);
	cr_expect_eq(res.searches, 9);
	free(res.body);
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", NULL,
	                     "{\"collapse\":{\"field\":\"u\",\"inner_hits\":{\"name\":\"a\"}}}", &res, reason),
	             DSL_REFUSED);
	cr_expect_str_eq(reason,
	                 "collapse inner_hits make 11 searches (one per hit), more than max_searches 10 (at collapse)");
	/* size and depth, before parsing */
	body = malloc(70000);
	memset(body, ' ', 69999);
	memcpy(body, "{\"query\":{\"match_all\":{}}}", 26);
	body[69999] = '\0';
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", NULL, body, &res, reason), DSL_TOO_LARGE);
	cr_expect_str_eq(reason, "the body is larger than max_bytes (32768 bytes)");
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", PARAMS("source", body), NULL, &res, reason), DSL_TOO_LARGE);
	p.max_bytes = 100000;
	cr_assert_eq(request(&p, DSL_BODY_SEARCH, "books", NULL, body, &res, reason), DSL_OK, "%s", reason);
	free(res.body);
	free(body);
	body = malloc(2 * 65 + 1);
	memset(body, '[', 65);
	memset(body + 65, ']', 65);
	body[130] = '\0';
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", NULL, body, &res, reason), DSL_REFUSED);
	cr_expect_str_eq(reason, "the body is nested deeper than max_depth 64");
	body[64] = ' ';
	cr_expect_eq(request(&p, DSL_BODY_SEARCH, "books", NULL,
	                     "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	                     "[[[[[[[[[[[[[[[[\"}",
	                     &res, reason),
	             DSL_REFUSED);
	cr_expect_str_eq(reason, "unknown or forbidden key a (at a)", "brackets in a string are not nesting");
	free(body);
	dsl_policy_clear(&p);
}
