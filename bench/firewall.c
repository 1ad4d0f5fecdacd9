/*
 * firewall.c - how long the search firewall (lib/dsl.c) holds a worker's
 * loop for one request: dsl_check_request() on the most expensive bodies
 * we know of, each made as large as max_bytes allows (the default, 32
 * KiB), and, for comparison, at 1 MB with max_bytes raised to match.
 * `make bench-firewall` runs it; RELIABILITY.md has the figures.
 *
 * Each body runs ROUNDS times; the CPU time the check used (the worst of
 * the rounds: the work itself) and the wall-clock time (best, median and
 * worst: the work, plus what the machine's other load took from it) are
 * printed, with whether it was accepted.  The worst CPU time of all is the
 * figure that matters: how long one request can keep every other
 * connection of its worker waiting on an otherwise idle CPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/dsl.h"

#define ROUNDS 25

struct body {
	const char *name;
	const char *head, *item, *sep, *tail;
	int mode;
	int fields; /* with source_fields (20 entries) */
};

/* HEAD, then ITEM SEP ITEM SEP ... ITEM, then TAIL, as big as fits LIMIT. */
static char *
make(const struct body *b, size_t limit, size_t *len)
{
	size_t hl = strlen(b->head), il = strlen(b->item), sl = strlen(b->sep), tl = strlen(b->tail), n = hl;
	char *s = malloc(limit + 1);

	if (s == NULL)
		abort();
	memcpy(s, b->head, hl);
	for (int first = 1; n + il + sl + tl <= limit; first = 0) {
		if (!first) {
			memcpy(s + n, b->sep, sl);
			n += sl;
		}
		memcpy(s + n, b->item, il);
		n += il;
	}
	memcpy(s + n, b->tail, tl);
	n += tl;
	s[n] = '\0';
	*len = n;
	return s;
}

