/* t_badinit: init fails. parm = ":<hex>" of the launcher.
 * Before failing, init queues one message to itself that claims to come from the launcher
 * (session 77): the core must drop it with a PTYPE_ERROR reply to the launcher.
 * release logs "BADINIT release" (with no context, so source 0).
 */
#include "ctest.h"

struct badinit {
	int dummy;
};

void *
t_badinit_create(void) {
	return calloc(1, sizeof(struct badinit));
}

int
t_badinit_init(struct badinit *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	uint32_t parent = ct_parse_handle(parm);
	uint32_t self = ct_self(ctx);
	int r = skynet_send(ctx, parent, self, PTYPE_TEXT, 77, "queued", 6);
	skynet_error(ctx, "BADINIT init send=%d", r);
	return 1;
}

void
t_badinit_release(struct badinit *inst) {
	free(inst);
	skynet_error(NULL, "BADINIT release");
}
