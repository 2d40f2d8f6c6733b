/*
 * bench_pingpong: ping-pong benchmark of the C-module message hot path.
 *
 *   bootstrap = "bench_pingpong <pairs> <total_msgs>"
 *
 * The bootstrap instance is the driver. It launches <pairs> (pinger, ponger)
 * pairs of this same module, starts the clock, tells every pinger to go, and
 * stops the clock when all pingers report "done". Each pair exchanges
 * total_msgs / pairs messages (half pings, half pongs). Result (via the
 * logger):
 *   pairs == 1:  BENCH c_pingpong <n> msgs/s
 *   pairs  > 1:  BENCH c_pingpong_<pairs>pairs <n> msgs/s
 *
 * What it exercises: skynet_send of a 4-byte PTYPE_TEXT payload in copy mode
 * (core mallocs sz+1, copies, NUL-terminates), the push into the receiver's
 * queue, and the dispatch of that single message to the callback, followed
 * by the core's free() of the payload after the callback returns 0.
 * With one pair exactly one message is in flight at any time, so every
 * message pays the full scheduling round trip: the receiver's queue goes
 * empty -> pushed on the global run queue -> popped by a worker -> drained
 * -> leaves scheduling again (latency-bound path, no batching). With 8 pairs
 * 8 messages are in flight concurrently, so the same path runs with the
 * worker threads contending on the global run queue.
 *
 * Every received message is checked (size, content, trailing NUL that copy
 * mode guarantees); a mismatch aborts the node without a BENCH line.
 */

#include "skynet.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PAIRS 256

enum role { ROLE_DRIVER, ROLE_PING, ROLE_PONG };

struct bench {
	enum role role;
	uint32_t self;
	/* driver */
	int pairs;
	long total;
	long rounds; /* round trips per pair */
	int ndone;
	int finished;
	struct timespec t0;
	uint32_t pingers[MAX_PAIRS];
	/* pinger */
	uint32_t peer;
	uint32_t driver;
	long count;
};

