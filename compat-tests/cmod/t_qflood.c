/* t_qflood: a flood of messages to a service whose worker is blocked, with a small queue
 * limit (compat-tests/tests/cmod.rs).
 *
 * "t_qflood" (bootstrap :2, the flooder) launches "t_qflood sleeper" (:3), which sets its own
 * limit with QUEUELIMIT. The flooder calls it with "sleep": the sleeper answers, then blocks
 * its worker until env key qflood_wake exists. The flooder then sends TOTAL messages to it,
 * every other one a request (a new session), in batches: a batch is sent once the requests
 * still unanswered are at most the limit (the refused ones are answered at once with
 * PTYPE_ERROR, so this bounds the flooder's own queue as well). Afterwards it sets
 * qflood_wake; the sleeper wakes, answers the requests it had queued and counts what it got.
 * Checks: every request was answered (errors + responses), the sleeper got at most LIMIT
 * messages, the peak RSS of the process stayed small.
 */
#include "ctest.h"

#include <unistd.h>

#define TOTAL 10000000L
#define BATCH 20000L
#define LIMIT 1000L

struct flood {
	uint32_t sleeper;
	long sent, calls, errors, responses;
	int report_session;
	int woken;
};

static long sleeper_oneway, sleeper_requests;

/* Peak resident set size of this process, in KiB (-1 if unknown). */
static long
vm_hwm_kib(void) {
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return -1;
	char line[256];
	long kib = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmHWM:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib;
}

static int
sleeper_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
           const void *msg, size_t sz) {
	CT_UNUSED(ud);
	if (type != PTYPE_TEXT)
		return 0;
	if (sz == 5 && memcmp(msg, "sleep", 5) == 0) {
		skynet_send(ctx, 0, source, PTYPE_RESPONSE, session, "slept", 5);
		for (int i = 0; i < 60000 && skynet_getenv("qflood_wake") == NULL; i++) /* 60 s max */
			usleep(1000);
	} else if (sz == 6 && memcmp(msg, "report", 6) == 0) {
		char text[64];
		int n = snprintf(text, sizeof(text), "%ld %ld", sleeper_oneway, sleeper_requests);
		skynet_send(ctx, 0, source, PTYPE_RESPONSE, session, text, (size_t)n);
	} else if (session != 0) {
		sleeper_requests++;
		skynet_send(ctx, 0, source, PTYPE_RESPONSE, session, NULL, 0);
	} else {
		sleeper_oneway++;
	}
	return 0;
}

static int
call_text(struct skynet_context *ctx, uint32_t dest, const char *text) {
	return skynet_send(ctx, 0, dest, PTYPE_TEXT | PTYPE_TAG_ALLOCSESSION, 0, (void *)text,
	                   strlen(text));
}

static void
send_batch(struct skynet_context *ctx, struct flood *f) {
	for (long i = 0; i < BATCH && f->sent < TOTAL; i++, f->sent++) {
		if (f->sent % 2 == 0) {
			f->calls++;
			call_text(ctx, f->sleeper, "q");
		} else {
			ct_send_text(ctx, f->sleeper, 0, "o");
		}
	}
}

static void
report(struct skynet_context *ctx, struct flood *f, const char *text) {
	long oneway = -1, requests = -1;
	sscanf(text, "%ld %ld", &oneway, &requests);
	ct_expect_int(ctx, "every_call_answered", f->errors + f->responses, f->calls);
	ct_check(ctx, "calls_refused", f->errors >= f->calls - LIMIT && f->errors > 0,
	         "%ld errors for %ld calls", f->errors, f->calls);
	ct_expect_int(ctx, "sleeper_answered_its_queued_calls", requests, f->responses);
	ct_check(ctx, "sleeper_got_at_most_limit", oneway >= 0 && oneway + requests <= LIMIT,
	         "got %ld one-way and %ld requests", oneway, requests);
	long hwm = vm_hwm_kib();
	ct_check(ctx, "rss_bounded", hwm > 0 && hwm < 200 * 1024, "VmHWM %ld KiB", hwm);
	skynet_error(ctx, "QFLOOD sent=%ld calls=%ld errors=%ld oneway_got=%ld", f->sent, f->calls,
	             f->errors, oneway);
	ct_finish(ctx);
}

static int
flood_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
         const void *msg, size_t sz) {
	CT_UNUSED(source);
	struct flood *f = ud;
	if (session == f->report_session && f->report_session != 0) {
		if (type == PTYPE_RESPONSE) {
			char text[64];
			size_t n = sz < sizeof(text) - 1 ? sz : sizeof(text) - 1;
			memcpy(text, msg, n);
			text[n] = 0;
			report(ctx, f, text);
		} else { /* refused: the sleeper still drains its queue, ask again */
			f->report_session = call_text(ctx, f->sleeper, "report");
		}
		return 0;
	}
	if (type == PTYPE_RESPONSE && sz == 5 && memcmp(msg, "slept", 5) == 0) {
		send_batch(ctx, f);
		return 0;
	}
	if (type == PTYPE_ERROR)
		f->errors++;
	else if (type == PTYPE_RESPONSE)
		f->responses++;
	else
		return 0;
	long open = f->calls - f->errors - f->responses;
	if (f->sent < TOTAL) {
		if (open <= LIMIT)
			send_batch(ctx, f);
		return 0;
	}
	if (!f->woken) {
		f->woken = 1;
		skynet_command(ctx, "SETENV", "qflood_wake 1");
	}
	if (open == 0 && f->report_session == 0)
		f->report_session = call_text(ctx, f->sleeper, "report");
	return 0;
}

int
t_qflood_init(void *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	if (parm != NULL && strcmp(parm, "sleeper") == 0) {
		char want[64];
		snprintf(want, sizeof(want), "%ld 4096", LIMIT);
		const char *r = skynet_command(ctx, "QUEUELIMIT", want);
		ct_expect_str(ctx, "queuelimit_set", r, want);
		r = skynet_command(ctx, "QUEUELIMIT", NULL);
		ct_expect_str(ctx, "queuelimit_query", r, want);
		r = skynet_command(ctx, "QUEUELIMIT", "x");
		ct_expect_str(ctx, "queuelimit_bad", r, NULL);
		snprintf(want, sizeof(want), "%ld", LIMIT);
		r = skynet_command(ctx, "QUEUELIMIT", want);
		snprintf(want, sizeof(want), "%ld 4096", LIMIT);
		ct_expect_str(ctx, "queuelimit_keeps_bytes", r, want);
		r = skynet_command(ctx, "QUEUELIMIT", "1000 0");
		ct_expect_str(ctx, "queuelimit_bytes_unlimited", r, "1000 0");
		skynet_callback(ctx, NULL, sleeper_cb);
		return 0;
	}
	static struct flood f;
	f.sleeper = ct_launch(ctx, "t_qflood sleeper");
	ct_expect_int(ctx, "launch_sleeper", f.sleeper, 3);
	skynet_callback(ctx, &f, flood_cb);
	call_text(ctx, f.sleeper, "sleep");
	return 0;
}
