/*
 * h2orecycle.h - libh2o 2.2.5's recycling allocator (h2o_mem_alloc_recycle,
 * h2o_mem_free_recycle), esgate's instead (it interposes them), so that a
 * worker with many requests in flight keeps enough of the request pools'
 * 4 KiB chunks: see worker/h2orecycle.c and doc/DESIGN.md, section 2.
 */
#ifndef ESGATE_H2ORECYCLE_H
#define ESGATE_H2ORECYCLE_H

#include <stddef.h>

/* At start-up: 0 if libh2o's calls reach this file's allocator (a request
 * pool's chunk is taken through it, and recognised as one). */
int h2orecycle_check(void);
/* The worker is idle: the pool chunks kept beyond libh2o's own count go
 * back to malloc (before malloc_trim). */
void h2orecycle_trim(void);
/* Pool chunks kept for reuse now. */
size_t h2orecycle_kept(void);

#endif
