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
	    "  max_connections_per_node: 100000\n"
	    "  pipeline_depth: 16\n";
	struct config_errors errs = {0};
	struct config *cfg = parse(yaml, &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(errs.n, 0);
	cr_expect_str_eq(cfg->path, "t.yaml");
	cr_assert_eq(cfg->nlisten, 5);
	cr_expect_str_eq(cfg->listen[0].spec, "127.0.0.1:8080");
	cr_expect_eq(cfg->listen[0].kind, PARSE_LISTEN_TCP);
	cr_expect_str_eq(cfg->listen[0].host, "127.0.0.1");
	cr_expect_eq(cfg->listen[0].port, 8080);
	cr_expect_str_eq(cfg->listen[1].host, "::1");
	cr_expect_eq(cfg->listen[1].port, 8081);
	cr_expect_str_eq(cfg->listen[2].host, "*");
	cr_expect_eq(cfg->listen[2].port, 0);
	cr_expect_eq(cfg->listen[3].kind, PARSE_LISTEN_UNIX);
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
	cr_expect_eq(cfg->upstream.pipeline_depth, 16);
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
	cr_expect_eq(cfg->upstream.pipeline_depth, 1);
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
	cr_expect_eq(cfg->upstream.verify, 1);
	cr_expect_eq(cfg->upstream.max_retries, 3);
	cr_expect_eq(cfg->cluster_info, 1);
	cr_assert_eq(cfg->nroutes, 2);
	cr_expect_str_eq(cfg->routes[0].path, "/search/{index}");
	cr_expect_eq(cfg->routes[0].nindices, 2);
	cr_expect_str_eq(cfg->routes[1].path, "/doc/{index}/{id}");
	cr_expect_eq(cfg->routes[1].methods, CONFIG_METHOD_GET | CONFIG_METHOD_HEAD);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, access_log_and_metrics)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\naccess_log: {file: /var/log/esgate/access.log, format: json}\n"
				   "metrics: {enabled: true, listen: 127.0.0.1:9145}\n" UP,
				   &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_str_eq(cfg->access_log, "/var/log/esgate/access.log");
	cr_expect_eq(cfg->access_log_json, 1);
	cr_expect_eq(cfg->metrics, 1);
	cr_expect_eq(cfg->metrics_listen, 1);
	cr_assert_eq(cfg->nlisten, 2, "the metrics listener joins the others");
	cr_expect_eq(cfg->listen[0].metrics_only, 0);
	cr_expect_eq(cfg->listen[1].metrics_only, 1);
	cr_expect_eq(cfg->listen[1].port, 9145);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, access_log_and_metrics_defaults)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\n" UP, &errs);

	cr_assert_not_null(cfg);
	cr_expect_null(cfg->access_log);
	cr_expect_eq(cfg->access_log_json, 0);
	cr_expect_eq(cfg->metrics, 1);
	cr_expect_eq(cfg->metrics_listen, 0);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, metrics_listen_before_listen_is_kept)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("metrics: {listen: 127.0.0.1:9145}\nlisten: ['*:1', '*:2']\n" UP, &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_assert_eq(cfg->nlisten, 3, "the metrics listener is not lost when listen comes later");
	cr_expect_eq(cfg->listen[0].metrics_only, 1);
	cr_expect_eq(cfg->listen[0].port, 9145);
	cr_expect_eq(cfg->listen[1].metrics_only + cfg->listen[2].metrics_only, 0);
	cr_expect_eq(cfg->metrics_listen, 1);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, limits)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\n" UP, &errs);

	cr_assert_not_null(cfg);
	cr_expect_eq(cfg->limits.max_header_size, 32768);
	cr_expect_eq(cfg->limits.header_timeout_ms, 10000);
	cr_expect_eq(cfg->limits.max_connections, 4096);
	cr_expect_eq(cfg->limits.max_connections_per_address, 0);
	cr_expect_eq(cfg->limits.h2_max_streams, 100);
	cr_expect_eq(cfg->limits.h2_max_resets, 100);
	cr_expect_eq(cfg->limits.h2_reset_interval_ms, 10000);
	cr_expect_eq(cfg->limits.h2_body_buffer, 32 * 1024 * 1024);
	cr_expect_eq(cfg->metrics_public, 0);
	config_free(cfg);
	cfg = parse("listen: '*:1'\nmetrics: {public: true}\nlimits: {max_header_size: 1mb, header_timeout: 2s, "
	            "max_connections: 10, max_connections_per_address: 3, h2_max_streams: 8, h2_max_resets: 0, "
	            "h2_reset_interval: 1m, h2_body_buffer: 0}\n" UP,
	            &errs);
	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->limits.max_header_size, 1024 * 1024);
	cr_expect_eq(cfg->limits.header_timeout_ms, 2000);
	cr_expect_eq(cfg->limits.max_connections, 10);
	cr_expect_eq(cfg->limits.max_connections_per_address, 3);
	cr_expect_eq(cfg->limits.h2_max_streams, 8);
	cr_expect_eq(cfg->limits.h2_max_resets, 0);
	cr_expect_eq(cfg->limits.h2_reset_interval_ms, 60000);
	cr_expect_eq(cfg->limits.h2_body_buffer, 0);
	cr_expect_eq(cfg->metrics_public, 1);
	config_free(cfg);
	config_errors_free(&errs);
}

BAD(limits_header_size, "listen: '*:1'\nlimits: {max_header_size: 2mb}\n" UP,
    "t.yaml:2:27: \"max_header_size\" must be a size from 1kb to 1mb (e.g. 32kb)")
BAD(limits_streams, "listen: '*:1'\nlimits:\n  h2_max_streams: 101\n  max_connections: 0\n  header_timeout: 0\n" UP,
    "t.yaml:3:19: \"h2_max_streams\" must be an integer from 1 to 100 (libh2o refuses more)",
    "t.yaml:4:20: \"max_connections\" must be an integer from 1 to 1000000",
    "t.yaml:5:19: \"header_timeout\" must be greater than 0")
BAD(limits_body_buffer, "listen: '*:1'\nlimits:\n  h2_body_buffer: 1kb\n  max_header_size: 32kb\n" UP,
    "t.yaml:3:19: \"h2_body_buffer\" must be a size from 64kb to 4096mb, or 0 (no limit)")
