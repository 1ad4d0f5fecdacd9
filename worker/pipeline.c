/*
 * pipeline.c - builds each route's pipeline from the list, and runs a
 * request through it (see pipeline.h for the list and the contract).
 */
#include "worker/pipeline.h"

#include "lib/log.h"

#define PIPELINE_ROW(name) &stage_##name,
static const struct pipeline_stage *const pipeline_list[] = {PIPELINE_STAGES(PIPELINE_ROW)};
#undef PIPELINE_ROW

#define PIPELINE_NLIST (sizeof(pipeline_list) / sizeof(pipeline_list[0]))

_Static_assert(PIPELINE_NLIST <= PIPELINE_MAX, "PIPELINE_MAX is smaller than the list of stages");

void
pipeline_build(const struct router_row *row, struct pipeline *out)
{
	out->n = 0;
	for (size_t i = 0; i < PIPELINE_NLIST; i++)
		if (pipeline_list[i]->applies == NULL || pipeline_list[i]->applies(row))
			out->stages[out->n++] = pipeline_list[i];
}

void
pipeline_entry(struct pipeline *out)
{
	out->stages[0] = &stage_route;
	out->n = 1;
}

void
pipeline_run(struct exchange *ex)
{
	while (ex->next < ex->pipeline->n) {
		const struct pipeline_stage *s = ex->pipeline->stages[ex->next++];

		if (s->run(ex) != PIPELINE_NEXT)
			return;
	}
	/* Every route's last stage answers: this is a bug in the list. */
	log_errorx("a request went through its %u stages without an answer", ex->pipeline->n);
	exchange_send_error(ex->req, 500, "internal_error", "no stage answered");
}

void
pipeline_resume(struct exchange *ex)
{
	pipeline_run(ex);
}
