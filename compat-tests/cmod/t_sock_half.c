/* t_sock_half: the peer shuts down its write side (half-close).
 * Listens on 127.0.0.1 port 0 ("LISTEN <ip> <port>"); the test client sends "question" then
 * shuts down writing. On CLOSE the service still sends "answer:<what it read>" and closes;
 * the peer must read it all, and no second CLOSE (nor an ERROR) may follow.
 */
#include "ctsock.h"

struct half {
	int listen_id;
	int conn;
	char got[64];
	int got_len;
	int closes;
	int errors;
	int finish_session;
};

void *
t_sock_half_create(void) {
	return calloc(1, sizeof(struct half));
}

void
t_sock_half_release(struct half *h) {
	free(h);
}

static int
half_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	CT_UNUSED(source);
	struct half *h = ud;
	if (type == PTYPE_RESPONSE && session == h->finish_session) {
		ct_expect_int(ctx, "close_event_once", h->closes, 1);
		ct_expect_int(ctx, "no_error_after_half_close", h->errors, 0);
		struct socket_info *si = skynet_socket_info();
		int conn_listed = 0;
		for (struct socket_info *p = si; p; p = p->next)
			conn_listed += p->id == h->conn;
		socket_info_release(si);
		ct_expect_int(ctx, "closed_socket_gone_from_info", conn_listed, 0);
		skynet_socket_close(ctx, h->listen_id);
		ct_finish(ctx);
		return 0;
	}
	if (type != PTYPE_SOCKET)
		return 0;
	const struct skynet_socket_message *m = msg;
	char text[160];
	switch (m->type) {
	case SKYNET_SOCKET_TYPE_CONNECT:
		if (m->id == h->listen_id && m->ud > 0) {
			skynet_error(ctx, "LISTEN %s %d", cts_copy_text(m, sz, text, sizeof(text)), m->ud);
			skynet_socket_start(ctx, m->id);
		}
		break;
	case SKYNET_SOCKET_TYPE_ACCEPT:
		h->conn = m->ud;
		skynet_socket_start(ctx, m->ud);
		break;
	case SKYNET_SOCKET_TYPE_DATA:
		if (h->got_len + m->ud < (int)sizeof(h->got)) {
			memcpy(h->got + h->got_len, m->buffer, (size_t)m->ud);
			h->got_len += m->ud;
		}
		free(m->buffer);
		break;
	case SKYNET_SOCKET_TYPE_CLOSE:
		if (m->id != h->conn)
			break;
		h->closes++;
		if (h->closes > 1)
			break;
		ct_check(ctx, "data_before_close", h->got_len == 8 && memcmp(h->got, "question", 8) == 0,
			"got %.*s", h->got_len, h->got);
		char answer[80];
		int n = snprintf(answer, sizeof(answer), "answer:%.*s", h->got_len, h->got);
		struct socket_sendbuffer buf = { h->conn, SOCKET_BUFFER_RAWPOINTER, answer, (size_t)n };
		ct_expect_int(ctx, "send_after_peer_close", skynet_socket_sendbuffer(ctx, &buf), 0);
		skynet_socket_close(ctx, h->conn);
		h->finish_session = ct_timeout(ctx, "30");
		break;
	case SKYNET_SOCKET_TYPE_ERROR:
		h->errors++;
		skynet_error(ctx, "ERROR %d %s", m->id, cts_copy_text(m, sz, text, sizeof(text)));
		break;
	}
	return 0;
}

int
t_sock_half_init(struct half *h, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	h->listen_id = skynet_socket_listen(ctx, "127.0.0.1", 0, 16);
	skynet_callback(ctx, h, half_cb);
	return h->listen_id < 0;
}
