/*
 * bench_sockecho: the C-module side of the socket echo benchmark (compat-tests/bench/socket).
 *
 *   bootstrap = "bench_sockecho [host]"
 *
 * A TCP echo server on skynet_socket.h alone: listens on host (default 127.0.0.1) port 0 and
 * logs "LISTEN <ip> <port>" (the port comes in the listen CONNECT event's ud); starts every
 * accepted connection with TCP_NODELAY and sends each DATA buffer straight back (its ownership
 * passes to the socket layer: skynet_socket_send), so the service adds nothing but one
 * callback per read to what the core does. Runs until the node is killed. Errors and
 * send-buffer warnings are logged ("SOCKECHO ERROR ..."), so a run that hits them is visible.
 */

#include "skynet.h"
#include "skynet_socket.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sockecho {
	int listen_id;
};

void *
bench_sockecho_create(void) {
	struct sockecho *e = malloc(sizeof(*e));
	e->listen_id = -1;
	return e;
}

void
bench_sockecho_release(struct sockecho *e) {
	free(e);
}

/* The inline text of a CONNECT/ERROR/ACCEPT event, copied NUL terminated into buf. */
static const char *
text_of(const struct skynet_socket_message *m, size_t sz, char *buf, size_t bufsz) {
	size_t len = sz - sizeof(*m);
	if (len >= bufsz)
		len = bufsz - 1;
	memcpy(buf, m + 1, len);
	buf[len] = '\0';
	return buf;
}

static int
sockecho_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	(void)session;
	(void)source;
	struct sockecho *e = ud;
	if (type != PTYPE_SOCKET)
		return 0;
	const struct skynet_socket_message *m = msg;
	char text[160];
	switch (m->type) {
	case SKYNET_SOCKET_TYPE_DATA:
		skynet_socket_send(ctx, m->id, m->buffer, m->ud);
		break;
	case SKYNET_SOCKET_TYPE_ACCEPT:
		skynet_socket_start(ctx, m->ud);
		skynet_socket_nodelay(ctx, m->ud);
		break;
	case SKYNET_SOCKET_TYPE_CLOSE:
		skynet_socket_close(ctx, m->id);
		break;
	case SKYNET_SOCKET_TYPE_CONNECT:
		if (m->id == e->listen_id && m->ud > 0)
			skynet_error(ctx, "LISTEN %s %d", text_of(m, sz, text, sizeof(text)), m->ud);
		break;
	case SKYNET_SOCKET_TYPE_ERROR:
		skynet_error(ctx, "SOCKECHO ERROR %d %s", m->id, text_of(m, sz, text, sizeof(text)));
		break;
	case SKYNET_SOCKET_TYPE_WARNING:
		skynet_error(ctx, "SOCKECHO WARNING %d %d", m->id, m->ud);
		break;
	}
	return 0;
}

int
bench_sockecho_init(struct sockecho *e, struct skynet_context *ctx, const char *parm) {
	const char *host = (parm && parm[0]) ? parm : "127.0.0.1";
	e->listen_id = skynet_socket_listen(ctx, host, 0, 1024);
	if (e->listen_id < 0) {
		skynet_error(ctx, "SOCKECHO ERROR listen %s", host);
		return 1;
	}
	skynet_socket_start(ctx, e->listen_id);
	skynet_callback(ctx, e, sockecho_cb);
	return 0;
}
