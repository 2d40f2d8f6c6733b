/*
 * A C service linked into the program (main.c) instead of a .so: it logs its parameter and a
 * config key, sends itself a message, logs it when it arrives, then ends the node.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skynet.h"
#include "skynet_env.h"

struct t_static {
	int got;
};

void *
t_static_create(void) {
	struct t_static *s = skynet_malloc(sizeof(*s));
	s->got = 0;
	return s;
}

void
t_static_release(void *inst) {
	skynet_free(inst);
}

static int
cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source, const void *msg, size_t sz) {
	struct t_static *s = ud;
	if (type == PTYPE_TEXT) {
		s->got++;
		skynet_error(ctx, "STATIC got [%.*s] count=%d", (int)sz, (const char *)msg, s->got);
		/* give the logger 10 cs to print, then end the node */
		skynet_command(ctx, "TIMEOUT", "10");
	} else if (type == PTYPE_RESPONSE) {
		skynet_command(ctx, "ABORT", NULL);
	}
	return 0;
}

int
t_static_init(void *inst, struct skynet_context *ctx, const char *parm) {
	const char *greeting = skynet_getenv("greeting");
	skynet_error(ctx, "STATIC init parm=[%s] greeting=[%s]", parm ? parm : "NULL",
		greeting ? greeting : "NULL");
	skynet_callback(ctx, inst, cb);
	const char *self = skynet_command(ctx, "REG", NULL);
	uint32_t handle = (uint32_t)strtoul(self + 1, NULL, 16);
	skynet_send(ctx, 0, handle, PTYPE_TEXT, 0, (void *)"ping", 4);
	return 0;
}
