/*
 * test_route.c - lib/route.c: templates, matching, building, query
 * allow-lists.  This code reads what clients send, so most cases here are
 * hostile: traversal, double encoding, cross-cluster names, wildcards.
 */
#include "lib/route.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static struct route_template *
compile(const char *s)
{
	char err[128] = "";
	struct route_template *t = route_compile(s, err, sizeof(err));

	cr_assert_not_null(t, "\"%s\": %s", s, err);
	return t;
}

/*
 * Templates.
 */

Test(route_compile, good)
{
	static const struct {
		const char *s;
		unsigned vars;
	} cases[] = {
	    {"/", 0},
	    {"/search/{index}", ROUTE_VAR_INDEX},
	    {"/{index}/_doc/{id}", ROUTE_VAR_INDEX | ROUTE_VAR_ID},
	    {"/{id}", ROUTE_VAR_ID},
	    {"/a/", 0},
	    {"/_search", 0},
	    {"/a-b.c_d~e/!$&'()*+,;=:@", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct route_template *t = compile(cases[i].s);

		cr_expect_eq(route_template_vars(t), cases[i].vars, "\"%s\"", cases[i].s);
		cr_expect_str_eq(route_template_source(t), cases[i].s);
		route_template_free(t);
	}
	route_template_free(NULL);
}

Test(route_compile, bad)
{
	static const struct {
		const char *s, *err;
	} cases[] = {
	    {"", "must start with '/'"},
	    {"search", "must start with '/'"},
	    {"//", "empty segment (\"//\")"},
	    {"/a//b", "empty segment (\"//\")"},
	    {"/a/./b", "\".\" and \"..\" segments are not allowed"},
	    {"/..", "\".\" and \"..\" segments are not allowed"},
	    {"/{foo}", "unknown placeholder \"{foo}\" (use {index} or {id})"},
	    {"/{}", "unknown placeholder \"{}\" (use {index} or {id})"},
	    {"/{INDEX}", "unknown placeholder \"{INDEX}\" (use {index} or {id})"},
	    {"/x{index}", "a placeholder must be a whole segment"},
	    {"/{index}x", "a placeholder must be a whole segment"},
	    {"/{index", "a placeholder must be a whole segment"},
	    {"/{in{dex}", "a placeholder must be a whole segment"},
	    {"/{index}/{index}", "placeholder {index} is used twice"},
	    {"/{id}/x/{id}", "placeholder {id} is used twice"},
	    {"/a%2Fb", "character '%' is not allowed"},
	    {"/a?b", "character '?' is not allowed"},
	    {"/a#b", "character '#' is not allowed"},
	    {"/a b", "character 0x20 is not allowed"},
	    {"/a\tb", "character 0x09 is not allowed"},
	    {"/\xc3\xa9", "character 0xc3 is not allowed"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[128] = "";

		cr_expect_null(route_compile(cases[i].s, err, sizeof(err)), "\"%s\" compiled", cases[i].s);
		cr_expect_str_eq(err, cases[i].err, "\"%s\"", cases[i].s);
	}
}

Test(route_compile, too_long)
{
	char s[ROUTE_TEMPLATE_MAX + 2], err[128];
	struct route_template *t;

	memset(s, 'a', sizeof(s));
	s[0] = '/';
	s[ROUTE_TEMPLATE_MAX] = '\0';
	t = route_compile(s, err, sizeof(err));
	cr_expect_not_null(t);
	route_template_free(t);
	s[ROUTE_TEMPLATE_MAX] = 'a';
	s[ROUTE_TEMPLATE_MAX + 1] = '\0';
	cr_expect_null(route_compile(s, err, sizeof(err)));
	cr_expect_str_eq(err, "is longer than 1024 bytes");
}

Test(route_compile, same)
{
	struct route_template *a = compile("/s/{index}"), *b = compile("/s/{id}"), *c = compile("/s/x"),
	                      *d = compile("/s/{index}/"), *e = compile("/t/{index}");

	cr_expect(route_template_same(a, a));
	cr_expect(route_template_same(a, b), "placeholders of any name match the same paths");
	cr_expect_not(route_template_same(a, c));
	cr_expect_not(route_template_same(a, d));
	cr_expect_not(route_template_same(a, e));
	route_template_free(a);
	route_template_free(b);
	route_template_free(c);
	route_template_free(d);
	route_template_free(e);
}

/*
 * Matching.
 */

struct match_case {
	const char *path;
	enum route_result want;
	const char *reason; /* on ROUTE_BAD */
	const char *value;  /* on ROUTE_MATCH: the decoded placeholder */
};

static void
check_matches(const char *tmpl, const struct match_case *cases, size_t n, unsigned var)
{
	struct route_template *t = compile(tmpl);

	for (size_t i = 0; i < n; i++) {
		struct route_vars v;
		const char *reason = "unset";
		enum route_result r = route_match(t, cases[i].path, strlen(cases[i].path), &v, &reason);

		cr_expect_eq(r, cases[i].want, "%s on \"%s\": got %d, want %d", tmpl, cases[i].path, r, cases[i].want);
		if (r != cases[i].want)
			continue;
		if (r == ROUTE_BAD) {
			cr_expect_str_eq(reason, cases[i].reason, "\"%s\"", cases[i].path);
			continue;
		}
		cr_expect_null(reason, "\"%s\"", cases[i].path);
		if (r != ROUTE_MATCH || cases[i].value == NULL)
			continue;
		cr_expect_eq(v.set, var);
		if (var == ROUTE_VAR_INDEX) {
			cr_expect_eq(v.index_len, strlen(cases[i].value));
			cr_expect_str_eq(v.index, cases[i].value);
		} else {
			cr_expect_eq(v.id_len, strlen(cases[i].value));
			cr_expect_str_eq(v.id, cases[i].value);
		}
	}
	route_template_free(t);
}

/* clang-format off */
#define INDEX_BAD(p) {p, ROUTE_BAD, "invalid index name", NULL}
#define PATH_BAD(p) {p, ROUTE_BAD, "invalid path", NULL}
#define NOMATCH(p) {p, ROUTE_NOMATCH, NULL, NULL}
/* clang-format on */

Test(route_match, index)
{
	static const struct match_case cases[] = {
	    {"/search/books", ROUTE_MATCH, NULL, "books"},
	    {"/search/logs-2024.01.01", ROUTE_MATCH, NULL, "logs-2024.01.01"},
	    {"/search/%62ooks", ROUTE_MATCH, NULL, "books"},
	    {"/search/.kibana", ROUTE_MATCH, NULL, ".kibana"}, /* a valid name: the allow-list decides */
	    {"/search/caf%C3%A9", ROUTE_MATCH, NULL, "caf\xc3\xa9"},
	    {"/search/a+b", ROUTE_MATCH, NULL, "a+b"}, /* '+' is a '+' in a path */
	    {"/search/a=b@c!", ROUTE_MATCH, NULL, "a=b@c!"},
	    /* traversal, raw or encoded, anywhere in the path */
	    PATH_BAD("/search/.."),
	    PATH_BAD("/search/."),
	    PATH_BAD("/search/%2e%2e"),
	    PATH_BAD("/search/%2E."),
	    PATH_BAD("/search/.%2e"),
	    PATH_BAD("/../search/x"),
	    PATH_BAD("/search/x/.."),
	    PATH_BAD("/nothing/like/this/%2e"),
	    PATH_BAD("/search/../_cluster/settings"),
	    /* one decode only: "%2F" is data, and '/' is not in an index name */
	    INDEX_BAD("/search/..%2F_cluster%2Fsettings"),
	    INDEX_BAD("/search/a%2Fb"),
	    INDEX_BAD("/search/%252e%252e"), /* "%2e%2e" after one decode: '%' is refused */
	    INDEX_BAD("/search/%25"),
	    /* Elasticsearch's name rules */
	    INDEX_BAD("/search/_all"),
	    INDEX_BAD("/search/_cat"),
	    INDEX_BAD("/search/-x"),
	    INDEX_BAD("/search/+x"),
	    INDEX_BAD("/search/%2Bx"),
	    INDEX_BAD("/search/a,b"),
	    INDEX_BAD("/search/a%2Cb"),
	    INDEX_BAD("/search/*"),
	    INDEX_BAD("/search/logs-*"),
	    INDEX_BAD("/search/a?b"), /* raw '?' cannot reach here, but encoded can */
	    INDEX_BAD("/search/a%3Fb"),
	    INDEX_BAD("/search/Books"),
	    INDEX_BAD("/search/BOOKS"),
	    INDEX_BAD("/search/a%20b"),
	    INDEX_BAD("/search/a b"),
	    INDEX_BAD("/search/remote:books"), /* cross-cluster */
	    INDEX_BAD("/search/a%3Ab"),
	    INDEX_BAD("/search/%3Clogs-%7Bnow%7D%3E"), /* date math */
	    INDEX_BAD("/search/<logs-{now}>"),
	    INDEX_BAD("/search/a%23b"),
	    INDEX_BAD("/search/a|b"),
	    INDEX_BAD("/search/a%7Cb"),
	    INDEX_BAD("/search/a\"b"),
	    INDEX_BAD("/search/a%22b"),
	    INDEX_BAD("/search/a\\b"),
	    INDEX_BAD("/search/a%5Cb"),
	    INDEX_BAD("/search/a>b"),
	    /* bytes that are never data */
	    INDEX_BAD("/search/a%00b"),
	    INDEX_BAD("/search/%00"),
	    INDEX_BAD("/search/a%0Ab"),
	    INDEX_BAD("/search/a%0d%0aX-Injected:%201"),
	    INDEX_BAD("/search/a%7Fb"),
	    INDEX_BAD("/search/a\001b"),
	    INDEX_BAD("/search/%ff"),       /* not UTF-8 */
	    INDEX_BAD("/search/%C0%AE"),    /* overlong '.' */
	    INDEX_BAD("/search/%ED%A0%80"), /* a surrogate */
	    /* malformed escapes */
	    INDEX_BAD("/search/a%"),
	    INDEX_BAD("/search/a%2"),
	    INDEX_BAD("/search/a%zz"),
	    INDEX_BAD("/search/%%32%65"),
	    /* shape */
	    NOMATCH("/search/"),
	    NOMATCH("/search"),
	    NOMATCH("/search//x"),
	    NOMATCH("/search//"),
	    NOMATCH("/search/books/"),
	    NOMATCH("/search/books/x"),
	    NOMATCH("//search/books"),
	    NOMATCH("/Search/books"),
	    NOMATCH("/searc%68/books"), /* literals are never decoded */
	    NOMATCH("search/books"),
	    NOMATCH(""),
	    NOMATCH("/"),
	};

	check_matches("/search/{index}", cases, sizeof(cases) / sizeof(cases[0]), ROUTE_VAR_INDEX);
}

Test(route_match, index_length)
{
	struct route_template *t = compile("/{index}");
	char path[1 + 3 * 256 + 1];
	struct route_vars v;
	const char *reason;

	path[0] = '/';
	memset(path + 1, 'a', 256);
	cr_expect_eq(route_match(t, path, 256, &v, &reason), ROUTE_MATCH, "255 bytes");
	cr_expect_eq(v.index_len, 255);
	cr_expect_eq(route_match(t, path, 257, &v, &reason), ROUTE_BAD, "256 bytes");
	cr_expect_str_eq(reason, "invalid index name");
	/* 255 bytes, but written as 765 */
	for (int i = 0; i < 255; i++)
		memcpy(path + 1 + 3 * i, "%61", 3);
	cr_expect_eq(route_match(t, path, 1 + 3 * 255, &v, &reason), ROUTE_MATCH);
	cr_expect_eq(v.index_len, 255);
	memcpy(path + 1 + 3 * 255, "%61", 3);
	cr_expect_eq(route_match(t, path, 1 + 3 * 256, &v, &reason), ROUTE_BAD);
	route_template_free(t);
}

Test(route_match, id)
{
	static const struct match_case cases[] = {
	    {"/books/_doc/1", ROUTE_MATCH, NULL, "1"},
	    {"/books/_doc/a%2Fb", ROUTE_MATCH, NULL, "a/b"}, /* data, not a separator */
	    {"/books/_doc/%2F", ROUTE_MATCH, NULL, "/"},
	    {"/books/_doc/Hello%20World", ROUTE_MATCH, NULL, "Hello World"},
	    {"/books/_doc/_all", ROUTE_MATCH, NULL, "_all"},
	    {"/books/_doc/a:b,c*", ROUTE_MATCH, NULL, "a:b,c*"},
	    {"/books/_doc/%252e%252e", ROUTE_MATCH, NULL, "%2e%2e"}, /* decoded once: an odd but harmless id */
	    {"/books/_doc/...", ROUTE_MATCH, NULL, "..."},
	    PATH_BAD("/books/_doc/.."),
	    PATH_BAD("/books/_doc/%2e"),
	    {"/books/_doc/a%00", ROUTE_BAD, "invalid document id", NULL},
	    {"/books/_doc/a%0a", ROUTE_BAD, "invalid document id", NULL},
	    {"/books/_doc/%7f", ROUTE_BAD, "invalid document id", NULL},
	    {"/books/_doc/%fe", ROUTE_BAD, "invalid document id", NULL},
	    {"/books/_doc/%g0", ROUTE_BAD, "invalid document id", NULL},
	    {"/Books/_doc/1", ROUTE_BAD, "invalid index name", NULL},
	    NOMATCH("/books/_doc/"),
	    NOMATCH("/books/_doc/1/"),
	    NOMATCH("/books/_doc"),
	    NOMATCH("/books/_DOC/1"),
	};

	check_matches("/{index}/_doc/{id}", cases, sizeof(cases) / sizeof(cases[0]), ROUTE_VAR_INDEX | ROUTE_VAR_ID);
}

Test(route_match, id_length)
{
	struct route_template *t = compile("/d/{id}");
	char path[3 + 513];
	struct route_vars v;
	const char *reason;

	memcpy(path, "/d/", 3);
	memset(path + 3, 'x', 513);
	cr_expect_eq(route_match(t, path, 3 + 512, &v, &reason), ROUTE_MATCH, "512 bytes");
	cr_expect_eq(v.id_len, 512);
	cr_expect_eq(v.id[512], '\0');
	cr_expect_eq(route_match(t, path, 3 + 513, &v, &reason), ROUTE_BAD, "513 bytes");
	cr_expect_str_eq(reason, "invalid document id");
	route_template_free(t);
}

Test(route_match, literal_and_root)
{
	struct route_template *root = compile("/"), *slash = compile("/a/");
	const char *reason;

	cr_expect_eq(route_match(root, "/", 1, NULL, &reason), ROUTE_MATCH);
	cr_expect_eq(route_match(root, "//", 2, NULL, &reason), ROUTE_NOMATCH);
	cr_expect_eq(route_match(root, "/a", 2, NULL, NULL), ROUTE_NOMATCH);
	cr_expect_eq(route_match(slash, "/a/", 3, NULL, NULL), ROUTE_MATCH);
	cr_expect_eq(route_match(slash, "/a", 2, NULL, NULL), ROUTE_NOMATCH);
	cr_expect_eq(route_match(slash, "/a//", 4, NULL, NULL), ROUTE_NOMATCH);
	/* LEN is what counts, not a NUL: a NUL inside is just a byte */
	cr_expect_eq(route_match(slash, "/a/\0", 4, NULL, NULL), ROUTE_NOMATCH);
	route_template_free(root);
	route_template_free(slash);
}

/* A path of many segments must not overflow route_match's own tables. */
Test(route_match, many_segments)
{
	struct route_template *t = compile("/{index}");
	char path[4000];
	const char *reason;

	for (size_t i = 0; i < sizeof(path); i += 2)
		memcpy(path + i, "/a", 2);
	cr_expect_eq(route_match(t, path, sizeof(path), NULL, &reason), ROUTE_NOMATCH);
	memcpy(path + sizeof(path) - 2, "/.", 2);
	cr_expect_eq(route_match(t, path, sizeof(path), NULL, &reason), ROUTE_BAD);
	cr_expect_str_eq(reason, "invalid path");
	route_template_free(t);
}

/*
 * Allow-lists of indices.
 */

Test(route_index, allowed)
{
	char *allow[] = {"books", "logs-*", "metrics"};
	static const struct {
		const char *name;
		int want;
	} cases[] = {
	    {"books", 1}, {"logs-2024", 1}, {"logs-", 1},    {"metrics", 1},   {"book", 0}, {"booksx", 0},
	    {"logs", 0},  {"logsx", 0},     {"metricsx", 0}, {"metrics-1", 0}, {"", 0},     {"other", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(route_index_allowed(cases[i].name, strlen(cases[i].name), allow, 3), cases[i].want,
		             "\"%s\"", cases[i].name);
	cr_expect_eq(route_index_allowed("books", 5, allow, 0), 0, "an empty list allows nothing");
	/* LEN counts, not the NUL */
	cr_expect_eq(route_index_allowed("booksx", 5, allow, 3), 1);
	cr_expect_eq(route_index_allowed("books", 4, allow, 3), 0);
}

Test(route_index, valid)
{
	static const struct {
		const char *s;
		int prefix, want;
	} cases[] = {
	    {"books", 0, 1},
	    {".kibana", 0, 1},
	    {"a.b-c_d+e", 0, 1},
	    {".", 0, 0},
	    {"..", 0, 0},
	    {".", 1, 1},
	    {".ds-", 1, 1},
	    {"_x", 1, 0},
	    {"-", 1, 0},
	    {"", 0, 0},
	    {"", 1, 0},
	    {"A", 0, 0},
	    {"a*", 0, 0},
	    {"a*", 1, 0},
	    {"a%b", 0, 0},
	    {"a:b", 0, 0},
	    {"\xc3\xa9", 0, 1},
	    {"\xc3", 0, 0},
	    {"\xf4\x90\x80\x80", 0, 0},
	};
	char big[300];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(route_index_valid(cases[i].s, strlen(cases[i].s), cases[i].prefix), cases[i].want,
		             "\"%s\" prefix %d", cases[i].s, cases[i].prefix);
	memset(big, 'a', sizeof(big));
	cr_expect_eq(route_index_valid(big, 255, 0), 1);
	cr_expect_eq(route_index_valid(big, 256, 0), 0);
}

/*
 * Building.
 */

Test(route_build, encodes)
{
	struct route_template *p = compile("/{index}/_doc/{id}"), *u = compile("/{index}/_doc/{id}/_source");
	struct route_vars v;
	char out[256];
	const char *path = "/books/_doc/a%2Fb%20c~d%25e+f%C3%A9";

	cr_assert_eq(route_match(p, path, strlen(path), &v, NULL), ROUTE_MATCH);
	cr_expect_str_eq(v.id, "a/b c~d%e+f\xc3\xa9");
	cr_expect_eq(route_build(u, &v, out, sizeof(out)),
	             (ssize_t)strlen("/books/_doc/a%2Fb%20c~d%25e%2Bf%C3%A9/_source"));
	cr_expect_str_eq(out, "/books/_doc/a%2Fb%20c~d%25e%2Bf%C3%A9/_source");
	route_template_free(p);
	route_template_free(u);
}

Test(route_build, literal_and_sizes)
{
	struct route_template *u = compile("/{index}/_search");
	struct route_vars v = {.set = ROUTE_VAR_INDEX};
	char out[64];

	memcpy(v.index, "books", 6);
	v.index_len = 5;
	cr_expect_eq(route_build(u, &v, out, sizeof(out)), 14);
	cr_expect_str_eq(out, "/books/_search");
	cr_expect_eq(route_build(u, &v, out, 15), 14, "exactly room for the NUL");
	cr_expect_eq(route_build(u, &v, out, 14), -1);
	cr_expect_eq(route_build(u, &v, out, 1), -1);
	cr_expect_eq(route_build(u, &v, out, 0), -1);
	v.set = 0;
	cr_expect_eq(route_build(u, &v, out, sizeof(out)), -1, "a placeholder without a value");
	route_template_free(u);

	u = compile("/_cluster/health");
	cr_expect_eq(route_build(u, &v, out, sizeof(out)), 16);
	cr_expect_str_eq(out, "/_cluster/health");
	route_template_free(u);
	u = compile("/");
	cr_expect_eq(route_build(u, &v, out, sizeof(out)), 1);
	cr_expect_str_eq(out, "/");
	route_template_free(u);
}

/* Values route_match never yields, but route_build must not trust that. */
Test(route_build, dots_encoded)
{
	struct route_template *u = compile("/x/{id}");
	struct route_vars v = {.set = ROUTE_VAR_ID};
	char out[64];

	memcpy(v.id, "..", 3);
	v.id_len = 2;
	cr_expect_eq(route_build(u, &v, out, sizeof(out)), 9);
	cr_expect_str_eq(out, "/x/%2E%2E");
	memcpy(v.id, "...", 4);
	v.id_len = 3;
	route_build(u, &v, out, sizeof(out));
	cr_expect_str_eq(out, "/x/...");
	route_template_free(u);
}

/*
 * Query strings.
 */

Test(route_query, cases)
{
	char *allow[] = {"q", "size", "from", "a b"};
	static const struct {
		const char *in;
		ssize_t rc;
		const char *out; /* or BAD on -1 */
	} cases[] = {
	    {"", 0, ""},
	    {"q=a&size=5", 10, "q=a&size=5"},
	    {"&&q=x&", 3, "q=x"},
	    {"&", 0, ""},
	    {"%71=x", 3, "q=x"},
	    {"q=a+b", 7, "q=a%20b"},
	    {"q=a%2Bb", 7, "q=a%2Bb"},
	    {"q=%e9t%C3%A9", 12, "q=%E9t%C3%A9"},
	    {"q=title:(a OR b)", 26, "q=title%3A%28a%20OR%20b%29"},
	    {"q=a=b", 7, "q=a%3Db"},
	    {"q", 1, "q"},
	    {"q=", 2, "q="},
	    {"q=1&q=2", 7, "q=1&q=2"},
	    {"a+b=1", 7, "a%20b=1"},
	    {"a%20b=1", 7, "a%20b=1"},
	    {"q=%0a", 5, "q=%0A"},
	    {"q=~-._", 6, "q=~-._"},
	    {"pretty", -1, "pretty"},
	    {"q=a&pretty", -1, "pretty"},
	    {"Q=a", -1, "Q"},
	    {"=a", -1, ""},
	    {"qq=a", -1, "qq"},
	    {"size=1&filter_path=hits", -1, "filter_path"},
	    {"x%0ay=1", -1, "x?y"},
	    {"%C3%A9=1", -1, "??"},
	    {"q=%00", -1, "malformed query string"},
	    {"q=a%", -1, "malformed query string"},
	    {"q=a%4", -1, "malformed query string"},
	    {"q=%zz", -1, "malformed query string"},
	    {"%71%=x", -1, "malformed query string"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[128], bad[64] = "unset";
		ssize_t rc =
		    route_query(cases[i].in, strlen(cases[i].in), allow, 4, out, sizeof(out), bad, sizeof(bad));

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %zd, want %zd", cases[i].in, rc, cases[i].rc);
		if (rc >= 0)
			cr_expect_str_eq(out, cases[i].out, "\"%s\"", cases[i].in);
		else
			cr_expect_str_eq(bad, cases[i].out, "\"%s\"", cases[i].in);
	}
}

Test(route_query, nul_byte_raw)
{
	char *allow[] = {"q"};
	char out[32], bad[32];

	cr_expect_eq(route_query("q=a\0b", 5, allow, 1, out, sizeof(out), bad, sizeof(bad)), -1);
	cr_expect_str_eq(bad, "malformed query string");
}

Test(route_query, none_allowed)
{
	char out[32], bad[32];

	cr_expect_eq(route_query("", 0, NULL, 0, out, sizeof(out), bad, sizeof(bad)), 0);
	cr_expect_str_eq(out, "");
	cr_expect_eq(route_query("q=1", 3, NULL, 0, out, sizeof(out), bad, sizeof(bad)), -1);
	cr_expect_str_eq(bad, "q");
}

Test(route_query, sizes)
{
	char *allow[] = {"q"};
	char out[32], bad[4];

	cr_expect_eq(route_query("q=a+b", 5, allow, 1, out, 8, bad, sizeof(bad)), 7, "exactly room for the NUL");
	cr_expect_str_eq(out, "q=a%20b");
	cr_expect_eq(route_query("q=a+b", 5, allow, 1, out, 7, NULL, 0), -1);
	cr_expect_eq(route_query("q=a+b", 5, allow, 1, out, 6, bad, sizeof(bad)), -1, "an escape that does not fit");
	cr_expect_str_eq(bad, "que", "truncated to BADLEN");
	cr_expect_eq(route_query("", 0, allow, 1, out, 0, NULL, 0), -1, "no room for the NUL");
	cr_expect_eq(route_query("longname=1", 10, allow, 1, out, sizeof(out), bad, sizeof(bad)), -1);
	cr_expect_str_eq(bad, "lon");
	cr_expect_eq(route_query("longname=1", 10, allow, 1, out, sizeof(out), NULL, 0), -1, "BAD may be NULL");
}

/*
 * Decoding.
 */

Test(route_decode, cases)
{
	static const struct {
		const char *in;
		ssize_t rc;
		const char *out;
	} cases[] = {
	    {"", 0, ""},       {"abc", 3, "abc"},   {"a%20b", 3, "a b"}, {"%2f%2F", 2, "//"},
	    {"a+b", 3, "a+b"}, {"%252e", 3, "%2e"}, {"%", -1, NULL},     {"%2", -1, NULL},
	    {"%2g", -1, NULL}, {"%00", -1, NULL},   {"%%", -1, NULL},    {"%C3%A9", 2, "\xc3\xa9"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[16];
		ssize_t rc = route_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out));

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %zd", cases[i].in, rc);
		if (rc >= 0)
			cr_expect_str_eq(out, cases[i].out, "\"%s\"", cases[i].in);
	}
}

Test(route_decode, bounds)
{
	char out[4];

	cr_expect_eq(route_decode("abc", 3, out, 4), 3);
	cr_expect_eq(route_decode("abcd", 4, out, 4), -1, "no room for the NUL");
	cr_expect_eq(route_decode("%61%62%63", 9, out, 4), 3, "OUT need only hold the decoded bytes");
	cr_expect_eq(route_decode("a\0b", 3, out, 4), -1, "a raw NUL");
	cr_expect_eq(route_decode("", 0, out, 0), -1);
}

/*
 * Route sets: the templates a path can match, found without trying them all.
 */

/* Template I of a table of N: a mix of shapes, most of them a literal first
 * segment of their own (how a big configuration looks), some sharing
 * placeholders at the top. */
static void
set_template(size_t i, char *out, size_t len)
{
	switch (i % 5) {
	case 0: snprintf(out, len, "/app%zu/{index}/_search", i); break;
	case 1: snprintf(out, len, "/app%zu/_doc/{id}", i); break;
	case 2: snprintf(out, len, "/{index}/v%zu", i); break;
	case 3: snprintf(out, len, "/app%zu", i); break;
	default: snprintf(out, len, "/app%zu/{index}/{id}/x", i); break;
	}
}

struct set_fixture {
	struct route_set *set;
	struct route_template **t;
	size_t n;
};

static void
set_build(struct set_fixture *f, size_t n)
{
	char buf[128];

	f->n = n;
	f->set = route_set_new();
	cr_assert_not_null(f->set);
	f->t = calloc(n, sizeof(*f->t));
	cr_assert_not_null(f->t);
	for (size_t i = 0; i < n; i++) {
		set_template(i, buf, sizeof(buf));
		f->t[i] = compile(buf);
		cr_assert_eq(route_set_add(f->set, f->t[i], i), 0);
	}
}

static void
set_free(struct set_fixture *f)
{
	for (size_t i = 0; i < f->n; i++)
		route_template_free(f->t[i]);
	free(f->t);
	route_set_free(f->set);
}

/* The candidates are exactly the templates route_match() does not call
 * NOMATCH, ascending, and looking them up takes a number of segment
 * comparisons that does not depend on how many templates there are. */
static unsigned long
set_check(struct set_fixture *f, const char *path)
{
	size_t ids[64], want[64], n, nwant = 0;
	unsigned long before = route_set_probes(f->set);

	n = route_set_candidates(f->set, path, strlen(path), ids, 64);
	for (size_t i = 0; i < f->n; i++)
		if (route_match(f->t[i], path, strlen(path), NULL, NULL) != ROUTE_NOMATCH) {
			cr_assert_lt(nwant, 64);
			want[nwant++] = i;
		}
	cr_assert_eq(n, nwant, "%s: %zu candidates, %zu templates match", path, n, nwant);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ids[i], want[i], "%s: candidate %zu is %zu, not %zu", path, i, ids[i], want[i]);
	return route_set_probes(f->set) - before;
}

static const char *const set_paths[] = {
    "/app0/books/_search", "/app1/_doc/42",  "/books/v2",  "/app3",      "/app4/books/7/x", "/app9999",
    "/app9995/a/_search",  "/nope/v2",       "/app3/",     "/",          "/app5//_search",  "/books/v9997",
    "/app1/_doc/",         "/x/y/z/w/v/u/t", "/app0/_doc", "/books/v2/", "/app7",           "/app10000",
};

Test(route_set, candidates_are_the_templates_that_match)
{
	struct set_fixture f;

	set_build(&f, 10000);
	for (size_t i = 0; i < sizeof(set_paths) / sizeof(set_paths[0]); i++)
		set_check(&f, set_paths[i]);
	set_free(&f);
}

Test(route_set, comparisons_do_not_grow_with_the_number_of_routes)
{
	static const size_t sizes[] = {1, 100, 10000};
	unsigned long most[3] = {0}, total[3] = {0};
	size_t npaths = sizeof(set_paths) / sizeof(set_paths[0]);

	for (size_t k = 0; k < 3; k++) {
		struct set_fixture f;

		set_build(&f, sizes[k]);
		for (size_t i = 0; i < sizeof(set_paths) / sizeof(set_paths[0]); i++) {
			size_t segs = 0;
			unsigned long probes = set_check(&f, set_paths[i]);

			for (const char *c = set_paths[i]; *c != '\0'; c++)
				segs += *c == '/';
			/* one hash lookup per segment on each branch tried (a literal
			 * and a placeholder: at most 2 per segment here), each a few
			 * slots of a table at most a quarter full: a bound in the path,
			 * not in N (trying every route would be N comparisons) */
			cr_assert_leq(probes, 8 * 2 * segs, "%zu routes, %s: %lu comparisons", sizes[k], set_paths[i],
			              probes);
			total[k] += probes;
			if (probes > most[k])
				most[k] = probes;
		}
		set_free(&f);
	}
	/* and on average about one per lookup, whatever the number of routes */
	for (size_t k = 0; k < 3; k++)
		cr_assert_leq(total[k], 3 * 2 * 4 * npaths, "%zu routes: %lu comparisons for %zu paths", sizes[k],
		              total[k], npaths);
	cr_log_info("comparisons for %zu paths: %lu (1 route), %lu (100), %lu (10,000); most for one: %lu, %lu, %lu",
	            npaths, total[0], total[1], total[2], most[0], most[1], most[2]);
}

Test(route_set, a_path_that_matches_nothing_gives_nothing)
{
	struct route_set *s = route_set_new();
	size_t ids[4];

	cr_assert_eq(route_set_candidates(s, "/a", 2, ids, 4), 0);
	cr_assert_eq(route_set_candidates(s, "", 0, ids, 4), 0);
	route_set_free(s);
	cr_assert(route_path_has_dot_segment("/a/../b", 7));
	cr_assert(route_path_has_dot_segment("/a/%2e", 6));
	cr_assert(!route_path_has_dot_segment("/a/.b", 5));
}
