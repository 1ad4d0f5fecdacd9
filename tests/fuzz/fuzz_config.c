/*
 * fuzz_config.c - libFuzzer target for config_parse (lib/config.c): the
 * input is a whole configuration file.  A config must either come back
 * with no error, or be refused with at least one "f.yaml..." message.
 * (A "user:" key makes it call getpwnam, which reads /etc/passwd only.)
 */
#include "lib/config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = {0};
	struct config *cfg = config_parse("f.yaml", (const char *)data, size, &errs);

	if ((cfg == NULL) == (errs.n == 0))
		abort();
	for (size_t i = 0; i < errs.n; i++)
		if (strncmp(errs.msgs[i], "f.yaml", 6) != 0)
			abort();
	config_free(cfg);
	config_errors_free(&errs);
	return 0;
}
