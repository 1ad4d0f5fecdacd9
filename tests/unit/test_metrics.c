/*
 * test_metrics.c - lib/metrics.c: route/node tables (find-or-add, full,
 * concurrent adds from forked processes), per-worker shards (each forked
 * writer its own, summed when rendered; a reused slot continues its counts,
 * gauges back to zero), and the Prometheus rendering (HELP/TYPE, values,
 * label escaping, cumulative histogram buckets).
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/metrics.h"

#define NSHARDS 8

/* True if TEXT has LINE as a whole line. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

static char *
render(const struct metrics *m)
{
	size_t len = 0;
	char *text = metrics_render(m, &len);

	cr_assert_not_null(text);
	cr_assert_eq(len, strlen(text), "the length is the text's");
	cr_assert(len > 0 && text[len - 1] == '\n', "the text ends with a newline");
	return text;
}

static void
wait_children(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		int status;
		cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed (status %#x)", i, status);
	}
}

Test(metrics, route_find_or_add_and_full_table)
{
	struct metrics *m = metrics_create(NSHARDS);
	struct metrics_shard *s = metrics_shard_claim(m, 0);
	char name[32];
	int a, b;

	cr_assert_not_null(m);
	a = metrics_route(m, "/a");
	b = metrics_route(m, "/b");
	cr_assert_geq(a, 0);
	cr_assert_geq(b, 0);
	cr_assert_neq(a, b);
	cr_assert_eq(metrics_route(m, "/a"), a, "same name, same index");
	cr_assert_eq(metrics_route(m, "/b"), b);
	for (int i = 2; i < METRICS_MAX_ROUTES; i++) {
		snprintf(name, sizeof(name), "/r%d", i);
		cr_assert_geq(metrics_route(m, name), 0, "route %d of %d", i + 1, METRICS_MAX_ROUTES);
	}
	cr_assert_eq(metrics_route(m, "/one-too-many"), -1, "table full");
	cr_assert_eq(metrics_route(m, "/a"), a, "known names are still found when full");
	snprintf(name, sizeof(name), "/r%d", METRICS_MAX_ROUTES - 1);
	cr_assert_eq(metrics_route(m, name), METRICS_MAX_ROUTES - 1);
	/* Nodes have a table of their own. */
	cr_assert_eq(metrics_node(m, "http://n1:9200"), 0);
	cr_assert_eq(metrics_node(m, "http://n2:9200"), 1);
	cr_assert_eq(metrics_node(m, "http://n1:9200"), 0);
	/* A full table counts nowhere, and -1 is harmless. */
	metrics_request(s, -1, 200, 10);
	metrics_upstream(s, -1, 1, 1000);
	cr_assert_eq(s->duration_bucket[0], 1, "counted, on no route");
	for (int i = 0; i < METRICS_MAX_NODES; i++)
		cr_assert_eq(s->node_requests[i], 0);
	metrics_destroy(m);
}

#define NCHILD 4
#define NNAMES 50

struct shared {
	volatile int go;
	int idx[NCHILD][NNAMES];
};

