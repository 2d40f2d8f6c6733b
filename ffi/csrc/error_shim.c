/* skynet_error: printf-style front end of the Rust logger entry point. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct skynet_context;

/* Defined in Rust (ffi/src/abi/skynet.rs): logs `len` bytes of `text`. */
void skynet_rs_error_text(struct skynet_context *ctx, const char *text, size_t len);

void
skynet_error(struct skynet_context *ctx, const char *fmt, ...) {
	va_list ap;
	if (fmt == NULL)
		return;
	/* "%*s" takes (int len, const char *p) and keeps exactly len bytes, NULs included:
	   lua-skynet's skynet.error relies on it. */
	if (strcmp(fmt, "%*s") == 0) {
		va_start(ap, fmt);
		int len = va_arg(ap, int);
		const char *p = va_arg(ap, const char *);
		va_end(ap);
		skynet_rs_error_text(ctx, p, len > 0 && p ? (size_t)len : 0);
		return;
	}
	char tmp[256];
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		skynet_rs_error_text(ctx, tmp, (size_t)n);
		return;
	}
	char *buf = malloc((size_t)n + 1);
	if (buf == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, (size_t)n + 1, fmt, ap);
	va_end(ap);
	skynet_rs_error_text(ctx, buf, (size_t)n);
	free(buf);
}
