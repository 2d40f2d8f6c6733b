/* t_nocreate: _create returns NULL, so LAUNCH must fail silently and init must never run. */
#include "ctest.h"

void *
t_nocreate_create(void) {
	return NULL;
}

int
t_nocreate_init(void *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	CT_UNUSED(parm);
	skynet_error(ctx, "NOCREATE init called");
	return 0;
}
