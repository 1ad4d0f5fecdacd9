/*
 * pipeline.h - the request pipeline: the ordered list of stages every
 * request passes, and the contract of a stage.
 *
 * Modelled on h2o's handler chain, nginx's phases and Envoy's filter chain:
 * a request is routed first, and its route's pipeline (built once, when the
 * worker loads its configuration, from the stages that apply to that
 * route) then runs stage after stage until one answers.
 *
 * THE STAGES, in order (each is worker/stage_NAME.c):
 *
 *   route      match the path against the host's route table: the worker's
 *              own endpoints (/healthz, /metrics, /_esgate/status, GET /)
 *              and the configured routes, in that order (worker/router.h).
 *              400 invalid_request, 404 not_found, 405 method_not_allowed
 *              with Allow.  Every row's pipeline starts here.
 *   cors       a route with "cors:": an OPTIONS preflight is answered here
 *              (204, or 403 cors_origin_not_allowed), never rate-limited or
 *              forwarded; an allowed Origin gets Access-Control-Allow-Origin
 *              and Vary on whatever the later stages answer, errors and 429
 *              included.
 *   ratelimit  "rate_limit:": one token per request from the client's
 *              bucket, or 429 too_many_requests with Retry-After.  Before
 *              the checks, as nginx's limit_req runs before access and
 *              content: a flood costs no parsing.
 *   auth       a route with "auth:": who the client is (an API key, a JWT,
 *              a client certificate, anonymous) and whether a grant lets
 *              it use this route and index (lib/auth.h).  401 with
 *              WWW-Authenticate, 403 forbidden, 429 after too many failed
 *              authentications from the address or past the principal's
 *              own rate limit.  After the rate limit (an unauthenticated
 *              flood is still limited, and costs no credential check),
 *              before anything that reads the request's parameters or body.
 *   check      a configured route's allow-lists: the index (403
 *              index_not_allowed), the upstream path (414), the query
 *              parameters (400 illegal_argument), the body size (413) and,
 *              off search routes, that the body is JSON (400 parse_error).
 *              Builds the upstream path and query.
 *   firewall   a search route (_search, _count, _msearch): parameters and
 *              body through lib/dsl.h; the checked document becomes the
 *              upstream body (400 query_not_allowed).
 *   filter     a route with "auth:" whose principal's grant has document or
 *              field rules (lib/dls.h, lib/fls.h): the filter AND-ed into
 *              every search, count and _msearch sub-search, the field rules
 *              checked and _source rewritten, a get-by-id run as a filtered
 *              search (404 outside the filter); 403 forbidden for what
 *              would read outside them.  After the firewall (it works on
 *              the checked document), before the cache.
 *   cache      a route with cache_ttl or coalesce: a GET answered from the
 *              micro-cache, joined to an upstream request in flight, or
 *              starting one (worker/cache.h); anything else is marked
 *              BYPASS and handed on.
 *   proxy      a route to the upstream: the request goes, its answer is
 *              streamed back (worker/proxy.h), 502/504 if none comes.
 *   builtin    the worker's own answers: /healthz, /metrics,
 *              /_esgate/status.
 *
 * So everything that guards the cluster and the client (route, limits,
 * checks, firewall) runs before the cache, and a cache TTL on GET / and on
 * a configured route are the same code.  Before the first stage, http.c
 * opens the exchange (counters, request id) and refuses ambiguous HTTP/1.1
 * framing; after the last, the exchange's dispose writes the metrics and
 * the access log line.
 *
 * THE CONTRACT OF A STAGE.  One function, `enum pipeline_result run(struct
 * exchange *ex)`, called with the exchange of a routed request (EX->row is
 * set, except in the route stage), from h2o's request handler or from the
 * loop when a stage resumes.  It does exactly one of:
 *   - returns PIPELINE_NEXT: hand on; it may have added response headers or
 *     filled fields of EX for later stages (the upstream path, the body);
 *   - answers (an h2o_send_inline, an error, or handing REQ to something
 *     that will answer, such as an upstream request) and returns
 *     PIPELINE_ANSWERED: no later stage runs;
 *   - returns PIPELINE_SUSPENDED after arranging to be called back (a
 *     timer, an upstream request of its own); it then calls
 *     pipeline_resume(EX) to go on with the next stage, or answers.  A
 *     suspended stage must hook EX's request pool (h2o_mem_alloc_shared)
 *     to cancel what it waits for if the client leaves: the pool going is
 *     the only sign of that.
 * A stage keeps nothing per request outside EX and its request's pool.
 * Its `applies` says, once per route when the pipelines are built, whether
 * the route needs it at all: a route without CORS never calls the CORS
 * stage.  The last stage of every pipeline answers (proxy or builtin).
 *
 * ADDING A STAGE is one new file, worker/stage_NAME.c, defining
 * `const struct pipeline_stage stage_NAME = {"NAME", run, applies};`, one
 * row in PIPELINE_STAGES below, and its configuration keys (lib/config.c's
 * directive table, a field of struct config_route).  Nothing else changes.
 */
#ifndef ESGATE_PIPELINE_H
#define ESGATE_PIPELINE_H

#include "worker/exchange.h"

enum pipeline_result {
	PIPELINE_NEXT,      /* hand on to the next stage */
	PIPELINE_ANSWERED,  /* answered, or given to something that will answer: stop here */
	PIPELINE_SUSPENDED, /* waiting: the stage calls pipeline_resume() (or answers) later */
};

typedef enum pipeline_result pipeline_run_fn(struct exchange *ex);

struct pipeline_stage {
	const char *name;
	pipeline_run_fn *run;
	/* 1 if ROW needs this stage; NULL: every row does. */
	int (*applies)(const struct router_row *row);
};

/* The list.  X(NAME) declares stage_NAME, defined in worker/stage_NAME.c. */
#define PIPELINE_STAGES(X)                                                                                             \
	X(route)                                                                                                       \
	X(cors)                                                                                                        \
	X(ratelimit)                                                                                                   \
	X(auth)                                                                                                        \
	X(check)                                                                                                       \
	X(firewall)                                                                                                    \
	X(filter)                                                                                                      \
	X(cache)                                                                                                       \
	X(proxy)                                                                                                       \
	X(builtin)

#define PIPELINE_DECLARE(name) extern const struct pipeline_stage stage_##name;
PIPELINE_STAGES(PIPELINE_DECLARE)
#undef PIPELINE_DECLARE

#define PIPELINE_MAX 16

/* The stages one route's requests pass, in order. */
struct pipeline {
	const struct pipeline_stage *stages[PIPELINE_MAX];
	unsigned n;
};

/* ROW's pipeline: every stage of the list that applies to it, in order. */
void pipeline_build(const struct router_row *row, struct pipeline *out);
/* The pipeline of a request not routed yet: the route stage alone. */
void pipeline_entry(struct pipeline *out);

/* Runs EX's pipeline (EX->pipeline, from EX->next) until a stage answers
 * or suspends. */
void pipeline_run(struct exchange *ex);
/* Goes on after a suspended stage, with the next one. */
void pipeline_resume(struct exchange *ex);

#endif