BAD(limits_body_buffer_word, "listen: '*:1'\nlimits: {h2_body_buffer: lots}\n" UP,
    "t.yaml:2:26: \"h2_body_buffer\" must be a size from 64kb to 4096mb, or 0 (no limit)")
BAD(limits_unknown_key, "listen: '*:1'\nlimits: {max_body: 1}\n" UP, "t.yaml:2:10: unknown key \"max_body\" in limits")

BAD(metrics_listen_duplicates_listen, "listen: [127.0.0.1:9145]\nmetrics: {listen: 127.0.0.1:9145}\n" UP,
    "t.yaml:2:19: duplicate listen address \"127.0.0.1:9145\"")

BAD(access_log_format, "listen: '*:1'\naccess_log: {format: xml}\n" UP,
    "t.yaml:2:22: \"format\": unknown access log format \"xml\" (use combined or json)")
BAD(metrics_listen_bad, "listen: '*:1'\nmetrics: {listen: nope}\n" UP,
    "t.yaml:2:19: \"listen\": bad address \"nope\" (use host:port, [v6]:port or unix:/path)")
BAD(metrics_unknown_key, "listen: '*:1'\nmetrics: {path: /m}\n" UP, "t.yaml:2:11: unknown key \"path\" in metrics")

BAD(policy_remote_indices_unsupported,
    "listen: '*:1'\nroutes:\n  - path: /s/{index}\n    methods: GET\n"
    "    upstream: {method: POST, path: \"/{index}/_search\"}\n    indices: [books]\n"
    "    policy: {allow_remote_indices: true}\n" UP,
    "t.yaml:7:36: \"allow_remote_indices\" is not supported: {index} takes plain index names only")

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
/* A listener may be a mapping ({address, tls}): a wrong one says what is wrong in it. */
BAD(listen_mapping, "listen: {a: 1}\n" UP, "t.yaml:1:10: unknown key \"a\" in listen",
    "t.yaml:1:9: missing required key \"address\" in listen")
BAD(listen_item_mapping, "listen: ['*:1', {a: 1}]\n" UP, "t.yaml:1:18: unknown key \"a\" in listen",
    "t.yaml:1:17: missing required key \"address\" in listen")
BAD(listen_item_sequence, "listen: ['*:1', [a]]\n" UP,
    "t.yaml:1:17: \"listen\" must be an address, a mapping with \"address\", or a sequence of them")
BAD(listen_tls_needs_files, "listen: {address: '*:1', tls: {hsts: 1h, min_version: SSLv3, client_verify: optional}}\n" UP,
    "t.yaml:1:55: \"min_version\" must be TLSv1.2 or TLSv1.3",
    "t.yaml:1:31: missing required key \"certificate\" in listen tls",
    "t.yaml:1:31: missing required key \"key\" in listen tls",
    "t.yaml:1:77: \"client_verify\" needs \"client_ca\"")
BAD(listen_tls_missing_file, "listen: {address: '*:1', tls: {certificate: /nonexistent.pem, key: /nonexistent.key}}\n" UP,
    "t.yaml:1:45: listen *:1: cannot read the certificate /nonexistent.pem: No such file or directory")
BAD(tls_handshake_timeout, "listen: '*:1'\ntls: {handshake_timeout: 0}\n" UP,
    "t.yaml:2:26: \"handshake_timeout\" must be greater than 0")
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
BAD(pipeline_depth_zero, "listen: '*:1'\nupstream:\n  nodes: http://h\n  pipeline_depth: 0\n",
    "t.yaml:4:19: \"pipeline_depth\" must be an integer from 1 to 16")
BAD(pipeline_depth_big, "listen: '*:1'\nupstream:\n  nodes: http://h\n  pipeline_depth: 17\n",
    "t.yaml:4:19: \"pipeline_depth\" must be an integer from 1 to 16")
BAD(pipeline_depth_empty, "listen: '*:1'\nupstream:\n  nodes: http://h\n  pipeline_depth: ''\n",
    "t.yaml:4:19: \"pipeline_depth\" must be an integer from 1 to 16")
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
 * Upstream retries, TLS, sniffing, bearer; routes.
 */

