/*
 * A C service module written against the public headers the way upstream's cservice and
 * luaclib sources use them. ffi/tests/c_compat.rs compiles it with -Wall -Wextra -Werror: it
 * proves the headers in include/ are complete, self-contained and layout-compatible.
 * It is never loaded.
 */
#ifdef SYSTEM_HEADERS_FIRST
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#endif

#include "skynet.h"
#include "skynet.h" /* include guards */
#include "skynet_env.h"
#include "skynet_harbor.h"
#include "skynet_harbor.h"
#include "skynet_malloc.h"
#include "skynet_socket.h"
#include "skynet_socket.h"

/* Redeclaring libc functions after our headers must not conflict. */
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upstream's include guard names. */
#if !defined(SKYNET_H) || !defined(SKYNET_ENV_H) || !defined(SKYNET_HARBOR_H) || !defined(skynet_malloc_h) \
	|| !defined(skynet_socket_h) || !defined(socket_buffer_h) || !defined(socket_info_h)
#error "include guard names differ from upstream"
#endif

/* Constants, usable in #if as upstream's. */
#if PTYPE_TEXT != 0 || PTYPE_RESPONSE != 1 || PTYPE_MULTICAST != 2 || PTYPE_CLIENT != 3 \
	|| PTYPE_SYSTEM != 4 || PTYPE_HARBOR != 5 || PTYPE_SOCKET != 6 || PTYPE_ERROR != 7 \
	|| PTYPE_RESERVED_QUEUE != 8 || PTYPE_RESERVED_DEBUG != 9 || PTYPE_RESERVED_LUA != 10 \
	|| PTYPE_RESERVED_SNAX != 11
#error "PTYPE_* values"
#endif
#if PTYPE_TAG_DONTCOPY != 0x10000 || PTYPE_TAG_ALLOCSESSION != 0x20000
#error "PTYPE_TAG_* values"
#endif
#if GLOBALNAME_LENGTH != 16 || REMOTE_MAX != 256
#error "skynet_harbor.h constants"
#endif

#if SKYNET_SOCKET_TYPE_DATA != 1 || SKYNET_SOCKET_TYPE_CONNECT != 2 || SKYNET_SOCKET_TYPE_CLOSE != 3 \
	|| SKYNET_SOCKET_TYPE_ACCEPT != 4 || SKYNET_SOCKET_TYPE_ERROR != 5 || SKYNET_SOCKET_TYPE_UDP != 6 \
	|| SKYNET_SOCKET_TYPE_WARNING != 7
#error "SKYNET_SOCKET_TYPE_* values"
#endif
#if SOCKET_BUFFER_MEMORY != 0 || SOCKET_BUFFER_OBJECT != 1 || SOCKET_BUFFER_RAWPOINTER != 2
#error "SOCKET_BUFFER_* values"
#endif
#if SOCKET_INFO_UNKNOWN != 0 || SOCKET_INFO_LISTEN != 1 || SOCKET_INFO_TCP != 2 || SOCKET_INFO_UDP != 3 \
	|| SOCKET_INFO_BIND != 4 || SOCKET_INFO_CLOSING != 5
#error "SOCKET_INFO_* values"
#endif

/* The allocation names are macros for the libc functions (no skynet_malloc symbol). */
#define STR_(x) #x
#define STR(x) STR_(x)
_Static_assert(sizeof(STR(skynet_malloc)) == sizeof("malloc"), "skynet_malloc -> malloc");
_Static_assert(sizeof(STR(skynet_free)) == sizeof("free"), "skynet_free -> free");

