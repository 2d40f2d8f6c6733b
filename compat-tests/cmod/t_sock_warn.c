/* t_sock_warn: the send-buffer warning.
 * Listens on 127.0.0.1 port 0 ("LISTEN <ip> <port>"). Once a client connects (and does not
 * read), the service sends 1 MiB per centisecond (SOCKET_BUFFER_MEMORY, 64 KiB blocks) until a
 * WARNING arrives, then logs "WARNED <KiB> SENT <bytes>" and stops. The client then reads all
 * of it; the drained WARNING (ud 0) must follow, after which the service finishes.
 */
#include "ctsock.h"

#define CHUNK (64 * 1024)
#define LIMIT (48LL << 20)

struct warn {
	int listen_id;
	int conn;
	long long sent;
	int warned_kib;
	int warnings;
	int session;
};

void *
t_sock_warn_create(void) {
	return calloc(1, sizeof(struct warn));
}

void
t_sock_warn_release(struct warn *w) {
	free(w);
}

static void
send_more(struct skynet_context *ctx, struct warn *w) {
	for (int i = 0; i < 16 && w->sent < LIMIT; i++) {
		char *p = malloc(CHUNK);
		memset(p, 'a' + (int)((w->sent / CHUNK) % 26), CHUNK);
		if (skynet_socket_send(ctx, w->conn, p, CHUNK) != 0) {
			skynet_error(ctx, "CHECK send FAIL at %lld", w->sent);
			return;
		}
		w->sent += CHUNK;
	}
	if (w->sent >= LIMIT) {
		skynet_error(ctx, "CHECK warning_before_limit FAIL sent %lld", w->sent);
		return;
	}
	w->session = ct_timeout(ctx, "1");
}

static int
warn_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	CT_UNUSED(source);
	struct warn *w = ud;
	if (type == PTYPE_RESPONSE && session == w->session && w->warned_kib == 0) {
		send_more(ctx, w);
		return 0;
	}
	if (type != PTYPE_SOCKET)
		return 0;
	const struct skynet_socket_message *m = msg;
	char text[160];
	switch (m->type) {
	case SKYNET_SOCKET_TYPE_CONNECT:
		if (m->id == w->listen_id && m->ud > 0) {
			skynet_error(ctx, "LISTEN %s %d", cts_copy_text(m, sz, text, sizeof(text)), m->ud);
			skynet_socket_start(ctx, m->id);
		} else if (m->id == w->conn) {
			send_more(ctx, w);
		}
		break;
	case SKYNET_SOCKET_TYPE_ACCEPT:
		w->conn = m->ud;
		skynet_socket_start(ctx, m->ud);
		break;
	case SKYNET_SOCKET_TYPE_WARNING:
		ct_expect_int(ctx, "warning_id", m->id, w->conn);
		w->warnings++;
		if (m->ud > 0 && w->warned_kib == 0) {
			w->warned_kib = m->ud;
			ct_check(ctx, "warning_kib", m->ud >= 1024 && (long long)m->ud * 1024 <= w->sent,
				"%d KiB pending of %lld sent", m->ud, w->sent);
			skynet_error(ctx, "WARNED %d SENT %lld", m->ud, w->sent);
		} else if (m->ud == 0) {
			ct_check(ctx, "drained_warning", w->warned_kib > 0, "drained before warned");
			skynet_socket_close(ctx, w->conn);
			skynet_socket_close(ctx, w->listen_id);
			ct_finish(ctx);
		}
		break;
	case SKYNET_SOCKET_TYPE_DATA:
		free(m->buffer);
		break;
	case SKYNET_SOCKET_TYPE_ERROR:
		skynet_error(ctx, "ERROR %d %s", m->id, cts_copy_text(m, sz, text, sizeof(text)));
		break;
	}
	return 0;
}

int
t_sock_warn_init(struct warn *w, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	w->listen_id = skynet_socket_listen(ctx, "127.0.0.1", 0, 16);
	skynet_callback(ctx, w, warn_cb);
	return w->listen_id < 0;
}
