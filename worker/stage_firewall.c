/*
 * stage_firewall.c - the search firewall, on routes whose upstream path is
 * a search API (_search, _count, _msearch): the checks themselves are
 * lib/dsl.h's; this stage feeds them the request and puts the checked
 * document in the exchange as the upstream body (see pipeline.h).  A
 * request that runs several searches (an _msearch) takes a rate-limit token
 * for each past the first here, where their number is known.
 */
#include "worker/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dsl.h"
#include "worker/stage_ratelimit.h"

#define STAGE_FIREWALL_QUERY_MAX 4096 /* the check stage's query is at most this long */

/*
 * A search route's query string and body through the firewall
 * (dsl_check_request(), lib/dsl.h): what goes upstream is the checked
 * document, never the client's bytes.  UQUERY is the route's allowed,
 * canonical query; it is rewritten without source parameters (the body
 * they carried is *RES's now).  Returns 0 with *RES (its body malloc'ed,
 * or NULL for none; its searches what the request costs), or -1 after
 * answering 400 or 413.
 */
static int
stage_firewall_apply(h2o_req_t *req, const struct config_route *r, const struct route_vars *vars, char *uquery,
                     struct dsl_result *res)
{
	char reason[DSL_REASON_MAX + 64], kept[STAGE_FIREWALL_QUERY_MAX + 1] = "", *piece, *save = NULL, *name, *value;
	size_t nparams = 0, max = 1, len;
	struct dsl_param *params;
	ssize_t vlen;
	int rc;

	for (const char *c = uquery; *c != '\0'; c++)
		max += *c == '&';
	params = h2o_mem_alloc_pool(&req->pool, max * sizeof(*params));
	for (piece = strtok_r(uquery, "&", &save); piece != NULL; piece = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(piece, '=');
		size_t nlen = eq != NULL ? (size_t)(eq - piece) : strlen(piece);

		len = strlen(piece) + 1;
		name = h2o_mem_alloc_pool(&req->pool, len);
		value = h2o_mem_alloc_pool(&req->pool, len);
		vlen = 0;
		value[0] = '\0';
		if (route_decode(piece, nlen, name, len) < 0 ||
		    (eq != NULL && (vlen = route_decode(eq + 1, strlen(eq + 1), value, len)) < 0)) {
			exchange_send_error(req, 400, "query_not_allowed", "malformed query string");
			return -1;
		}
		params[nparams++] = (struct dsl_param){.name = name, .value = value, .len = (size_t)vlen};
		if (strcmp(name, "source") == 0 || strcmp(name, "source_content_type") == 0)
			continue; /* the checked body goes as application/json */
		if (kept[0] != '\0')
			strcat(kept, "&");
		strcat(kept, piece);
	}
	strcpy(uquery, kept);
	rc = dsl_check_request(&r->policy, r->search, (vars->set & ROUTE_VAR_INDEX) ? vars->index : NULL, params, nparams,
	                       req->entity.base, req->entity.base != NULL ? req->entity.len : 0, NULL, res, reason,
	                       sizeof(reason));
	if (rc != DSL_OK) {
		if (rc == DSL_TOO_LARGE)
			exchange_send_error(req, 413, "request_too_large", reason);
		else
			exchange_send_error(req, 400, "query_not_allowed", reason);
		return -1;
	}
	return 0;
}

static void
stage_firewall_free(void *arg)
{
	free(*(char **)arg);
}

static const struct route_vars stage_firewall_novars; /* set: 0 */

static enum pipeline_result
stage_firewall_run(struct exchange *ex)
{
	struct dsl_result res;
	char **owner;

	if (stage_firewall_apply(ex->req, ex->row->route, ex->vars != NULL ? ex->vars : &stage_firewall_novars,
	                         ex->up_query, &res) != 0)
		return PIPELINE_ANSWERED;
	/* each search past the first costs a token of its own */
	if (res.searches > 1 && !stage_ratelimit_take(ex, res.searches - 1, res.searches)) {
		free(res.body);
		return PIPELINE_ANSWERED;
	}
	if (res.body != NULL) {
		/* the request's pool owns the document from here */
		owner = h2o_mem_alloc_shared(&ex->req->pool, sizeof(*owner), stage_firewall_free);
		*owner = res.body;
		ex->up_body = res.body;
		ex->up_body_len = res.len;
		/* the checked body goes as a POST (curl sends no GET body); a
		 * client's HEAD on a GET route stays a HEAD, without it */
		if (!(ex->method == CONFIG_METHOD_HEAD && ex->row->upstream_method == CONFIG_METHOD_GET))
			ex->up_method = "POST";
	}
	return PIPELINE_NEXT;
}

static int
stage_firewall_applies(const struct router_row *row)
{
	return row->route != NULL && row->route->search >= 0;
}

const struct pipeline_stage stage_firewall = {"firewall", stage_firewall_run, stage_firewall_applies};
