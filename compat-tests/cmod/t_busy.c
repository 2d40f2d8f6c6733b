/* t_busy (bootstrap, run with cpu_limit = 1): one callback that sleeps for 2.5 s. A C service
 * cannot be interrupted, so the monitor reports it (once) and the callback finishes.
 */
#include "ctest.h"

#include <unistd.h>

static int
busy_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	CT_UNUSED(ud);
	CT_UNUSED(type);
	CT_UNUSED(session);
	CT_UNUSED(source);
	CT_UNUSED(msg);
	CT_UNUSED(sz);
	for (int i = 0; i < 250; i++) /* 2.5 s */
		usleep(10000);
	ct_finish(ctx);
	return 0;
}

int
t_busy_init(void *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	CT_UNUSED(parm);
	skynet_callback(ctx, NULL, busy_cb);
	ct_timeout(ctx, "0");
	return 0;
}
