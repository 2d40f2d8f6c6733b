/* t_launch (bootstrap): LAUNCH result format and argument splitting, init failure,
 * missing module, NULL _create, missing _init, KILL by handle / by name / bad address, EXIT,
 * skynet_current_handle inside a callback, sends to a killed handle.
 */
#include "ctest.h"

#include <ctype.h>

#define MAX_KIDS 24

struct launch {
	uint32_t self;
	uint32_t kid_args;   /* "t_child a b" */
	uint32_t kid_noarg;  /* "t_child" */
	uint32_t kid_ping;   /* "t_child  two", pinged then told to exit */
	uint32_t others[MAX_KIDS];
	int nothers;
	int start_session;
	int ping_session;
	int wait_session;
	int got_badinit_error;
};

void *
t_launch_create(void) {
	return calloc(1, sizeof(struct launch));
}

void
t_launch_release(struct launch *l) {
	free(l);
}

/* LAUNCH must answer ":%08X" (8 uppercase hex digits). */
static uint32_t
launch_checked(struct skynet_context *ctx, const char *what, const char *mod_args) {
	const char *r = skynet_command(ctx, "LAUNCH", mod_args);
	if (!ct_check(ctx, what, r != NULL, "LAUNCH %s returned NULL", mod_args))
		return 0;
	char want[16];
	uint32_t h = ct_parse_handle(r);
	snprintf(want, sizeof(want), ":%08X", (unsigned)h);
	ct_check(ctx, "launch_result_format", strcmp(r, want) == 0 && h != 0,
		"got [%s] want [%s]", r, want);
	return h;
}

static void
phase_kill(struct skynet_context *ctx, struct launch *l) {
	ct_expect_int(ctx, "current_handle_in_callback", skynet_current_handle(), l->self);

	/* KILL by handle; afterwards the handle is dead for senders. */
	ct_expect_str(ctx, "kill_result", ct_cmd_handle(ctx, "KILL", l->kid_args, NULL), NULL);
	ct_expect_int(ctx, "send_to_killed", ct_send_text(ctx, l->kid_args, 5, "late"), -1);

	/* KILL by local name; the name goes away with the service. */
	char param[64];
	snprintf(param, sizeof(param), ".kid :%08x", (unsigned)l->kid_noarg);
	ct_expect_str(ctx, "name_kid", skynet_command(ctx, "NAME", param), "kid");
	skynet_command(ctx, "KILL", ".kid");
	ct_expect_str(ctx, "killed_name_gone", skynet_command(ctx, "QUERY", ".kid"), NULL);
	ct_expect_int(ctx, "send_to_killed_by_name",
		ct_send_text(ctx, l->kid_noarg, 0, "late"), -1);

	/* Unparsable address: logged, nothing killed. */
	skynet_command(ctx, "KILL", "bogus");

	/* Round trip with a live child, then let it EXIT by itself. */
	l->ping_session = skynet_send(ctx, 0, l->kid_ping, PTYPE_TEXT | PTYPE_TAG_ALLOCSESSION, 0,
		"ping", 4);
	ct_check(ctx, "ping_sent", l->ping_session > 0, "session %d", l->ping_session);
}

static int
launch_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
          const void *msg, size_t sz) {
	struct launch *l = ud;
	if (type == PTYPE_ERROR && session == 77) {
		l->got_badinit_error = 1;
		skynet_error(ctx, "GOT error session=%d from=:%08x sz=%zu null=%d", session,
			(unsigned)source, sz, msg == NULL);
	} else if (type == PTYPE_RESPONSE && session == l->start_session) {
		phase_kill(ctx, l);
	} else if (type == PTYPE_RESPONSE && session == l->ping_session) {
		ct_check(ctx, "ping_reply", source == l->kid_ping && sz == 4 && memcmp(msg, "pong", 4) == 0,
			"source :%x sz %zu", (unsigned)source, sz);
		ct_expect_int(ctx, "exit_request", ct_send_text(ctx, l->kid_ping, 0, "exit"), 0);
		l->wait_session = ct_timeout(ctx, "5");
	} else if (type == PTYPE_RESPONSE && session == l->wait_session) {
		ct_expect_int(ctx, "send_to_exited", ct_send_text(ctx, l->kid_ping, 0, "late"), -1);
		for (int i = 0; i < l->nothers; i++)
			ct_cmd_handle(ctx, "KILL", l->others[i], NULL);
		ct_check(ctx, "badinit_error_reply", l->got_badinit_error, "no PTYPE_ERROR session 77");
		ct_finish(ctx);
	} else {
		ct_check(ctx, "unexpected_message", 0, "type %d session %d source :%x sz %zu", type,
			session, (unsigned)source, sz);
	}
	return 0;
}

int
t_launch_init(struct launch *l, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	l->self = ct_self(ctx);
	l->kid_args = launch_checked(ctx, "launch_args", "t_child a b");
	l->kid_noarg = launch_checked(ctx, "launch_noarg", "t_child");
	l->kid_ping = launch_checked(ctx, "launch_two_spaces", "t_child  two");
	l->others[l->nothers++] = launch_checked(ctx, "launch_newline", "t_child x\ny");
	l->others[l->nothers++] = launch_checked(ctx, "launch_tab", "t_child\tz");

	char param[64];
	snprintf(param, sizeof(param), "t_badinit :%x", (unsigned)l->self);
	ct_expect_str(ctx, "launch_init_fail", skynet_command(ctx, "LAUNCH", param), NULL);
	ct_expect_str(ctx, "launch_missing", skynet_command(ctx, "LAUNCH", "t_nonexistent"), NULL);
	ct_expect_str(ctx, "launch_null_create", skynet_command(ctx, "LAUNCH", "t_nocreate"), NULL);
	ct_expect_str(ctx, "launch_no_init", skynet_command(ctx, "LAUNCH", "t_noinit"), NULL);

	/* Keep launching until a handle shows a hex letter: LAUNCH must print it uppercase. */
	int upper = 0;
	while (l->nothers < MAX_KIDS && !upper) {
		const char *r = skynet_command(ctx, "LAUNCH", "t_child more");
		if (r == NULL)
			break;
		char lower[16];
		uint32_t h = ct_parse_handle(r);
		snprintf(lower, sizeof(lower), ":%08x", (unsigned)h);
		l->others[l->nothers++] = h;
		if (strcmp(r, lower) != 0) { /* has a letter */
			upper = strlen(r) == 9;
			for (int i = 1; upper && r[i]; i++)
				upper = isdigit((unsigned char)r[i]) || (r[i] >= 'A' && r[i] <= 'F');
			ct_check(ctx, "launch_uppercase", upper, "got [%s]", r);
		}
	}
	ct_check(ctx, "launch_more", upper, "no handle with a hex letter after %d launches",
		l->nothers);

	skynet_callback(ctx, l, launch_cb);
	l->start_session = ct_timeout(ctx, "0");
	return 0;
}
