/* t_log (bootstrap): skynet_error formatting (long lines, '%' escapes, NULL context =>
 * source 0) and dispatch to a service without callback (messages dropped silently,
 * no PTYPE_ERROR even with a session, and nothing left to bounce when it is killed).
 */
#include "ctest.h"

#define LONG_LEN 1000

struct logstate {
	uint32_t nocb;
	int wait_session;
	int unexpected;
};

void *
t_log_create(void) {
	return calloc(1, sizeof(struct logstate));
}

void
t_log_release(struct logstate *s) {
	free(s);
}

/* after 10 cs kill t_nocb; after 10 more cs nothing must have arrived */
static int
log_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
       const void *msg, size_t sz) {
	CT_UNUSED(msg);
	struct logstate *s = ud;
	if (type == PTYPE_RESPONSE && source == 0 && session == s->wait_session) {
		if (s->nocb) {
			ct_cmd_handle(ctx, "KILL", s->nocb, NULL);
			s->nocb = 0;
			s->wait_session = ct_timeout(ctx, "10");
		} else {
			ct_expect_int(ctx, "nocb_no_replies", s->unexpected, 0);
			ct_finish(ctx);
		}
		return 0;
	}
	s->unexpected++;
	skynet_error(ctx, "UNEXPECTED type=%d session=%d src=:%08x sz=%zu", type, session,
		(unsigned)source, sz);
	return 0;
}

int
t_log_init(struct logstate *s, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	char *long_text = malloc(LONG_LEN + 1);
	memset(long_text, 'x', LONG_LEN);
	long_text[LONG_LEN] = 0;
	skynet_error(ctx, "LONG %s END", long_text);
	free(long_text);
	skynet_error(ctx, "PCT 100%% %d%s", 42, "!");
	skynet_error(NULL, "NULLCTX");

	s->nocb = ct_launch(ctx, "t_nocb");
	ct_check(ctx, "launch_nocb", s->nocb != 0, "LAUNCH t_nocb failed");
	ct_expect_int(ctx, "send_nocb_1", ct_send_text(ctx, s->nocb, 21, "one"), 21);
	ct_expect_int(ctx, "send_nocb_2", ct_send_text(ctx, s->nocb, 22, "two"), 22);
	skynet_callback(ctx, s, log_cb);
	s->wait_session = ct_timeout(ctx, "10");
	return 0;
}
