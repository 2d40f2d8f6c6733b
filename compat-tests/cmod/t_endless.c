/* t_endless (bootstrap, slow): a callback that runs for more than 5-10 s is flagged by the
 * monitor thread; STAT endless reads the flag as "1" once and then "0".
 */
#include "ctest.h"

#include <unistd.h>

static int
endless_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
           const void *msg, size_t sz) {
	CT_UNUSED(ud);
	CT_UNUSED(type);
	CT_UNUSED(session);
	CT_UNUSED(source);
	CT_UNUSED(msg);
	CT_UNUSED(sz);
	ct_expect_str(ctx, "endless_initially_clear", skynet_command(ctx, "STAT", "endless"), "0");
	int flagged = 0, polls = 0;
	for (; polls < 1600 && !flagged; polls++) { /* up to 16 s */
		usleep(10000);
		const char *r = skynet_command(ctx, "STAT", "endless");
		flagged = r != NULL && strcmp(r, "1") == 0;
	}
	ct_check(ctx, "endless_flagged", flagged, "no flag after %d polls", polls);
	ct_expect_str(ctx, "endless_read_clears", skynet_command(ctx, "STAT", "endless"), "0");
	ct_finish(ctx);
	return 0;
}

int
t_endless_init(void *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	CT_UNUSED(parm);
	skynet_callback(ctx, NULL, endless_cb);
	ct_timeout(ctx, "0");
	return 0;
}
