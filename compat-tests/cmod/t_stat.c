/* t_stat (bootstrap): STAT mqlen / message / endless / cpu / time / unknown.
 * init queues 3 messages to itself; each callback checks the counters. Callback 1 burns
 * ~30 ms of thread CPU so that STAT time (profile on) and later STAT cpu see it.
 * Works with profile on (default) and off (config profile = false).
 */
#include "ctest.h"

#include <ctype.h>
#include <time.h>

struct stat_state {
	int profile;
	int n;
};

void *
t_stat_create(void) {
	return calloc(1, sizeof(struct stat_state));
}

void
t_stat_release(struct stat_state *s) {
	free(s);
}

/* "%lf" output: digits '.' six digits */
static int
is_lf(const char *s) {
	if (s == NULL || !isdigit((unsigned char)*s))
		return 0;
	while (isdigit((unsigned char)*s))
		s++;
	if (*s++ != '.')
		return 0;
	for (int i = 0; i < 6; i++)
		if (!isdigit((unsigned char)*s++))
			return 0;
	return *s == 0;
}

static double
thread_cpu(void) {
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
expect_stat(struct skynet_context *ctx, const char *what, const char *key, const char *want) {
	ct_expect_str(ctx, what, skynet_command(ctx, "STAT", key), want);
}

static int
stat_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	CT_UNUSED(type);
	CT_UNUSED(session);
	CT_UNUSED(source);
	CT_UNUSED(msg);
	CT_UNUSED(sz);
	struct stat_state *s = ud;
	char want[16], what[32];
	s->n++;
	snprintf(want, sizeof(want), "%d", s->n);
	snprintf(what, sizeof(what), "stat_message_%d", s->n);
	expect_stat(ctx, what, "message", want);
	snprintf(want, sizeof(want), "%d", 3 - s->n);
	snprintf(what, sizeof(what), "stat_mqlen_%d", s->n);
	expect_stat(ctx, what, "mqlen", want);

	if (s->n == 1) {
		double t0 = thread_cpu();
		volatile unsigned long spin = 0;
		while (thread_cpu() - t0 < 0.03)
			spin++;
		const char *t = skynet_command(ctx, "STAT", "time");
		if (s->profile)
			ct_check(ctx, "stat_time", is_lf(t) && strtod(t, NULL) >= 0.02,
				"got [%s]", t ? t : "NULL");
		else
			ct_expect_str(ctx, "stat_time", t, "0");
	} else if (s->n == 2) {
		const char *c = skynet_command(ctx, "STAT", "cpu");
		if (s->profile)
			ct_check(ctx, "stat_cpu", is_lf(c) && strtod(c, NULL) >= 0.02,
				"got [%s]", c ? c : "NULL");
		else
			ct_expect_str(ctx, "stat_cpu", c, "0.000000");
	} else if (s->n == 3) {
		expect_stat(ctx, "stat_endless", "endless", "0");
		ct_finish(ctx);
	}
	return 0;
}

int
t_stat_init(struct stat_state *s, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	const char *p = skynet_command(ctx, "GETENV", "profile");
	s->profile = p != NULL && strcmp(p, "true") == 0;
	skynet_error(ctx, "PROFILE %d", s->profile);
	uint32_t self = ct_self(ctx);
	for (int i = 0; i < 3; i++)
		ct_send_text(ctx, self, 0, "tick");
	expect_stat(ctx, "stat_mqlen_init", "mqlen", "3");
	expect_stat(ctx, "stat_message_init", "message", "0");
	expect_stat(ctx, "stat_endless_init", "endless", "0");
	expect_stat(ctx, "stat_cpu_init", "cpu", "0.000000");
	expect_stat(ctx, "stat_unknown", "nonsense", "");
	skynet_callback(ctx, s, stat_cb);
	return 0;
}
