/* t_sock_pause: pause and resume.
 * Listens on 127.0.0.1 port 0 ("LISTEN <ip> <port>"). The client sends "hello"; the service
 * pauses the connection and answers "paused"; the client then sends "more data", which must
 * not arrive for 50 cs; then the service starts the socket again (CONNECT "transfer") and the
 * data arrives.
 */
#include "ctsock.h"

struct pause_state {
	int listen_id;
	int conn;
	int phase; /* 0 before hello, 1 paused, 2 resumed */
	int paused_data;
	int transfer;
	int resumed_len;
	char resumed[32];
	int session;
};

void *
t_sock_pause_create(void) {
	return calloc(1, sizeof(struct pause_state));
}

void
t_sock_pause_release(struct pause_state *p) {
	free(p);
}

static int
pause_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
         const void *msg, size_t sz) {
	CT_UNUSED(source);
	struct pause_state *p = ud;
	if (type == PTYPE_RESPONSE && session == p->session && p->phase == 1) {
		ct_expect_int(ctx, "no_data_while_paused", p->paused_data, 0);
		p->phase = 2;
		skynet_socket_start(ctx, p->conn);
		return 0;
	}
	if (type != PTYPE_SOCKET)
		return 0;
	const struct skynet_socket_message *m = msg;
	char text[160];
	switch (m->type) {
	case SKYNET_SOCKET_TYPE_CONNECT:
		cts_copy_text(m, sz, text, sizeof(text));
		if (m->id == p->listen_id && m->ud > 0) {
			skynet_error(ctx, "LISTEN %s %d", text, m->ud);
			skynet_socket_start(ctx, m->id);
		} else if (m->id == p->conn && p->phase == 2) {
			p->transfer = strcmp(text, "transfer") == 0;
		}
		break;
	case SKYNET_SOCKET_TYPE_ACCEPT:
		p->conn = m->ud;
		skynet_socket_start(ctx, m->ud);
		break;
	case SKYNET_SOCKET_TYPE_DATA:
		if (p->phase == 0) {
			ct_check(ctx, "first_data", m->ud == 5 && memcmp(m->buffer, "hello", 5) == 0,
				"got %.*s", m->ud, m->buffer);
			skynet_socket_pause(ctx, m->id);
			skynet_socket_send(ctx, m->id, cts_dup("paused", 6), 6);
			p->phase = 1;
			p->session = ct_timeout(ctx, "50");
		} else if (p->phase == 1) {
			p->paused_data++;
		} else if (p->resumed_len + m->ud < (int)sizeof(p->resumed)) {
			memcpy(p->resumed + p->resumed_len, m->buffer, (size_t)m->ud);
			p->resumed_len += m->ud;
			if (p->resumed_len == 9) {
				ct_check(ctx, "data_after_start", memcmp(p->resumed, "more data", 9) == 0,
					"got %.*s", p->resumed_len, p->resumed);
				ct_expect_int(ctx, "transfer_event_before_data", p->transfer, 1);
				skynet_socket_close(ctx, p->conn);
				skynet_socket_close(ctx, p->listen_id);
				ct_finish(ctx);
			}
		}
		free(m->buffer);
		break;
	case SKYNET_SOCKET_TYPE_ERROR:
		skynet_error(ctx, "ERROR %d %s", m->id, cts_copy_text(m, sz, text, sizeof(text)));
		break;
	}
	return 0;
}

int
t_sock_pause_init(struct pause_state *p, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	p->listen_id = skynet_socket_listen(ctx, "127.0.0.1", 0, 16);
	skynet_callback(ctx, p, pause_cb);
	return p->listen_id < 0;
}
