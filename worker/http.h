/*
 * http.h - the worker's HTTP face: h2o configuration, the router and the
 * JSON error answers.
 */
#ifndef ESGATE_HTTP_H
#define ESGATE_HTTP_H

#include <h2o.h>

struct worker;

/* Fills W's h2o global configuration (limits, timeouts, the one handler
 * that routes every path).  Called once, after fork. */
void http_configure(struct worker *w);
/* Answers REQ with STATUS and {"error":{"type":TYPE,"reason":REASON},"status":STATUS}. */
void http_send_error(h2o_req_t *req, int status, const char *type, const char *reason);
/* The reason phrase of an HTTP status ("OK", "Bad Gateway", ...). */
const char *http_reason(int status);

#endif