/* struct layouts (LP64). */
_Static_assert(sizeof(struct remote_name) == 20, "remote_name size");
_Static_assert(offsetof(struct remote_name, name) == 0, "remote_name.name");
_Static_assert(sizeof(((struct remote_name *)0)->name) == GLOBALNAME_LENGTH, "name length");
_Static_assert(offsetof(struct remote_name, handle) == 16, "remote_name.handle");
_Static_assert(sizeof(struct remote_message) == 48, "remote_message size");
_Static_assert(offsetof(struct remote_message, destination) == 0, "remote_message.destination");
_Static_assert(offsetof(struct remote_message, message) == 24, "remote_message.message");
_Static_assert(offsetof(struct remote_message, sz) == 32, "remote_message.sz");
_Static_assert(offsetof(struct remote_message, type) == 40, "remote_message.type");
_Static_assert(sizeof(struct skynet_socket_message) == 24, "skynet_socket_message size");
_Static_assert(offsetof(struct skynet_socket_message, type) == 0, "skynet_socket_message.type");
_Static_assert(offsetof(struct skynet_socket_message, id) == 4, "skynet_socket_message.id");
_Static_assert(offsetof(struct skynet_socket_message, ud) == 8, "skynet_socket_message.ud");
_Static_assert(offsetof(struct skynet_socket_message, buffer) == 16, "skynet_socket_message.buffer");
_Static_assert(sizeof(struct socket_sendbuffer) == 24, "socket_sendbuffer size");
_Static_assert(offsetof(struct socket_sendbuffer, id) == 0, "socket_sendbuffer.id");
_Static_assert(offsetof(struct socket_sendbuffer, type) == 4, "socket_sendbuffer.type");
_Static_assert(offsetof(struct socket_sendbuffer, buffer) == 8, "socket_sendbuffer.buffer");
_Static_assert(offsetof(struct socket_sendbuffer, sz) == 16, "socket_sendbuffer.sz");
_Static_assert(sizeof(struct socket_info) == 200, "socket_info size");
_Static_assert(offsetof(struct socket_info, id) == 0, "socket_info.id");
_Static_assert(offsetof(struct socket_info, type) == 4, "socket_info.type");
_Static_assert(offsetof(struct socket_info, opaque) == 8, "socket_info.opaque");
_Static_assert(offsetof(struct socket_info, read) == 16, "socket_info.read");
_Static_assert(offsetof(struct socket_info, write) == 24, "socket_info.write");
_Static_assert(offsetof(struct socket_info, rtime) == 32, "socket_info.rtime");
_Static_assert(offsetof(struct socket_info, wtime) == 40, "socket_info.wtime");
_Static_assert(offsetof(struct socket_info, wbuffer) == 48, "socket_info.wbuffer");
_Static_assert(offsetof(struct socket_info, reading) == 56, "socket_info.reading");
_Static_assert(offsetof(struct socket_info, writing) == 57, "socket_info.writing");
_Static_assert(offsetof(struct socket_info, name) == 58, "socket_info.name");
_Static_assert(sizeof(((struct socket_info *)0)->name) == 128, "socket_info.name size");
_Static_assert(offsetof(struct socket_info, next) == 192, "socket_info.next");