Test(config, upstream_more_keys)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\n"
				   "cluster_info: off\n"
				   "upstream:\n"
				   "  nodes: https://h\n"
				   "  bearer: tok3n\n"
				   "  max_retries: 100\n"
				   "  retry_on_timeout: yes\n"
				   "  node_backoff: 250ms\n"
				   "  node_backoff_max: 250ms\n"
				   "  ca_file: /etc/ssl/ca.pem\n"
				   "  cert_file: /etc/esgate/client.pem\n"
				   "  key_file: /etc/esgate/client.key\n"
				   "  verify: false\n"
				   "  sniff_on_start: true\n"
				   "  sniff_interval: 5m\n",
				   &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->cluster_info, 0);
	cr_expect_str_eq(cfg->upstream.bearer, "tok3n");
	cr_expect_eq(cfg->upstream.max_retries, 100);
	cr_expect_eq(cfg->upstream.retry_on_timeout, 1);
	cr_expect_eq(cfg->upstream.node_backoff_ms, 250);
	cr_expect_eq(cfg->upstream.node_backoff_max_ms, 250);
	cr_expect_str_eq(cfg->upstream.ca_file, "/etc/ssl/ca.pem");
	cr_expect_str_eq(cfg->upstream.cert_file, "/etc/esgate/client.pem");
	cr_expect_str_eq(cfg->upstream.key_file, "/etc/esgate/client.key");
	cr_expect_eq(cfg->upstream.verify, 0);
	cr_expect_eq(cfg->upstream.sniff_on_start, 1);
	cr_expect_eq(cfg->upstream.sniff_interval_ms, 300000);
	cr_expect_eq(cfg->nroutes, 0);
	cr_expect_null(cfg->routes);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, upstream_more_defaults)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\n" UP, &errs);

	cr_assert_not_null(cfg);
	cr_expect_eq(cfg->cluster_info, 1);
	cr_expect_null(cfg->upstream.bearer);
	cr_expect_eq(cfg->upstream.max_retries, 3);
	cr_expect_eq(cfg->upstream.retry_on_timeout, 0);
	cr_expect_eq(cfg->upstream.node_backoff_ms, 1000);
	cr_expect_eq(cfg->upstream.node_backoff_max_ms, 30000);
	cr_expect_null(cfg->upstream.ca_file);
	cr_expect_null(cfg->upstream.cert_file);
	cr_expect_null(cfg->upstream.key_file);
	cr_expect_eq(cfg->upstream.verify, 1);
	cr_expect_eq(cfg->upstream.sniff_on_start, 0);
	cr_expect_eq(cfg->upstream.sniff_interval_ms, 0);
	cr_expect_eq(cfg->nroutes, 0);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, routes)
{
	static const char yaml[] = "listen: '*:1'\n" UP "routes:\n"
				   "  - path: /search/{index}\n"
				   "    methods: [GET, POST]\n"
				   "    upstream:\n"
				   "      method: POST\n"
				   "      path: /{index}/_search\n"
				   "    indices: [books, \"logs-*\"]\n"
				   "    params: [q, size, from]\n"
				   "    max_body: 64kb\n"
				   "    json: false\n"
				   "  - path: /doc/{index}/{id}\n"
				   "    methods: GET\n"
				   "    upstream: {method: GET, path: \"/{index}/_doc/{id}\"}\n"
				   "    indices: books\n"
				   "  - path: /health\n"
				   "    methods: [HEAD, GET]\n"
				   "    upstream: {method: HEAD, path: /_cluster/health}\n"
				   "    params: []\n"
				   "    max_body: 0\n"
				   "  - path: /search/{index}\n" /* same path, other method */
				   "    methods: HEAD\n"
				   "    upstream: {method: HEAD, path: \"/{index}\"}\n"
				   "    indices: [books]\n";
	struct config_errors errs = {0};
	struct config *cfg = parse(yaml, &errs);
	const struct config_route *r;

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_assert_eq(cfg->nroutes, 4);
	r = &cfg->routes[0];
	cr_expect_str_eq(r->path, "/search/{index}");
	cr_assert_not_null(r->path_tmpl);
	cr_expect_eq(route_template_vars(r->path_tmpl), ROUTE_VAR_INDEX);
	cr_expect_eq(r->methods, CONFIG_METHOD_GET | CONFIG_METHOD_POST);
	cr_expect_eq(r->upstream_method, CONFIG_METHOD_POST);
	cr_expect_str_eq(r->upstream_path, "/{index}/_search");
	cr_assert_not_null(r->upstream_tmpl);
	cr_expect_str_eq(route_template_source(r->upstream_tmpl), "/{index}/_search");
	cr_assert_eq(r->nindices, 2);
	cr_expect_str_eq(r->indices[0], "books");
	cr_expect_str_eq(r->indices[1], "logs-*");
	cr_assert_eq(r->nparams, 3);
	cr_expect_str_eq(r->params[0], "q");
	cr_expect_str_eq(r->params[2], "from");
	cr_expect_eq(r->max_body, 65536);
	cr_expect_eq(r->json, 0);
	r = &cfg->routes[1];
	cr_expect_eq(route_template_vars(r->path_tmpl), ROUTE_VAR_INDEX | ROUTE_VAR_ID);
	cr_expect_eq(r->methods, CONFIG_METHOD_GET);
	cr_expect_eq(r->upstream_method, CONFIG_METHOD_GET);
	cr_assert_eq(r->nindices, 1);
	cr_expect_str_eq(r->indices[0], "books");
	cr_expect_eq(r->nparams, 0);
	cr_expect_null(r->params);
	cr_expect_eq(r->max_body, 1048576, "default 1mb");
	cr_expect_eq(r->json, 1, "default true");
	r = &cfg->routes[2];
	cr_expect_eq(r->methods, CONFIG_METHOD_GET | CONFIG_METHOD_HEAD);
	cr_expect_eq(r->upstream_method, CONFIG_METHOD_HEAD);
	cr_expect_eq(r->nindices, 0);
	cr_expect_eq(r->nparams, 0);
	cr_expect_eq(r->max_body, 0);
	cr_expect_eq(cfg->routes[3].methods, CONFIG_METHOD_HEAD);
	config_free(cfg);
	config_errors_free(&errs);
}

/* "/" is free once the built-in cluster info route is off. */
Test(config, route_root)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\n" UP "routes:\n"
				   "  - {path: /, methods: GET, upstream: {method: GET, path: /}}\n"
				   "cluster_info: false\n",
				   &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->nroutes, 1);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config_helpers, method)
{
	cr_expect_eq(config_method_parse("GET", 3), CONFIG_METHOD_GET);
	cr_expect_eq(config_method_parse("HEAD", 4), CONFIG_METHOD_HEAD);
	cr_expect_eq(config_method_parse("POST", 4), CONFIG_METHOD_POST);
	cr_expect_eq(config_method_parse("GETX", 3), CONFIG_METHOD_GET, "LEN counts");
	cr_expect_eq(config_method_parse("get", 3), 0);
	cr_expect_eq(config_method_parse("PUT", 3), 0);
	cr_expect_eq(config_method_parse("", 0), 0);
}

/* The upstream of a test config, and a route to put in front of other keys. */
#define UPN "upstream:\n  nodes: http://h\n"
#define RT(extra)                                                                                                      \
	"listen: '*:1'\n" UP "routes:\n"                                                                               \
	"  - path: /s/{index}\n"                                                                                       \
	"    methods: [GET]\n"                                                                                         \
	"    upstream: {method: GET, path: \"/{index}/_search\"}\n"                                                   \
	"    indices: [books]\n" extra

BAD(max_retries_big, "listen: '*:1'\n" UPN "  max_retries: 101\n",
    "t.yaml:4:16: \"max_retries\" must be an integer from 0 to 100")
BAD(max_retries_junk, "listen: '*:1'\n" UPN "  max_retries: many\n",
    "t.yaml:4:16: \"max_retries\" must be an integer from 0 to 100")
BAD(retry_on_timeout_not_bool, "listen: '*:1'\n" UPN "  retry_on_timeout: 1\n",
    "t.yaml:4:21: \"retry_on_timeout\" must be true or false")
