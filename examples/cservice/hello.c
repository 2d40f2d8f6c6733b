/*
 * The example node's bootstrap: a C service module of our own.
 *
 * It names itself .hello, launches a `counter` service (another instance of this module, with
 * the argument "counter"), sends it a few numbered text messages with sessions, waits for the
 * replies, arms a timer, and when the timer fires asks the node to stop (ABORT).
 */
#include "skynet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 5

struct hello {
	int counter_mode;
	int replies;
	int total;
	int stopping;
	uint32_t counter;
};

void *
hello_create(void) {
	return calloc(1, sizeof(struct hello));
}

void
hello_release(void *inst) {
	free(inst);
}

static int
counter_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source, const void *msg, size_t sz) {
	struct hello *h = ud;
	if (type != PTYPE_TEXT)
		return 0;
	/* Copy-mode text payloads carry a NUL at msg[sz]. */
	h->total += atoi(msg);
	char reply[32];
	int n = snprintf(reply, sizeof(reply), "%d", h->total);
	skynet_send(ctx, 0, source, PTYPE_RESPONSE, session, reply, (size_t)n);
	return 0;
}

static int
boot_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source, const void *msg, size_t sz) {
	struct hello *h = ud;
	if (type == PTYPE_RESPONSE && source != 0) {
		skynet_error(ctx, "reply to session %d from :%08x: running total %.*s", session, source, (int)sz, (const char *)msg);
		if (++h->replies == ROUNDS) {
			skynet_error(ctx, "all %d replies in; stopping in 0.5 s (TIMEOUT 50 -> session %s)",
				ROUNDS, skynet_command(ctx, "TIMEOUT", "50"));
		}
	} else if (type == PTYPE_RESPONSE && h->stopping == 0) {
		skynet_error(ctx, "timer fired (session %d), now = %llu cs; bye", session, (unsigned long long)skynet_now());
		/* ABORT retires the logger too: give it a tick to print the line above first. */
		h->stopping = atoi(skynet_command(ctx, "TIMEOUT", "2"));
	} else if (type == PTYPE_RESPONSE && session == h->stopping) {
		skynet_command(ctx, "ABORT", NULL);
	} else if (type == PTYPE_ERROR) {
		skynet_error(ctx, "error reply for session %d from :%08x", session, source);
	}
	return 0;
}

int
hello_init(void *inst, struct skynet_context *ctx, const char *parm) {
	struct hello *h = inst;
	if (parm && strcmp(parm, "counter") == 0) {
		h->counter_mode = 1;
		skynet_callback(ctx, h, counter_cb);
		skynet_command(ctx, "REG", ".counter");
		return 0;
	}
	skynet_callback(ctx, h, boot_cb);
	skynet_command(ctx, "REG", ".hello");
	skynet_error(ctx, "hello from a C bootstrap on skynet-rs; harbor %s, %s worker threads",
		skynet_command(ctx, "GETENV", "harbor"), skynet_command(ctx, "GETENV", "thread"));
	const char *addr = skynet_command(ctx, "LAUNCH", "hello counter");
	if (addr == NULL) {
		skynet_error(ctx, "can't launch the counter");
		return 1;
	}
	h->counter = skynet_queryname(ctx, addr);
	int i;
	for (i = 1; i <= ROUNDS; i++) {
		char num[16];
		int n = snprintf(num, sizeof(num), "%d", i);
		int session = skynet_sendname(ctx, 0, ".counter", PTYPE_TEXT | PTYPE_TAG_ALLOCSESSION, 0, num, (size_t)n);
		skynet_error(ctx, "sent %d to .counter (%s) with session %d", i, addr, session);
	}
	return 0;
}