/* Every function, typed exactly as upstream declares it (a mismatch is an error with -Werror). */
const struct {
	void (*error)(struct skynet_context *, const char *, ...);
	const char *(*command)(struct skynet_context *, const char *, const char *);
	uint32_t (*queryname)(struct skynet_context *, const char *);
	int (*send)(struct skynet_context *, uint32_t, uint32_t, int, int, void *, size_t);
	int (*sendname)(struct skynet_context *, uint32_t, const char *, int, int, void *, size_t);
	int (*isremote)(struct skynet_context *, uint32_t, int *);
	void (*callback)(struct skynet_context *, void *, skynet_cb);
	uint32_t (*current_handle)(void);
	uint64_t (*now)(void);
	void (*debug_memory)(const char *);
	const char *(*getenv)(const char *);
	void (*setenv)(const char *, const char *);
	void (*env_init)(void);
	void (*harbor_send)(struct remote_message *, uint32_t, int);
	int (*harbor_message_isremote)(uint32_t);
	void (*harbor_init)(int);
	void (*harbor_start)(void *);
	void (*harbor_exit)(void);
	char *(*strdup)(const char *);
	void *(*lalloc)(void *, size_t, size_t);
	void *(*malloc)(size_t);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void (*free)(void *);
	void *(*memalign)(size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	int (*socket_sendbuffer)(struct skynet_context *, struct socket_sendbuffer *);
	int (*socket_sendbuffer_lowpriority)(struct skynet_context *, struct socket_sendbuffer *);
	int (*socket_listen)(struct skynet_context *, const char *, int, int);
	int (*socket_connect)(struct skynet_context *, const char *, int);
	int (*socket_bind)(struct skynet_context *, int);
	void (*socket_close)(struct skynet_context *, int);
	void (*socket_shutdown)(struct skynet_context *, int);
	void (*socket_start)(struct skynet_context *, int);
	void (*socket_pause)(struct skynet_context *, int);
	void (*socket_nodelay)(struct skynet_context *, int);
	int (*socket_udp)(struct skynet_context *, const char *, int);
	int (*socket_udp_connect)(struct skynet_context *, int, const char *, int);
	int (*socket_udp_dial)(struct skynet_context *, const char *, int);
	int (*socket_udp_listen)(struct skynet_context *, const char *, int);
	int (*socket_udp_sendbuffer)(struct skynet_context *, const char *, struct socket_sendbuffer *);
	const char *(*socket_udp_address)(struct skynet_socket_message *, int *);
	struct socket_info *(*socket_info)(void);
	struct socket_info *(*socket_info_create)(struct socket_info *);
	void (*socket_info_release)(struct socket_info *);
	int (*socket_send)(struct skynet_context *, int, void *, int);
	int (*socket_send_lowpriority)(struct skynet_context *, int, void *, int);
	int (*socket_udp_send)(struct skynet_context *, int, const char *, const void *, int);
} compat_api = {
	skynet_error, skynet_command, skynet_queryname, skynet_send, skynet_sendname,
	skynet_isremote, skynet_callback, skynet_current_handle, skynet_now, skynet_debug_memory,
	skynet_getenv, skynet_setenv, skynet_env_init,
	skynet_harbor_send, skynet_harbor_message_isremote, skynet_harbor_init, skynet_harbor_start,
	skynet_harbor_exit,
	skynet_strdup, skynet_lalloc, skynet_malloc, skynet_calloc, skynet_realloc, skynet_free,
	skynet_memalign, skynet_aligned_alloc, skynet_posix_memalign,
	skynet_socket_sendbuffer, skynet_socket_sendbuffer_lowpriority, skynet_socket_listen,
	skynet_socket_connect, skynet_socket_bind, skynet_socket_close, skynet_socket_shutdown,
	skynet_socket_start, skynet_socket_pause, skynet_socket_nodelay, skynet_socket_udp,
	skynet_socket_udp_connect, skynet_socket_udp_dial, skynet_socket_udp_listen,
	skynet_socket_udp_sendbuffer, skynet_socket_udp_address, skynet_socket_info,
	socket_info_create, socket_info_release,
	skynet_socket_send, skynet_socket_send_lowpriority, skynet_socket_udp_send,
};

/* A service in upstream's module shape: <name>_create/_init/_release/_signal. */
struct compat {
	char *name;
	uint32_t peer;
	int sessions;
};

static int
compat_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source, const void *msg, size_t sz) {
	struct compat *c = ud;
	switch (type) {
	case PTYPE_TEXT:
		skynet_error(ctx, "[%s] %u bytes from :%08x: %.*s", c->name, (unsigned)sz, source, (int)sz, (const char *)msg);
		break;
	case PTYPE_RESPONSE:
		c->sessions += session != 0;
		break;
	case PTYPE_SYSTEM: {
		/* what harbor.so receives: a struct remote_message */
		const struct remote_message *rmsg = msg;
		if (sz == sizeof(*rmsg)) {
			char name[GLOBALNAME_LENGTH + 1];
			memcpy(name, rmsg->destination.name, GLOBALNAME_LENGTH);
			name[GLOBALNAME_LENGTH] = '\0';
			skynet_error(ctx, "remote %s :%x type %d size %zu", name, rmsg->destination.handle, rmsg->type, rmsg->sz);
			skynet_free((void *)rmsg->message);
		}
		break;
	}
	case PTYPE_SOCKET: {
		/* what gate.so / lua-socket do with a socket event */
		const struct skynet_socket_message *sm = msg;
		if (sz < sizeof(*sm))
			break;
		switch (sm->type) {
		case SKYNET_SOCKET_TYPE_DATA:
			/* echo: ownership of the data passes on (MEMORY) */
			skynet_socket_send(ctx, sm->id, sm->buffer, sm->ud);
			break;
		case SKYNET_SOCKET_TYPE_UDP: {
			int addrsz = 0;
			const char *addr = skynet_socket_udp_address((struct skynet_socket_message *)sm, &addrsz);
			if (addr)
				skynet_socket_udp_send(ctx, sm->id, addr, sm->buffer, sm->ud);
			else
				skynet_free(sm->buffer);
			break;
		}
		case SKYNET_SOCKET_TYPE_CONNECT:
		case SKYNET_SOCKET_TYPE_ACCEPT:
		case SKYNET_SOCKET_TYPE_ERROR:
			skynet_error(ctx, "socket %d: %.*s", sm->id, (int)(sz - sizeof(*sm)), (const char *)(sm + 1));
			if (sm->type == SKYNET_SOCKET_TYPE_ACCEPT)
				skynet_socket_start(ctx, sm->ud);
			break;
		case SKYNET_SOCKET_TYPE_WARNING:
			skynet_error(ctx, "socket %d: %d KiB pending", sm->id, sm->ud);
			break;
		case SKYNET_SOCKET_TYPE_CLOSE:
			skynet_socket_close(ctx, sm->id);
			break;
		}
		break;
	}
	default:
		break;
	}
	return 0;
}