Test(metrics, concurrent_adds_from_children_never_duplicate)
{
	for (int round = 0; round < 20; round++) {
		struct metrics *m = metrics_create(NSHARDS);
		struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		pid_t pids[NCHILD];
		char name[32];

		cr_assert_not_null(m);
		cr_assert_neq(sh, MAP_FAILED);
		for (int c = 0; c < NCHILD; c++) {
			pid_t pid = fork();
			cr_assert_geq(pid, 0);
			if (pid == 0) {
				while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE))
					sched_yield();
				for (int k = 0; k < NNAMES; k++) {
					/* each child its own order: forward, backward, odd strides */
					int i = c == 0 ? k : c == 1 ? NNAMES - 1 - k : (k * (c == 2 ? 7 : 13) + round) % NNAMES;
					snprintf(name, sizeof(name), "/route/%d", i);
					sh->idx[c][i] = metrics_route(m, name);
				}
				_exit(0);
			}
			pids[c] = pid;
		}
		__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
		wait_children(pids, NCHILD);

		int ready = 0;
		for (int i = 0; i < METRICS_MAX_ROUTES; i++)
			if (m->route_names[i].state == 2)
				ready++;
			else
				cr_assert_eq(m->route_names[i].state, 0, "entry %d left half-written", i);
		cr_assert_eq(ready, NNAMES, "round %d: %d names in the table for %d distinct ones", round, ready, NNAMES);
		for (int i = 0; i < NNAMES; i++) {
			int seen = 0;
			snprintf(name, sizeof(name), "/route/%d", i);
			for (int j = 0; j < METRICS_MAX_ROUTES; j++)
				if (m->route_names[j].state == 2 && strcmp(m->route_names[j].name, name) == 0)
					seen++;
			cr_assert_eq(seen, 1, "round %d: %s is in the table %d times", round, name, seen);
			for (int c = 0; c < NCHILD; c++)
				cr_assert_eq(sh->idx[c][i], sh->idx[0][i], "round %d: %s got index %d in child %d, %d in child 0",
					     round, name, sh->idx[c][i], c, sh->idx[0][i]);
			cr_assert_str_eq(m->route_names[sh->idx[0][i]].name, name);
		}
		munmap(sh, sizeof(*sh));
		metrics_destroy(m);
	}
}

Test(metrics, each_child_counts_in_its_shard_and_the_parent_sees_the_sums)
{
	struct metrics *m = metrics_create(NSHARDS);
	int r = metrics_route(m, "/"), node = metrics_node(m, "http://127.0.0.1:9200");
	struct metrics_shard *shard[NCHILD], sum;
	pid_t pids[NCHILD];

	cr_assert_not_null(m);
	for (int c = 0; c < NCHILD; c++)
		cr_assert_not_null(shard[c] = metrics_shard_claim(m, (unsigned)c));
	cr_assert_eq(m->shards_used, NCHILD);
	for (int c = 0; c < NCHILD; c++) {
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			/* all at once, each in its own shard: a plain load and
			 * store loses nothing with one writer a word */
			for (int k = 0; k < 100000; k++) {
				metrics_request(shard[c], r, k % 10 == 0 ? 404 : 200, 100);
				metrics_upstream(shard[c], node, k % 100 == 0, 1000);
				metrics_add(&shard[c]->in_flight, 1);
			}
			_exit(0);
		}
		pids[c] = pid;
	}
	wait_children(pids, NCHILD);
	metrics_inc(&m->restarts[METRICS_RESTART_CRASH]); /* the master's own */
	for (int c = 0; c < NCHILD; c++)
		cr_assert_eq(shard[c]->route_requests[r][1], 90000, "child %d", c);
	metrics_sum(m, &sum);
	cr_assert_eq(sum.route_requests[r][1], NCHILD * 90000);
	cr_assert_eq(sum.route_requests[r][3], NCHILD * 10000);
	cr_assert_eq(sum.duration_bucket[0], NCHILD * 100000, "100 us is in the first bucket");
	cr_assert_eq(sum.duration_sum_us, (uint64_t)NCHILD * 100000 * 100);
	cr_assert_eq(sum.node_requests[node], NCHILD * 100000);
	cr_assert_eq(sum.node_errors[node], NCHILD * 1000);
	cr_assert_eq(sum.in_flight, NCHILD * 100000);

	char *text = render(m);
	char want[128];
	snprintf(want, sizeof(want), "esgate_requests_total{route=\"/\",code=\"2xx\"} %d", NCHILD * 90000);
	cr_assert(has_line(text, want), "no line %s in:\n%s", want, text);
	snprintf(want, sizeof(want), "esgate_request_duration_seconds_count %d", NCHILD * 100000);
	cr_assert(has_line(text, want), "no line %s in:\n%s", want, text);
	snprintf(want, sizeof(want), "esgate_upstream_errors_total{node=\"http://127.0.0.1:9200\"} %d", NCHILD * 1000);
	cr_assert(has_line(text, want), "no line %s in:\n%s", want, text);
	snprintf(want, sizeof(want), "esgate_requests_in_flight %d", NCHILD * 100000);
	cr_assert(has_line(text, want), "no line %s in:\n%s", want, text);
	cr_assert(has_line(text, "esgate_worker_restarts_total{reason=\"crash\"} 1"), "%s", text);
	free(text);
	metrics_destroy(m);
}

