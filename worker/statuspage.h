/*
 * statuspage.h - GET /_esgate/: the status page (worker/statuspage.html),
 * served wherever /_esgate/status is.
 */
#ifndef ESGATE_STATUSPAGE_H
#define ESGATE_STATUSPAGE_H

#include <stddef.h>

#include <h2o.h>


/* The page's bytes, from statuspage.html (made by the Makefile). */
extern const unsigned char statuspage_html[];
extern const size_t statuspage_html_len;

/* Answers REQ (GET or HEAD) with the page and its Content-Security-Policy. */
void statuspage_serve(h2o_req_t *req);

/* The Content-Security-Policy the page is served with: the inline style
 * and script allowed by their SHA-256, nothing else but fetches to this
 * server.  NULL if the page does not have exactly one bare <style> and
 * one bare <script> element. */
const char *statuspage_csp(void);

#endif
