/* t_sock_echo [host]: a TCP echo server (the shape of a gate).
 * Listens on host (default 127.0.0.1) port 0 and logs "LISTEN <ip> <port>"; starts every
 * accepted connection and echoes each DATA buffer back (ownership of the buffer passes to the
 * socket layer: SOCKET_BUFFER_MEMORY); closes a connection on CLOSE. Data "QUIT" on a
 * connection: once every other connection has closed, logs
 * "ECHO accepted=<n> closed=<n> bytes=<n> errors=<n>" and finishes.
 */
#include "ctsock.h"

struct echo {
	int listen_id;
	int accepted;
	int closed;
	int quitting;
	long long bytes;
	int errors;
};

void *
t_sock_echo_create(void) {
	return calloc(1, sizeof(struct echo));
}

void
t_sock_echo_release(struct echo *e) {
	free(e);
}

static void
check_done(struct skynet_context *ctx, struct echo *e) {
	if (e->quitting && e->closed >= e->accepted - 1) {
		e->quitting = 0;
		skynet_error(ctx, "ECHO accepted=%d closed=%d bytes=%lld errors=%d", e->accepted,
			e->closed, e->bytes, e->errors);
		skynet_socket_close(ctx, e->listen_id);
		ct_finish(ctx);
	}
}

static int
echo_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	CT_UNUSED(session);
	CT_UNUSED(source);
	struct echo *e = ud;
	if (type != PTYPE_SOCKET)
		return 0;
	const struct skynet_socket_message *m = msg;
	char text[160];
	switch (m->type) {
	case SKYNET_SOCKET_TYPE_CONNECT:
		if (m->id == e->listen_id && m->ud > 0) {
			skynet_error(ctx, "LISTEN %s %d", cts_copy_text(m, sz, text, sizeof(text)), m->ud);
			skynet_socket_start(ctx, m->id);
		}
		break;
	case SKYNET_SOCKET_TYPE_ACCEPT:
		e->accepted++;
		skynet_socket_start(ctx, m->ud);
		break;
	case SKYNET_SOCKET_TYPE_DATA:
		if (m->ud == 4 && memcmp(m->buffer, "QUIT", 4) == 0) {
			free(m->buffer);
			e->quitting = 1;
			check_done(ctx, e);
			break;
		}
		e->bytes += m->ud;
		if (skynet_socket_send(ctx, m->id, m->buffer, m->ud) != 0)
			e->errors++;
		break;
	case SKYNET_SOCKET_TYPE_CLOSE:
		e->closed++;
		skynet_socket_close(ctx, m->id);
		check_done(ctx, e);
		break;
	case SKYNET_SOCKET_TYPE_ERROR:
		e->errors++;
		skynet_error(ctx, "ERROR %d %s", m->id, cts_copy_text(m, sz, text, sizeof(text)));
		break;
	case SKYNET_SOCKET_TYPE_WARNING:
		skynet_error(ctx, "WARNING %d %d", m->id, m->ud);
		break;
	}
	return 0;
}

int
t_sock_echo_init(struct echo *e, struct skynet_context *ctx, const char *parm) {
	const char *host = (parm && parm[0]) ? parm : "127.0.0.1";
	e->listen_id = skynet_socket_listen(ctx, host, 0, 1024);
	if (e->listen_id < 0) {
		skynet_error(ctx, "CHECK listen FAIL %s", host);
		return 1;
	}
	skynet_callback(ctx, e, echo_cb);
	return 0;
}
