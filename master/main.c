/*
 * main.c - command line.  Kept out of the object list the tests link, so
 * everything else can be linked into them (beanstalkd's habit).
 */
#include <curl/curl.h>
#include <ev.h>
#include <getopt.h>
#include <h2o.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lib/apikey.h"
#include "lib/config.h"
#include "lib/log.h"
#include "master/master.h"

#define MAIN_DEFAULT_CONFIG "/etc/esgate/esgate.yaml"

static void
main_usage(FILE *out)
{
	fprintf(out,
		"usage: esgate [-t] [-c FILE]\n"
		"       esgate key new NAME\n"
		"       esgate -v | -h\n"
		"\n"
		"  -c FILE  configuration file (default " MAIN_DEFAULT_CONFIG ")\n"
		"  -t       check the configuration, print \"configuration OK\" or every error, and exit\n"
		"  -v       print the versions of esgate and of its libraries\n"
		"  -h       this help\n"
		"  key new NAME  print a new API key for clients (id NAME) and the line\n"
		"                that puts its hash in the configuration\n"
		"\n"
		"esgate runs in the foreground; let systemd (or a terminal) supervise it.\n"
		"Signals to the master:\n"
		"  HUP        reload: validate the file, start new workers, drain the old ones;\n"
		"             a broken file is reported and the running configuration kept\n"
		"  TERM, INT  stop now\n"
		"  QUIT       graceful stop: finish in-flight requests, up to graceful_timeout\n"
		"  USR1       reopen the log file (log.file) in the master and every worker\n"
		"  USR2       binary upgrade: start the binary again on the same sockets;\n"
		"             once its workers serve, the old master drains and exits\n"
		"  TTIN, TTOU one worker more / fewer (never below 1), until the next reload\n");
}

static const char *
main_backend_name(unsigned b)
{
	if (b & EVBACKEND_EPOLL)
		return "epoll";
	if (b & EVBACKEND_POLL)
		return "poll";
	if (b & EVBACKEND_SELECT)
		return "select";
	return "other";
}

static void
main_versions(void)
{
	unsigned backends = ev_recommended_backends() & ev_supported_backends();

	printf("esgate %s\n", ESGATE_VERSION);
	printf("libev %d.%d (backend %s)\n", ev_version_major(), ev_version_minor(), main_backend_name(backends));
	printf("libh2o %s (library %d.%d.%d)\n", H2O_VERSION, H2O_LIBRARY_VERSION_MAJOR, H2O_LIBRARY_VERSION_MINOR,
	       H2O_LIBRARY_VERSION_PATCH);
	printf("libyaml %s\n", yaml_get_version_string());
	printf("jansson %s\n", jansson_version_str());
	printf("libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
}

/* `esgate key new NAME`: the key is shown here once; the configuration
 * keeps only its hash.  Nothing is logged. */
static int
main_key(int argc, char **argv)
{
	struct apikey_new k;

	if (argc != 4 || strcmp(argv[2], "new") != 0) {
		main_usage(stderr);
		return 2;
	}
	if (!apikey_id_valid(argv[3], strlen(argv[3]))) {
		fprintf(stderr, "esgate: bad key name \"%s\": use 1 to %d of A-Z a-z 0-9 . _ -\n", argv[3],
			APIKEY_ID_MAX);
		return 2;
	}
	if (apikey_generate(argv[3], &k) != 0) {
		fprintf(stderr, "esgate: cannot make a key: the random generator failed\n");
		return 1;
	}
	printf("# API key \"%s\": give the client the key; esgate keeps only its hash.\n"
	       "id:     %s\n"
	       "key:    %s\n"
	       "header: Authorization: ApiKey %s\n"
	       "        (Python: Elasticsearch(..., api_key=(\"%s\", \"%s\")))\n"
	       "\n"
	       "# Paste under auth.api_keys (or api_keys in the keys file), then reload:\n"
	       "  - {id: %s, hash: \"%s\"}\n",
	       argv[3], argv[3], k.key, k.credential, argv[3], k.key, argv[3], k.hash);
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = MAIN_DEFAULT_CONFIG, *err;
	int test_only = 0, ch, rc;
	struct config_errors errs = {0};
	struct config *cfg;

	log_init("master");
	if (argc >= 2 && strcmp(argv[1], "key") == 0)
		return main_key(argc, argv);
	while ((ch = getopt(argc, argv, "c:thv")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test_only = 1;
			break;
		case 'v':
			main_versions();
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		main_usage(stderr);
		return 2;
	}

	/* Under systemd (ExecStartPre=, ExecReload=) these lines go to the
	 * journal: "<3>" makes them errors there, so that `journalctl -p err`
	 * shows a refused reload's FILE:LINE:COLUMN. */
	err = log_is_journal() ? "<3>esgate: " : "esgate: ";
	if ((cfg = config_load(path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s%s\n", err, errs.msgs[i]);
		config_errors_free(&errs);
		if (test_only)
			fprintf(stderr, "%sconfiguration file %s test failed\n", err, path);
		return 1;
	}
	for (size_t i = 0; i < cfg->warnings.n; i++)
		fprintf(stderr, "%s%s\n", log_is_journal() ? "<4>esgate: " : "esgate: ", cfg->warnings.msgs[i]);
	if (test_only && master_check_privileges(cfg) != NULL) {
		fprintf(stderr, "%s%s: %s\n", err, path, master_check_privileges(cfg));
		config_free(cfg);
		return 1;
	}
	if (test_only) {
		printf("configuration OK\n");
		config_free(cfg);
		return 0;
	}
	log_set_level((enum log_level)cfg->log_level);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		log_errorx("curl_global_init failed");
		return 1;
	}
	log_init("master");
	log_info("esgate %s: libev %d.%d (%s backend), libh2o %s, libyaml %s, jansson %s, libcurl %s", ESGATE_VERSION,
		 ev_version_major(), ev_version_minor(),
		 main_backend_name(ev_recommended_backends() & ev_supported_backends()), H2O_VERSION,
		 yaml_get_version_string(), jansson_version_str(), curl_version_info(CURLVERSION_NOW)->version);
	rc = master_run(cfg, path, argv);
	curl_global_cleanup();
	return rc;
}