Test(metrics, sums_over_the_shards_in_use_only)
{
	struct metrics *m = metrics_create(NSHARDS);
	int r = metrics_route(m, "/x");
	struct metrics_shard sum;
	char *text;

	cr_assert_null(metrics_shard_claim(m, NSHARDS), "no shard past the end");
	cr_assert_eq(m->shards_used, 0);
	metrics_sum(m, &sum);
	cr_assert_eq(sum.duration_bucket[0], 0);
	/* slots 0 and 2 taken (1 free): the sum covers 0..2 */
	metrics_request(metrics_shard_claim(m, 2), r, 200, 10);
	metrics_request(metrics_shard_claim(m, 0), r, 500, 10);
	cr_assert_eq(m->shards_used, 3, "1 + the highest shard claimed");
	metrics_add(&m->shards[2].connections, 7);
	metrics_add(&m->shards[0].connections, 2);
	metrics_add(&m->shards[0].connections, -1);
	metrics_inc(&m->shards[2].auth_denied[METRICS_DENY_INDEX]);
	metrics_inc(&m->shards[0].auth_denied[METRICS_DENY_INDEX]);
	metrics_inc(&m->shards[0].tls_handshakes[METRICS_TLS_FULL][METRICS_TLS_13]);
	metrics_count(&m->shards[2].cache_stores, 40);
	metrics_count(&m->shards[0].cache_stores, 2);
	text = render(m);
	static const char *const lines[] = {
	    "esgate_requests_total{route=\"/x\",code=\"2xx\"} 1",
	    "esgate_requests_total{route=\"/x\",code=\"5xx\"} 1",
	    "esgate_request_duration_seconds_count 2",
	    "esgate_connections_open 8",
	    "esgate_auth_denied_total{reason=\"index\"} 2",
	    "esgate_tls_handshakes_total{result=\"full\",version=\"TLSv1.3\"} 1",
	    "esgate_cache_stores_total 42",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		cr_assert(has_line(text, lines[i]), "no line %s in:\n%s", lines[i], text);
	free(text);
	/* a claim below the mark leaves it */
	metrics_shard_claim(m, 1);
	cr_assert_eq(m->shards_used, 3);
	metrics_destroy(m);
}

Test(metrics, a_reused_slot_continues_its_counts_and_zeroes_its_gauges)
{
	struct metrics *m = metrics_create(NSHARDS);
	int r = metrics_route(m, "/");
	unsigned long long last = 0;

	/* three workers in turn on slot 1 (a crash, a replacement, a reload's
	 * new generation), each dying with requests and connections open;
	 * slot 0's worker lives on */
	metrics_request(metrics_shard_claim(m, 0), r, 200, 10);
	for (int gen = 0; gen < 3; gen++) {
		struct metrics_shard *sh = metrics_shard_claim(m, 1);
		pid_t pid = fork();
		int status;
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			for (int k = 0; k < 100; k++)
				metrics_request(sh, r, 200, 10);
			metrics_add(&sh->in_flight, 3);
			metrics_add(&sh->connections, 5);
			_exit(0);
		}
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert_eq(m->shards[1].in_flight, 3, "what the dead worker left");
		metrics_shard_release(m, 1); /* the master's reap */

		char *text = render(m), want[128];
		unsigned long long n;
		const char *p = strstr(text, "esgate_requests_total{route=\"/\",code=\"2xx\"} ");
		cr_assert_not_null(p, "%s", text);
		cr_assert_eq(sscanf(strchr(p, '}') + 2, "%llu", &n), 1);
		cr_assert_eq(n, 1 + 100 * (gen + 1), "worker %d: %llu requests counted", gen, n);
		cr_assert_gt(n, last, "monotonic");
		last = n;
		snprintf(want, sizeof(want), "esgate_request_duration_seconds_count %llu", n);
		cr_assert(has_line(text, want), "no line %s in:\n%s", want, text);
		cr_assert(has_line(text, "esgate_requests_in_flight 0"), "%s", text);
		cr_assert(has_line(text, "esgate_connections_open 0"), "%s", text);
		free(text);
	}
	cr_assert_eq(m->shards_used, 2, "a reused slot takes no new shard");
	metrics_destroy(m);
}

