/*
 * h2odate.c - libh2o's Date string, not linked into every request's pool
 * (see h2odate.h).
 *
 * libh2o 2.2.5 keeps the current time as text (`Date:` and its access
 * log's format) in a shared string of the context, made anew once a
 * second (lib/core/context.c, h2o_context_update_timestamp_cache).  Each
 * h2o_get_timestamp(ctx, pool, ...) with a pool links that string into the
 * pool (h2o_mem_link_shared: a reference, a pool allocation, and its
 * release when the pool is cleared) so that it outlives the pool.  A
 * request does that twice over HTTP/1 (request.c's setup_before_processing
 * for req->processed_at, http1.c's flatten_headers for the answer's Date)
 * and once more over HTTP/2 (stream.c's send_headers): about 120
 * user-space instructions a request (bench/PROFILE.md, issue 21).
 *
 * What reads those strings later: only h2o's own access log
 * (lib/core/logconf.c reads req->processed_at.str), which esgate never
 * sets up (worker/access.c writes esgate's log; the one logger on
 * esgate's paths is worker/http.c's http_on_dispose, which reads no
 * time).  flatten_headers and send_headers read the string they just took
 * before they return.  So the link buys nothing here, and this file
 * defines h2o_mem_link_shared(): libh2o calls it through its PLT
 * (Debian's build lets it be interposed, as worker/h2orecycle.c's
 * allocator), so the executable's definition takes every call; a link of
 * the context's current Date string is skipped, every other goes on to
 * libh2o's own definition found with dlsym(RTLD_NEXT).  Without the link,
 * a request's processed_at.str may point to a string freed a second later:
 * nothing reads it (see above); a configuration that made h2o log access
 * itself would need the link back.
 *
 * Guarded as the other interpositions: the build refuses any other libh2o
 * version, and each worker checks at start (h2odate_attach) that the
 * dynamic linker's h2o_mem_link_shared is this one, that libh2o's exists,
 * that the Date string is not linked and that anything else still is.
 * doc/DESIGN.md, section 2.
 */
#include "worker/h2odate.h"

#include <dlfcn.h>
#include <stdlib.h>

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/h2odate.c knows who reads libh2o 0.13.5 (h2o 2.2.5)'s timestamp strings; check every h2o_get_timestamp with a pool and every reader of req->processed_at.str before changing versions"
#endif

typedef void (*link_fn)(h2o_mem_pool_t *, void *);

static struct {
	h2o_context_t *ctx; /* the worker's one context: its current Date string is skipped */
	link_fn real;
} h2odate;

static link_fn
h2odate_real(void)
{
	if (h2odate.real == NULL)
		h2odate.real = (link_fn)dlsym(RTLD_NEXT, "h2o_mem_link_shared");
	return h2odate.real;
}

void
h2o_mem_link_shared(h2o_mem_pool_t *pool, void *p)
{
	link_fn real;

	if (h2odate.ctx != NULL && p == h2odate.ctx->_timestamp_cache.value)
		return;
	if ((real = h2odate_real()) != NULL)
		real(pool, p);
	else
		abort(); /* not reached: h2odate_attach found it before any request */
}

static int h2odate_disposed;

static void
h2odate_on_dispose(void *p)
{
	(void)p;
	h2odate_disposed++;
}

int
h2odate_attach(h2o_context_t *ctx)
{
	link_fn found = (link_fn)dlsym(RTLD_DEFAULT, "h2o_mem_link_shared");
	h2o_mem_pool_t pool;
	h2o_timestamp_t ts;
	void *other;
	int skipped, linked;

	if (found != h2o_mem_link_shared || h2odate_real() == NULL)
		return -1;
	h2odate.ctx = ctx;
	h2o_mem_init_pool(&pool);
	h2o_get_timestamp(ctx, &pool, &ts);
	skipped = pool.shared_refs == NULL && ts.str == ctx->_timestamp_cache.value;
	other = h2o_mem_alloc_shared(NULL, 1, h2odate_on_dispose);
	h2o_mem_link_shared(&pool, other);
	h2o_mem_release_shared(other); /* the pool's reference is the last */
	linked = pool.shared_refs != NULL && h2odate_disposed == 0;
	h2o_mem_clear_pool(&pool);
	if (!skipped || !linked || h2odate_disposed != 1) {
		h2odate.ctx = NULL;
		return -1;
	}
	return 0;
}
