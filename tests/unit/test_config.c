/*
 * test_config.c - lib/config.c: values, defaults, and the exact text and
 * position of every error an operator can meet.
 *
 * Configs are inline strings parsed under the name "t.yaml", so each
 * "t.yaml:LINE:COLUMN" below can be checked by counting in the string.
 */
#include "lib/config.h"
#include "lib/log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Every test ends with both freed, so LSan and valgrind see any leak. */
static struct config *
parse(const char *yaml, struct config_errors *errs)
{
	return config_parse("t.yaml", yaml, strlen(yaml), errs);
}

static void
check_errors(const char *yaml, const char *const *want, size_t nwant)
{
	struct config_errors errs = {0};
	struct config *cfg = parse(yaml, &errs);

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
	Test(config_errors, name)                                                                                      \
	{                                                                                                              \
		static const char *const want[] = {__VA_ARGS__};                                                       \
		check_errors(yaml, want, sizeof(want) / sizeof(want[0]));                                              \
	}

/* "UP" keeps the required upstream out of the way in top-level cases. */
#define UP "upstream:\n  nodes: [http://127.0.0.1:9200]\n"

Test(config, every_key)
{
	static const char yaml[] =
	    "listen: [127.0.0.1:8080, \"[::1]:8081\", '*:0', unix:/run/esgate.sock, localhost:80]\n"
	    "workers: 3\n"
	    "graceful_timeout: 2m\n"
	    "keepalive_timeout: 250ms\n"
	    "pidfile: /run/esgate.pid\n"
	    "log:\n"
	    "  level: debug\n"
	    "upstream:\n"
	    "  nodes:\n"
	    "    - http://127.0.0.1:9200\n"
	    "    - https://ES.example.com/prefix/\n"
	    "    - http://[::1]\n"
	    "  username: elastic\n"
	    "  password: \"s3cret: yes\"\n"
	    "  request_timeout: 1.5\n"
	    "  connect_timeout: 2s\n"
	    "  max_connections_per_node: 100000\n";
	struct config_errors errs = {0};
	struct config *cfg = parse(yaml, &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(errs.n, 0);
	cr_expect_str_eq(cfg->path, "t.yaml");
	cr_assert_eq(cfg->nlisten, 5);
	cr_expect_str_eq(cfg->listen[0].spec, "127.0.0.1:8080");
	cr_expect_eq(cfg->listen[0].kind, CONFIG_LISTEN_TCP);
	cr_expect_str_eq(cfg->listen[0].host, "127.0.0.1");
	cr_expect_eq(cfg->listen[0].port, 8080);
	cr_expect_str_eq(cfg->listen[1].host, "::1");
	cr_expect_eq(cfg->listen[1].port, 8081);
	cr_expect_str_eq(cfg->listen[2].host, "*");
	cr_expect_eq(cfg->listen[2].port, 0);
	cr_expect_eq(cfg->listen[3].kind, CONFIG_LISTEN_UNIX);
	cr_expect_str_eq(cfg->listen[3].host, "/run/esgate.sock");
	cr_expect_str_eq(cfg->listen[3].spec, "unix:/run/esgate.sock");
	cr_expect_str_eq(cfg->listen[4].host, "localhost");
	cr_expect_eq(cfg->workers, 3);
	cr_expect_eq(cfg->workers_auto, 0);
	cr_expect_eq(cfg->graceful_timeout_ms, 120000);
	cr_expect_eq(cfg->keepalive_timeout_ms, 250);
	cr_expect_str_eq(cfg->pidfile, "/run/esgate.pid");
	cr_expect_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	cr_assert_eq(cfg->upstream.nnodes, 3);
	cr_expect_str_eq(cfg->upstream.nodes[0].url, "http://127.0.0.1:9200");
	cr_expect_str_eq(cfg->upstream.nodes[0].scheme, "http");
	cr_expect_str_eq(cfg->upstream.nodes[0].host, "127.0.0.1");
	cr_expect_eq(cfg->upstream.nodes[0].port, 9200);
	cr_expect_str_eq(cfg->upstream.nodes[0].path, "");
	cr_expect_str_eq(cfg->upstream.nodes[1].url, "https://ES.example.com/prefix");
	cr_expect_str_eq(cfg->upstream.nodes[1].scheme, "https");
	cr_expect_str_eq(cfg->upstream.nodes[1].host, "es.example.com");
	cr_expect_eq(cfg->upstream.nodes[1].port, 443);
	cr_expect_str_eq(cfg->upstream.nodes[1].path, "/prefix");
	cr_expect_str_eq(cfg->upstream.nodes[2].host, "::1");
	cr_expect_eq(cfg->upstream.nodes[2].port, 80);
	cr_expect_null(cfg->upstream.api_key);
	cr_expect_str_eq(cfg->upstream.username, "elastic");
	cr_expect_str_eq(cfg->upstream.password, "s3cret: yes");
	cr_expect_eq(cfg->upstream.request_timeout_ms, 1500);
	cr_expect_eq(cfg->upstream.connect_timeout_ms, 2000);
	cr_expect_eq(cfg->upstream.max_connections_per_node, 100000);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, defaults)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: 127.0.0.1:8080\nupstream:\n  nodes: http://localhost:9200\n", &errs);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	cr_assert_not_null(cfg);
	cr_expect_eq(cfg->nlisten, 1);
	cr_expect_eq(cfg->workers_auto, 1);
	cr_expect_eq(cfg->workers, ncpu < 1 ? 1 : ncpu > 1024 ? 1024 : (unsigned)ncpu);
	cr_expect_eq(cfg->graceful_timeout_ms, 30000);
	cr_expect_eq(cfg->keepalive_timeout_ms, 10000);
	cr_expect_eq(cfg->timeout_ms, 30000);
	cr_expect_eq(cfg->max_requests, 0);
	cr_expect_eq(cfg->max_requests_jitter, 0);
	cr_expect_null(cfg->user);
	cr_expect_null(cfg->group);
	cr_expect_eq(cfg->allow_root, 0);
	cr_expect_null(cfg->log_file);
	cr_expect_null(cfg->pidfile);
	cr_expect_eq(cfg->log_level, LOG_LEVEL_INFO);
	cr_expect_eq(cfg->upstream.nnodes, 1);
	cr_expect_null(cfg->upstream.api_key);
	cr_expect_null(cfg->upstream.username);
	cr_expect_null(cfg->upstream.password);
	cr_expect_eq(cfg->upstream.request_timeout_ms, 10000);
	cr_expect_eq(cfg->upstream.connect_timeout_ms, 1000);
	cr_expect_eq(cfg->upstream.max_connections_per_node, 64);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, lifecycle_keys)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\ntimeout: 5s\nmax_requests: 1000\nmax_requests_jitter: 50\n"
				   "user: nobody\ngroup: root\nallow_root: yes\nlog: {file: /var/log/esgate.log}\n" UP,
				   &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->timeout_ms, 5000);
	cr_expect_eq(cfg->max_requests, 1000);
	cr_expect_eq(cfg->max_requests_jitter, 50);
	cr_expect_str_eq(cfg->user, "nobody");
	cr_expect_eq(cfg->uid, 65534);
	cr_expect_eq(cfg->gid, 0, "group overrides the user's primary group");
	cr_expect_eq(cfg->allow_root, 1);
	cr_expect_str_eq(cfg->log_file, "/var/log/esgate.log");
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, user_brings_its_primary_group)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\nuser: nobody\n" UP, &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->gid, 65534);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, workers_forms)
{
	static const struct {
		const char *yaml;
		unsigned workers;
		int is_auto;
	} cases[] = {
	    {"workers: \"2\"\n", 2, 0},   {"workers: '7'\n", 7, 0},
	    {"workers: 1024\n", 1024, 0}, {"workers: 010\n", 10, 0}, /* decimal, not octal */
	    {"workers: auto\n", 0, 1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[256];
		struct config_errors errs = {0};
		struct config *cfg;

		snprintf(yaml, sizeof(yaml), "listen: '*:1'\n%s" UP, cases[i].yaml);
		cfg = parse(yaml, &errs);
		cr_assert_not_null(cfg, "%s", yaml);
		cr_expect_eq(cfg->workers_auto, cases[i].is_auto);
		if (cases[i].is_auto)
			cr_expect_geq(cfg->workers, 1);
		else
			cr_expect_eq(cfg->workers, cases[i].workers, "%s", yaml);
		config_free(cfg);
		config_errors_free(&errs);
	}
}

Test(config, api_key_base64)
{
	struct config_errors errs = {0};
	struct config *cfg;

	cfg = parse("listen: '*:1'\nupstream:\n  nodes: http://h\n  api_key: \"id:key\"\n", &errs);
	cr_assert_not_null(cfg);
	cr_expect_str_eq(cfg->upstream.api_key, "aWQ6a2V5"); /* base64("id:key") */
	config_free(cfg);

	/* every padding length: 1, 2 and 0 bytes left over */
	cfg = parse(
	    "listen: '*:1'\nupstream:\n  nodes: http://h\n  api_key: \"VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw\"\n",
	    &errs);
	cr_assert_not_null(cfg);
	cr_expect_str_eq(cfg->upstream.api_key, "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==");
	config_free(cfg);
	cfg = parse("listen: '*:1'\nupstream:\n  nodes: http://h\n  api_key: \"a:\"\n", &errs);
	cr_assert_not_null(cfg);
	cr_expect_str_eq(cfg->upstream.api_key, "YTo=");
	config_free(cfg);
	cfg = parse("listen: '*:1'\nupstream:\n  nodes: http://h\n  api_key: \"ab:c\"\n", &errs);
	cr_assert_not_null(cfg);
	cr_expect_str_eq(cfg->upstream.api_key, "YWI6Yw==");
	config_free(cfg);

	/* already encoded: kept as is */
	cfg = parse("listen: '*:1'\nupstream:\n  nodes: http://h\n  api_key: aWQ6a2V5\n", &errs);
	cr_assert_not_null(cfg);
	cr_expect_str_eq(cfg->upstream.api_key, "aWQ6a2V5");
	config_free(cfg);
	cr_expect_eq(errs.n, 0);
	config_errors_free(&errs);
}

Test(config, load_missing_file)
{
	struct config_errors errs = {0};
	struct config *cfg = config_load("/nonexistent/esgate.yaml", &errs);

	cr_expect_null(cfg);
	cr_assert_eq(errs.n, 1);
	cr_expect_str_eq(errs.msgs[0], "/nonexistent/esgate.yaml: cannot open: No such file or directory");
	config_errors_free(&errs);
	cr_expect_eq(errs.n, 0);
	cr_expect_null(errs.msgs);
}

Test(config, load_directory)
{
	struct config_errors errs = {0};

	cr_expect_null(config_load("/", &errs));
	cr_assert_eq(errs.n, 1);
	cr_expect_str_eq(errs.msgs[0], "/: cannot open: Is a directory");
	config_errors_free(&errs);
}

Test(config, load_file)
{
	char path[] = "/tmp/esgate-test-config-XXXXXX";
	static const char yaml[] = "listen: [127.0.0.1:0]\nworkers: 1\nupstream:\n  nodes: [http://127.0.0.1:9200]\n";
	struct config_errors errs = {0};
	struct config *cfg;
	int fd;

	cr_assert_geq(fd = mkstemp(path), 0);
	cr_assert_eq(write(fd, yaml, sizeof(yaml) - 1), (ssize_t)sizeof(yaml) - 1);
	close(fd);
	cfg = config_load(path, &errs);
	unlink(path);
	cr_assert_not_null(cfg);
	cr_expect_str_eq(cfg->path, path);
	cr_expect_eq(cfg->workers, 1);
	config_free(cfg);
	config_errors_free(&errs);
}

/* The example shipped in conf/ must stay valid. */
Test(config, example_config)
{
	struct config_errors errs = {0};
	struct config *cfg = config_load("conf/esgate.yaml", &errs);

	if (cfg == NULL && errs.n == 1 && strstr(errs.msgs[0], "cannot open") != NULL) {
		config_errors_free(&errs);
		cr_skip_test("run from the source tree to check conf/esgate.yaml");
	}
	for (size_t i = 0; i < errs.n; i++)
		cr_log_error("%s", errs.msgs[i]);
	cr_assert_not_null(cfg);
	cr_expect_eq(cfg->nlisten, 1);
	cr_expect_str_eq(cfg->listen[0].spec, "127.0.0.1:8080");
	cr_expect_eq(cfg->workers, 2);
	cr_expect_eq(cfg->upstream.nnodes, 1);
	cr_expect_str_eq(cfg->upstream.nodes[0].url, "http://127.0.0.1:9200");
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, errors_appended)
{
	struct config_errors errs = {0};

	cr_expect_null(parse("foo: 1\n", &errs));
	cr_expect_null(parse("bar: 1\n", &errs));
	/* each call: one unknown key, then the two missing required keys */
	cr_assert_eq(errs.n, 6);
	cr_expect_str_eq(errs.msgs[0], "t.yaml:1:1: unknown key \"foo\"");
	cr_expect_str_eq(errs.msgs[3], "t.yaml:1:1: unknown key \"bar\"");
	config_errors_free(&errs);
}

Test(config, null_errs)
{
	cr_expect_null(config_parse("t.yaml", "foo: 1\n", 7, NULL));
	cr_expect_null(config_load("/nonexistent", NULL));
	config_free(NULL);
	config_errors_free(NULL);
}

/*
 * Errors: text and position.
 */

BAD(unknown_key, "listen: '*:1'\nfoo: 1\n" UP, "t.yaml:2:1: unknown key \"foo\"")
BAD(unknown_key_upstream, "listen: '*:1'\nupstream:\n  nodes: http://h\n  timeout: 1\n",
    "t.yaml:4:3: unknown key \"timeout\" in upstream")
BAD(unknown_key_log, "listen: '*:1'\nlog: {level: info, path: x}\n" UP, "t.yaml:2:20: unknown key \"path\" in log")
BAD(unknown_user, "listen: '*:1'\nuser: no-such-user-here\n" UP, "t.yaml:2:7: \"user\": unknown user \"no-such-user-here\"")
BAD(unknown_group, "listen: '*:1'\ngroup: no-such-group-here\n" UP,
    "t.yaml:2:8: \"group\": unknown group \"no-such-group-here\"")
BAD(allow_root_not_bool, "listen: '*:1'\nallow_root: maybe\n" UP, "t.yaml:2:13: \"allow_root\" must be true or false")
BAD(max_requests_negative, "listen: '*:1'\nmax_requests: -5\n" UP,
    "t.yaml:2:15: \"max_requests\" must be an integer from 0 to 4294967295")
BAD(timeout_zero, "listen: '*:1'\ntimeout: 0\n" UP, "t.yaml:2:10: \"timeout\" must be greater than 0")
BAD(two_unknown_keys, "listen: '*:1'\nfoo: 1\nbar: 2\n" UP, "t.yaml:2:1: unknown key \"foo\"",
    "t.yaml:3:1: unknown key \"bar\"")
BAD(workers_not_scalar, "listen: '*:1'\nworkers: [1]\n" UP, "t.yaml:2:10: \"workers\" must be a scalar")
BAD(listen_mapping, "listen: {a: 1}\n" UP, "t.yaml:1:9: \"listen\" must be a string or a sequence of strings")
BAD(listen_item_mapping, "listen: ['*:1', {a: 1}]\n" UP,
    "t.yaml:1:17: \"listen\" must be a string or a sequence of strings")
BAD(log_scalar, "listen: '*:1'\nlog: info\n" UP, "t.yaml:2:6: \"log\" must be a mapping")
BAD(upstream_sequence, "listen: '*:1'\nupstream: [http://h]\n", "t.yaml:2:11: \"upstream\" must be a mapping")
BAD(nodes_mapping, "listen: '*:1'\nupstream:\n  nodes: {a: b}\n",
    "t.yaml:3:10: \"nodes\" must be a string or a sequence of strings")
BAD(workers_zero, "listen: '*:1'\nworkers: 0\n" UP, "t.yaml:2:10: \"workers\" must be an integer >= 1 or \"auto\"")
BAD(workers_negative, "listen: '*:1'\nworkers: -2\n" UP, "t.yaml:2:10: \"workers\" must be an integer >= 1 or \"auto\"")
BAD(workers_junk, "listen: '*:1'\nworkers: 2x\n" UP, "t.yaml:2:10: \"workers\" must be an integer >= 1 or \"auto\"")
BAD(workers_too_many, "listen: '*:1'\nworkers: 1025\n" UP,
    "t.yaml:2:10: \"workers\" must be an integer >= 1 or \"auto\"")
BAD(workers_hex, "listen: '*:1'\nworkers: 0x10\n" UP, "t.yaml:2:10: \"workers\" must be an integer >= 1 or \"auto\"")
BAD(bad_duration, "listen: '*:1'\ngraceful_timeout: 10x\n" UP,
    "t.yaml:2:19: \"graceful_timeout\": bad duration \"10x\" (use 250ms, 30s, 2m, 1h or a number of seconds)")
BAD(bad_duration_upstream, "listen: '*:1'\nupstream:\n  nodes: http://h\n  connect_timeout: -1s\n",
    "t.yaml:4:20: \"connect_timeout\": bad duration \"-1s\" (use 250ms, 30s, 2m, 1h or a number of seconds)")
BAD(zero_keepalive, "listen: '*:1'\nkeepalive_timeout: 0s\n" UP,
    "t.yaml:2:20: \"keepalive_timeout\" must be greater than 0")
BAD(zero_request_timeout, "listen: '*:1'\nupstream:\n  nodes: http://h\n  request_timeout: 0\n",
    "t.yaml:4:20: \"request_timeout\" must be greater than 0")
BAD(listen_bad_address, "listen: [abc]\n" UP,
    "t.yaml:1:10: \"listen\": bad address \"abc\" (use host:port, [v6]:port or unix:/path)")
BAD(listen_port_range, "listen: [\"1.2.3.4:70000\"]\n" UP,
    "t.yaml:1:10: \"listen\": port out of range in \"1.2.3.4:70000\"")
BAD(listen_single_bad, "listen: '::1:80'\n" UP,
    "t.yaml:1:9: \"listen\": bad address \"::1:80\" (use host:port, [v6]:port or unix:/path)")
BAD(listen_unix_relative, "listen: unix:run/x.sock\n" UP,
    "t.yaml:1:9: \"listen\": bad address \"unix:run/x.sock\" (use host:port, [v6]:port or unix:/path)")
BAD(listen_empty, "listen: []\n" UP, "t.yaml:1:9: \"listen\" must name at least one address")
BAD(listen_duplicate, "listen:\n  - 127.0.0.1:8080\n  - \"127.0.0.1:8080\"\n" UP,
    "t.yaml:3:5: duplicate listen address \"127.0.0.1:8080\"")
BAD(node_bad_url, "listen: '*:1'\nupstream:\n  nodes: [ftp://x]\n",
    "t.yaml:3:11: \"nodes\": bad URL \"ftp://x\" (use http://host:port or https://host:port)")
BAD(node_port_range, "listen: '*:1'\nupstream:\n  nodes:\n    - http://ok:9200\n    - http://h:99999\n",
    "t.yaml:5:7: \"nodes\": port out of range in \"http://h:99999\"")
BAD(nodes_empty, "listen: '*:1'\nupstream:\n  nodes: []\n", "t.yaml:3:10: \"nodes\" must name at least one URL")
BAD(log_level, "listen: '*:1'\nlog:\n  level: loud\n" UP,
    "t.yaml:3:10: \"level\": unknown log level \"loud\" (use debug, info, warn or error)")
BAD(missing_listen, "workers: 1\n" UP, "t.yaml:1:1: missing required key \"listen\"")
BAD(missing_upstream, "\n\nlisten: '*:1'\n", "t.yaml:3:1: missing required key \"upstream\"")
BAD(missing_both, "workers: 2\n", "t.yaml:1:1: missing required key \"listen\"",
    "t.yaml:1:1: missing required key \"upstream\"")
BAD(missing_nodes, "listen: '*:1'\nupstream:\n  username: u\n  password: p\n",
    "t.yaml:3:3: missing required key \"nodes\" in upstream")
BAD(missing_nodes_flow, "listen: '*:1'\nupstream: {}\n", "t.yaml:2:11: missing required key \"nodes\" in upstream")
BAD(api_key_and_username, "listen: '*:1'\nupstream:\n  nodes: http://h\n  api_key: k\n  username: u\n  password: p\n",
    "t.yaml:5:13: \"api_key\" and \"username\" cannot be used together")
BAD(username_alone, "listen: '*:1'\nupstream:\n  nodes: http://h\n  username: u\n",
    "t.yaml:4:13: \"username\" needs \"password\"")
BAD(password_alone, "listen: '*:1'\nupstream:\n  nodes: http://h\n  password: p\n",
    "t.yaml:4:13: \"password\" needs \"username\"")
BAD(duplicate_key, "listen: '*:1'\nworkers: 1\nworkers: 2\n" UP, "t.yaml:3:1: duplicate key \"workers\"")
BAD(duplicate_key_upstream, "listen: '*:1'\nupstream:\n  nodes: http://h\n  nodes: http://i\n",
    "t.yaml:4:3: duplicate key \"nodes\"")
BAD(max_connections, "listen: '*:1'\nupstream:\n  nodes: http://h\n  max_connections_per_node: 0\n",
    "t.yaml:4:29: \"max_connections_per_node\" must be an integer from 1 to 100000")
BAD(max_connections_big, "listen: '*:1'\nupstream:\n  nodes: http://h\n  max_connections_per_node: 100001\n",
    "t.yaml:4:29: \"max_connections_per_node\" must be an integer from 1 to 100000")
BAD(empty_pidfile, "listen: '*:1'\npidfile: ''\n" UP, "t.yaml:2:10: \"pidfile\" must not be empty")
/* The texts after "YAML syntax error:" are libyaml's own (0.2.5). */
BAD(syntax_error, "listen: [a:1\nworkers: 2\n", "t.yaml:2:8: YAML syntax error: did not find expected ',' or ']'")
BAD(syntax_error_indent, "listen: '*:1'\n  workers: 2\n", "t.yaml:2:3: YAML syntax error: did not find expected key")
BAD(empty_file, "", "t.yaml: file is empty")
BAD(comments_only, "# nothing here\n", "t.yaml: file is empty")
BAD(top_level_sequence, "- listen\n", "t.yaml:1:1: top level must be a mapping")
BAD(top_level_scalar, "\nhello\n", "t.yaml:2:1: top level must be a mapping")
BAD(two_documents, "listen: '*:1'\n" UP "---\nfoo: 1\n", "t.yaml:5:1: only one YAML document is allowed")
BAD(key_not_string, "listen: '*:1'\n[a]: 1\n" UP, "t.yaml:2:1: key must be a string")
/* one pass reports everything, in file order, then the missing keys */
BAD(many_at_once,
    "listen: [abc, '*:1', '*:1']\n"
    "workers: none\n"
    "graceful_timeout: soon\n"
    "log: {level: loud}\n"
    "upstream:\n"
    "  nodes: [ftp://x]\n"
    "  username: u\n",
    "t.yaml:1:10: \"listen\": bad address \"abc\" (use host:port, [v6]:port or unix:/path)",
    "t.yaml:1:22: duplicate listen address \"*:1\"", "t.yaml:2:10: \"workers\" must be an integer >= 1 or \"auto\"",
    "t.yaml:3:19: \"graceful_timeout\": bad duration \"soon\" (use 250ms, 30s, 2m, 1h or a number of seconds)",
    "t.yaml:4:14: \"level\": unknown log level \"loud\" (use debug, info, warn or error)",
    "t.yaml:6:11: \"nodes\": bad URL \"ftp://x\" (use http://host:port or https://host:port)",
    "t.yaml:7:13: \"username\" needs \"password\"")

/*
 * Helpers.
 */

Test(config_helpers, duration)
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
		int rc = config_parse_duration(cases[i].s, &ms);

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].s, rc);
		if (rc == 0)
			cr_expect_eq(ms, cases[i].ms, "\"%s\": %llu ms", cases[i].s, (unsigned long long)ms);
		else
			cr_expect_eq(ms, 12345, "\"%s\": output written on error", cases[i].s);
	}
}

