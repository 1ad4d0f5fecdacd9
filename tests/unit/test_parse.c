/*
 * test_parse.c - lib/parse.c: every value parser, with what a hostile or
 * careless configuration writes next (empty, signs, spaces, overflow,
 * trailing bytes, wrong case).
 */
#include "lib/parse.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

Test(parse, duration)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t ms;
	} cases[] = {
	    {"250ms", 0, 250},
	    {"30s", 0, 30000},
	    {"2m", 0, 120000},
	    {"1h", 0, 3600000},
	    {"5", 0, 5000},
	    {"1.5", 0, 1500},
	    {"0", 0, 0},
	    {"0.25s", 0, 250},
	    {"1.5m", 0, 90000},
	    {"0.0001", 0, 0},
	    {"1.1234567891234", 0, 1123},
	    {"18446744073709551", 0, 18446744073709551000ULL},
	    {"18446744073709552", -1, 0}, /* seconds overflow milliseconds */
	    {"99999999999999999999", -1, 0},
	    {"5124095576030431h", -1, 0},
	    {"", -1, 0},
	    {"-1", -1, 0},
	    {"+1", -1, 0},
	    {" 1s", -1, 0},
	    {"1s ", -1, 0},
	    {"10x", -1, 0},
	    {"1d", -1, 0},
	    {"s", -1, 0},
	    {".5", -1, 0},
	    {"1.", -1, 0},
	    {"1.s", -1, 0},
	    {"1sms", -1, 0},
	    {"1 s", -1, 0},
	    {"1S", -1, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ms = 12345;
		int rc = parse_duration(cases[i].s, &ms);

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].s, rc);
		if (rc == 0)
			cr_expect_eq(ms, cases[i].ms, "\"%s\": %llu ms", cases[i].s, (unsigned long long)ms);
		else
			cr_expect_eq(ms, 12345, "\"%s\": output written on error", cases[i].s);
	}
}

Test(parse, listen)
{
	static const struct {
		const char *s;
		int rc;
		enum parse_listen_kind kind;
		const char *host;
		uint16_t port;
	} cases[] = {
	    {"127.0.0.1:8080", 0, PARSE_LISTEN_TCP, "127.0.0.1", 8080},
	    {"0.0.0.0:0", 0, PARSE_LISTEN_TCP, "0.0.0.0", 0},
	    {"*:80", 0, PARSE_LISTEN_TCP, "*", 80},
	    {"localhost:65535", 0, PARSE_LISTEN_TCP, "localhost", 65535},
	    {"gw-1.example.com:443", 0, PARSE_LISTEN_TCP, "gw-1.example.com", 443},
	    {"[::1]:8080", 0, PARSE_LISTEN_TCP, "::1", 8080},
	    {"[::]:9", 0, PARSE_LISTEN_TCP, "::", 9},
	    {"[2001:db8::1]:1", 0, PARSE_LISTEN_TCP, "2001:db8::1", 1},
	    {"unix:/run/esgate.sock", 0, PARSE_LISTEN_UNIX, "/run/esgate.sock", 0},
	    {"abc", -1, 0, NULL, 0},
	    {"", -1, 0, NULL, 0},
	    {":80", -1, 0, NULL, 0},
	    {"host:", -1, 0, NULL, 0},
	    {"host:8o", -1, 0, NULL, 0},
	    {"host:-1", -1, 0, NULL, 0},
	    {"host:65536", -1, 0, NULL, 0},
	    {"1.2.3.4:70000", -1, 0, NULL, 0},
	    {"1.2.3.256:80", -1, 0, NULL, 0},
	    {"1.2.3:80", -1, 0, NULL, 0},
	    {"::1:80", -1, 0, NULL, 0},
	    {"[::1]", -1, 0, NULL, 0},
	    {"[::1]80", -1, 0, NULL, 0},
	    {"[nope]:80", -1, 0, NULL, 0},
	    {"[1.2.3.4]:80", -1, 0, NULL, 0},
	    {"ho st:80", -1, 0, NULL, 0},
	    {"h_x:80", -1, 0, NULL, 0},
	    {"unix:", -1, 0, NULL, 0},
	    {"unix:rel/path", -1, 0, NULL, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parse_listen l;
		int rc = parse_listen(cases[i].s, &l) == PARSE_OK ? 0 : -1;

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].s, rc);
		if (rc != 0)
			continue;
		cr_expect_str_eq(l.spec, cases[i].s);
		cr_expect_eq(l.kind, cases[i].kind, "\"%s\"", cases[i].s);
		cr_expect_str_eq(l.host, cases[i].host);
		cr_expect_eq(l.port, cases[i].port, "\"%s\"", cases[i].s);
		parse_listen_clear(&l);
		cr_expect_null(l.spec);
		cr_expect_null(l.host);
	}
}

