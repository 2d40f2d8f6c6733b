/* t_sink: helper for t_exitq. Registers ".sink". On "block" it answers "blocking", then
 * stays inside that callback until 5 more messages are queued and until it has been
 * KILLed (its name disappears), so those messages are never dispatched. Any other
 * message that does get dispatched is logged as "SINK dispatched session=<s>".
 */
#include "ctest.h"

#include <unistd.h>

static int
wait_until(struct skynet_context *ctx, int (*cond)(struct skynet_context *)) {
	for (int i = 0; i < 3000; i++) { /* 3 s max */
		if (cond(ctx))
			return 1;
		usleep(1000);
	}
	return 0;
}

static int
queue_full(struct skynet_context *ctx) {
	const char *r = skynet_command(ctx, "STAT", "mqlen");
	return r && strtol(r, NULL, 10) >= 5;
}

static int
killed(struct skynet_context *ctx) {
	return skynet_command(ctx, "QUERY", ".sink") == NULL;
}

static int
sink_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	CT_UNUSED(ud);
	if (type == PTYPE_TEXT && sz == 5 && memcmp(msg, "block", 5) == 0) {
		ct_send_text(ctx, source, 0, "blocking");
		ct_check(ctx, "sink_saw_queue", wait_until(ctx, queue_full), "mqlen stayed < 5");
		ct_check(ctx, "sink_saw_kill", wait_until(ctx, killed), "name .sink still present");
	} else {
		skynet_error(ctx, "SINK dispatched session=%d", session);
	}
	return 0;
}

int
t_sink_init(void *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	CT_UNUSED(parm);
	skynet_command(ctx, "REG", ".sink");
	skynet_callback(ctx, NULL, sink_cb);
	return 0;
}