Test(config_helpers, listen)
{
	static const struct {
		const char *s;
		int rc;
		enum config_listen_kind kind;
		const char *host;
		uint16_t port;
	} cases[] = {
	    {"127.0.0.1:8080", 0, CONFIG_LISTEN_TCP, "127.0.0.1", 8080},
	    {"0.0.0.0:0", 0, CONFIG_LISTEN_TCP, "0.0.0.0", 0},
	    {"*:80", 0, CONFIG_LISTEN_TCP, "*", 80},
	    {"localhost:65535", 0, CONFIG_LISTEN_TCP, "localhost", 65535},
	    {"gw-1.example.com:443", 0, CONFIG_LISTEN_TCP, "gw-1.example.com", 443},
	    {"[::1]:8080", 0, CONFIG_LISTEN_TCP, "::1", 8080},
	    {"[::]:9", 0, CONFIG_LISTEN_TCP, "::", 9},
	    {"[2001:db8::1]:1", 0, CONFIG_LISTEN_TCP, "2001:db8::1", 1},
	    {"unix:/run/esgate.sock", 0, CONFIG_LISTEN_UNIX, "/run/esgate.sock", 0},
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
		struct config_listen l;
		int rc = config_parse_listen(cases[i].s, &l);

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].s, rc);
		if (rc != 0)
			continue;
		cr_expect_str_eq(l.spec, cases[i].s);
		cr_expect_eq(l.kind, cases[i].kind, "\"%s\"", cases[i].s);
		cr_expect_str_eq(l.host, cases[i].host);
		cr_expect_eq(l.port, cases[i].port, "\"%s\"", cases[i].s);
		config_listen_clear(&l);
		cr_expect_null(l.spec);
		cr_expect_null(l.host);
	}
}

Test(config_helpers, listen_unix_length)
{
	char s[5 + 108 + 1];
	struct config_listen l;

	/* 107 bytes of path plus the NUL fill sun_path exactly */
	memcpy(s, "unix:/", 6);
	memset(s + 6, 'a', 106);
	s[112] = '\0';
	cr_expect_eq(config_parse_listen(s, &l), 0);
	config_listen_clear(&l);
	s[112] = 'a';
	s[113] = '\0';
	cr_expect_eq(config_parse_listen(s, &l), -1);
}

Test(config_helpers, node)
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
		struct config_node n;
		int rc = config_parse_node(cases[i].s, &n);

		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].s, rc);
		if (rc != 0)
			continue;
		cr_expect_str_eq(n.url, cases[i].url);
		cr_expect_str_eq(n.scheme, cases[i].scheme);
		cr_expect_str_eq(n.host, cases[i].host);
		cr_expect_eq(n.port, cases[i].port, "\"%s\"", cases[i].s);
		cr_expect_str_eq(n.path, cases[i].path);
		config_node_clear(&n);
		cr_expect_null(n.url);
	}
}
