/* LOGON / LOGOFF: the per-service message log under `logpath`.
 *
 * The service switches its own log on, sends itself two text messages and one with a session
 * ("hello", "world", "x" with session 7), switches the log off on the third, and finishes.
 * The Rust test reads <logpath>/<handle>.log and checks its lines; LOGON of a bad address
 * and LOGOFF of a service without a log are harmless.
 */
#include "ctest.h"

struct t_logon {
	uint32_t self;
	int got;
};

void *
t_logon_create(void) {
	return calloc(1, sizeof(struct t_logon));
}

void
t_logon_release(void *inst) {
	free(inst);
}

static int
cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source, const void *msg, size_t sz) {
	struct t_logon *t = ud;
	CT_UNUSED(source);
	CT_UNUSED(msg);
	CT_UNUSED(sz);
	if (type == PTYPE_RESPONSE) {
		skynet_command(ctx, "ABORT", NULL);
		return 0;
	}
	if (++t->got == 3) {
		ct_expect_int(ctx, "third_session", session, 7);
		ct_cmd_handle(ctx, "LOGOFF", t->self, NULL);
		/* a second LOGOFF (no log open) and a message after it must not be logged */
		ct_cmd_handle(ctx, "LOGOFF", t->self, NULL);
		skynet_send(ctx, 0, t->self, PTYPE_TEXT, 0, "after", 5);
	} else if (t->got == 4) {
		skynet_error(ctx, "DONE");
		skynet_command(ctx, "TIMEOUT", "10");
	}
	return 0;
}

int
t_logon_init(void *inst, struct skynet_context *ctx, const char *parm) {
	struct t_logon *t = inst;
	CT_UNUSED(parm);
	t->self = ct_self(ctx);
	skynet_callback(ctx, t, cb);
	/* bad addresses are logged and ignored */
	skynet_command(ctx, "LOGON", "bogus");
	skynet_command(ctx, "LOGON", ":7fffff");
	ct_cmd_handle(ctx, "LOGON", t->self, NULL);
	/* a second LOGON keeps the open log */
	ct_cmd_handle(ctx, "LOGON", t->self, NULL);
	skynet_send(ctx, 0, t->self, PTYPE_TEXT, 0, "hello", 5);
	skynet_send(ctx, 0, t->self, PTYPE_TEXT, 0, "world", 5);
	skynet_send(ctx, 0, t->self, PTYPE_TEXT, 7, "x", 1);
	return 0;
}
