/* t_child: helper service launched by several scenarios.
 * No _create/_release/_signal on purpose: the core must pass the default instance (void*)~0.
 * init logs "CHILD parm=[<parm>]" (or parm=NULL) and "CHILD reg=[<REG result>]".
 * Text commands: "exit" -> EXIT; "ping" -> PTYPE_RESPONSE "pong" with the same session.
 */
#include "ctest.h"

static int
child_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
         const void *msg, size_t sz) {
	uint32_t self = (uint32_t)(uintptr_t)ud;
	if (skynet_current_handle() != self)
		ct_check(ctx, "child_current_handle", 0, "got %x want %x",
			(unsigned)skynet_current_handle(), (unsigned)self);
	if (type != PTYPE_TEXT || msg == NULL)
		return 0;
	if (sz == 4 && memcmp(msg, "exit", 4) == 0) {
		skynet_command(ctx, "EXIT", NULL);
	} else if (sz == 4 && memcmp(msg, "ping", 4) == 0) {
		skynet_send(ctx, 0, source, PTYPE_RESPONSE, session, "pong", 4);
	}
	return 0;
}

int
t_child_init(void *inst, struct skynet_context *ctx, const char *parm) {
	ct_check(ctx, "child_default_instance", inst == (void *)~(uintptr_t)0, "inst=%p", inst);
	if (parm)
		skynet_error(ctx, "CHILD parm=[%s]", parm);
	else
		skynet_error(ctx, "CHILD parm=NULL");
	const char *reg = skynet_command(ctx, "REG", NULL);
	skynet_error(ctx, "CHILD reg=[%s]", reg ? reg : "NULL");
	skynet_callback(ctx, (void *)(uintptr_t)ct_parse_handle(reg), child_cb);
	return 0;
}