BAD(verify_not_bool, "listen: '*:1'\n" UPN "  verify: strict\n", "t.yaml:4:11: \"verify\" must be true or false")
BAD(sniff_on_start_not_bool, "listen: '*:1'\n" UPN "  sniff_on_start: x\n",
    "t.yaml:4:19: \"sniff_on_start\" must be true or false")
BAD(sniff_interval_bad, "listen: '*:1'\n" UPN "  sniff_interval: often\n",
    "t.yaml:4:19: \"sniff_interval\": bad duration \"often\" (use 250ms, 30s, 2m, 1h or a number of seconds)")
BAD(cluster_info_not_bool, "listen: '*:1'\ncluster_info: maybe\n" UP, "t.yaml:2:15: \"cluster_info\" must be true or false")
BAD(node_backoff_zero, "listen: '*:1'\n" UPN "  node_backoff: 0\n", "t.yaml:4:17: \"node_backoff\" must be greater than 0")
BAD(node_backoff_max_zero, "listen: '*:1'\n" UPN "  node_backoff_max: 0ms\n",
    "t.yaml:4:21: \"node_backoff_max\" must be greater than 0")
BAD(node_backoff_max_less, "listen: '*:1'\n" UPN "  node_backoff: 2s\n  node_backoff_max: 1s\n",
    "t.yaml:5:21: \"node_backoff_max\" must not be less than \"node_backoff\"")
BAD(node_backoff_over_default_max, "listen: '*:1'\n" UPN "  node_backoff: 1m\n",
    "t.yaml:4:17: \"node_backoff_max\" must not be less than \"node_backoff\"")
BAD(node_backoff_max_under_default, "listen: '*:1'\n" UPN "  node_backoff_max: 500ms\n",
    "t.yaml:4:21: \"node_backoff_max\" must not be less than \"node_backoff\"")
BAD(bearer_empty, "listen: '*:1'\n" UPN "  bearer: ''\n", "t.yaml:4:11: \"bearer\" must not be empty")
BAD(bearer_and_api_key, "listen: '*:1'\n" UPN "  api_key: k\n  bearer: t\n",
    "t.yaml:5:11: \"bearer\" cannot be used with \"api_key\"")
BAD(bearer_and_username, "listen: '*:1'\n" UPN "  bearer: t\n  username: u\n  password: p\n",
    "t.yaml:4:11: \"bearer\" cannot be used with \"username\"")
BAD(all_three_auths, "listen: '*:1'\n" UPN "  api_key: k\n  username: u\n  password: p\n  bearer: t\n",
    "t.yaml:5:13: \"api_key\" and \"username\" cannot be used together",
    "t.yaml:7:11: \"bearer\" cannot be used with \"api_key\"", "t.yaml:7:11: \"bearer\" cannot be used with \"username\"")
BAD(cert_without_key, "listen: '*:1'\n" UPN "  cert_file: /c.pem\n", "t.yaml:4:14: \"cert_file\" needs \"key_file\"")
BAD(key_without_cert, "listen: '*:1'\n" UPN "  key_file: /c.key\n", "t.yaml:4:13: \"key_file\" needs \"cert_file\"")
BAD(ca_file_empty, "listen: '*:1'\n" UPN "  ca_file: \"\"\n", "t.yaml:4:12: \"ca_file\" must not be empty")
BAD(routes_mapping, "listen: '*:1'\n" UP "routes: {path: /}\n", "t.yaml:4:9: \"routes\" must be a sequence")
BAD(routes_item_scalar, "listen: '*:1'\n" UP "routes: [/x]\n", "t.yaml:4:10: \"routes\" must be a sequence of mappings")
BAD(route_unknown_key, RT("    foo: 1\n"), "t.yaml:9:5: unknown key \"foo\" in route")
BAD(route_unknown_key_upstream,
    "listen: '*:1'\n" UP "routes:\n  - path: /x\n    methods: GET\n    upstream: {method: GET, path: /, foo: 1}\n",
    "t.yaml:7:38: unknown key \"foo\" in route upstream")
BAD(route_missing_all, "listen: '*:1'\n" UP "routes:\n  - json: true\n",
    "t.yaml:5:5: missing required key \"path\" in route", "t.yaml:5:5: missing required key \"methods\" in route",
    "t.yaml:5:5: missing required key \"upstream\" in route")
BAD(route_missing_upstream_keys, "listen: '*:1'\n" UP "routes:\n  - {path: /x, methods: GET, upstream: {}}\n",
    "t.yaml:5:40: missing required key \"method\" in route upstream",
    "t.yaml:5:40: missing required key \"path\" in route upstream")
BAD(route_missing_indices, "listen: '*:1'\n" UP "routes:\n  - path: /s/{index}\n    methods: GET\n"
    "    upstream: {method: GET, path: \"/{index}/_search\"}\n",
    "t.yaml:5:5: missing required key \"indices\" in route")
BAD(route_indices_without_index, "listen: '*:1'\n" UP "routes:\n  - path: /s\n    methods: GET\n"
    "    upstream: {method: GET, path: /books/_search}\n    indices: [books]\n",
    "t.yaml:8:14: \"indices\": the route's path has no {index}")
BAD(route_indices_empty, RT("") "  - path: /t/{index}\n    methods: GET\n    upstream: {method: GET, path: \"/{index}\"}\n"
    "    indices: []\n",
    "t.yaml:12:14: \"indices\" must name at least one index")
BAD(route_indices_invalid, "listen: '*:1'\n" UP "routes:\n  - path: /s/{index}\n    methods: GET\n"
    "    upstream: {method: GET, path: \"/{index}\"}\n    indices: [ok, Books, _all, \"*\", \"a,b\", \"x*y*\", \"logs-*\", \"\"]\n",
    "t.yaml:8:19: \"indices\": invalid index name \"Books\"", "t.yaml:8:26: \"indices\": invalid index name \"_all\"",
    "t.yaml:8:32: \"indices\": invalid index name \"*\"", "t.yaml:8:37: \"indices\": invalid index name \"a,b\"",
    "t.yaml:8:44: \"indices\": invalid index name \"x*y*\"", "t.yaml:8:62: \"indices\" must not contain an empty string")
