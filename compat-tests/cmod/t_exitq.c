/* t_exitq (bootstrap): messages still queued when a service is KILLed are answered with
 * PTYPE_ERROR (same session, source = the dead handle, no payload), in queue order and
 * even for session 0; later sends to the dead handle return -1 and get no reply.
 * Logs "ERR session=<s> from=:<08x> sz=<sz> null=<msg==NULL>" per error reply.
 */
#include "ctest.h"

struct exitq {
	uint32_t sink;
	int errors;
	int wait_session;
	int unexpected;
};

void *
t_exitq_create(void) {
	return calloc(1, sizeof(struct exitq));
}

void
t_exitq_release(struct exitq *e) {
	free(e);
}

static int
exitq_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
         const void *msg, size_t sz) {
	struct exitq *e = ud;
	if (type == PTYPE_TEXT && source == e->sink && sz == 8 && memcmp(msg, "blocking", 8) == 0) {
		/* the sink is busy: queue 5 messages behind it, then kill it */
		ct_expect_int(ctx, "queue_11", ct_send_text(ctx, e->sink, 11, "q11"), 11);
		ct_expect_int(ctx, "queue_12", ct_send_text(ctx, e->sink, 12, "q12"), 12);
		ct_expect_int(ctx, "queue_0", ct_send_text(ctx, e->sink, 0, "q0"), 0);
		char *buf = malloc(16);
		memcpy(buf, "dontcopy", 9);
		ct_expect_int(ctx, "queue_14", skynet_send(ctx, 0, e->sink,
			PTYPE_TEXT | PTYPE_TAG_DONTCOPY, 14, buf, 8), 14);
		ct_expect_int(ctx, "queue_13", skynet_send(ctx, 0, e->sink, PTYPE_CLIENT, 13, NULL, 0),
			13);
		ct_cmd_handle(ctx, "KILL", e->sink, NULL);
		ct_expect_int(ctx, "send_after_kill", ct_send_text(ctx, e->sink, 15, "q15"), -1);
	} else if (type == PTYPE_ERROR) {
		skynet_error(ctx, "ERR session=%d from=:%08x sz=%zu null=%d", session,
			(unsigned)source, sz, msg == NULL);
		if (++e->errors == 5)
			e->wait_session = ct_timeout(ctx, "20"); /* wait for any extra reply */
	} else if (type == PTYPE_RESPONSE && session == e->wait_session && e->wait_session > 0) {
		ct_expect_int(ctx, "error_reply_count", e->errors, 5);
		ct_expect_int(ctx, "no_unexpected", e->unexpected, 0);
		ct_finish(ctx);
	} else {
		e->unexpected++;
		skynet_error(ctx, "UNEXPECTED type=%d session=%d src=:%08x sz=%zu", type, session,
			(unsigned)source, sz);
	}
	return 0;
}

int
t_exitq_init(struct exitq *e, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	e->sink = ct_launch(ctx, "t_sink");
	ct_check(ctx, "launch_sink", e->sink != 0, "LAUNCH t_sink failed");
	ct_send_text(ctx, e->sink, 0, "block");
	skynet_callback(ctx, e, exitq_cb);
	return 0;
}