static double
now_sec(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
is_msg(const void *msg, size_t sz, const char *text) {
	size_t n = strlen(text);
	return msg != NULL && sz == n && memcmp(msg, text, n) == 0 && ((const char *)msg)[n] == '\0';
}

static void
send_text(struct skynet_context *ctx, uint32_t dest, const char *text) {
	/* copy mode: the core copies the payload, our literal stays ours */
	if (skynet_send(ctx, 0, dest, PTYPE_TEXT, 0, (void *)text, strlen(text)) < 0) {
		skynet_error(ctx, "BENCH-FAIL bench_pingpong: send to :%08x failed", dest);
		skynet_command(ctx, "ABORT", NULL);
	}
}

static void
fail(struct skynet_context *ctx, const char *what, uint32_t source, const void *msg, size_t sz) {
	skynet_error(ctx, "BENCH-FAIL bench_pingpong: %s (from :%08x, sz=%zu, msg=%.*s)",
		what, source, sz, msg ? (int)(sz < 32 ? sz : 32) : 0, msg ? (const char *)msg : "");
	skynet_command(ctx, "ABORT", NULL);
}

static uint32_t
launch(struct skynet_context *ctx, const char *args) {
	const char *r = skynet_command(ctx, "LAUNCH", args);
	if (r == NULL || r[0] != ':')
		return 0;
	return (uint32_t)strtoul(r + 1, NULL, 16);
}

static void
driver_start(struct skynet_context *ctx, struct bench *b) {
	char args[128];
	int i;
	for (i = 0; i < b->pairs; i++) {
		uint32_t pong = launch(ctx, "bench_pingpong pong");
		if (pong == 0) {
			fail(ctx, "launch pong failed", 0, NULL, 0);
			return;
		}
		snprintf(args, sizeof(args), "bench_pingpong ping %x %ld %x", pong, b->rounds, b->self);
		b->pingers[i] = launch(ctx, args);
		if (b->pingers[i] == 0) {
			fail(ctx, "launch ping failed", 0, NULL, 0);
			return;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b->t0);
	for (i = 0; i < b->pairs; i++)
		send_text(ctx, b->pingers[i], "go");
}

static void
driver_finish(struct skynet_context *ctx, struct bench *b) {
	double t1 = now_sec();
	double t0 = (double)b->t0.tv_sec + (double)b->t0.tv_nsec * 1e-9;
	double elapsed = t1 - t0;
	long msgs = (long)b->pairs * b->rounds * 2;
	char name[64];
	if (b->pairs == 1)
		snprintf(name, sizeof(name), "c_pingpong");
	else
		snprintf(name, sizeof(name), "c_pingpong_%dpairs", b->pairs);
	if (elapsed <= 0)
		elapsed = 1e-9;
	skynet_error(ctx, "BENCHINFO %s msgs=%ld pairs=%d elapsed=%.6fs", name, msgs, b->pairs, elapsed);
	skynet_error(ctx, "BENCH %s %.0f msgs/s", name, (double)msgs / elapsed);
	b->finished = 1;
	/* give the logger time to print before ABORT retires it */
	skynet_command(ctx, "TIMEOUT", "20");
}

static int
bench_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source, const void *msg, size_t sz) {
	struct bench *b = ud;
	switch (b->role) {
	case ROLE_PONG:
		if (type != PTYPE_TEXT || !is_msg(msg, sz, "ping")) {
			fail(ctx, "pong got unexpected message", source, msg, sz);
			break;
		}
		send_text(ctx, source, "pong");
		break;
	case ROLE_PING:
		if (type == PTYPE_TEXT && source == b->peer && is_msg(msg, sz, "pong")) {
			if (++b->count >= b->rounds)
				send_text(ctx, b->driver, "done");
			else
				send_text(ctx, b->peer, "ping");
		} else if (type == PTYPE_TEXT && source == b->driver && is_msg(msg, sz, "go")) {
			b->count = 0;
			send_text(ctx, b->peer, "ping");
		} else {
			fail(ctx, "ping got unexpected message", source, msg, sz);
		}
		break;
	case ROLE_DRIVER:
		if (type == PTYPE_RESPONSE && b->finished) {
			skynet_command(ctx, "ABORT", NULL);
		} else if (type == PTYPE_TEXT && source == b->self && is_msg(msg, sz, "start")) {
			driver_start(ctx, b);
		} else if (type == PTYPE_TEXT && is_msg(msg, sz, "done")) {
			if (++b->ndone == b->pairs)
				driver_finish(ctx, b);
		} else {
			fail(ctx, "driver got unexpected message", source, msg, sz);
		}
		break;
	}
	return 0;
}

struct bench *
bench_pingpong_create(void) {
	struct bench *b = calloc(1, sizeof(*b));
	return b;
}

void
bench_pingpong_release(struct bench *b) {
	free(b);
}

int
bench_pingpong_init(struct bench *b, struct skynet_context *ctx, const char *parm) {
	const char *reg = skynet_command(ctx, "REG", NULL);
	if (reg == NULL || reg[0] != ':')
		return 1;
	b->self = (uint32_t)strtoul(reg + 1, NULL, 16);
	if (parm == NULL) {
		skynet_error(ctx, "BENCH-FAIL bench_pingpong: need parameters");
		return 1;
	}
	if (strncmp(parm, "pong", 4) == 0) {
		b->role = ROLE_PONG;
	} else if (strncmp(parm, "ping ", 5) == 0) {
		unsigned peer, driver;
		b->role = ROLE_PING;
		if (sscanf(parm + 5, "%x %ld %x", &peer, &b->rounds, &driver) != 3 || b->rounds <= 0)
			return 1;
		b->peer = peer;
		b->driver = driver;
	} else {
		b->role = ROLE_DRIVER;
		if (sscanf(parm, "%d %ld", &b->pairs, &b->total) != 2 || b->pairs <= 0 ||
			b->pairs > MAX_PAIRS || b->total <= 0) {
			skynet_error(ctx, "BENCH-FAIL bench_pingpong: bad parameters '%s' (want <pairs> <total>)", parm);
			return 1;
		}
		b->rounds = (b->total / b->pairs + 1) / 2;
		if (b->rounds <= 0)
			b->rounds = 1;
		/* the run starts from the first callback, once the workers are up */
		if (skynet_send(ctx, 0, b->self, PTYPE_TEXT, 0, "start", 5) < 0)
			return 1;
	}
	skynet_callback(ctx, b, bench_cb);
	return 0;
}