BAD(route_params_empty_name, RT("    params: [q, '']\n"), "t.yaml:9:17: \"params\" must not contain an empty string")
BAD(route_params_mapping, RT("    params: {q: 1}\n"), "t.yaml:9:13: \"params\" must be a string or a sequence of strings")
BAD(route_method_unknown, "listen: '*:1'\n" UP "routes:\n  - path: /x\n    methods: [GET, PUT, get]\n"
    "    upstream: {method: DELETE, path: /}\n",
    "t.yaml:6:20: \"methods\": unknown method \"PUT\" (use GET, HEAD or POST)",
    "t.yaml:6:25: \"methods\": unknown method \"get\" (use GET, HEAD or POST)",
    "t.yaml:7:24: \"method\": unknown method \"DELETE\" (use GET, HEAD or POST)")
BAD(route_method_duplicate, "listen: '*:1'\n" UP "routes:\n  - path: /x\n    methods: [GET, GET]\n"
    "    upstream: {method: GET, path: /}\n",
    "t.yaml:6:20: \"methods\": duplicate method \"GET\"")
BAD(route_methods_empty, "listen: '*:1'\n" UP "routes:\n  - path: /x\n    methods: []\n"
    "    upstream: {method: GET, path: /}\n",
    "t.yaml:6:14: \"methods\" must name at least one method")
BAD(route_upstream_method_sequence, "listen: '*:1'\n" UP "routes:\n  - path: /x\n    methods: GET\n"
    "    upstream: {method: [GET], path: /}\n",
    "t.yaml:7:24: \"method\" must be a scalar")
BAD(route_upstream_scalar, "listen: '*:1'\n" UP "routes:\n  - path: /x\n    methods: GET\n    upstream: /x\n",
    "t.yaml:7:15: \"upstream\" must be a mapping")
BAD(route_path_relative, "listen: '*:1'\n" UP "routes:\n  - path: search\n    methods: GET\n"
    "    upstream: {method: GET, path: /}\n",
    "t.yaml:5:11: \"path\": must start with '/'")
BAD(route_path_bad_placeholder, "listen: '*:1'\n" UP "routes:\n  - path: /s/{name}\n    methods: GET\n"
    "    upstream: {method: GET, path: /}\n",
    "t.yaml:5:11: \"path\": unknown placeholder \"{name}\" (use {index} or {id})")
BAD(route_path_partial_placeholder, "listen: '*:1'\n" UP "routes:\n  - path: /s/x{id}\n    methods: GET\n"
    "    upstream: {method: GET, path: /}\n",
    "t.yaml:5:11: \"path\": a placeholder must be a whole segment")
BAD(route_path_twice, "listen: '*:1'\n" UP "routes:\n  - path: /{id}/{id}\n    methods: GET\n"
    "    upstream: {method: GET, path: /}\n",
    "t.yaml:5:11: \"path\": placeholder {id} is used twice")
BAD(route_upstream_path_relative, "listen: '*:1'\n" UP "routes:\n  - path: /x\n    methods: GET\n"
    "    upstream: {method: GET, path: _search}\n",
    "t.yaml:7:35: \"path\": must start with '/'")
BAD(route_upstream_path_dots, "listen: '*:1'\n" UP "routes:\n  - path: /x\n    methods: GET\n"
    "    upstream: {method: GET, path: /a/../_cluster}\n",
    "t.yaml:7:35: \"path\": \".\" and \"..\" segments are not allowed")
BAD(route_upstream_undefined_placeholder, "listen: '*:1'\n" UP "routes:\n  - path: /s/{index}\n    methods: GET\n"
    "    upstream:\n      method: GET\n      path: /{index}/_doc/{id}\n    indices: [books]\n",
    "t.yaml:9:13: \"path\": placeholder {id} is not in the route's path")
BAD(route_upstream_undefined_both, "listen: '*:1'\n" UP "routes:\n  - path: /s\n    methods: GET\n"
    "    upstream:\n      method: GET\n      path: /{index}/_doc/{id}\n",
    "t.yaml:9:13: \"path\": placeholder {index} is not in the route's path",
    "t.yaml:9:13: \"path\": placeholder {id} is not in the route's path")
BAD(route_duplicate, RT("  - path: /s/{index}\n    methods: [POST, GET]\n    upstream: {method: GET, path: /}\n"
    "    indices: [books]\n"),
    "t.yaml:9:11: duplicate route \"/s/{index}\"")
BAD(route_duplicate_other_name, RT("  - path: /s/{id}\n    methods: GET\n    upstream: {method: GET, path: /}\n"),
    "t.yaml:9:11: duplicate route \"/s/{id}\"")
BAD(route_reserved_healthz, "listen: '*:1'\n" UP "routes:\n  - path: /healthz\n    methods: GET\n"
    "    upstream: {method: GET, path: /}\n",
    "t.yaml:5:11: \"path\": /healthz is reserved")
BAD(route_reserved_metrics, "listen: '*:1'\n" UP "routes:\n  - path: /metrics\n    methods: GET\n"
    "    upstream: {method: GET, path: /}\n",
    "t.yaml:5:11: \"path\": /metrics is reserved")
BAD(route_reserved_esgate, "listen: '*:1'\n" UP "routes:\n  - path: /_esgate/status\n    methods: GET\n"
    "    upstream: {method: GET, path: /}\n",
    "t.yaml:5:11: \"path\": /_esgate/status is reserved")
BAD(route_root_with_cluster_info, "listen: '*:1'\n" UP "routes:\n  - path: /\n    methods: GET\n"
    "    upstream: {method: GET, path: /}\n",
    "t.yaml:5:11: \"path\": / is taken by the cluster info (set \"cluster_info: false\")")
BAD(route_max_body_bad, RT("    max_body: 1gb\n"),
    "t.yaml:9:15: \"max_body\": bad size \"1gb\" (use a number of bytes, or kb or mb)")
BAD(route_max_body_big, RT("    max_body: 101mb\n"), "t.yaml:9:15: \"max_body\" must be at most 100mb")
BAD(route_json_not_bool, RT("    json: yes please\n"), "t.yaml:9:11: \"json\" must be true or false")
BAD(route_duplicate_key, RT("    indices: [x]\n"), "t.yaml:9:5: duplicate key \"indices\"")

/*
 * The search firewall, rate limits, CORS and error detail.
 */