Test(parse, listen_unix_length)
{
	char s[5 + 108 + 1];
	struct parse_listen l;

	/* 107 bytes of path plus the NUL fill sun_path exactly */
	memcpy(s, "unix:/", 6);
	memset(s + 6, 'a', 106);
	s[112] = '\0';
	cr_expect_eq(parse_listen(s, &l), PARSE_OK);
	parse_listen_clear(&l);
	s[112] = 'a';
	s[113] = '\0';
	cr_expect_eq(parse_listen(s, &l), PARSE_BAD);
}

Test(parse, node)
{
	static const struct {
		const char *s;
		int rc;
		const char *url, *scheme, *host;
		uint16_t port;
		const char *path;
	} cases[] = {
	    {"http://127.0.0.1:9200", 0, "http://127.0.0.1:9200", "http", "127.0.0.1", 9200, ""},
	    {"http://127.0.0.1:9200/", 0, "http://127.0.0.1:9200", "http", "127.0.0.1", 9200, ""},
	    {"http://es", 0, "http://es", "http", "es", 80, ""},
	    {"https://es", 0, "https://es", "https", "es", 443, ""},
	    {"HTTPS://ES.Example.COM:9243/", 0, "HTTPS://ES.Example.COM:9243", "https", "es.example.com", 9243, ""},
	    {"https://h/es/", 0, "https://h/es", "https", "h", 443, "/es"},
	    {"http://h:1/a/b", 0, "http://h:1/a/b", "http", "h", 1, "/a/b"},
	    {"http://[::1]:9200", 0, "http://[::1]:9200", "http", "::1", 9200, ""},
	    {"http://[2001:DB8::1]/", 0, "http://[2001:DB8::1]", "http", "2001:db8::1", 80, ""},
	    {"ftp://x", -1, NULL, NULL, NULL, 0, NULL},
	    {"x", -1, NULL, NULL, NULL, 0, NULL},
	    {"", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://", -1, NULL, NULL, NULL, 0, NULL},
	    {"http:///x", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://:9200", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://h:", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://h:99999", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://h:0", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://h:9x", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://u:p@h", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://h/?q", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://h/a#b", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://[::1", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://[::1]x", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://[zz]:80", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://::1:80", -1, NULL, NULL, NULL, 0, NULL},
	    {"http://h_1", -1, NULL, NULL, NULL, 0, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parse_node n;
		int rc = parse_node(cases[i].s, &n) == PARSE_OK ? 0 : -1;

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].s, rc);
		if (rc != 0)
			continue;
		cr_expect_str_eq(n.url, cases[i].url);
		cr_expect_str_eq(n.scheme, cases[i].scheme);
		cr_expect_str_eq(n.host, cases[i].host);
		cr_expect_eq(n.port, cases[i].port, "\"%s\"", cases[i].s);
		cr_expect_str_eq(n.path, cases[i].path);
		parse_node_clear(&n);
		cr_expect_null(n.url);
	}
}

Test(parse, size)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t bytes;
	} cases[] = {
	    {"0", 0, 0},
	    {"1", 0, 1},
	    {"1048576", 0, 1048576},
	    {"1kb", 0, 1024},
	    {"64kb", 0, 65536},
	    {"1mb", 0, 1048576},
	    {"100mb", 0, 104857600},
	    {"010", 0, 10},
	    {"", -1, 0},
	    {"kb", -1, 0},
	    {"1k", -1, 0},
	    {"1KB", -1, 0},
	    {"1 kb", -1, 0},
	    {"-1", -1, 0},
	    {"1.5mb", -1, 0},
	    {"1gb", -1, 0},
	    {"1mbx", -1, 0},
	    {"18446744073709551616", -1, 0},
	    {"17592186044416mb", -1, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t b = 7;
		int rc = parse_size(cases[i].s, &b);

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].s, rc);
		cr_expect_eq(b, rc == 0 ? cases[i].bytes : 7, "\"%s\"", cases[i].s);
	}
}

Test(parse, uint)
{
	static const struct {
		const char *s;
		uint64_t max;
		int rc;
		uint64_t v;
	} cases[] = {
	    {"0", 10, 0, 0},
	    {"10", 10, 0, 10},
	    {"010", 10, 0, 10},
	    {"11", 10, -1, 0},
	    {"18446744073709551615", UINT64_MAX, 0, UINT64_MAX},
	    {"18446744073709551616", UINT64_MAX, -1, 0},
	    {"", 10, -1, 0},
	    {"-1", 10, -1, 0},
	    {"+1", 10, -1, 0},
	    {" 1", 10, -1, 0},
	    {"1 ", 10, -1, 0},
	    {"0x1", 10, -1, 0},
	    {"1.0", 10, -1, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 77;
		int rc = parse_uint(cases[i].s, cases[i].max, &v);

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].s, rc);
		cr_expect_eq(v, rc == 0 ? cases[i].v : 77, "\"%s\"", cases[i].s);
	}
}