Test(metrics, render_has_help_type_and_values)
{
	struct metrics *m = metrics_create(NSHARDS);
	struct metrics_shard *s = metrics_shard_claim(m, 0);
	int x = metrics_route(m, "/x"), n = metrics_node(m, "http://es1:9200");
	char *text;

	for (int i = 0; i < 3; i++)
		metrics_request(s, x, 200, 2000);
	metrics_request(s, x, 404, 2000);
	metrics_request(s, x, 503, 2000);
	metrics_request(s, x, 101, 2000);
	metrics_upstream(s, n, 0, 3000);
	metrics_upstream(s, n, 1, 2000000);
	metrics_node_state(m, n, 1);
	metrics_inc(&m->restarts[METRICS_RESTART_TIMEOUT]);
	metrics_inc(&m->reloads_ok);
	metrics_inc(&m->reloads_failed);
	metrics_inc(&m->reloads_failed);
	metrics_inc(&s->upstream_retries);
	metrics_add(&s->connections, 5);
	metrics_add(&s->connections, -2);
	m->workers_alive = 3;
	m->generation = 4;
	m->started_unix = 1700000000;
	text = render(m);

	static const char *const types[][2] = {
	    {"esgate_requests_total", "counter"},	   {"esgate_request_duration_seconds", "histogram"},
	    {"esgate_requests_in_flight", "gauge"},	   {"esgate_connections_open", "gauge"},
	    {"esgate_upstream_requests_total", "counter"}, {"esgate_upstream_errors_total", "counter"},
	    {"esgate_upstream_node_up", "gauge"},	   {"esgate_upstream_retries_total", "counter"},
	    {"esgate_workers", "gauge"},		   {"esgate_worker_restarts_total", "counter"},
	    {"esgate_reloads_total", "counter"},	   {"esgate_generation", "gauge"},
	    {"esgate_start_time_seconds", "gauge"},
	};
	char want[256];
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		snprintf(want, sizeof(want), "# TYPE %s %s", types[i][0], types[i][1]);
		cr_assert(has_line(text, want), "no line %s in:\n%s", want, text);
		snprintf(want, sizeof(want), "# HELP %s ", types[i][0]);
		char *help = strstr(text, want), *type;
		snprintf(want, sizeof(want), "# TYPE %s ", types[i][0]);
		type = strstr(text, want);
		cr_assert(help != NULL && (help == text || help[-1] == '\n'), "no HELP for %s", types[i][0]);
		cr_assert(help < type, "HELP of %s not before its TYPE", types[i][0]);
	}
	static const char *const lines[] = {
	    "esgate_requests_total{route=\"/x\",code=\"1xx\"} 1",
	    "esgate_requests_total{route=\"/x\",code=\"2xx\"} 3",
	    "esgate_requests_total{route=\"/x\",code=\"3xx\"} 0",
	    "esgate_requests_total{route=\"/x\",code=\"4xx\"} 1",
	    "esgate_requests_total{route=\"/x\",code=\"5xx\"} 1",
	    "esgate_request_duration_seconds_count 6",
	    "esgate_request_duration_seconds_sum 0.012000",
	    "esgate_upstream_requests_total{node=\"http://es1:9200\"} 2",
	    "esgate_upstream_errors_total{node=\"http://es1:9200\"} 1",
	    "esgate_upstream_node_up{node=\"http://es1:9200\"} 1",
	    "esgate_upstream_retries_total 1",
	    "esgate_connections_open 3",
	    "esgate_requests_in_flight 0",
	    "esgate_workers 3",
	    "esgate_worker_restarts_total{reason=\"crash\"} 0",
	    "esgate_worker_restarts_total{reason=\"timeout\"} 1",
	    "esgate_worker_restarts_total{reason=\"max_requests\"} 0",
	    "esgate_worker_restarts_total{reason=\"reload\"} 0",
	    "esgate_reloads_total{result=\"ok\"} 1",
	    "esgate_reloads_total{result=\"failed\"} 2",
	    "esgate_generation 4",
	    "esgate_start_time_seconds 1700000000",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		cr_assert(has_line(text, lines[i]), "no line %s in:\n%s", lines[i], text);
	/* Every line is a comment or a sample of ours. */
	for (char *p = text; *p != '\0'; p = strchr(p, '\n') + 1)
		cr_assert(strncmp(p, "# HELP esgate_", 14) == 0 || strncmp(p, "# TYPE esgate_", 14) == 0 ||
			      strncmp(p, "esgate_", 7) == 0,
			  "stray line at: %.60s", p);
	free(text);
	metrics_destroy(m);
}

