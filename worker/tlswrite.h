/*
 * tlswrite.h - one TLS record for a small answer: esgate's definition of
 * libh2o's h2o_socket_write() (worker/tlswrite.c says how and why).
 */
#ifndef ESGATE_TLSWRITE_H
#define ESGATE_TLSWRITE_H

#include <h2o.h>

/* 0 if libh2o's calls reach esgate's h2o_socket_write(); -1 (and a
 * warning) if not: answers are then written as libh2o writes them.  A
 * worker calls it once at start-up, when it serves TLS. */
int tlswrite_check(void);

#endif
