/*
 * bench_flood: one-way flood benchmark of the C-module message hot path.
 *
 *   bootstrap = "bench_flood <total_msgs> [batch]"
 *
 * The bootstrap instance (A) launches a sink B (same module), starts the
 * clock and sends B <total_msgs> 5-byte PTYPE_TEXT messages in copy mode,
 * <batch> (default 1000) per callback: after each batch A sends itself a
 * "more" message so it yields back to the scheduler between batches. B
 * counts and checks every message and tells A "done" after the last one;
 * A stops the clock then. Result (via the logger):
 *   BENCH c_flood <n> msgs/s
 *
 * What it exercises: throughput of skynet_send in copy mode (malloc + copy
 * per message) into one receiver whose queue is long and is drained by
 * another worker at the same time (producer/consumer on one service queue:
 * queue push/pop locking, ring growth, multi-message dispatch turns where
 * the worker weight lets a worker process several queued messages per
 * turn), the per-message free() after the callback, and the overload
 * warning path when B's queue passes 1024, 2048, ... pending messages.
 */

#include "skynet.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum role { ROLE_SOURCE, ROLE_SINK };

struct bench {
	enum role role;
	uint32_t self;
	long total;
	/* source */
	long batch;
	long sent;
	uint32_t sink;
	int finished;
	struct timespec t0;
	/* sink */
	long received;
};

static const char PAYLOAD[] = "flood";

static int
is_msg(const void *msg, size_t sz, const char *text) {
	size_t n = strlen(text);
	return msg != NULL && sz == n && memcmp(msg, text, n) == 0 && ((const char *)msg)[n] == '\0';
}

static void
fail(struct skynet_context *ctx, const char *what, uint32_t source, const void *msg, size_t sz) {
	skynet_error(ctx, "BENCH-FAIL bench_flood: %s (from :%08x, sz=%zu, msg=%.*s)",
		what, source, sz, msg ? (int)(sz < 32 ? sz : 32) : 0, msg ? (const char *)msg : "");
	skynet_command(ctx, "ABORT", NULL);
}

static int
send_text(struct skynet_context *ctx, uint32_t dest, const char *text) {
	/* copy mode: the core copies the payload, our literal stays ours */
	if (skynet_send(ctx, 0, dest, PTYPE_TEXT, 0, (void *)text, strlen(text)) < 0) {
		fail(ctx, "send failed", dest, NULL, 0);
		return -1;
	}
	return 0;
}

static void
send_batch(struct skynet_context *ctx, struct bench *b) {
	long n = b->total - b->sent;
	long i;
	if (n > b->batch)
		n = b->batch;
	for (i = 0; i < n; i++) {
		if (skynet_send(ctx, 0, b->sink, PTYPE_TEXT, 0, (void *)PAYLOAD, sizeof(PAYLOAD) - 1) < 0) {
			fail(ctx, "flood send failed", b->sink, NULL, 0);
			return;
		}
	}
	b->sent += n;
	if (b->sent < b->total)
		send_text(ctx, b->self, "more");
}

static void
finish(struct skynet_context *ctx, struct bench *b) {
	struct timespec t1;
	double elapsed;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed = (double)(t1.tv_sec - b->t0.tv_sec) + (double)(t1.tv_nsec - b->t0.tv_nsec) * 1e-9;
	if (elapsed <= 0)
		elapsed = 1e-9;
	skynet_error(ctx, "BENCHINFO c_flood msgs=%ld batch=%ld elapsed=%.6fs", b->total, b->batch, elapsed);
	skynet_error(ctx, "BENCH c_flood %.0f msgs/s", (double)b->total / elapsed);
	b->finished = 1;
	/* give the logger time to print before ABORT retires it */
	skynet_command(ctx, "TIMEOUT", "20");
}

static int
bench_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source, const void *msg, size_t sz) {
	struct bench *b = ud;
	if (b->role == ROLE_SINK) {
		if (type != PTYPE_TEXT || !is_msg(msg, sz, PAYLOAD)) {
			fail(ctx, "sink got unexpected message", source, msg, sz);
			return 0;
		}
		if (++b->received == b->total)
			send_text(ctx, source, "done");
		return 0;
	}
	if (type == PTYPE_RESPONSE && b->finished) {
		skynet_command(ctx, "ABORT", NULL);
	} else if (type == PTYPE_TEXT && source == b->self && is_msg(msg, sz, "more")) {
		send_batch(ctx, b);
	} else if (type == PTYPE_TEXT && source == b->self && is_msg(msg, sz, "start")) {
		char args[64];
		const char *r;
		snprintf(args, sizeof(args), "bench_flood sink %ld", b->total);
		r = skynet_command(ctx, "LAUNCH", args);
		if (r == NULL || r[0] != ':') {
			fail(ctx, "launch sink failed", 0, NULL, 0);
			return 0;
		}
		b->sink = (uint32_t)strtoul(r + 1, NULL, 16);
		clock_gettime(CLOCK_MONOTONIC, &b->t0);
		send_batch(ctx, b);
	} else if (type == PTYPE_TEXT && source == b->sink && is_msg(msg, sz, "done")) {
		finish(ctx, b);
	} else {
		fail(ctx, "source got unexpected message", source, msg, sz);
	}
	return 0;
}

struct bench *
bench_flood_create(void) {
	struct bench *b = calloc(1, sizeof(*b));
	return b;
}

void
bench_flood_release(struct bench *b) {
	free(b);
}

int
bench_flood_init(struct bench *b, struct skynet_context *ctx, const char *parm) {
	const char *reg = skynet_command(ctx, "REG", NULL);
	if (reg == NULL || reg[0] != ':')
		return 1;
	b->self = (uint32_t)strtoul(reg + 1, NULL, 16);
	if (parm == NULL) {
		skynet_error(ctx, "BENCH-FAIL bench_flood: need parameters");
		return 1;
	}
	if (strncmp(parm, "sink ", 5) == 0) {
		b->role = ROLE_SINK;
		if (sscanf(parm + 5, "%ld", &b->total) != 1 || b->total <= 0)
			return 1;
	} else {
		int n;
		b->role = ROLE_SOURCE;
		b->batch = 1000;
		n = sscanf(parm, "%ld %ld", &b->total, &b->batch);
		if (n < 1 || b->total <= 0 || b->batch <= 0) {
			skynet_error(ctx, "BENCH-FAIL bench_flood: bad parameters '%s' (want <total> [batch])", parm);
			return 1;
		}
		/* the run starts from the first callback, once the workers are up */
		if (skynet_send(ctx, 0, b->self, PTYPE_TEXT, 0, "start", 5) < 0)
			return 1;
	}
	skynet_callback(ctx, b, bench_cb);
	return 0;
}