Test(parse, rate)
{
	static const struct {
		const char *s;
		int rc;
		double per_s;
		uint64_t n;
	} cases[] = {
	    {"10/s", 0, 10, 10},
	    {"30/m", 0, 0.5, 30},
	    {"1/m", 0, 1.0 / 60, 1},
	    {"1000000/s", 0, 1000000, 1000000},
	    {"1000001/s", -1, 0, 0},
	    {"0/s", -1, 0, 0},
	    {"10", -1, 0, 0},
	    {"10/h", -1, 0, 0},
	    {"10/S", -1, 0, 0},
	    {"/s", -1, 0, 0},
	    {"-1/s", -1, 0, 0},
	    {"1.5/s", -1, 0, 0},
	    {"10/s ", -1, 0, 0},
	    {"10 /s", -1, 0, 0},
	    {"99999999999999999999/s", -1, 0, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double per_s = -1;
		uint64_t n = 77;
		int rc = parse_rate(cases[i].s, 1000000, &per_s, &n);

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].s, rc);
		if (rc == 0) {
			cr_expect_eq(per_s, cases[i].per_s, "\"%s\": %f", cases[i].s, per_s);
			cr_expect_eq(n, cases[i].n, "\"%s\"", cases[i].s);
		} else {
			cr_expect_eq(per_s, -1, "\"%s\": output written on error", cases[i].s);
		}
	}
}

/* A port out of range is told apart from a malformed address: the
 * configuration's messages differ. */
Test(parse, error_kinds)
{
	struct parse_listen l;
	struct parse_node n;

	cr_expect_eq(parse_listen("h:65536", &l), PARSE_RANGE);
	cr_expect_eq(parse_listen("h:99999999999999999999", &l), PARSE_RANGE);
	cr_expect_eq(parse_listen("h:8o", &l), PARSE_BAD);
	cr_expect_eq(parse_listen("h", &l), PARSE_BAD);
	cr_expect_null(l.host, "zeroed on failure");
	cr_expect_eq(parse_node("http://h:0", &n), PARSE_RANGE);
	cr_expect_eq(parse_node("http://h:65536", &n), PARSE_RANGE);
	cr_expect_eq(parse_node("http://h:x", &n), PARSE_BAD);
	cr_expect_eq(parse_node("gopher://h", &n), PARSE_BAD);
	cr_expect_null(n.url, "zeroed on failure");
}

Test(parse, origin)
{
	static const char *const good[] = {"*", "https://app.example", "http://localhost:3000", "https://[::1]:8443"};
	static const char *const bad[] = {"",
	                                  "app.example",
	                                  "https://app.example/",
	                                  "https://app.example/x",
	                                  "https://",
	                                  "ftp://app.example",
	                                  "https://u@app.example",
	                                  "https://app.example?x",
	                                  "https://app.example:0",
	                                  "https://app.example:99999",
	                                  "null",
	                                  "**",
	                                  " https://app.example",
	                                  "HTTPS://APP.EXAMPLE"}; /* browsers send the scheme in lower case */

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_expect(parse_origin(good[i]), "\"%s\" refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect(!parse_origin(bad[i]), "\"%s\" taken", bad[i]);
}

Test(parse, header_name)
{
	cr_expect(parse_header_name("content-type"));
	cr_expect(parse_header_name("X-Request-Id"));
	cr_expect(parse_header_name("a!#$%&'*+-.^_`|~9"));
	cr_expect(!parse_header_name("x y"));
	cr_expect(!parse_header_name("x:y"));
	cr_expect(!parse_header_name("x\r\ny"));
	cr_expect(!parse_header_name("\"quoted\""));
	cr_expect(!parse_header_name("caf\xc3\xa9"));
}

Test(parse, api_key)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"id:key", "aWQ6a2V5"},
	    {"a:", "YTo="},
	    {"ab:c", "YWI6Yw=="},
	    {":", "Og=="},
	    {"VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw",
	     "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="},
	    {"aWQ6a2V5", "aWQ6a2V5"}, /* already encoded: as is */
	    {"\xff\xfe:\x01", "//46AQ=="},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = parse_api_key(cases[i].in);

		cr_assert_not_null(got);
		cr_expect_str_eq(got, cases[i].out);
		free(got);
	}
}
