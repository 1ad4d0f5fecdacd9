/*
 * test_config_auth.c - lib/config.c: "auth" at the top and on routes, the
 * keys file and the JWKS file it reads, and the exact FILE:LINE:COLUMN of
 * every error; no message ever shows a key, a hash or a secret.
 */
#include "lib/config.h"
#include "lib/dsl.h"
#include "tests/unit/testjwt.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UP "upstream:\n  nodes: [http://127.0.0.1:9200]\n"
/* line 4 is "auth:", its keys from line 5 */
#define AUTH(extra) "listen: '*:1'\n" UP "auth:\n" extra
#define HASH "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define KEY1 "  api_keys:\n    - {id: k1, hash: \"" HASH "\"}\n"
/* a route with auth, after KEY1 (lines 7-11) */
#define ROUTE(auth)                                                                                                    \
	"routes:\n  - path: /s/{index}\n    methods: GET\n    upstream: {method: GET, path: \"/{index}/_search\"}\n"   \
	"    indices: [books, \"logs-*\"]\n" auth

static struct config *
parse(const char *name, const char *yaml, struct config_errors *errs)
{
	return config_parse(name, yaml, strlen(yaml), errs);
}

static void
check_errors(const char *name, const char *yaml, const char *const *want, size_t nwant)
{
	struct config_errors errs = {0};
	struct config *cfg = parse(name, yaml, &errs);

	cr_expect_null(cfg, "config accepted:\n%s", yaml);
	for (size_t i = 0; i < errs.n; i++)
		cr_log_info("got: %s", errs.msgs[i]);
	cr_expect_eq(errs.n, nwant, "got %zu errors, want %zu", errs.n, nwant);
	for (size_t i = 0; i < errs.n && i < nwant; i++)
		cr_expect_str_eq(errs.msgs[i], want[i]);
	config_errors_free(&errs);
	config_free(cfg);
}

#define BAD(name, yaml, ...)                                                                                           \
	Test(config_auth_errors, name)                                                                                 \
	{                                                                                                              \
		static const char *const want[] = {__VA_ARGS__};                                                       \
		check_errors("t.yaml", yaml, want, sizeof(want) / sizeof(want[0]));                                    \
	}

/* A directory with the files a test writes, removed at the end. */
static char dir[64];

