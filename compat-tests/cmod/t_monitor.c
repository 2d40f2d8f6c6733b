/* t_monitor (bootstrap): MONITOR query/set/clear. While set, every exiting service
 * (KILL or EXIT) makes the core send the monitor PTYPE_CLIENT, session 0, no payload,
 * source = the exiting handle. Logs "EXITNOTE session=<s> from=:<08x> sz=<sz> null=<0/1>".
 */
#include "ctest.h"

struct monitor {
	uint32_t self;
	uint32_t kid[3];
	int start_session;
	int wait_session;
	int notes;
};

void *
t_monitor_create(void) {
	return calloc(1, sizeof(struct monitor));
}

void
t_monitor_release(struct monitor *m) {
	free(m);
}

static int
monitor_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
           const void *msg, size_t sz) {
	struct monitor *m = ud;
	char hs[16];
	snprintf(hs, sizeof(hs), ":%x", (unsigned)m->self);
	if (type == PTYPE_CLIENT) {
		skynet_error(ctx, "EXITNOTE session=%d from=:%08x sz=%zu null=%d", session,
			(unsigned)source, sz, msg == NULL);
		if (++m->notes == 2) {
			/* kid[1] reported its EXIT: switch the monitor to a name, then clear it */
			skynet_command(ctx, "REG", ".mon");
			skynet_command(ctx, "MONITOR", ".mon");
			ct_expect_str(ctx, "monitor_by_name", skynet_command(ctx, "MONITOR", ""), hs);
			skynet_command(ctx, "MONITOR", ".nobody");
			ct_expect_str(ctx, "monitor_cleared", skynet_command(ctx, "MONITOR", ""), NULL);
			ct_cmd_handle(ctx, "KILL", m->kid[2], NULL); /* no note expected */
			m->wait_session = ct_timeout(ctx, "10");
		}
	} else if (type == PTYPE_RESPONSE && session == m->start_session) {
		ct_cmd_handle(ctx, "KILL", m->kid[0], NULL);
		ct_send_text(ctx, m->kid[1], 0, "exit");
	} else if (type == PTYPE_RESPONSE && session == m->wait_session && session > 0) {
		ct_expect_int(ctx, "exit_notes", m->notes, 2);
		ct_finish(ctx);
	} else {
		ct_check(ctx, "unexpected_message", 0, "type %d session %d source :%x", type, session,
			(unsigned)source);
	}
	return 0;
}

int
t_monitor_init(struct monitor *m, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	m->self = ct_self(ctx);
	char hs[16];
	snprintf(hs, sizeof(hs), ":%x", (unsigned)m->self);
	ct_expect_str(ctx, "monitor_unset", skynet_command(ctx, "MONITOR", ""), NULL);
	ct_expect_str(ctx, "monitor_unset_null", skynet_command(ctx, "MONITOR", NULL), NULL);
	ct_expect_str(ctx, "monitor_set_result", ct_cmd_handle(ctx, "MONITOR", m->self, NULL), NULL);
	ct_expect_str(ctx, "monitor_query", skynet_command(ctx, "MONITOR", ""), hs);
	ct_expect_str(ctx, "monitor_query_null", skynet_command(ctx, "MONITOR", NULL), hs);
	for (int i = 0; i < 3; i++)
		m->kid[i] = ct_launch(ctx, "t_child");
	skynet_callback(ctx, m, monitor_cb);
	m->start_session = ct_timeout(ctx, "0");
	return 0;
}
