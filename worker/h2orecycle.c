/*
 * h2orecycle.c - libh2o's recycling allocator with a larger cap for
 * request-pool chunks (see h2orecycle.h).
 *
 * Every h2o request has a memory pool; its memory comes in 4 KiB chunks
 * from h2o_mem_alloc_recycle(), and h2o_mem_clear_pool() gives them back
 * with h2o_mem_free_recycle(), which keeps at most 16 of them (libh2o
 * 2.2.5's static mempool_allocator, {16}) and frees the rest.  An HTTP/2
 * load of 16 connections with 10 streams each has 160 requests in
 * flight: most chunks went through malloc and free every request, past
 * glibc's tcache (7 of a size) into _int_malloc and _int_free, about 280
 * instructions a request (bench/PROFILE.md, issue 21).
 *
 * libh2o calls both functions through its PLT (they are exported, and
 * Debian's build lets them be interposed), so the executable's definitions
 * below take every call: the same list in the same fields (max, cnt, and
 * _link threading the kept chunks through their first word), but the
 * allocator of pool chunks -- recognised by the size it asks for, 4096 --
 * keeps up to H2ORECYCLE_POOL_MAX (1 MiB) instead of its max.  Every other
 * allocator (socket buffers) keeps libh2o's own max.  An idle worker gives
 * the extra chunks back (h2orecycle_trim, before malloc_trim).
 *
 * Guarded as the other interpositions: the build refuses any other libh2o
 * version, and each worker checks at start that a pool's chunk comes
 * through here (h2orecycle_check).  doc/DESIGN.md, section 2.
 */
#include "worker/h2orecycle.h"

#include <dlfcn.h>
#include <h2o.h>
#include <stdlib.h>

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/h2orecycle.c replaces libh2o 0.13.5 (h2o 2.2.5)'s h2o_mem_alloc_recycle and h2o_mem_free_recycle; check lib/common/memory.c before changing versions"
#endif

#define H2ORECYCLE_POOL_CHUNK 4096 /* lib/common/memory.c: sizeof(union un_h2o_mem_pool_chunk_t) */
#define H2ORECYCLE_POOL_MAX 256    /* pool chunks kept: 1 MiB */

/* lib/common/memory.c's: a kept chunk's first word links the next. */
struct st_h2o_mem_recycle_chunk_t {
	struct st_h2o_mem_recycle_chunk_t *next;
};

/* The pool chunks' allocator (libh2o's thread-local mempool_allocator),
 * learnt from its first call; NULL until then. */
static h2o_mem_recycle_t *h2orecycle_pool;

void *
h2o_mem_alloc_recycle(h2o_mem_recycle_t *allocator, size_t sz)
{
	struct st_h2o_mem_recycle_chunk_t *chunk;

	if (allocator->cnt == 0) {
		if (sz == H2ORECYCLE_POOL_CHUNK && h2orecycle_pool == NULL)
			h2orecycle_pool = allocator;
		return h2o_mem_alloc(sz);
	}
	chunk = allocator->_link;
	allocator->_link = chunk->next;
	--allocator->cnt;
	return chunk;
}

void
h2o_mem_free_recycle(h2o_mem_recycle_t *allocator, void *p)
{
	struct st_h2o_mem_recycle_chunk_t *chunk = p;
	size_t max = allocator == h2orecycle_pool && allocator->max < H2ORECYCLE_POOL_MAX ? H2ORECYCLE_POOL_MAX
	                                                                                  : allocator->max;

	if (allocator->cnt >= max) {
		free(p);
		return;
	}
	chunk->next = allocator->_link;
	allocator->_link = chunk;
	++allocator->cnt;
}

void
h2orecycle_trim(void)
{
	h2o_mem_recycle_t *a = h2orecycle_pool;

	if (a == NULL)
		return;
	while (a->cnt > a->max) {
		struct st_h2o_mem_recycle_chunk_t *chunk = a->_link;
		a->_link = chunk->next;
		--a->cnt;
		free(chunk);
	}
}

size_t
h2orecycle_kept(void)
{
	return h2orecycle_pool != NULL ? h2orecycle_pool->cnt : 0;
}

int
h2orecycle_check(void)
{
	h2o_mem_pool_t pool;

	/* libh2o's calls go through the dynamic linker: the definitions found
	 * there must be these; and a request pool's first chunk must come
	 * through here, recognised by its size */
	if (dlsym(RTLD_DEFAULT, "h2o_mem_alloc_recycle") != (void *)h2o_mem_alloc_recycle ||
	    dlsym(RTLD_DEFAULT, "h2o_mem_free_recycle") != (void *)h2o_mem_free_recycle)
		return -1;
	h2o_mem_init_pool(&pool);
	(void)h2o_mem_alloc_pool(&pool, 100);
	h2o_mem_clear_pool(&pool);
	return h2orecycle_pool != NULL && h2orecycle_pool->cnt > 0 ? 0 : -1;
}
