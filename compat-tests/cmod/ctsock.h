/* Socket helpers for the t_sock_* compat-test modules (header only). */
#ifndef COMPAT_CTSOCK_H
#define COMPAT_CTSOCK_H

#include "ctest.h"
#include "skynet_socket.h"

/* The inline text of a CONNECT/ERROR/ACCEPT event (not NUL terminated) and its length. */
static inline const char *
cts_text(const struct skynet_socket_message *m, size_t sz, int *len) {
	*len = (int)(sz - sizeof(*m));
	return (const char *)(m + 1);
}

/* Copies the inline text into buf (NUL terminated). */
static inline const char *
cts_copy_text(const struct skynet_socket_message *m, size_t sz, char *buf, size_t bufsz) {
	int len;
	const char *t = cts_text(m, sz, &len);
	if ((size_t)len >= bufsz)
		len = (int)bufsz - 1;
	memcpy(buf, t, (size_t)len);
	buf[len] = '\0';
	return buf;
}

/* A malloc'd copy of text, for SOCKET_BUFFER_MEMORY sends. */
static inline void *
cts_dup(const void *p, size_t n) {
	void *r = malloc(n ? n : 1);
	memcpy(r, p, n);
	return r;
}

#endif
