/* t_signal (bootstrap): SIGNAL "<addr> [sig]" calls <mod>_signal(inst, sig) synchronously
 * (sig parsed with strtol base 0, default 0; a ".name" address takes no number). _signal logs "SIGNAL <sig>" (no context,
 * so source 0). A module without _signal and an unknown address are harmless.
 */
#include "ctest.h"

struct sig {
	int last;
	int count;
};

void *
t_signal_create(void) {
	return calloc(1, sizeof(struct sig));
}

void
t_signal_release(struct sig *s) {
	free(s);
}

void
t_signal_signal(struct sig *s, int signal) {
	s->last = signal;
	s->count++;
	skynet_error(NULL, "SIGNAL %d", signal);
}

static void
expect_signal(struct skynet_context *ctx, struct sig *s, const char *what, const char *param,
              int want_count, int want_last) {
	const char *r = skynet_command(ctx, "SIGNAL", param);
	ct_check(ctx, what, r == NULL && s->count == want_count && s->last == want_last,
		"SIGNAL %s: result %s count %d last %d, want count %d last %d", param,
		r ? r : "NULL", s->count, s->last, want_count, want_last);
}

static int
signal_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
          const void *msg, size_t sz) {
	CT_UNUSED(type);
	CT_UNUSED(session);
	CT_UNUSED(source);
	CT_UNUSED(msg);
	CT_UNUSED(sz);
	struct sig *s = ud;
	char param[64];
	snprintf(param, sizeof(param), ":%x 5", (unsigned)skynet_current_handle());
	expect_signal(ctx, s, "signal_in_callback", param, 6, 5);
	ct_finish(ctx);
	return 0;
}

int
t_signal_init(struct sig *s, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	char param[64];
	uint32_t self = ct_self(ctx);
	skynet_command(ctx, "REG", ".sig");
	snprintf(param, sizeof(param), ":%x 7", (unsigned)self);
	expect_signal(ctx, s, "signal_number", param, 1, 7);
	snprintf(param, sizeof(param), ":%x", (unsigned)self);
	expect_signal(ctx, s, "signal_default_zero", param, 2, 0);
	snprintf(param, sizeof(param), ":%x 0x10", (unsigned)self);
	expect_signal(ctx, s, "signal_base0", param, 3, 16);
	snprintf(param, sizeof(param), ":%x -3", (unsigned)self);
	expect_signal(ctx, s, "signal_negative", param, 4, -3);
	expect_signal(ctx, s, "signal_by_name", ".sig", 5, 0);
	expect_signal(ctx, s, "signal_unknown_name", ".nobody", 5, 0);

	uint32_t kid = ct_launch(ctx, "t_child");
	snprintf(param, sizeof(param), ":%x 9", (unsigned)kid);
	expect_signal(ctx, s, "signal_module_without_handler", param, 5, 0);
	ct_cmd_handle(ctx, "KILL", kid, NULL);

	skynet_callback(ctx, s, signal_cb);
	ct_timeout(ctx, "0");
	return 0;
}