Test(config, route_policy_and_friends)
{
	static const char yaml[] = "listen: '*:1'\n" UP "trusted_proxies: [10.0.0.0/8, \"fd00::/8\", 192.168.1.1]\n"
				   "routes:\n"
				   "  - path: /s/{index}\n"
				   "    methods: [GET, POST]\n"
				   "    upstream: {method: POST, path: \"/{index}/_search\"}\n"
				   "    indices: [books]\n"
				   "    policy:\n"
				   "      queries: [match, bool, nested]\n"
				   "      max_size: 50\n"
				   "      max_from: 500\n"
				   "      aggs: []\n"
				   "      max_agg_depth: 0\n"
				   "      max_buckets: 10\n"
				   "      max_aggs: 7\n"
				   "      max_searches: 3\n"
				   "      max_depth: 20\n"
				   "      max_bytes: 16kb\n"
				   "      source_fields: [title, \"author.*\"]\n"
				   "      allow_pit: true\n"
				   "      allow_scroll: yes\n"
				   "      allow_remote_indices: off\n"
				   "      allow_date_math: false\n"
				   "    rate_limit: {rate: 30/m}\n"
				   "    cors:\n"
				   "      allow_origins: [\"https://a.example\", \"http://b.example:8080\", \"*\"]\n"
				   "      allow_headers: [Content-Type, X-Request-Id]\n"
				   "      max_age: 10m\n"
				   "    errors: {detail: true}\n"
				   "  - path: /c\n"
				   "    methods: GET\n"
				   "    upstream: {method: GET, path: /books/_count}\n"
				   "    rate_limit: {burst: 5, rate: 2/s}\n"
				   "  - path: /m/{index}\n"
				   "    methods: POST\n"
				   "    upstream: {method: POST, path: \"/{index}/_msearch\"}\n"
				   "    indices: [books]\n"
				   "  - path: /d/{id}\n"
				   "    methods: GET\n"
				   "    upstream: {method: GET, path: \"/books/_doc/{id}\"}\n";
	struct config_errors errs = {0};
	struct config *cfg = parse(yaml, &errs);
	const struct config_route *r;

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_assert_eq(cfg->ntrusted_proxies, 3);
	cr_expect_eq(cfg->trusted_proxies[0].prefix, 8);
	cr_expect_eq(cfg->trusted_proxies[2].prefix, 32);
	r = &cfg->routes[0];
	cr_expect_eq(r->search, DSL_BODY_SEARCH);
	cr_assert_eq(r->policy.nqueries, 3);
	cr_expect_str_eq(r->policy.queries[2], "nested");
	cr_expect_eq(r->policy.max_size, 50);
	cr_expect_eq(r->policy.max_from, 500);
	cr_expect_eq(r->policy.naggs, 0);
	cr_expect_eq(r->policy.max_agg_depth, 0);
	cr_expect_eq(r->policy.max_buckets, 10);
	cr_expect_eq(r->policy.max_aggs, 7);
	cr_expect_eq(r->policy.max_searches, 3);
	cr_expect_eq(r->policy.max_depth, 20);
	cr_expect_eq(r->policy.max_bytes, 16384);
	cr_assert_eq(r->policy.nsource_fields, 2);
	cr_expect_str_eq(r->policy.source_fields[1], "author.*");
	cr_expect_eq(r->policy.allow_pit + r->policy.allow_scroll, 2);
	cr_expect_eq(r->policy.allow_remote_indices + r->policy.allow_date_math + r->policy.allow_exclusions, 0);
	cr_expect_float_eq(r->rate_limit.rate, 0.5, 1e-9);
	cr_expect_float_eq(r->rate_limit.burst, 30, 1e-9, "default burst: the N of N/m");
	cr_assert_eq(r->cors.norigins, 3);
	cr_expect_str_eq(r->cors.origins[2], "*");
	cr_assert_eq(r->cors.nheaders, 2);
	cr_expect_str_eq(r->cors.headers[0], "Content-Type");
	cr_expect_eq(r->cors.max_age_ms, 600000);
	cr_expect_eq(r->errors_detail, 1);
	r = &cfg->routes[1];
	cr_expect_eq(r->search, DSL_BODY_COUNT);
	cr_expect_eq(r->policy.nqueries, 12, "defaults on every route");
	cr_expect_eq(r->policy.max_size, 100);
	cr_expect_float_eq(r->rate_limit.rate, 2, 1e-9);
	cr_expect_float_eq(r->rate_limit.burst, 5, 1e-9, "burst before rate is kept");
	cr_expect_eq(r->errors_detail, 0);
	cr_expect_null(r->cors.origins);
	cr_expect_eq(cfg->routes[2].search, DSL_BODY_MSEARCH);
	r = &cfg->routes[3];
	cr_expect_eq(r->search, -1);
	cr_expect_eq(r->rate_limit.rate, 0, "no limit by default");
	cr_expect_eq(r->policy.max_agg_depth, 3);
	cr_expect_eq(r->policy.max_aggs, 100, "defaults on every route");
	cr_expect_eq(r->policy.max_searches, 10);
	cr_expect_eq(r->policy.max_depth, 64);
	cr_expect_eq(r->policy.max_bytes, 32768);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, no_trusted_proxies)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\n" UP "trusted_proxies: []\n", &errs);

	cr_assert_not_null(cfg);
	cr_expect_eq(cfg->ntrusted_proxies, 0);
	cr_expect_null(cfg->trusted_proxies);
	config_free(cfg);
	config_errors_free(&errs);
}

BAD(policy_unknown_key, RT("    policy: {max_size: 10, foo: 1}\n"), "t.yaml:9:28: unknown key \"foo\" in route policy")
BAD(policy_not_mapping, RT("    policy: strict\n"), "t.yaml:9:13: \"policy\" must be a mapping")
BAD(policy_max_size_bad, RT("    policy: {max_size: -1}\n"), "t.yaml:9:24: \"max_size\" must be an integer from 0 to 4294967295")
BAD(policy_depth_big, RT("    policy: {max_agg_depth: 17}\n"), "t.yaml:9:29: \"max_agg_depth\" must be an integer from 0 to 16")
BAD(policy_query_name, RT("    policy: {queries: [match, Match, \"a b\"]}\n"),
    "t.yaml:9:31: \"queries\": invalid query type \"Match\"", "t.yaml:9:38: \"queries\": invalid query type \"a b\"")