static void
mkdir_tmp(void)
{
	snprintf(dir, sizeof(dir), "/tmp/esgate-auth-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
}

static void
write_file(const char *name, const char *fmt, ...)
{
	char path[128];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_not_null(f = fopen(path, "w"));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

/* DIR/NAME, in a static buffer per call slot. */
static const char *
in_dir(const char *name)
{
	static char bufs[4][160];
	static int n;
	char *b = bufs[n++ % 4];

	snprintf(b, 160, "%s/%s", dir, name);
	return b;
}

Test(config_auth, existing_configs_stay_open)
{
	static const char yaml[] = "listen: '*:1'\n" UP ROUTE("");
	struct config_errors errs = {0};
	struct config *cfg = parse("t.yaml", yaml, &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->routes[0].auth.enabled, 0, "no auth rule: open, as before");
	cr_expect_eq(cfg->auth.keys.n, 0);
	cr_expect_eq(cfg->auth.ngrants, 0);
	cr_expect_eq(cfg->auth.jwt.enabled, 0);
	cr_expect_float_eq(cfg->auth.failed_rate, 1, 1e-9);
	cr_expect_float_eq(cfg->auth.failed_burst, 10, 1e-9);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config_auth, every_key, .init = mkdir_tmp, .fini = rm_tmp)
{
	EVP_PKEY *rsa = testjwt_key(testjwt_rsa_pem);
	char *jwk = testjwt_jwk(rsa, "r1"), *yaml, *s;
	struct config_errors errs = {0};
	struct config *cfg;
	const struct auth_grant *g;

	write_file("jwks.json", "{\"keys\": [%s]}\n", jwk);
	write_file("keys.yaml", "api_keys:\n"
	                        "  - id: z-batch\n"
	                        "    hash: \"" HASH "\"\n"
	                        "    grants:\n"
	                        "      - {routes: [\"/s/{index}\"], indices: [logs-*]}\n"
	                        "  - {id: a-app, hash: \"" HASH "\", groups: readers}\n");
	cr_assert(asprintf(&yaml,
	                   "listen: '*:1'\n" UP "auth:\n"
	                   "  api_keys:\n"
	                   "    - id: reporting\n"
	                   "      hash: \"" HASH "\"\n"
	                   "      expires: 2026-12-31\n"
	                   "      groups: [readers, ops]\n"
	                   "  keys_file: keys.yaml\n"
	                   "  jwt:\n"
	                   "    jwks_file: jwks.json\n"
	                   "    issuer: https://idp.example/\n"
	                   "    audience: [esgate, search]\n"
	                   "    leeway: 1m\n"
	                   "    hs256_secret: \"0123456789abcdef0123456789abcdef\"\n"
	                   "    principal_claim: email\n"
	                   "    groups_claim: roles\n"
	                   "    cache_size: 64\n"
	                   "  failed_limit: {rate: 30/m, burst: 5}\n"
	                   "  grants:\n"
	                   "    - principals: [\"jwt:alice@example.com\", anonymous]\n"
	                   "      groups: [readers]\n"
	                   "      routes: [\"/s/{index}\", /c]\n"
	                   "      indices: [books]\n"
	                   "      rate_limit: {rate: 100/s}\n"
	                   "      dls: {bool: {filter: [{term: {tenant: \"{{claims.tenant}}\"}}, {range: {level: {lte: "
	                   "3, "
	                   "gt: -1.5}}}, {term: {public: true}}, {term: {note: \"12\"}}, {exists: {field: null}}]}}\n"
	                   "      fields: {allow: [title, \"meta.*\"], hide: meta.secret}\n"
	                   "    - groups: ops\n"
	                   "      dls: '{\"term\": {\"owner\": \"{{principal}}\"}}'\n"
	                   "  groups:\n"
	                   "    ops: [\"cert:CN=backup,O=Example\", key:reporting]\n"
	                   "    empty: []\n" ROUTE("    auth: {schemes: [api_key, jwt, client_cert], required: "
	                                           "false}\n") "  - path: /c\n    methods: GET\n    upstream: {method: "
	                                                       "GET, path: /books/_count}\n"
	                                                       "    auth: {}\n"
	                                                       "  - path: /open\n    methods: GET\n    upstream: "
	                                                       "{method: GET, path: /books/_count}\n") > 0);
	cfg = parse(in_dir("esgate.yaml"), yaml, &errs);
	for (size_t i = 0; i < errs.n; i++)
		cr_log_error("%s", errs.msgs[i]);
	cr_assert_not_null(cfg);
	/* keys: inline and the file's, sorted by id */
	cr_assert_eq(cfg->auth.keys.n, 3);
	cr_expect_str_eq(cfg->auth.keys.keys[0].id, "a-app");
	cr_expect_str_eq(cfg->auth.keys.keys[1].id, "reporting");
	cr_expect_str_eq(cfg->auth.keys.keys[2].id, "z-batch");
	cr_expect_eq(cfg->auth.keys.keys[1].expires, 1798675200);
	cr_assert_eq(cfg->auth.keys.keys[1].ngroups, 2);
	cr_expect_str_eq(cfg->auth.keys.keys[1].groups[1], "ops");
	cr_expect_eq(cfg->auth.keys.keys[0].ngroups, 1);
	cr_expect_eq(cfg->auth.keys.keys[1].hash[0], 0x9f);
	cr_expect_str_eq(cfg->auth.keys_file, in_dir("keys.yaml"), "relative to the configuration file");
	/* jwt */
	cr_expect(cfg->auth.jwt.enabled);
	cr_expect_str_eq(cfg->auth.jwt.jwks_file, in_dir("jwks.json"));
	cr_expect_eq(jwt_keyset_count(cfg->auth.jwt.keys), 2, "the JWKS key and the secret");
	cr_expect_str_eq(cfg->auth.jwt.issuer, "https://idp.example/");
	cr_assert_eq(cfg->auth.jwt.naudiences, 2);
	cr_expect_str_eq(cfg->auth.jwt.audiences[1], "search");
	cr_expect_eq(cfg->auth.jwt.leeway_ms, 60000);
	cr_expect_str_eq(cfg->auth.jwt.subject_claim, "email");
	cr_expect_str_eq(cfg->auth.jwt.groups_claim, "roles");
	cr_expect_eq(cfg->auth.jwt.cache_size, 64);
	cr_expect_float_eq(cfg->auth.failed_rate, 0.5, 1e-9);
	cr_expect_float_eq(cfg->auth.failed_burst, 5, 1e-9);
	/* grants in the order read: the keys file's (read at keys_file) first */
	cr_assert_eq(cfg->auth.ngrants, 3);
	g = &cfg->auth.grants[0];
	cr_assert_eq(g->nprincipals, 1);
	cr_expect_str_eq(g->principals[0], "key:z-batch", "a key's own grant names it");
	cr_assert_eq(g->nroutes, 1);
	cr_expect_eq(g->routes[0], 0);
	g = &cfg->auth.grants[1];
	cr_assert_eq(g->nprincipals, 2);
	cr_expect_str_eq(g->principals[1], "anonymous");
	cr_expect_eq(g->ngroups, 1);
	cr_assert_eq(g->nroutes, 2);
	cr_expect_eq(g->routes[0], 0);
	cr_expect_eq(g->routes[1], 1);
	cr_expect_eq(g->nindices, 1);
	cr_expect_float_eq(g->rate, 100, 1e-9);
	cr_expect_float_eq(g->burst, 100, 1e-9);
	s = json_dumps(g->dls, JSON_COMPACT);
	cr_expect_str_eq(s,
	                 "{\"bool\":{\"filter\":[{\"term\":{\"tenant\":\"{{claims.tenant}}\"}},{\"range\":{\"level\":{"
	                 "\"lte\":3,\"gt\":-1.5}}},{\"term\":{\"public\":true}},{\"term\":{\"note\":\"12\"}},{"
	                 "\"exists\":{\"field\":null}}]}}");
	free(s);
	cr_assert_eq(g->fields.nallow, 2);
	cr_expect_str_eq(g->fields.allow[1], "meta.*");
	cr_assert_eq(g->fields.nhide, 1);
	g = &cfg->auth.grants[2];
	cr_expect_eq(g->nroute_paths, 0, "every route with an auth rule");
	s = json_dumps(g->dls, JSON_COMPACT);
	cr_expect_str_eq(s, "{\"term\":{\"owner\":\"{{principal}}\"}}");
	free(s);
	cr_assert_eq(cfg->auth.ngroups, 2);
	cr_expect_str_eq(cfg->auth.groups[0].members[0], "cert:CN=backup,O=Example");
	cr_expect_eq(cfg->auth.groups[1].nmembers, 0);
	/* routes */
	cr_expect(cfg->routes[0].auth.enabled);
	cr_expect_eq(cfg->routes[0].auth.required, 0);
	cr_expect_eq(cfg->routes[0].auth.schemes, AUTH_SCHEME_APIKEY | AUTH_SCHEME_JWT | AUTH_SCHEME_CERT);
	cr_expect(cfg->routes[1].auth.enabled);
	cr_expect_eq(cfg->routes[1].auth.required, 1);
	cr_expect_eq(cfg->routes[1].auth.schemes, AUTH_SCHEME_APIKEY | AUTH_SCHEME_JWT, "the configured ones");
	cr_expect_eq(cfg->routes[2].auth.enabled, 0);
	config_free(cfg);
	config_errors_free(&errs);
	free(yaml);
	free(jwk);
	EVP_PKEY_free(rsa);
}

Test(config_auth, keys_file_alone_and_empty, .init = mkdir_tmp, .fini = rm_tmp)
{
	struct config_errors errs = {0};
	struct config *cfg;
	char *yaml;

	write_file("keys.yaml", "");
	cr_assert(asprintf(&yaml,
	                   "listen: '*:1'\n" UP "auth: {keys_file: %s, failed_limit: off}\n" ROUTE("    auth: {}\n"),
	                   in_dir("keys.yaml")) > 0);
	cfg = parse("t.yaml", yaml, &errs);
	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->auth.keys.n, 0, "an empty keys file: no keys yet");
	cr_expect_eq(cfg->routes[0].auth.schemes, AUTH_SCHEME_APIKEY, "a keys file is API keys configured");
	cr_expect_eq(cfg->auth.failed_rate, 0);
	config_free(cfg);
	config_errors_free(&errs);
	free(yaml);
}

Test(config_auth, keys_file_errors, .init = mkdir_tmp, .fini = rm_tmp)
{
	char *yaml, *want[3];

	cr_assert(asprintf(&yaml, AUTH("  keys_file: keys.yaml\n" KEY1)) > 0);
	/* no such file: at the directive */
	cr_assert(asprintf(&want[0], "%s:5:14: \"keys_file\": %s: cannot open: No such file or directory",
	                   in_dir("esgate.yaml"), in_dir("keys.yaml")) > 0);
	check_errors(in_dir("esgate.yaml"), yaml, (const char *const *)want, 1);
	free(want[0]);
	/* broken YAML: at its place in the keys file */
	write_file("keys.yaml", "api_keys:\n  - {id: a, hash: [}\n");
	cr_assert(asprintf(&want[0], "%s:2:20: YAML syntax error: did not find expected node content",
	                   in_dir("keys.yaml")) > 0);
	check_errors(in_dir("esgate.yaml"), yaml, (const char *const *)want, 1);
	free(want[0]);
	/* bad values, a duplicate of an inline id, an unknown key; the hash
	 * itself never shown */
	write_file("keys.yaml", "api_keys:\n"
	                        "  - {id: a, hash: \"sha256:my-secret-key\"}\n"
	                        "  - {id: k1, hash: \"" HASH "\"}\n"
	                        "  - {id: \"b c\", hash: \"" HASH "\", color: red}\n");
	cr_assert(asprintf(&want[0],
	                   "%s:2:19: \"hash\" must be \"sha256:\" and 64 hexadecimal digits (esgate key new prints it)",
	                   in_dir("keys.yaml")) > 0);
	cr_assert(asprintf(&want[1], "%s:4:10: \"id\": bad key id (use 1 to 64 of A-Z a-z 0-9 . _ -)",
	                   in_dir("keys.yaml")) > 0);
	cr_assert(asprintf(&want[2], "%s:4:98: unknown key \"color\" in api key", in_dir("keys.yaml")) > 0);
	{
		struct config_errors errs = {0};
		struct config *cfg = parse(in_dir("esgate.yaml"), yaml, &errs);
		char dup[256];

		cr_expect_null(cfg);
		cr_assert_eq(errs.n, 4);
		for (int i = 0; i < 3; i++)
			cr_expect_str_eq(errs.msgs[i], want[i]);
		snprintf(dup, sizeof(dup), "%s:7:7: duplicate API key id \"k1\"", in_dir("esgate.yaml"));
		cr_expect_str_eq(errs.msgs[3], dup, "the later one, inline after the file's");
		for (size_t i = 0; i < errs.n; i++)
			cr_expect(strstr(errs.msgs[i], "my-secret-key") == NULL);
		config_errors_free(&errs);
		config_free(cfg);
	}
	for (int i = 0; i < 3; i++)
		free(want[i]);
	write_file("keys.yaml", "keys: []\n");
	cr_assert(asprintf(&want[0], "%s:1:1: unknown key \"keys\" in keys file", in_dir("keys.yaml")) > 0);
	cr_assert(asprintf(&want[1], "%s:1:1: missing required key \"api_keys\" in keys file", in_dir("keys.yaml")) >
	          0);
	check_errors(in_dir("esgate.yaml"), yaml, (const char *const *)want, 2);
	free(want[0]);
	free(want[1]);
	free(yaml);
}

Test(config_auth, jwks_file_errors, .init = mkdir_tmp, .fini = rm_tmp)
{
	EVP_PKEY *short_rsa = testjwt_key(testjwt_rsa1k_pem);
	char *jwk = testjwt_jwk(short_rsa, "old"), *want;
	static const char yaml[] = AUTH("  jwt: {jwks_file: jwks.json}\n");

	write_file("jwks.json", "{\"keys\": [%s]}", jwk);
	cr_assert(asprintf(&want, "%s:5:20: \"jwks_file\": %s: keys[0] (kid \"old\"): RSA key shorter than 2048 bits",
	                   in_dir("esgate.yaml"), in_dir("jwks.json")) > 0);
	check_errors(in_dir("esgate.yaml"), yaml, (const char *const *)&want, 1);
	free(want);
	write_file("jwks.json", "{\"keys\": [\n  {\"kty\": \"RSA\",}\n]}");
	cr_assert(asprintf(&want,
	                   "%s:5:20: \"jwks_file\": %s: 2:17: JSON syntax error: string or '}' expected near '}'",
	                   in_dir("esgate.yaml"), in_dir("jwks.json")) > 0);
	check_errors(in_dir("esgate.yaml"), yaml, (const char *const *)&want, 1);
	free(want);
	free(jwk);
	EVP_PKEY_free(short_rsa);
}

BAD(unknown_key, AUTH("  api_key: []\n"), "t.yaml:5:3: unknown key \"api_key\" in auth")
BAD(not_mapping, "listen: '*:1'\n" UP "auth: true\n", "t.yaml:4:7: \"auth\" must be a mapping")
BAD(key_missing_hash, AUTH("  api_keys:\n    - id: k1\n"), "t.yaml:6:7: missing required key \"hash\" in api key")
BAD(key_missing_id, AUTH("  api_keys:\n    - hash: \"" HASH "\"\n"),
    "t.yaml:6:7: missing required key \"id\" in api key")
BAD(key_not_mapping, AUTH("  api_keys: [k1]\n"), "t.yaml:5:14: \"api_keys\" must be a sequence of mappings")
BAD(key_bad_hash, AUTH("  api_keys:\n    - {id: k1, hash: \"sha256:abc\"}\n"),
    "t.yaml:6:22: \"hash\" must be \"sha256:\" and 64 hexadecimal digits (esgate key new prints it)")
BAD(key_bad_expires, AUTH("  api_keys:\n    - {id: k1, hash: \"" HASH "\", expires: tomorrow}\n"),
    "t.yaml:6:106: \"expires\": bad time \"tomorrow\" (use 2026-12-31 or 2026-12-31T23:59:59Z)")
BAD(key_bad_group, AUTH("  api_keys:\n    - {id: k1, hash: \"" HASH "\", groups: [\"a b\"]}\n"),
    "t.yaml:6:106: \"groups\": bad group name \"a b\"")
BAD(key_duplicate, AUTH(KEY1 "    - {id: k1, hash: \"" HASH "\"}\n"), "t.yaml:7:7: duplicate API key id \"k1\"")
BAD(key_grant_names_others,
    AUTH("  api_keys:\n    - id: k1\n      hash: \"" HASH "\"\n      grants: [{principals: [anonymous]}]\n"),
    "t.yaml:8:29: a key's own grant names the key: no principals or groups")
BAD(jwt_without_keys, AUTH("  jwt: {issuer: x}\n"), "t.yaml:5:8: \"jwt\" needs \"jwks_file\" or \"hs256_secret\"")
BAD(jwt_short_secret, AUTH("  jwt: {hs256_secret: \"not-long-enough\"}\n"),
    "t.yaml:5:23: \"hs256_secret\" must be at least 32 bytes")
BAD(jwt_leeway, AUTH("  jwt: {hs256_secret: \"0123456789abcdef0123456789abcdef\", leeway: 6m}\n"),
    "t.yaml:5:67: \"leeway\" must be at most 5m")
BAD(jwt_cache_size, AUTH("  jwt: {hs256_secret: \"0123456789abcdef0123456789abcdef\", cache_size: -1}\n"),
    "t.yaml:5:71: \"cache_size\" must be an integer from 0 to 1000000")
BAD(jwt_unknown, AUTH("  jwt: {jwks_url: x}\n"), "t.yaml:5:9: unknown key \"jwks_url\" in auth jwt",
    "t.yaml:5:8: \"jwt\" needs \"jwks_file\" or \"hs256_secret\"")
BAD(jwt_missing_jwks, AUTH("  jwt: {jwks_file: /nonexistent/jwks.json}\n"),
    "t.yaml:5:20: \"jwks_file\": /nonexistent/jwks.json: cannot open: No such file or directory")
BAD(jwt_jwks_directory, AUTH("  jwt: {jwks_file: /tmp}\n"),
    "t.yaml:5:20: \"jwks_file\": /tmp: cannot open: Is a directory")
BAD(failed_limit_bad, AUTH("  failed_limit: maybe\n"),
    "t.yaml:5:17: \"failed_limit\" must be a mapping {rate, burst} or false")
BAD(failed_limit_rate, AUTH("  failed_limit: {rate: 0/s}\n"),
    "t.yaml:5:24: \"rate\": bad rate \"0/s\" (use N/s or N/m, N from 1 to 1000000)")
BAD(failed_limit_unknown, AUTH("  failed_limit: {rate: 1/s, per: ip}\n"),
    "t.yaml:5:29: unknown key \"per\" in auth failed_limit")
BAD(grant_nobody, AUTH(KEY1 "  grants:\n    - {indices: [books]}\n"),
    "t.yaml:8:7: a grant needs \"principals\" or \"groups\"")
BAD(grant_bad_principal, AUTH(KEY1 "  grants:\n    - {principals: [k1, \"key:a b\", \"jwt:\"]}\n"),
    "t.yaml:8:21: \"principals\": bad principal (use key:ID, jwt:SUBJECT, cert:SUBJECT or anonymous) \"k1\"",
    "t.yaml:8:25: \"principals\": bad principal (use key:ID, jwt:SUBJECT, cert:SUBJECT or anonymous) \"key:a b\"",
    "t.yaml:8:36: \"principals\": bad principal (use key:ID, jwt:SUBJECT, cert:SUBJECT or anonymous) \"jwt:\"")
BAD(grant_bad_index, AUTH(KEY1 "  grants:\n    - {groups: g, indices: [\"Books\", \"*\"]}\n"),
    "t.yaml:8:29: \"indices\": invalid index name \"Books\"", "t.yaml:8:38: \"indices\": invalid index name \"*\"")
BAD(grant_unknown, AUTH(KEY1 "  grants:\n    - {groups: g, route: /s}\n"),
    "t.yaml:8:19: unknown key \"route\" in grant")
BAD(grant_no_route,
    AUTH(KEY1 "  grants:\n    - {groups: g, routes: [\"/s/{index}\", /nope]}\n") ROUTE("    auth: {}\n"),
    "t.yaml:8:42: \"routes\": no route \"/nope\"")
BAD(grant_open_route, AUTH(KEY1 "  grants:\n    - {groups: g, routes: [\"/s/{index}\"]}\n") ROUTE(""),
    "t.yaml:8:28: \"routes\": route \"/s/{index}\" has no \"auth\" rule: it is open to everyone")
BAD(grant_rate_limit, AUTH(KEY1 "  grants:\n    - {groups: g, rate_limit: {burst: 5}}\n"),
    "t.yaml:8:31: missing required key \"rate\" in grant rate_limit")
BAD(grant_fields_empty, AUTH(KEY1 "  grants:\n    - {groups: g, fields: {}}\n"),
    "t.yaml:8:27: \"fields\" needs \"allow\" or \"hide\"")
BAD(grant_fields_bad, AUTH(KEY1 "  grants:\n    - {groups: g, fields: {allow: [\"*\", \"a b\"], deny: [x]}}\n"),
    "t.yaml:8:36: \"allow\": invalid field name \"*\"", "t.yaml:8:41: \"allow\": invalid field name \"a b\"",
    "t.yaml:8:49: unknown key \"deny\" in grant fields")
BAD(grant_dls_not_query, AUTH(KEY1 "  grants:\n    - {groups: g, dls: [1]}\n"),
    "t.yaml:8:24: \"dls\" must be a scalar or a mapping")
BAD(grant_dls_two_queries, AUTH(KEY1 "  grants:\n    - {groups: g, dls: {term: {a: 1}, match_all: {}}}\n"),
    "t.yaml:8:24: \"dls\" must be one query, e.g. {term: {tenant: \"{{claims.tenant}}\"}}")
BAD(grant_dls_placeholder,
    AUTH(KEY1 "  grants:\n    - groups: g\n      dls:\n        bool:\n          filter:\n"
              "            - term: {tenant: \"{{claims.tenant}}\"}\n"
              "            - term: {owner: \"{{user}}\"}\n"),
    "t.yaml:13:29: \"dls\": unknown placeholder \"{{user}}\" (use {{principal}} or {{claims.NAME}})")
BAD(grant_dls_key_placeholder, AUTH(KEY1 "  grants:\n    - {groups: g, dls: {term: {\"{{claims.f}}\": x}}}\n"),
    "t.yaml:8:32: \"dls\": a key may not hold a placeholder")
BAD(grant_dls_json_bad, AUTH(KEY1 "  grants:\n    - {groups: g, dls: '{\"term\": {\"a\": 1}'}\n"),
    "t.yaml:8:24: \"dls\": not JSON: '}' expected near end of file")
BAD(grant_dls_json_placeholder, AUTH(KEY1 "  grants:\n    - {groups: g, dls: '{\"term\": {\"a\": \"{{claims}}\"}}'}\n"),
    "t.yaml:8:24: \"dls\": unknown placeholder \"{{claims}}\" (use {{principal}} or {{claims.NAME}})")
BAD(grant_dls_duplicate_key, AUTH(KEY1 "  grants:\n    - {groups: g, dls: {term: {a: 1, a: 2}}}\n"),
    "t.yaml:8:38: duplicate key \"a\"")
BAD(grant_dls_on_unfilterable_route,
    AUTH(KEY1 "  grants:\n    - {groups: g, dls: {match_all: {}}, fields: {hide: [x]}}\n")
        ROUTE("    auth: {}\n") "  - path: /m/{index}\n    methods: GET\n    upstream: {method: GET, path: "
                                "\"/{index}/_mapping\"}\n"
                                "    indices: [books]\n    auth: {}\n"
                                "  - path: /d/{index}/{id}\n    methods: GET\n    upstream: {method: GET, path: "
                                "\"/{index}/_doc/{id}\"}\n"
                                "    indices: [books]\n    auth: {}\n",
    "t.yaml:8:24: \"dls\": route \"/m/{index}\" cannot apply it (only search, count, _msearch and get-by-id routes "
    "can)",
    "t.yaml:8:49: \"fields\": route \"/m/{index}\" cannot apply it (only search, count, _msearch and get-by-id "
    "routes can)")
BAD(groups_bad, AUTH("  groups:\n    \"a b\": [anonymous]\n    ops: [\"key:x y\"]\n    ok: {a: 1}\n    ops: []\n"),
    "t.yaml:6:5: \"groups\": bad group name (use 1 to 128 of A-Z a-z 0-9 . _ : -)",
    "t.yaml:7:11: \"ops\": bad principal (use key:ID, jwt:SUBJECT, cert:SUBJECT or anonymous) \"key:x y\"",
    "t.yaml:8:9: \"ok\" must be a string or a sequence of strings", "t.yaml:9:5: duplicate key \"ops\"")
BAD(route_auth_unknown_scheme, AUTH(KEY1) ROUTE("    auth: {schemes: [api_key, basic, api_key]}\n"),
    "t.yaml:12:31: \"schemes\": unknown scheme \"basic\" (use api_key, jwt or client_cert)",
    "t.yaml:12:38: \"schemes\": duplicate scheme \"api_key\"")
BAD(route_auth_empty_schemes, AUTH(KEY1) ROUTE("    auth: {schemes: []}\n"),
    "t.yaml:12:21: \"schemes\" must name at least one scheme")
BAD(route_auth_required, AUTH(KEY1) ROUTE("    auth: {required: maybe}\n"),
    "t.yaml:12:22: \"required\" must be true or false")
BAD(route_auth_unknown, AUTH(KEY1) ROUTE("    auth: {realm: x}\n"), "t.yaml:12:12: unknown key \"realm\" in route auth")
BAD(route_auth_not_configured, AUTH(KEY1) ROUTE("    auth: {schemes: [jwt, client_cert]}\n"),
    "t.yaml:12:22: \"schemes\": jwt is not configured (set auth.jwt)")
BAD(route_auth_nothing_configured, "listen: '*:1'\n" UP ROUTE("    auth: {}\n"),
    "t.yaml:9:11: \"auth\": no authentication is configured (set auth.api_keys, auth.keys_file or auth.jwt, or "
    "schemes: [client_cert])")

Test(config_auth, certificates_alone)
{
	static const char yaml[] =
	    "listen: '*:1'\n" UP "auth:\n  groups: {apps: [\"cert:CN=a\"]}\n  grants: [{groups: [apps]}]\n" ROUTE(
	        "    auth: {schemes: client_cert}\n");
	struct config_errors errs = {0};
	struct config *cfg = parse("t.yaml", yaml, &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->routes[0].auth.schemes, AUTH_SCHEME_CERT);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config_auth, secrets_never_in_messages)
{
	static const char yaml[] = AUTH("  jwt: {hs256_secret: \"sup3r-s3cret\", leeway: x}\n"
	                                "  api_keys: [{id: k, hash: \"sk_live_abcdef\"}]\n");
	struct config_errors errs = {0};

	cr_expect_null(parse("t.yaml", yaml, &errs));
	cr_expect_geq(errs.n, 2);
	for (size_t i = 0; i < errs.n; i++) {
		cr_expect(strstr(errs.msgs[i], "sup3r") == NULL, "%s", errs.msgs[i]);
		cr_expect(strstr(errs.msgs[i], "sk_live") == NULL, "%s", errs.msgs[i]);
	}
	config_errors_free(&errs);
}