Test(metrics, route_label_is_escaped)
{
	struct metrics *m = metrics_create(NSHARDS);
	struct metrics_shard *s = metrics_shard_claim(m, 0);
	int r = metrics_route(m, "/a\"b\\c\nd");
	char *text;

	cr_assert_geq(r, 0);
	cr_assert_eq(metrics_route(m, "/a\"b\\c\nd"), r);
	metrics_request(s, r, 200, 1);
	metrics_node(m, "http://h\"x:1");
	text = render(m);
	cr_assert(has_line(text, "esgate_requests_total{route=\"/a\\\"b\\\\c\\nd\",code=\"2xx\"} 1"),
		  "escaped route label missing in:\n%s", text);
	cr_assert(has_line(text, "esgate_upstream_requests_total{node=\"http://h\\\"x:1\"} 0"),
		  "escaped node label missing in:\n%s", text);
	/* The raw newline never reaches the output: no line starts with "d\"". */
	cr_assert_null(strstr(text, "\nd\""), "a raw newline in a label:\n%s", text);
	free(text);
	metrics_destroy(m);
}

Test(metrics, histogram_buckets_are_cumulative)
{
	struct metrics *m = metrics_create(NSHARDS);
	struct metrics_shard *s = metrics_shard_claim(m, 0);
	int r = metrics_route(m, "/");
	char *text;

	metrics_request(s, r, 200, 500);	/* le 0.001 */
	metrics_request(s, r, 200, 1000);	/* le 0.001: a bound is inclusive */
	metrics_request(s, r, 200, 3000);	/* le 0.005 */
	metrics_request(s, r, 200, 700000);	/* le 1 */
	metrics_request(s, r, 200, 40000000);	/* past 30 s: +Inf only */
	text = render(m);
	static const char *const lines[] = {
	    "esgate_request_duration_seconds_bucket{le=\"0.001\"} 2",
	    "esgate_request_duration_seconds_bucket{le=\"0.0025\"} 2",
	    "esgate_request_duration_seconds_bucket{le=\"0.005\"} 3",
	    "esgate_request_duration_seconds_bucket{le=\"0.5\"} 3",
	    "esgate_request_duration_seconds_bucket{le=\"1\"} 4",
	    "esgate_request_duration_seconds_bucket{le=\"30\"} 4",
	    "esgate_request_duration_seconds_bucket{le=\"+Inf\"} 5",
	    "esgate_request_duration_seconds_count 5",
	    "esgate_request_duration_seconds_sum 40.704500",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		cr_assert(has_line(text, lines[i]), "no line %s in:\n%s", lines[i], text);

	/* Bucket lines: le increasing, counts non-decreasing, +Inf last. */
	const char *p = text, *prefix = "esgate_request_duration_seconds_bucket{le=\"";
	double prev_le = -1;
	unsigned long long prev = 0;
	int nb = 0, saw_inf = 0;
	while ((p = strstr(p, prefix)) != NULL) {
		char le[32];
		unsigned long long v;
		cr_assert_eq(sscanf(p + strlen(prefix), "%31[^\"]\"} %llu", le, &v), 2, "bad bucket line at %.60s", p);
		cr_assert(!saw_inf, "a bucket after +Inf");
		if (strcmp(le, "+Inf") == 0) {
			saw_inf = 1;
		} else {
			double d = strtod(le, NULL);
			cr_assert_gt(d, prev_le, "le %s not increasing", le);
			prev_le = d;
		}
		cr_assert_geq(v, prev, "bucket le=%s count %llu below the previous %llu", le, v, prev);
		prev = v;
		nb++;
		p++;
	}
	cr_assert(saw_inf);
	cr_assert_eq(nb, METRICS_NBUCKETS + 1);
	free(text);
	metrics_destroy(m);
}

Test(metrics, upstream_duration_is_a_histogram_per_node)
{
	struct metrics *m = metrics_create(NSHARDS);
	struct metrics_shard *s = metrics_shard_claim(m, 0);
	int a = metrics_node(m, "http://es1:9200"), b = metrics_node(m, "http://es2:9200");
	char *text;

	metrics_upstream(s, a, 0, 800);	      /* <= 1 ms */
	metrics_upstream(s, a, 0, 3000);      /* <= 5 ms */
	metrics_upstream(s, a, 1, 40000000);  /* past 30 s: +Inf only */
	metrics_upstream(s, b, 0, 1000);      /* exactly on a bound: in it */
	metrics_upstream(s, 4242, 0, 1000);   /* no such node: nowhere */
	metrics_upstream(s, -1, 0, 1000);
	text = render(m);
	cr_assert(has_line(text, "# TYPE esgate_upstream_duration_seconds histogram"), "%s", text);
	cr_assert(has_line(text, "esgate_upstream_duration_seconds_bucket{node=\"http://es1:9200\",le=\"0.001\"} 1"),
		  "%s", text);
	cr_assert(has_line(text, "esgate_upstream_duration_seconds_bucket{node=\"http://es1:9200\",le=\"0.005\"} 2"),
		  "%s", text);
	cr_assert(has_line(text, "esgate_upstream_duration_seconds_bucket{node=\"http://es1:9200\",le=\"30\"} 2"),
		  "%s", text);
	cr_assert(has_line(text, "esgate_upstream_duration_seconds_bucket{node=\"http://es1:9200\",le=\"+Inf\"} 3"),
		  "%s", text);
	cr_assert(has_line(text, "esgate_upstream_duration_seconds_sum{node=\"http://es1:9200\"} 40.003800"), "%s",
		  text);
	cr_assert(has_line(text, "esgate_upstream_duration_seconds_count{node=\"http://es1:9200\"} 3"), "%s", text);
	cr_assert(has_line(text, "esgate_upstream_duration_seconds_bucket{node=\"http://es2:9200\",le=\"0.001\"} 1"),
		  "%s", text);
	cr_assert(has_line(text, "esgate_upstream_duration_seconds_count{node=\"http://es2:9200\"} 1"), "%s", text);
	/* the requests and errors counters still count the attempts */
	cr_assert(has_line(text, "esgate_upstream_requests_total{node=\"http://es1:9200\"} 3"), "%s", text);
	cr_assert(has_line(text, "esgate_upstream_errors_total{node=\"http://es1:9200\"} 1"), "%s", text);
	free(text);
	metrics_destroy(m);
}

Test(metrics, ratelimit_refusals_by_route_only_where_some)
{
	struct metrics *m = metrics_create(NSHARDS);
	struct metrics_shard *s = metrics_shard_claim(m, 0);
	int a = metrics_route(m, "/search/{index}"), b = metrics_route(m, "/doc/\"q\"");
	char *text;

	metrics_route(m, "/quiet");
	for (int i = 0; i < 5; i++)
		metrics_ratelimited(s, a);
	metrics_ratelimited(s, b);
	metrics_ratelimited(s, -1);
	metrics_ratelimited(s, METRICS_MAX_ROUTES);
	text = render(m);
	cr_assert(has_line(text, "# TYPE esgate_ratelimit_refused_total counter"), "%s", text);
	cr_assert(has_line(text, "esgate_ratelimit_refused_total{route=\"/search/{index}\"} 5"), "%s", text);
	cr_assert(has_line(text, "esgate_ratelimit_refused_total{route=\"/doc/\\\"q\\\"\"} 1"), "%s", text);
	cr_assert_null(strstr(text, "esgate_ratelimit_refused_total{route=\"/quiet\"}"), "%s", text);
	free(text);
	metrics_destroy(m);
}
