/* Shared helpers for the compat-test C modules (header only, all static inline).
 *
 * Reporting convention read by compat-tests/tests/cmod.rs:
 *   "CHECK <what> ok" | "CHECK <what> FAIL <details>"  one line per check
 *   "DONE"                                              scenario finished
 * ct_finish() prints DONE, waits 10 cs so the logger can drain, then ABORTs the node.
 */
#ifndef COMPAT_CTEST_H
#define COMPAT_CTEST_H

#include "skynet.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT_UNUSED(x) ((void)(x))

static inline int ct_check(struct skynet_context *ctx, const char *what, int ok,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static inline int
ct_check(struct skynet_context *ctx, const char *what, int ok, const char *fmt, ...) {
	if (ok) {
		skynet_error(ctx, "CHECK %s ok", what);
	} else {
		char detail[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
		skynet_error(ctx, "CHECK %s FAIL %s", what, detail);
	}
	return ok;
}

/* Compare strings; want == NULL means "expect NULL". */
static inline int
ct_expect_str(struct skynet_context *ctx, const char *what, const char *got, const char *want) {
	int ok = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;
	return ct_check(ctx, what, ok, "got %s%s%s want %s%s%s",
		got ? "[" : "", got ? got : "NULL", got ? "]" : "",
		want ? "[" : "", want ? want : "NULL", want ? "]" : "");
}

static inline int
ct_expect_int(struct skynet_context *ctx, const char *what, long long got, long long want) {
	return ct_check(ctx, what, got == want, "got %lld want %lld", got, want);
}

/* Parse ":hex" (any case); 0 on NULL or bad syntax. */
static inline uint32_t
ct_parse_handle(const char *s) {
	if (s == NULL || s[0] != ':')
		return 0;
	return (uint32_t)strtoul(s + 1, NULL, 16);
}

/* Own handle, via "REG" (checked separately by the scenarios). */
static inline uint32_t
ct_self(struct skynet_context *ctx) {
	return ct_parse_handle(skynet_command(ctx, "REG", NULL));
}

/* LAUNCH "<mod_args>", returning the handle (0 on failure). */
static inline uint32_t
ct_launch(struct skynet_context *ctx, const char *mod_args) {
	return ct_parse_handle(skynet_command(ctx, "LAUNCH", mod_args));
}

/* Issue a text command whose parameter is ":<hex handle>" plus an optional suffix. */
static inline const char *
ct_cmd_handle(struct skynet_context *ctx, const char *cmd, uint32_t h, const char *suffix) {
	char param[64];
	snprintf(param, sizeof(param), ":%x%s", (unsigned)h, suffix ? suffix : "");
	return skynet_command(ctx, cmd, param);
}

/* Text send without session; returns skynet_send's result. */
static inline int
ct_send_text(struct skynet_context *ctx, uint32_t dest, int session, const char *text) {
	return skynet_send(ctx, 0, dest, PTYPE_TEXT, session, (void *)text, strlen(text));
}

static inline int
ct_timeout(struct skynet_context *ctx, const char *cs) {
	const char *r = skynet_command(ctx, "TIMEOUT", cs);
	return r ? (int)strtol(r, NULL, 10) : -1;
}

static inline int
ct_finish_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
             const void *msg, size_t sz) {
	CT_UNUSED(source);
	CT_UNUSED(msg);
	CT_UNUSED(sz);
	if (type == PTYPE_RESPONSE && session == (int)(intptr_t)ud)
		skynet_command(ctx, "ABORT", NULL);
	return 0;
}

/* Print DONE, then ABORT the node 10 cs later (replaces the service callback). */
static inline void
ct_finish(struct skynet_context *ctx) {
	skynet_error(ctx, "DONE");
	int session = ct_timeout(ctx, "10");
	skynet_callback(ctx, (void *)(intptr_t)session, ct_finish_cb);
}

#endif
