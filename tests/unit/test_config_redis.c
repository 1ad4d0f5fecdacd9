/*
 * test_config_redis.c - lib/config.c: the top-level "rate_limit: {redis}"
 * (worker/limiter.h's shared store): its defaults, its address forms and
 * its errors with their positions.
 */
#include "lib/config.h"

#include <criterion/criterion.h>
#include <string.h>

#define UP "upstream:\n  nodes: [http://127.0.0.1:9200]\n"

static struct config *
parse(const char *yaml, struct config_errors *errs)
{
	return config_parse("t.yaml", yaml, strlen(yaml), errs);
}

Test(config_redis, absent_means_local)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: 127.0.0.1:0\n" UP, &errs);

	cr_assert_not_null(cfg);
	cr_expect_null(cfg->redis.address);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config_redis, defaults)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: 127.0.0.1:0\n" UP "rate_limit:\n  redis: {address: 10.0.0.5}\n", &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_str_eq(cfg->redis.address, "10.0.0.5");
	cr_expect_str_eq(cfg->redis.host, "10.0.0.5");
	cr_expect_eq(cfg->redis.port, 6379);
	cr_expect_null(cfg->redis.unix_path);
	cr_expect_null(cfg->redis.username);
	cr_expect_null(cfg->redis.password);
	cr_expect_eq(cfg->redis.database, 0);
	cr_expect_eq(cfg->redis.timeout_ms, 250);
	cr_expect_str_eq(cfg->redis.prefix, "esgate:rl:");
	cr_expect_eq(cfg->redis.fail_closed, 0);
	cr_expect_eq(cfg->redis.sync_ms, 5);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config_redis, every_key)
{
	struct config_errors errs = {0};
	struct config *cfg = parse("listen: 127.0.0.1:0\n" UP "rate_limit:\n"
	                           "  redis:\n"
	                           "    address: \"[::1]:6380\"\n"
	                           "    username: esgate\n"
	                           "    password: s3cret\n"
	                           "    database: 7\n"
	                           "    timeout: 2s\n"
	                           "    prefix: \"fleet:\"\n"
	                           "    fail: closed\n"
	                           "    sync_interval: 20ms\n",
	                           &errs);

	cr_assert_not_null(cfg, "%s", errs.n ? errs.msgs[0] : "");
	cr_expect_str_eq(cfg->redis.host, "::1");
	cr_expect_eq(cfg->redis.port, 6380);
	cr_expect_str_eq(cfg->redis.username, "esgate");
	cr_expect_str_eq(cfg->redis.password, "s3cret");
	cr_expect_eq(cfg->redis.database, 7);
	cr_expect_eq(cfg->redis.timeout_ms, 2000);
	cr_expect_str_eq(cfg->redis.prefix, "fleet:");
	cr_expect_eq(cfg->redis.fail_closed, 1);
	cr_expect_eq(cfg->redis.sync_ms, 20);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config_redis, unix_socket)
{
	struct config_errors errs = {0};
	struct config *cfg =
	    parse("listen: 127.0.0.1:0\n" UP "rate_limit: {redis: {address: /run/redis/redis.sock}}\n", &errs);

	cr_assert_not_null(cfg);
	cr_expect_str_eq(cfg->redis.unix_path, "/run/redis/redis.sock");
	cr_expect_null(cfg->redis.host);
	config_free(cfg);
	config_errors_free(&errs);
}

static void
bad(const char *block, const char *want)
{
	struct config_errors errs = {0};
	char yaml[512];
	struct config *cfg;

	snprintf(yaml, sizeof(yaml), "listen: 127.0.0.1:0\n" UP "rate_limit:\n%s", block);
	cfg = parse(yaml, &errs);
	cr_expect_null(cfg, "accepted: %s", block);
	cr_expect_eq(errs.n, 1, "%zu errors for %s", errs.n, block);
	if (errs.n >= 1)
		cr_expect_str_eq(errs.msgs[0], want);
	config_free(cfg);
	config_errors_free(&errs);
}

Test(config_redis, errors_with_positions)
{
	bad("  redis: {address: \"h:0\"}\n", "t.yaml:5:20: \"address\": bad port in \"h:0\"");
	bad("  redis: {address: \"::1\"}\n", "t.yaml:5:20: \"address\": an IPv6 address goes in brackets: [::1]:6379");
	bad("  redis: {address: \"[::1\"}\n",
	    "t.yaml:5:20: \"address\": bad address \"[::1\" (use host:port, [v6]:port or /path/to/socket)");
	bad("  redis: {address: a, fail: maybe}\n", "t.yaml:5:29: \"fail\" must be open or closed");
	bad("  redis: {address: a, username: u}\n", "t.yaml:5:33: \"username\" needs \"password\"");
	bad("  redis: {address: a, timeout: 2m}\n", "t.yaml:5:32: \"timeout\" must be at most 60s");
	bad("  redis: {address: a, sync_interval: 0}\n", "t.yaml:5:38: \"sync_interval\" must be greater than 0");
	bad("  redis: {address: a, database: x}\n", "t.yaml:5:33: \"database\" must be an integer from 0 to 100000");
	bad("  redis: {address: a, prefix: \"\"}\n", "t.yaml:5:31: \"prefix\" must not be empty");
	bad("  redis: {address: a, port: 1}\n", "t.yaml:5:23: unknown key \"port\" in rate_limit redis");
	bad("  redis: {}\n", "t.yaml:5:10: missing required key \"address\" in rate_limit redis");
	bad("  local: true\n", "t.yaml:5:3: unknown key \"local\" in rate_limit");
	{
		char block[300];

		snprintf(block, sizeof(block), "  redis: {address: a, prefix: %0201d}\n", 0);
		bad(block, "t.yaml:5:31: \"prefix\" must be at most 200 bytes");
	}
}