BAD(policy_agg_name, RT("    policy: {aggs: [\"x-y\"]}\n"), "t.yaml:9:21: \"aggs\": invalid aggregation type \"x-y\"")
BAD(policy_query_unknown, RT("    policy: {queries: [match, nosuch_query, wrapper]}\n"),
    "t.yaml:9:31: \"queries\": unknown query type \"nosuch_query\" (the firewall does not know its shape)",
    "t.yaml:9:45: \"queries\": query type \"wrapper\" can never be allowed (it runs a script or hides its query)")
BAD(policy_query_never, RT("    policy: {queries: script_score}\n"),
    "t.yaml:9:23: \"queries\": query type \"script_score\" can never be allowed (it runs a script or hides its query)")
BAD(policy_agg_unknown, RT("    policy:\n      aggs:\n        - terms\n        - scripted_metric\n        - categorize_text\n"),
    "t.yaml:12:11: \"aggs\": aggregation type \"scripted_metric\" can never be allowed (it runs a script or hides its "
    "query)",
    "t.yaml:13:11: \"aggs\": unknown aggregation type \"categorize_text\" (the firewall does not know its shape)")
BAD(policy_max_searches_zero, RT("    policy: {max_searches: 0}\n"),
    "t.yaml:9:28: \"max_searches\" must be an integer from 1 to 1000")
BAD(policy_max_aggs_big, RT("    policy: {max_aggs: 10001}\n"), "t.yaml:9:24: \"max_aggs\" must be an integer from 0 to 10000")
BAD(policy_max_depth_small, RT("    policy: {max_depth: 3}\n"), "t.yaml:9:25: \"max_depth\" must be an integer from 4 to 1000")
BAD(policy_max_depth_big, RT("    policy: {max_depth: 2048}\n"),
    "t.yaml:9:25: \"max_depth\" must be an integer from 4 to 1000")
BAD(policy_max_bytes_bad, RT("    policy: {max_bytes: 1gb}\n"),
    "t.yaml:9:25: \"max_bytes\": bad size \"1gb\" (use a number of bytes, or kb or mb)")
BAD(policy_max_bytes_small, RT("    policy: {max_bytes: 100}\n"), "t.yaml:9:25: \"max_bytes\" must be from 1kb to 100mb")
BAD(policy_max_bytes_big, RT("    policy: {max_bytes: 101mb}\n"), "t.yaml:9:25: \"max_bytes\" must be from 1kb to 100mb")
BAD(policy_source_fields_empty, RT("    policy: {source_fields: []}\n"),
    "t.yaml:9:29: \"source_fields\" must name at least one field")
BAD(policy_source_fields_bad, RT("    policy: {source_fields: [\"a,b\"]}\n"),
    "t.yaml:9:30: \"source_fields\": invalid field name \"a,b\"")
BAD(policy_bool_bad, RT("    policy: {allow_pit: maybe}\n"), "t.yaml:9:25: \"allow_pit\" must be true or false")
BAD(policy_duplicate, RT("    policy: {max_size: 1, max_size: 2}\n"), "t.yaml:9:27: duplicate key \"max_size\"")
BAD(policy_not_search, "listen: '*:1'\n" UP "routes:\n  - path: /d/{id}\n    methods: GET\n"
    "    upstream: {method: GET, path: \"/books/_doc/{id}\"}\n    policy: {max_size: 1}\n",
    "t.yaml:8:13: \"policy\": the route's upstream path is not a search (_search, _count or _msearch)")
BAD(rate_limit_bad, RT("    rate_limit: {rate: 10/h}\n"),
    "t.yaml:9:24: \"rate\": bad rate \"10/h\" (use N/s or N/m, N from 1 to 1000000)")
BAD(rate_limit_zero, RT("    rate_limit: {rate: 0/s}\n"),
    "t.yaml:9:24: \"rate\": bad rate \"0/s\" (use N/s or N/m, N from 1 to 1000000)")
BAD(rate_limit_missing_rate, RT("    rate_limit: {burst: 5}\n"), "t.yaml:9:17: missing required key \"rate\" in route rate_limit")
BAD(rate_limit_burst_bad, RT("    rate_limit: {rate: 1/s, burst: 0}\n"),
    "t.yaml:9:36: \"burst\" must be an integer from 1 to 1000000")
BAD(trusted_proxies_bad, "listen: '*:1'\n" UP "trusted_proxies: [10.0.0.0/8, 10.0.0.1/8, bogus, \"[::1]\"]\n",
    "t.yaml:4:31: \"trusted_proxies\": bad address or CIDR \"10.0.0.1/8\" (use 10.0.0.0/8, fd00::/8 or an address)",
    "t.yaml:4:43: \"trusted_proxies\": bad address or CIDR \"bogus\" (use 10.0.0.0/8, fd00::/8 or an address)",
    "t.yaml:4:50: \"trusted_proxies\": bad address or CIDR \"[::1]\" (use 10.0.0.0/8, fd00::/8 or an address)")
BAD(cors_missing_origins, RT("    cors: {max_age: 1m}\n"), "t.yaml:9:11: missing required key \"allow_origins\" in route cors")
BAD(cors_bad_origin, RT("    cors: {allow_origins: [\"https://a.example/\", \"ftp://x\", \"https://a.example/x\"]}\n"),
    "t.yaml:9:28: \"allow_origins\": bad origin (use \"*\" or scheme://host[:port]) \"https://a.example/\"",
    "t.yaml:9:50: \"allow_origins\": bad origin (use \"*\" or scheme://host[:port]) \"ftp://x\"",
    "t.yaml:9:61: \"allow_origins\": bad origin (use \"*\" or scheme://host[:port]) \"https://a.example/x\"")
BAD(cors_bad_header, RT("    cors: {allow_origins: \"*\", allow_headers: [\"X Y\"]}\n"),
    "t.yaml:9:48: \"allow_headers\": invalid header name \"X Y\"")
BAD(cors_bad_max_age, RT("    cors: {allow_origins: \"*\", max_age: soon}\n"),
    "t.yaml:9:41: \"max_age\": bad duration \"soon\" (use 250ms, 30s, 2m, 1h or a number of seconds)")