/* socket_info as lua-socket walks it */
int
compat_socket_count(void) {
	struct socket_info *si = skynet_socket_info();
	int n = 0;
	for (struct socket_info *p = si; p; p = p->next)
		n += p->type != SOCKET_INFO_UNKNOWN && p->name[sizeof(p->name) - 1] == '\0';
	socket_info_release(si);
	return n;
}

struct compat *
compat_create(void) {
	struct compat *c = skynet_malloc(sizeof(*c));
	memset(c, 0, sizeof(*c));
	return c;
}

int
compat_init(struct compat *c, struct skynet_context *ctx, const char *parm) {
	c->name = skynet_strdup(parm ? parm : "compat");
	const char *self = skynet_command(ctx, "REG", NULL);
	uint32_t handle = self ? (uint32_t)strtoul(self + 1, NULL, 16) : 0;
	skynet_command(ctx, "TIMEOUT", "100");
	c->peer = skynet_queryname(ctx, ".launcher");
	int harbor = 0;
	if (skynet_isremote(ctx, handle, &harbor))
		return 1;

	/* copied, then given up (PTYPE_TAG_DONTCOPY), with and without a new session */
	skynet_send(ctx, 0, c->peer, PTYPE_TEXT, 0, "hello", 5);
	char *text = skynet_malloc(16);
	strcpy(text, "given up");
	skynet_send(ctx, 0, c->peer, PTYPE_TEXT | PTYPE_TAG_DONTCOPY, 0, text, strlen(text));
	c->sessions = skynet_sendname(ctx, 0, ".launcher", PTYPE_TEXT | PTYPE_TAG_ALLOCSESSION, 0, NULL, 0);

	/* a remote message as the core hands it to harbor.so */
	struct remote_message *rmsg = skynet_calloc(1, sizeof(*rmsg));
	memcpy(rmsg->destination.name, "service", 8);
	rmsg->destination.handle = 0;
	rmsg->message = skynet_realloc(NULL, 4);
	rmsg->sz = 4;
	rmsg->type = PTYPE_HARBOR;
	if (skynet_harbor_message_isremote(0x02000001))
		skynet_harbor_send(rmsg, handle, 0);
	else {
		skynet_free((void *)rmsg->message);
		skynet_free(rmsg);
	}

	void *p = skynet_lalloc(NULL, 0, 64);
	p = skynet_lalloc(p, 64, 0);
	void *aligned = NULL;
	if (skynet_posix_memalign(&aligned, 64, 128) == 0)
		skynet_free(aligned);
	skynet_free(skynet_memalign(64, 64));
	skynet_free(skynet_aligned_alloc(64, 64));

	if (skynet_getenv("compat") == NULL)
		skynet_setenv("compat", "1");
	skynet_error(ctx, "compat %s: :%08x at %llu (current :%08x)", c->name, handle,
		(unsigned long long)skynet_now(), skynet_current_handle());
	skynet_debug_memory("compat");
	skynet_callback(ctx, c, compat_cb);
	return p == NULL ? 0 : 1;
}

void
compat_release(struct compat *c) {
	skynet_free(c->name);
	skynet_free(c);
}

void
compat_signal(struct compat *c, int signal) {
	(void)c;
	(void)signal;
}

/* What harbor.so's init does with its own context. */
void
compat_harbor_start(struct skynet_context *ctx) {
	skynet_harbor_start(ctx);
}
