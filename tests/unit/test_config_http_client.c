/*
 * test_config_http_client.c - lib/config.c: upstream.http_client, which
 * picks the client for http:// nodes (native by default, or libcurl).
 */
#include "lib/config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static struct config *
http_client_parse(const char *value, struct config_errors *errs)
{
	char yaml[256];

	snprintf(yaml, sizeof(yaml), "listen: 127.0.0.1:8080\nupstream:\n  nodes: http://127.0.0.1:9200\n%s%s%s",
	         value != NULL ? "  http_client: " : "", value != NULL ? value : "", value != NULL ? "\n" : "");
	return config_parse("t.yaml", yaml, strlen(yaml), errs);
}

Test(config_http_client, values)
{
	static const struct {
		const char *value;
		int want;
	} cases[] = {{NULL, CONFIG_HTTP_CLIENT_NATIVE},
	             {"native", CONFIG_HTTP_CLIENT_NATIVE},
	             {"curl", CONFIG_HTTP_CLIENT_CURL}};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_errors errs = {0};
		struct config *cfg = http_client_parse(cases[i].value, &errs);
		cr_assert_not_null(cfg, "%s", cases[i].value ? cases[i].value : "(default)");
		cr_expect_eq(cfg->upstream.http_client, cases[i].want, "%s",
		             cases[i].value ? cases[i].value : "(default)");
		config_free(cfg);
		config_errors_free(&errs);
	}
}

Test(config_http_client, refused)
{
	static const char *const bad[] = {"libcurl", "Native", "\"\"", "[native]"};
	static const char *const want[] = {"t.yaml:4:16: \"http_client\" must be native or curl",
	                                   "t.yaml:4:16: \"http_client\" must be native or curl",
	                                   "t.yaml:4:16: \"http_client\" must be native or curl",
	                                   "t.yaml:4:16: \"http_client\" must be a scalar"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config_errors errs = {0};
		struct config *cfg = http_client_parse(bad[i], &errs);
		cr_expect_null(cfg, "%s accepted", bad[i]);
		cr_expect_eq(errs.n, 1, "%s: %zu errors", bad[i], errs.n);
		if (errs.n > 0)
			cr_expect_str_eq(errs.msgs[0], want[i]);
		config_errors_free(&errs);
		config_free(cfg);
	}
}
