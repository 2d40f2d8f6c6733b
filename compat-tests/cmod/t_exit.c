/* t_exit (bootstrap): the node terminates by itself (exit status 0) once its last service
 * is gone: this service prints DONE, waits 10 cs, kills the logger and EXITs itself.
 */
#include "ctest.h"

static int
exit_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	CT_UNUSED(ud);
	CT_UNUSED(type);
	CT_UNUSED(session);
	CT_UNUSED(source);
	CT_UNUSED(msg);
	CT_UNUSED(sz);
	skynet_command(ctx, "KILL", ".logger");
	skynet_command(ctx, "EXIT", NULL);
	return 0;
}

int
t_exit_init(void *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	CT_UNUSED(parm);
	ct_expect_str(ctx, "logger_named", skynet_command(ctx, "QUERY", ".logger"), ":1");
	skynet_error(ctx, "DONE");
	skynet_callback(ctx, NULL, exit_cb);
	ct_timeout(ctx, "10");
	return 0;
}
