/*
 * h2drain.h - the start of a worker's drain for its HTTP/2 connections:
 * which of them get libh2o 2.2.5's first GOAWAY at once, and which wait
 * for the second.  See h2drain.c for why.
 */
#ifndef ESGATE_H2DRAIN_H
#define ESGATE_H2DRAIN_H

#include <h2o.h>

/* h2o_context_request_shutdown(CTX), except that an HTTP/2 connection
 * that has not yet opened a stream gets no GOAWAY now: it gets h2o's
 * second one, a second later, with the streams it opened meanwhile
 * answered.  Returns how many connections were held back. */
size_t h2drain_request_shutdown(h2o_context_t *ctx);

#endif