static double
now_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(void)
{
	static const struct body bodies[] = {
	    {"terms: 1-byte values", "{\"query\":{\"terms\":{\"f\":[", "1", ",", "]}}}", DSL_BODY_SEARCH, 0},
	    {"ids: short strings", "{\"query\":{\"ids\":{\"values\":[", "\"a\"", ",", "]}}}", DSL_BODY_SEARCH, 0},
	    {"bool: many match_all", "{\"query\":{\"bool\":{\"should\":[", "{\"match_all\":{}}", ",", "]}}}",
	     DSL_BODY_SEARCH, 0},
	    {"bool: many terms queries", "{\"query\":{\"bool\":{\"filter\":[", "{\"term\":{\"f\":1}}", ",", "]}}}",
	     DSL_BODY_SEARCH, 0},
	    {"array of {} (refused)", "[", "{}", ",", "]", DSL_BODY_SEARCH, 0},
	    {"array of [] (refused)", "[", "[]", ",", "]", DSL_BODY_SEARCH, 0},
	    {"object, many keys (refused)", "{\"q\":{", "\"k\":1", ",", "}}", DSL_BODY_SEARCH, 0},
	    {"long string", "{\"query\":{\"match\":{\"f\":\"", "x", "", "\"}}}", DSL_BODY_SEARCH, 0},
	    {"escaped string", "{\"query\":{\"match\":{\"f\":\"", "\\u00e9", "", "\"}}}", DSL_BODY_SEARCH, 0},
	    {"sort: many fields, field rules", "{\"sort\":[", "\"f19\"", ",", "]}", DSL_BODY_SEARCH, 1},
	    {"sort: hidden field last, field rules", "{\"sort\":[", "\"f19\"", ",", ",\"secret\"]}", DSL_BODY_SEARCH,
	     1},
	    {"multi_match: many fields, field rules", "{\"query\":{\"multi_match\":{\"query\":\"x\",\"fields\":[",
	     "\"f19^2\"", ",", "]}}}", DSL_BODY_SEARCH, 1},
	    {"nested bools (past max_depth)", "{\"query\":", "{\"bool\":{\"must\":[{\"bool\":{\"must\":[", "", "]}}]}}}",
	     DSL_BODY_SEARCH, 0},
	    {"_msearch: 10 big lines", "",
	     "{}\n{\"query\":{\"terms\":{\"f\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}}}\n", "", "",
	     DSL_BODY_MSEARCH, 0},
	    {"_msearch: many tiny lines (refused)", "", "{}\n{}\n", "", "", DSL_BODY_MSEARCH, 0},
	};
	static const char *fields[20] = {"f0",  "f1",  "f2",  "f3",  "f4",  "f5",  "f6",  "f7",     "f8",  "f9",
	                                 "f10", "f11", "f12", "f13", "f14", "f15", "f16", "meta.*", "f18", "f19"};
	static const size_t limits[] = {DSL_MAX_BYTES_DEFAULT, 1024 * 1024};
	static char *queries[] = {"terms", "ids", "bool", "match_all", "term", "match", "multi_match"};
	double worst_all[2] = {0, 0}, cpu_all[2] = {0, 0};
	struct dsl_policy p;

	dsl_policy_defaults(&p);
	p.queries = queries;
	p.nqueries = sizeof(queries) / sizeof(queries[0]);
	printf("%-38s %8s %7s | %7s %7s %7s  %s\n", "body", "bytes", "cpu ms", "best", "median", "worst", "result");
	for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
		p.max_bytes = limits[l];
		printf("-- max_bytes %zu\n", limits[l]);
		for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
			const struct body *b = &bodies[i];
			double t[ROUNDS], t0, c0, cpu = 0;
			char reason[DSL_REASON_MAX], *s;
			struct dsl_result res;
			size_t len, limit = limits[l];
			int rc = 0;

			/* the deep one: as deep as max_depth allows, not as long */
			if (strncmp(b->name, "nested", 6) == 0)
				limit = strlen(b->head) + strlen(b->tail) + 29 * strlen(b->item);
			s = make(b, limit, &len);
			p.source_fields = b->fields ? (char **)(uintptr_t)fields : NULL;
			p.nsource_fields = b->fields ? 20 : 0;
			for (int r = 0; r < ROUNDS; r++) {
				c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
				t0 = now_ms(CLOCK_MONOTONIC);
				rc = dsl_check_request(&p, b->mode, "books", NULL, 0, s, len, NULL, &res, reason,
				                       sizeof(reason));
				t[r] = now_ms(CLOCK_MONOTONIC) - t0;
				c0 = now_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
				cpu = c0 > cpu ? c0 : cpu;
				if (rc == DSL_OK)
					free(res.body);
			}
			qsort(t, ROUNDS, sizeof(t[0]), cmp);
			if (t[ROUNDS - 1] > worst_all[l])
				worst_all[l] = t[ROUNDS - 1];
			if (cpu > cpu_all[l])
				cpu_all[l] = cpu;
			printf("%-38s %8zu %7.3f | %7.3f %7.3f %7.3f  %s%.44s\n", b->name, len, cpu, t[0],
			       t[ROUNDS / 2], t[ROUNDS - 1],
			       rc == DSL_OK ? "accepted" : "refused: ", rc == DSL_OK ? "" : reason);
			free(s);
		}
	}
	p.queries = NULL;
	p.nqueries = 0;
	p.source_fields = NULL;
	p.nsource_fields = 0;
	dsl_policy_clear(&p);
	printf("longest CPU time of one check: %.3f ms at max_bytes %d, %.3f ms at 1 MB\n", cpu_all[0],
	       DSL_MAX_BYTES_DEFAULT, cpu_all[1]);
	printf("longest wall-clock time of one check: %.3f ms at max_bytes %d, %.3f ms at 1 MB\n", worst_all[0],
	       DSL_MAX_BYTES_DEFAULT, worst_all[1]);
	return 0;
}
