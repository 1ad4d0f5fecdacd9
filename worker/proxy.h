/*
 * proxy.h - one client request relayed to Elasticsearch and its answer
 * streamed back, with back-pressure both ways: upstream bytes are handed
 * to h2o as they come, and the transfer pauses while the client has not
 * taken what was handed over.
 */
#ifndef ESGATE_PROXY_H
#define ESGATE_PROXY_H

#include <h2o.h>

#include "worker/exchange.h"
#include "worker/upstream.h"

/* Relays REQ as RQ through U; the answer (or a JSON 502/504) goes to REQ.
 * With SANITIZE_ERRORS, an upstream 4xx/5xx error document is cut down to
 * its type and reason (no root causes, stack traces or node names). */
void proxy_start(struct upstream *u, h2o_req_t *req, const struct upstream_request *rq, struct exchange *ex,
		 int sanitize_errors);
/* Sends an upstream error document (status >= 400) the way a route with
 * "errors: {detail: false}" does: a JSON object without "error" as it
 * came, an Elasticsearch error cut down to type and reason, anything else
 * (or a document that is not COMPLETE) replaced.  BODY is copied. */
void proxy_send_document(h2o_req_t *req, int status, const char *type, const char *product, const char *encoding,
			 const char *body, size_t len, int complete);

#endif
