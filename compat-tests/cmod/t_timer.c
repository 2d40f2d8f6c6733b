/* t_timer (bootstrap): TIMEOUT returns the new session as %d, expiry is a PTYPE_RESPONSE
 * from source 0 with that session and no payload, delays <= 0 are delivered at once,
 * expiry order follows the delays (insertion order for equal delays), a delay of N cs
 * is not delivered before N cs of skynet_now. Logs "FIRE session=<s>" per expiry.
 * Also STARTTIME vs time(NULL) and skynet_now monotonicity.
 */
#include "ctest.h"

#include <time.h>

/* delay (cs) of the timer whose session is index + 1 */
static const char *const delays[] = { "0", "-5", "20", "5", "1", "10", "3", "3", "260" };
#define NTIMERS ((int)(sizeof(delays) / sizeof(delays[0])))

struct timer {
	uint64_t start[NTIMERS];
	uint64_t last_now;
	int fired;
	int bad_shape;
	int early;
	int backwards;
};

void *
t_timer_create(void) {
	return calloc(1, sizeof(struct timer));
}

void
t_timer_release(struct timer *t) {
	free(t);
}

static int
timer_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
         const void *msg, size_t sz) {
	struct timer *t = ud;
	uint64_t now = skynet_now();
	if (now < t->last_now)
		t->backwards++;
	t->last_now = now;
	skynet_error(ctx, "FIRE session=%d", session);
	if (type != PTYPE_RESPONSE || source != 0 || msg != NULL || sz != 0 || session < 1 ||
	    session > NTIMERS) {
		t->bad_shape++;
		skynet_error(ctx, "BAD type=%d session=%d source=:%x sz=%zu", type, session,
			(unsigned)source, sz);
		return 0;
	}
	long delay = strtol(delays[session - 1], NULL, 10);
	uint64_t elapsed = now - t->start[session - 1];
	if (delay > 0 && elapsed < (uint64_t)delay) {
		t->early++;
		skynet_error(ctx, "EARLY session=%d delay=%ld elapsed=%llu", session, delay,
			(unsigned long long)elapsed);
	}
	if (session == 3)
		ct_check(ctx, "timeout_20cs_elapsed", elapsed >= 20 && elapsed < 300,
			"elapsed %llu cs", (unsigned long long)elapsed);
	if (++t->fired == NTIMERS) {
		ct_expect_int(ctx, "response_shape", t->bad_shape, 0);
		ct_expect_int(ctx, "not_early", t->early, 0);
		ct_expect_int(ctx, "now_monotonic", t->backwards, 0);
		ct_finish(ctx);
	}
	return 0;
}

int
t_timer_init(struct timer *t, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	const char *st = skynet_command(ctx, "STARTTIME", NULL);
	long long start = st ? strtoll(st, NULL, 10) : 0;
	long long wall = (long long)time(NULL);
	ct_check(ctx, "starttime", st != NULL && start > 0 && start <= wall && wall - start < 10,
		"STARTTIME %s, time() %lld", st ? st : "NULL", wall);
	uint64_t now = skynet_now();
	ct_check(ctx, "now_tracks_wall", llabs(start + (long long)(now / 100) - wall) <= 2,
		"starttime %lld + now %llu cs vs time() %lld", start, (unsigned long long)now, wall);
	t->last_now = now;

	int sessions_ok = 1;
	for (int i = 0; i < NTIMERS; i++) {
		char want[16];
		snprintf(want, sizeof(want), "%d", i + 1);
		t->start[i] = skynet_now();
		const char *r = skynet_command(ctx, "TIMEOUT", delays[i]);
		if (r == NULL || strcmp(r, want) != 0) {
			sessions_ok = 0;
			skynet_error(ctx, "TIMEOUT %s returned %s, want %s", delays[i], r ? r : "NULL",
				want);
		}
	}
	ct_check(ctx, "timeout_sessions", sessions_ok, "see TIMEOUT lines");
	/* the session counter is shared with ALLOCSESSION sends */
	ct_expect_int(ctx, "genid_after_timeouts",
		skynet_send(ctx, 0, 0, PTYPE_TEXT | PTYPE_TAG_ALLOCSESSION, 0, NULL, 0), NTIMERS + 1);
	skynet_callback(ctx, t, timer_cb);
	return 0;
}
