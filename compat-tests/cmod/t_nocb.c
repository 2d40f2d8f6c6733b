/* t_nocb: never sets a callback; the core must free its messages silently (no reply). */
#include "ctest.h"

int
t_nocb_init(void *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	CT_UNUSED(parm);
	skynet_error(ctx, "NOCB init");
	return 0;
}
