/* t_sock_udp "<port4> <port6>": UDP echo over IPv4 and IPv6, all inside the node.
 * A server socket (udp_listen on 127.0.0.1:<port4> / [::1]:<port6>) echoes every datagram
 * to its sender's address (skynet_socket_udp_address + skynet_socket_udp_send); clients made
 * by udp_dial, and by udp + udp_connect, send "ping4"/"ping6"/"pingc" and check the echo and
 * the 7/19-byte addresses.
 */
#include "ctsock.h"

struct udp {
	int port4, port6;
	int server4, server6;
	int dial4, dial6, conn4;
	int echoes;
	int replies;
};

void *
t_sock_udp_create(void) {
	return calloc(1, sizeof(struct udp));
}

void
t_sock_udp_release(struct udp *u) {
	free(u);
}

static int
addr_port(const char *addr) {
	return ((unsigned char)addr[1] << 8) | (unsigned char)addr[2];
}

static int
udp_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
       const void *msg, size_t sz) {
	CT_UNUSED(session);
	CT_UNUSED(source);
	struct udp *u = ud;
	if (type != PTYPE_SOCKET)
		return 0;
	struct skynet_socket_message *m = (struct skynet_socket_message *)msg;
	char text[160];
	if (m->type == SKYNET_SOCKET_TYPE_ERROR) {
		skynet_error(ctx, "CHECK udp_error FAIL %d %s", m->id, cts_copy_text(m, sz, text, sizeof(text)));
		return 0;
	}
	if (m->type != SKYNET_SOCKET_TYPE_UDP)
		return 0;
	int addrsz = 0;
	const char *addr = skynet_socket_udp_address(m, &addrsz);
	if (m->id == u->server4 || m->id == u->server6) {
		int v6 = m->id == u->server6;
		ct_expect_int(ctx, v6 ? "server6_addrsz" : "server4_addrsz", addrsz, v6 ? 19 : 7);
		ct_expect_int(ctx, v6 ? "server6_protocol" : "server4_protocol", addr ? addr[0] : -1,
			v6 ? 2 : 1);
		u->echoes++;
		/* the datagram buffer goes back out (MEMORY: ownership passes) */
		if (skynet_socket_udp_send(ctx, m->id, addr, m->buffer, m->ud) != 0)
			skynet_error(ctx, "CHECK udp_send FAIL");
		return 0;
	}
	const char *what = m->id == u->dial4 ? "dial4" : m->id == u->dial6 ? "dial6" : m->id == u->conn4 ? "conn4" : "unknown";
	const char *want = m->id == u->dial6 ? "ping6" : m->id == u->conn4 ? "pingc" : "ping4";
	int want_port = m->id == u->dial6 ? u->port6 : u->port4;
	char name[32];
	snprintf(name, sizeof(name), "%s_echo", what);
	ct_check(ctx, name, m->ud == 5 && memcmp(m->buffer, want, 5) == 0, "got %.*s", m->ud, m->buffer);
	snprintf(name, sizeof(name), "%s_from_server_port", what);
	ct_expect_int(ctx, name, addr ? addr_port(addr) : -1, want_port);
	free(m->buffer);
	if (++u->replies == 3) {
		ct_expect_int(ctx, "echoes", u->echoes, 3);
		ct_finish(ctx);
	}
	return 0;
}

int
t_sock_udp_init(struct udp *u, struct skynet_context *ctx, const char *parm) {
	if (!parm || sscanf(parm, "%d %d", &u->port4, &u->port6) != 2)
		return 1;
	skynet_callback(ctx, u, udp_cb);
	u->server4 = skynet_socket_udp_listen(ctx, "127.0.0.1", u->port4);
	u->server6 = skynet_socket_udp_listen(ctx, "::1", u->port6);
	ct_check(ctx, "udp_listen", u->server4 > 0 && u->server6 > 0, "%d %d", u->server4, u->server6);
	ct_expect_int(ctx, "udp_listen_port0", skynet_socket_udp_listen(ctx, "127.0.0.1", 0), -1);
	u->dial4 = skynet_socket_udp_dial(ctx, "127.0.0.1", u->port4);
	u->dial6 = skynet_socket_udp_dial(ctx, "::1", u->port6);
	u->conn4 = skynet_socket_udp(ctx, NULL, 0);
	ct_expect_int(ctx, "udp_connect", skynet_socket_udp_connect(ctx, u->conn4, "127.0.0.1", u->port4), 0);
	ct_expect_int(ctx, "udp_connect_invalid", skynet_socket_udp_connect(ctx, 0x7ffffff0, "127.0.0.1", 1), -1);
	ct_expect_int(ctx, "send4", skynet_socket_send(ctx, u->dial4, cts_dup("ping4", 5), 5), 0);
	ct_expect_int(ctx, "send6", skynet_socket_send(ctx, u->dial6, cts_dup("ping6", 5), 5), 0);
	ct_expect_int(ctx, "sendc", skynet_socket_send(ctx, u->conn4, cts_dup("pingc", 5), 5), 0);
	char bad[19] = { 9 };
	ct_expect_int(ctx, "udp_send_bad_address",
		skynet_socket_udp_send(ctx, u->server4, bad, cts_dup("x", 1), 1), -1);
	return 0;
}
