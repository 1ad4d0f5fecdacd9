/*
 * h2odate.h - libh2o 2.2.5's Date string, no longer linked into each
 * request's pool: esgate interposes h2o_mem_link_shared and skips the link
 * of the context's current timestamp string, which nothing reads after the
 * call that took it (worker/h2odate.c, doc/DESIGN.md section 2).
 */
#ifndef ESGATE_H2ODATE_H
#define ESGATE_H2ODATE_H

#include <h2o.h>

/* After h2o_context_init(CTX), the worker's one context: 0 if libh2o's
 * h2o_mem_link_shared calls reach this file's, libh2o's own is there for
 * every other link, CTX's Date string is no longer linked into a pool and
 * anything else still is; -1 otherwise (then nothing is skipped). */
int h2odate_attach(h2o_context_t *ctx);

#endif
