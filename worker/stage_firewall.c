/*
 * stage_firewall.c - the search firewall, on routes whose upstream path is
 * a search API (_search, _count, _msearch): the checks themselves are
 * lib/dsl.h's; this stage feeds them the request and puts the checked
 * document in the exchange as the upstream body (see pipeline.h).
 */
#include "worker/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dsl.h"

#define STAGE_FIREWALL_QUERY_MAX 4096 /* the check stage's query is at most this long */

/*
 * A search route's query string and body through the firewall (lib/dsl.h):
 * every parameter value checked, the "source=" form turned into a body,
 * and the body parsed, checked and re-serialised: what goes upstream is
 * the checked document, never the client's bytes.  UQUERY is the route's
 * allowed, canonical query; it is rewritten without source parameters.
 * Returns 0 with *BODY (malloc'ed, or NULL for none), or -1 after
 * answering 400.
 */
static int
stage_firewall_apply(h2o_req_t *req, const struct config_route *r, const struct route_vars *vars, char *uquery,
                     char **body, size_t *body_len)
{
	char reason[DSL_REASON_MAX + 64], kept[STAGE_FIREWALL_QUERY_MAX + 1] = "", *piece, *save = NULL;
	char name[256], value[STAGE_FIREWALL_QUERY_MAX + 1];
	char *src = NULL;
	size_t src_len = 0;
	int have_src = 0;
	const char *in;
	size_t in_len;

	*body = NULL;
	if ((vars->set & ROUTE_VAR_INDEX) && dsl_check_index_expr(&r->policy, vars->index, reason, sizeof(reason)) != 0)
		goto refuse;
	for (piece = strtok_r(uquery, "&", &save); piece != NULL; piece = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(piece, '=');
		size_t nlen = eq != NULL ? (size_t)(eq - piece) : strlen(piece);
		ssize_t vlen = 0;
		if (route_decode(piece, nlen, name, sizeof(name)) < 0 ||
		    (eq != NULL && (vlen = route_decode(eq + 1, strlen(eq + 1), value, sizeof(value))) < 0)) {
			snprintf(reason, sizeof(reason), "malformed query string");
			goto refuse;
		}
		if (eq == NULL)
			value[0] = '\0';
		if (strcmp(name, "source") == 0) {
			free(src);
			if ((src = malloc((size_t)vlen + 1)) == NULL)
				goto refuse_mem;
			memcpy(src, value, (size_t)vlen + 1);
			src_len = (size_t)vlen;
			have_src = 1;
			continue;
		}
		if (dsl_check_param(&r->policy, name, value, reason, sizeof(reason)) != 0)
			goto refuse;
		if (strcmp(name, "source_content_type") == 0)
			continue; /* the checked body goes as application/json */
		if (kept[0] != '\0')
			strcat(kept, "&");
		strcat(kept, piece);
	}
	strcpy(uquery, kept);
	/* A source= that is there but empty (or a bare ?source) is a body
	 * source that says nothing: refused, never replaced by the client's
	 * own body (which once went upstream unchecked this way). */
	if (have_src && dsl_blank(src, src_len)) {
		snprintf(reason, sizeof(reason), "source must be a JSON document, not empty");
		goto refuse;
	}
	in = src != NULL ? src : req->entity.base;
	in_len = src != NULL ? src_len : (req->entity.base != NULL ? req->entity.len : 0);
	if (in == NULL || in_len == 0) {
		free(src);
		if (r->search != DSL_BODY_MSEARCH)
			return 0;
		snprintf(reason, sizeof(reason), "an _msearch request needs a body");
		exchange_send_error(req, 400, "query_not_allowed", reason);
		return -1;
	}
	if (dsl_check_body(&r->policy, in, in_len, r->search, (vars->set & ROUTE_VAR_INDEX) ? vars->index : NULL, body,
	                   body_len, reason, sizeof(reason)) != 0)
		goto refuse;
	free(src);
	return 0;
refuse_mem:
	snprintf(reason, sizeof(reason), "out of memory");
refuse:
	free(src);
	exchange_send_error(req, 400, "query_not_allowed", reason);
	return -1;
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
	char *checked = NULL, **owner;
	size_t checked_len = 0;

	if (stage_firewall_apply(ex->req, ex->row->route, ex->vars != NULL ? ex->vars : &stage_firewall_novars,
	                         ex->up_query, &checked, &checked_len) != 0)
		return PIPELINE_ANSWERED;
	if (checked != NULL) {
		/* the request's pool owns the document from here */
		owner = h2o_mem_alloc_shared(&ex->req->pool, sizeof(*owner), stage_firewall_free);
		*owner = checked;
		ex->up_body = checked;
		ex->up_body_len = checked_len;
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