BAD(errors_unknown, RT("    errors: {detail: true, stack: true}\n"), "t.yaml:9:28: unknown key \"stack\" in route errors")
BAD(errors_detail_bad, RT("    errors: {detail: 1}\n"), "t.yaml:9:22: \"detail\" must be true or false")

/* The micro-cache: off by default; cache_ttl implies coalescing unless
 * "coalesce: false"; the built-in GET / takes the same keys. */
Test(config, cache_defaults)
{
	struct config_errors errs = {0};
	struct config *cfg = parse(RT(""), &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->routes[0].cache_ttl_ms, 0);
	cr_expect_eq(cfg->routes[0].coalesce, 0);
	cr_expect_eq(cfg->cluster_info, 1);
	cr_expect_eq(cfg->cluster_info_cache_ttl_ms, 0);
	cr_expect_eq(cfg->cluster_info_coalesce, 0);
	cr_expect_eq(cfg->cache_max_size, 1024 * 1024);
	cr_expect_eq(cfg->cache_max_entry, 256 * 1024);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, cache_keys)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\n" UP "cluster_info: {cache_ttl: 1s}\n"
				   "cache: {max_size: 4mb, max_entry_size: 64kb}\n"
				   "routes:\n"
				   "  - {path: /a, methods: GET, upstream: {method: GET, path: /a}, cache_ttl: 250ms}\n"
				   "  - {path: /b, methods: GET, upstream: {method: GET, path: /b}, cache_ttl: 2s,"
				   " coalesce: false}\n"
				   "  - {path: /c, methods: GET, upstream: {method: GET, path: /c}, coalesce: true}\n"
				   "  - {path: /d, methods: [GET, POST], upstream: {method: POST, path: /d/_search}}\n",
				   &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->cluster_info, 1);
	cr_expect_eq(cfg->cluster_info_cache_ttl_ms, 1000);
	cr_expect_eq(cfg->cluster_info_coalesce, 1);
	cr_expect_eq(cfg->cache_max_size, 4 * 1024 * 1024);
	cr_expect_eq(cfg->cache_max_entry, 64 * 1024);
	cr_expect_eq(cfg->routes[0].cache_ttl_ms, 250);
	cr_expect_eq(cfg->routes[0].coalesce, 1, "cache_ttl implies coalesce");
	cr_expect_eq(cfg->routes[1].cache_ttl_ms, 2000);
	cr_expect_eq(cfg->routes[1].coalesce, 0, "unless turned off");
	cr_expect_eq(cfg->routes[2].cache_ttl_ms, 0);
	cr_expect_eq(cfg->routes[2].coalesce, 1, "coalescing without a cache");
	cr_expect_eq(cfg->routes[3].coalesce, 0);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config, cache_cluster_info_forms)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: '*:1'\n" UP "cluster_info: {enabled: false, cache_ttl: 5s, coalesce: false}\n"
				   "cache: {max_size: 128kb}\n",
				   &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_eq(cfg->cluster_info, 0);
	cr_expect_eq(cfg->cluster_info_cache_ttl_ms, 5000);
	cr_expect_eq(cfg->cluster_info_coalesce, 0);
	cr_expect_eq(cfg->cache_max_size, 128 * 1024);
	cr_expect_eq(cfg->cache_max_entry, 128 * 1024, "the default entry cap follows a smaller max_size");
	config_free(cfg);
	config_errors_free(&errs);
}

BAD(cache_ttl_bad, RT("    cache_ttl: soon\n"),
    "t.yaml:9:16: \"cache_ttl\": bad duration \"soon\" (use 250ms, 30s, 2m, 1h or a number of seconds)")
BAD(cache_ttl_negative, RT("    cache_ttl: -1s\n"),
    "t.yaml:9:16: \"cache_ttl\": bad duration \"-1s\" (use 250ms, 30s, 2m, 1h or a number of seconds)")
BAD(cache_ttl_too_long, RT("    cache_ttl: 25h\n"), "t.yaml:9:16: \"cache_ttl\" must be at most 24h")
BAD(cache_coalesce_not_bool, RT("    coalesce: maybe\n"), "t.yaml:9:15: \"coalesce\" must be true or false")
BAD(cache_ttl_on_post_route,
    "listen: '*:1'\n" UP "routes:\n  - path: /s\n    methods: [GET, POST]\n"
    "    upstream: {method: POST, path: /_search}\n    cache_ttl: 1s\n",
    "t.yaml:8:16: \"cache_ttl\": only routes whose upstream method is GET are cached or coalesced")
BAD(cache_coalesce_on_post_route,
    "listen: '*:1'\n" UP "routes:\n  - path: /s\n    methods: [GET, POST]\n"
    "    upstream: {method: POST, path: /_search}\n    coalesce: true\n",
    "t.yaml:8:15: \"coalesce\": only routes whose upstream method is GET are cached or coalesced")
BAD(cache_cluster_info_unknown, "listen: '*:1'\n" UP "cluster_info: {cache_tll: 1s}\n",
    "t.yaml:4:16: unknown key \"cache_tll\" in cluster_info")
BAD(cache_cluster_info_bad_ttl, "listen: '*:1'\n" UP "cluster_info: {cache_ttl: x}\n",
    "t.yaml:4:27: \"cache_ttl\": bad duration \"x\" (use 250ms, 30s, 2m, 1h or a number of seconds)")
BAD(cache_max_size_bad, "listen: '*:1'\n" UP "cache: {max_size: 0}\n",
    "t.yaml:4:19: \"max_size\" must be a size from 1kb to 1024mb (e.g. 512kb, 4mb)")
BAD(cache_max_size_words, "listen: '*:1'\n" UP "cache: {max_size: lots}\n",
    "t.yaml:4:19: \"max_size\" must be a size from 1kb to 1024mb (e.g. 512kb, 4mb)")
BAD(cache_entry_over_max, "listen: '*:1'\n" UP "cache: {max_size: 64kb, max_entry_size: 1mb}\n",
    "t.yaml:4:41: \"max_entry_size\" must not be more than \"max_size\"")
BAD(cache_unknown_key, "listen: '*:1'\n" UP "cache: {ttl: 1s}\n", "t.yaml:4:9: unknown key \"ttl\" in cache")
