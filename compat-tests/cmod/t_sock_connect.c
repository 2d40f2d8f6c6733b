/* t_sock_connect: listen on port 0, connect, accept, connect to a closed port, socket_info.
 * - listen 127.0.0.1:0 and [::1]:0: CONNECT carries the bound IP and ud = the port;
 * - a third listener is closed at once: connecting to its port gives ERROR "Connection refused";
 * - connecting to the first listener: CONNECT "127.0.0.1" for the client, ACCEPT
 *   "127.0.0.1:<client port>" (ud = new id) for the listener's owner, "start" after start;
 * - skynet_socket_info then lists both listeners (LISTEN, "ip:port", one accept) and both
 *   ends of the connection (TCP).
 */
#include "ctsock.h"

struct conn {
	int l4, l6, dead;
	int port4, port6, dead_port;
	int client, accepted;
	int client_connected, accepted_started, refused, listening;
	char accept_name[160];
	int done;
};

void *
t_sock_connect_create(void) {
	return calloc(1, sizeof(struct conn));
}

void
t_sock_connect_release(struct conn *c) {
	free(c);
}

static void
check_info(struct skynet_context *ctx, struct conn *c) {
	struct socket_info *si = skynet_socket_info();
	char want4[64], want6[64];
	snprintf(want4, sizeof(want4), "127.0.0.1:%d", c->port4);
	snprintf(want6, sizeof(want6), "::1:%d", c->port6);
	int seen = 0, n = 0;
	uint32_t self = ct_self(ctx);
	for (struct socket_info *p = si; p; p = p->next) {
		n++;
		ct_check(ctx, "info_owner", p->opaque == self, "socket %d owner %llx", p->id, (unsigned long long)p->opaque);
		if (p->id == c->l4) {
			seen |= 1;
			ct_expect_int(ctx, "info_listen_type", p->type, SOCKET_INFO_LISTEN);
			ct_expect_str(ctx, "info_listen_name", p->name, want4);
			ct_expect_int(ctx, "info_listen_accepts", (long long)p->read, 1);
		} else if (p->id == c->l6) {
			seen |= 2;
			ct_expect_str(ctx, "info_listen6_name", p->name, want6);
		} else if (p->id == c->client) {
			seen |= 4;
			ct_expect_int(ctx, "info_client_type", p->type, SOCKET_INFO_TCP);
			ct_expect_str(ctx, "info_client_name", p->name, want4);
			ct_check(ctx, "info_client_reading", p->reading == 1 && p->writing == 0, "r%d w%d", p->reading, p->writing);
		} else if (p->id == c->accepted) {
			seen |= 8;
			ct_expect_int(ctx, "info_accepted_type", p->type, SOCKET_INFO_TCP);
			ct_expect_str(ctx, "info_accepted_name", p->name, c->accept_name);
		}
	}
	socket_info_release(si);
	ct_expect_int(ctx, "info_entries", n, 4);
	ct_expect_int(ctx, "info_seen", seen, 15);
}

static void
maybe_done(struct skynet_context *ctx, struct conn *c) {
	if (c->done || !c->client_connected || !c->accepted_started || !c->refused || c->listening < 2)
		return;
	c->done = 1;
	check_info(ctx, c);
	skynet_socket_close(ctx, c->client);
	skynet_socket_close(ctx, c->accepted);
	skynet_socket_close(ctx, c->l4);
	skynet_socket_close(ctx, c->l6);
	ct_finish(ctx);
}

static int
conn_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	CT_UNUSED(session);
	CT_UNUSED(source);
	struct conn *c = ud;
	if (type != PTYPE_SOCKET)
		return 0;
	const struct skynet_socket_message *m = msg;
	char text[160];
	cts_copy_text(m, sz, text, sizeof(text));
	switch (m->type) {
	case SKYNET_SOCKET_TYPE_CONNECT:
		if (m->id == c->dead) {
			c->dead_port = m->ud;
			skynet_socket_close(ctx, c->dead);
		} else if (m->id == c->l4 && m->ud > 0) {
			ct_expect_str(ctx, "listen_ip", text, "127.0.0.1");
			c->port4 = m->ud;
			skynet_socket_start(ctx, c->l4);
			c->client = skynet_socket_connect(ctx, "127.0.0.1", c->port4);
			ct_check(ctx, "connect_id", c->client > 0, "%d", c->client);
		} else if (m->id == c->l6 && m->ud > 0) {
			ct_expect_str(ctx, "listen6_ip", text, "::1");
			c->port6 = m->ud;
			skynet_socket_start(ctx, c->l6);
		} else if ((m->id == c->l4 || m->id == c->l6) && strcmp(text, "start") == 0) {
			c->listening++;
		} else if (m->id == c->client) {
			ct_expect_str(ctx, "connect_peer_ip", text, "127.0.0.1");
			c->client_connected = 1;
		} else if (m->id == c->accepted) {
			ct_expect_str(ctx, "accepted_start", text, "start");
			c->accepted_started = 1;
		}
		break;
	case SKYNET_SOCKET_TYPE_ACCEPT:
		ct_expect_int(ctx, "accept_on_listener", m->id, c->l4);
		c->accepted = m->ud;
		snprintf(c->accept_name, sizeof(c->accept_name), "%s", text);
		ct_check(ctx, "accept_name", strncmp(text, "127.0.0.1:", 10) == 0 && atoi(text + 10) > 0, "%s", text);
		skynet_socket_start(ctx, m->ud);
		break;
	case SKYNET_SOCKET_TYPE_CLOSE:
		if (m->id == c->dead) {
			int id = skynet_socket_connect(ctx, "127.0.0.1", c->dead_port);
			ct_check(ctx, "connect_dead_id", id > 0, "%d", id);
			c->dead = id;
		}
		break;
	case SKYNET_SOCKET_TYPE_ERROR:
		if (m->id == c->dead) {
			ct_expect_str(ctx, "connect_refused", text, "Connection refused");
			c->refused = 1;
		} else if (m->id == 0x7ffffff0) {
			ct_expect_str(ctx, "start_invalid", text, "invalid socket");
		} else {
			skynet_error(ctx, "CHECK unexpected_error FAIL %d %s", m->id, text);
		}
		break;
	}
	maybe_done(ctx, c);
	return 0;
}

int
t_sock_connect_init(struct conn *c, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	skynet_callback(ctx, c, conn_cb);
	c->l4 = skynet_socket_listen(ctx, "127.0.0.1", 0, 16);
	c->l6 = skynet_socket_listen(ctx, "::1", 0, 16);
	c->dead = skynet_socket_listen(ctx, NULL, 0, 16);
	ct_check(ctx, "listen_ids", c->l4 > 0 && c->l6 > 0 && c->dead > 0, "%d %d %d", c->l4, c->l6, c->dead);
	ct_expect_int(ctx, "listen_bad_host", skynet_socket_listen(ctx, "256.1.1.1", 0, 16), -1);
	char longhost[300];
	memset(longhost, 'a', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = '\0';
	ct_expect_int(ctx, "connect_long_host", skynet_socket_connect(ctx, longhost, 80), -1);
	skynet_socket_start(ctx, 0x7ffffff0);
	return 0;
}
