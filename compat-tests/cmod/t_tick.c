/* A long-running service for the daemon, log-file and SIGHUP tests: logs "TICK <n>" every
 * <cs> centiseconds, <ticks> times, then stops the node. Parameter: "<ticks> <cs>". */
#include "ctest.h"

struct t_tick {
	int ticks;
	int n;
	char cs[16];
};

void *
t_tick_create(void) {
	return calloc(1, sizeof(struct t_tick));
}

void
t_tick_release(void *inst) {
	free(inst);
}

static int
cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source, const void *msg, size_t sz) {
	struct t_tick *t = ud;
	CT_UNUSED(session);
	CT_UNUSED(source);
	CT_UNUSED(msg);
	CT_UNUSED(sz);
	if (type != PTYPE_RESPONSE)
		return 0;
	if (t->n == t->ticks) {
		skynet_command(ctx, "ABORT", NULL);
		return 0;
	}
	skynet_error(ctx, "TICK %d", ++t->n);
	skynet_command(ctx, "TIMEOUT", t->n == t->ticks ? "10" : t->cs);
	return 0;
}

int
t_tick_init(void *inst, struct skynet_context *ctx, const char *parm) {
	struct t_tick *t = inst;
	int cs = 0;
	if (parm == NULL || sscanf(parm, "%d %d", &t->ticks, &cs) != 2 || t->ticks <= 0 || cs <= 0)
		return 1;
	snprintf(t->cs, sizeof(t->cs), "%d", cs);
	skynet_callback(ctx, t, cb);
	skynet_error(ctx, "TICK 0");
	skynet_command(ctx, "TIMEOUT", t->cs);
	return 0;
}
