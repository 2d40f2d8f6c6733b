/* t_harbor: two nodes linked by the built-in `harbor` service, without upstream's Lua
 * cmaster/cslave (tests/harbor.rs). The "slave" role plays cslave's part minimally: it
 * launches "harbor <id> <self>", hands link sockets to it ("S <fd> <id>" when it connected,
 * "A <fd> <id>" when the peer did, after reading the peer's id byte) and answers its text
 * messages ("D <id>": harbor down, "Q <name>": unknown global name). Global names travel over a
 * one-line-per-name "master" connection: "R <name> <hex handle>\n".
 *
 * A master connection may also carry a new node's announcement, a package: 2-byte big-endian
 * length, 'H', the node's harbor id byte, its link address "ip:port". Node 1 logs
 * "MASTER ANNOUNCE <id> <address>" and connects its link there ("S <fd> <id>").
 *
 * "t_harbor slave 1 listen <badport> [<linkport> <masterport>]" (node 1): listens on
 *   127.0.0.1 twice (links, master; port 0 when not given) and logs
 *   "LISTEN link=<port> master=<port>"; connects to 127.0.0.1:<badport> (unless 0) as
 *   harbor 4 (a test peer that answers with a wrong handshake byte); launches the client.
 * "t_harbor slave 2 connect <linkport> <masterport>" (node 2): launches the echo service,
 *   registers it as the global name "echo" (redirect "N echo" to the harbor, source = echo;
 *   "R echo <hex>" to the master), connects the link to node 1 ("S <fd> 1").
 * "t_harbor slave 2 announce <masterport> <linkport>" (node 2): the same, except that it
 *   listens for links on 127.0.0.1:<linkport> and announces that address to the master, so
 *   node 1 connects the link ("A <fd> 1" here).
 * "t_harbor echo" (node 2): answers every request with PTYPE_RESPONSE "echo:<msg>"; "bye"
 *   finishes node 2.
 * "t_harbor client :<slave>" (node 1): sends to "echo" by name before node 2 exists (queued
 *   until the name and the link come), a 100000-byte message too, then by handle, to an
 *   unknown handle on node 2 (PTYPE_ERROR back), then "bye"; once the slave reports harbor 2
 *   down ("down"), a request by handle and one by name must come back as PTYPE_ERROR.
 */
#include "ctsock.h"

#define BIG 100000

struct name {
	char name[32];
	uint32_t handle;
};

struct th {
	int role; /* 1 slave, 2 echo, 3 client */
	int harbor_id;
	uint32_t self, harbor, client, echo, slave;
	/* slave 1 */
	int link_l, master_l, link_port, master_port, bad;
	int pending[16]; /* accepted link sockets waiting for the peer's id byte */
	int masters[4];
	char line[256];
	size_t line_len;
	struct name names[8];
	uint8_t pkg[256]; /* a master connection's announcement package, as it arrives */
	size_t pkg_len;
	int announced, announced_id;
	/* slave 2 */
	int master, link, announce_port;
	/* client */
	uint32_t echo_h;
	int got, down;
};

void *
t_harbor_create(void) {
	return calloc(1, sizeof(struct th));
}

void
t_harbor_release(struct th *t) {
	free(t);
}

static void
harbor_cmd(struct skynet_context *ctx, struct th *t, uint32_t source, const char *fmt, int a, int b) {
	char cmd[64];
	snprintf(cmd, sizeof(cmd), fmt, a, b);
	skynet_send(ctx, source, t->harbor, PTYPE_HARBOR, 0, cmd, strlen(cmd));
}

/* Registers a global name with the harbor: the message comes from the named service. */
static void
harbor_name(struct skynet_context *ctx, struct th *t, const char *name, uint32_t handle) {
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "N %s", name);
	skynet_send(ctx, handle, t->harbor, PTYPE_HARBOR, 0, cmd, strlen(cmd));
}

static struct name *
find_name(struct th *t, const char *name) {
	for (int i = 0; i < 8; i++)
		if (t->names[i].handle && strcmp(t->names[i].name, name) == 0)
			return &t->names[i];
	return NULL;
}

static int
slot_of(int *ids, int n, int id) {
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return i;
	return -1;
}

static void
add_id(int *ids, int n, int id) {
	int i = slot_of(ids, n, 0);
	if (i >= 0)
		ids[i] = id;
}

static void
master_line(struct skynet_context *ctx, struct th *t, const char *line) {
	char name[32];
	unsigned h;
	if (sscanf(line, "R %31s %x", name, &h) != 2) {
		skynet_error(ctx, "CHECK master_line FAIL %s", line);
		return;
	}
	struct name *n = find_name(t, name);
	if (n == NULL) {
		for (int i = 0; i < 8 && n == NULL; i++)
			if (t->names[i].handle == 0)
				n = &t->names[i];
	}
	if (n == NULL)
		return;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->handle = h;
	skynet_error(ctx, "REGISTER %s :%08x", name, h);
	harbor_name(ctx, t, name, h);
}

/* A new node's announcement: connect the link to the address it gave. */
static void
master_package(struct skynet_context *ctx, struct th *t, const uint8_t *p, size_t sz) {
	char addr[128];
	if (sz < 3 || p[0] != 'H' || sz - 2 >= sizeof(addr)) {
		skynet_error(ctx, "CHECK master_package FAIL %zu bytes", sz);
		return;
	}
	memcpy(addr, p + 2, sz - 2);
	addr[sz - 2] = '\0';
	skynet_error(ctx, "MASTER ANNOUNCE %d %s", p[1], addr);
	char *colon = strrchr(addr, ':');
	if (colon == NULL)
		return;
	*colon = '\0';
	t->announced_id = p[1];
	t->announced = skynet_socket_connect(ctx, addr, atoi(colon + 1));
}

/* Bytes of a master connection: "R ..." lines, or a package (its length's first byte is 0). */
static void
master_bytes(struct skynet_context *ctx, struct th *t, const uint8_t *b, int n) {
	for (int k = 0; k < n; k++) {
		if (t->pkg_len > 0 || (t->line_len == 0 && b[k] == 0)) {
			if (t->pkg_len < sizeof(t->pkg))
				t->pkg[t->pkg_len++] = b[k];
			if (t->pkg_len >= 2 && t->pkg_len == 2 + (size_t)(t->pkg[0] << 8 | t->pkg[1])) {
				master_package(ctx, t, t->pkg + 2, t->pkg_len - 2);
				t->pkg_len = 0;
			}
		} else if (b[k] == '\n' || t->line_len == sizeof(t->line) - 1) {
			t->line[t->line_len] = '\0';
			master_line(ctx, t, t->line);
			t->line_len = 0;
		} else {
			t->line[t->line_len++] = (char)b[k];
		}
	}
}

static void
slave_socket(struct skynet_context *ctx, struct th *t, const struct skynet_socket_message *m, size_t sz) {
	char text[160];
	switch (m->type) {
	case SKYNET_SOCKET_TYPE_CONNECT:
		if (m->id == t->link_l && m->ud > 0) {
			t->link_port = m->ud;
			skynet_socket_start(ctx, m->id);
		} else if (m->id == t->master_l && m->ud > 0) {
			t->master_port = m->ud;
			skynet_socket_start(ctx, m->id);
			/* Both listeners are bound (the link one was asked for first). */
			skynet_error(ctx, "LISTEN link=%d master=%d", t->link_port, t->master_port);
		} else if (m->id == t->bad && t->bad > 0) {
			skynet_error(ctx, "HARBOR CONNECT 4");
			harbor_cmd(ctx, t, 0, "S %d %d", m->id, 4);
			t->bad = -1;
		} else if (m->id == t->announced && t->announced > 0) {
			skynet_error(ctx, "HARBOR CONNECT %d", t->announced_id);
			harbor_cmd(ctx, t, 0, "S %d %d", m->id, t->announced_id);
			t->announced = -1;
		} else if (m->id == t->master && t->master > 0) {
			if (t->announce_port > 0) {
				uint8_t pkg[64];
				int n = snprintf((char *)pkg + 4, sizeof(pkg) - 4, "127.0.0.1:%d", t->announce_port);
				pkg[0] = 0;
				pkg[1] = (uint8_t)(n + 2);
				pkg[2] = 'H';
				pkg[3] = (uint8_t)t->harbor_id;
				skynet_socket_send(ctx, m->id, cts_dup(pkg, (size_t)n + 4), n + 4);
				skynet_error(ctx, "MASTER ANNOUNCED 127.0.0.1:%d", t->announce_port);
			}
			char line[64];
			int n = snprintf(line, sizeof(line), "R echo %x\n", (unsigned)t->echo);
			skynet_socket_send(ctx, m->id, cts_dup(line, (size_t)n), n);
			skynet_error(ctx, "MASTER CONNECTED");
		} else if (m->id == t->link && t->link > 0) {
			skynet_error(ctx, "HARBOR CONNECT 1");
			harbor_cmd(ctx, t, 0, "S %d %d", m->id, 1);
			t->link = -1;
		}
		break;
	case SKYNET_SOCKET_TYPE_ACCEPT:
		if (m->id == t->link_l)
			add_id(t->pending, 16, m->ud);
		else
			add_id(t->masters, 4, m->ud);
		skynet_socket_start(ctx, m->ud);
		break;
	case SKYNET_SOCKET_TYPE_DATA: {
		const uint8_t *b = (const uint8_t *)m->buffer;
		int i;
		if ((i = slot_of(t->pending, 16, m->id)) >= 0) {
			/* The connecting harbor's id byte; then the link belongs to our harbor. */
			t->pending[i] = 0;
			ct_check(ctx, "link_first_read", m->ud == 1, "%d bytes", m->ud);
			skynet_socket_pause(ctx, m->id);
			skynet_error(ctx, "HARBOR ACCEPT %d", b[0]);
			harbor_cmd(ctx, t, 0, "A %d %d", m->id, b[0]);
		} else if (slot_of(t->masters, 4, m->id) >= 0) {
			master_bytes(ctx, t, b, m->ud);
		} else {
			skynet_error(ctx, "CHECK slave_data FAIL %d bytes on %d", m->ud, m->id);
		}
		free(m->buffer);
		break;
	}
	case SKYNET_SOCKET_TYPE_CLOSE:
		if (slot_of(t->masters, 4, m->id) >= 0 || m->id == t->master) {
			skynet_error(ctx, "MASTER CLOSED");
			skynet_socket_close(ctx, m->id);
		}
		break;
	case SKYNET_SOCKET_TYPE_ERROR:
		skynet_error(ctx, "CHECK slave_socket FAIL error on %d: %s", m->id,
			cts_copy_text(m, sz, text, sizeof(text)));
		break;
	}
}

static int
slave_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
         const void *msg, size_t sz) {
	CT_UNUSED(session);
	struct th *t = ud;
	if (type == PTYPE_SOCKET) {
		slave_socket(ctx, t, msg, sz);
	} else if (type == PTYPE_TEXT && source == t->harbor) {
		char text[64];
		snprintf(text, sizeof(text), "%.*s", (int)sz, (const char *)msg);
		if (text[0] == 'D') {
			int id = atoi(text + 2);
			skynet_error(ctx, "HARBOR DOWN %d", id);
			if (id == 2 && t->client)
				ct_send_text(ctx, t->client, 0, "down");
		} else if (text[0] == 'Q') {
			struct name *n = find_name(t, text + 2);
			skynet_error(ctx, "QUERY %s%s", text + 2, n ? " (known)" : "");
			if (n)
				harbor_name(ctx, t, n->name, n->handle);
		} else {
			skynet_error(ctx, "CHECK harbor_text FAIL %s", text);
		}
	} else {
		skynet_error(ctx, "CHECK slave_message FAIL type %d from %x", type, (unsigned)source);
	}
	return 0;
}

static int
echo_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	CT_UNUSED(ud);
	if (sz == 3 && memcmp(msg, "bye", 3) == 0 && session == 0) {
		skynet_error(ctx, "BYE");
		ct_finish(ctx);
		return 0;
	}
	ct_check(ctx, "echo_from_node1", (source >> 24) == 1, "source %x", (unsigned)source);
	if (sz <= 64)
		skynet_error(ctx, "ECHO type=%d session=%d %.*s", type, session, (int)sz, (const char *)msg);
	else
		skynet_error(ctx, "ECHO type=%d session=%d len=%zu", type, session, sz);
	char *reply = malloc(5 + sz);
	memcpy(reply, "echo:", 5);
	memcpy(reply + 5, msg, sz);
	skynet_send(ctx, 0, source, PTYPE_RESPONSE | PTYPE_TAG_DONTCOPY, session, reply, 5 + sz);
	return 0;
}

static int
expect_echo(struct skynet_context *ctx, const char *what, const void *msg, size_t sz,
            const char *want, size_t want_sz) {
	return ct_check(ctx, what, sz == 5 + want_sz && memcmp(msg, "echo:", 5) == 0 &&
		memcmp((const char *)msg + 5, want, want_sz) == 0, "%zu bytes: %.*s", sz,
		(int)(sz < 40 ? sz : 40), (const char *)msg);
}

static char *
big_message(void) {
	char *b = malloc(BIG);
	for (int i = 0; i < BIG; i++)
		b[i] = (char)('a' + i % 26);
	return b;
}

static int
client_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
          const void *msg, size_t sz) {
	struct th *t = ud;
	if (type == PTYPE_RESPONSE && session == 1) {
		expect_echo(ctx, "by_name", msg, sz, "hello-name", 10);
		ct_check(ctx, "reply_from_node2", (source >> 24) == 2, "source %x", (unsigned)source);
		t->echo_h = source;
		skynet_send(ctx, 0, t->echo_h, PTYPE_TEXT, 2, "hello-handle", 12);
		skynet_send(ctx, 0, (t->echo_h & 0xff000000) | 0xfffff0, PTYPE_TEXT, 3, "nobody", 6);
		t->got |= 1;
	} else if (type == PTYPE_RESPONSE && session == 5) {
		char *b = big_message();
		expect_echo(ctx, "big_by_name", msg, sz, b, BIG);
		free(b);
		t->got |= 2;
	} else if (type == PTYPE_RESPONSE && session == 2) {
		expect_echo(ctx, "by_handle", msg, sz, "hello-handle", 12);
		ct_expect_int(ctx, "by_handle_source", source, t->echo_h);
		t->got |= 4;
	} else if (type == PTYPE_ERROR && session == 3) {
		ct_expect_int(ctx, "unknown_destination_error", source, (t->echo_h & 0xff000000) | 0xfffff0);
		t->got |= 8;
	} else if (type == PTYPE_TEXT && source == t->slave && sz == 4 && memcmp(msg, "down", 4) == 0) {
		t->down = 1;
		skynet_send(ctx, 0, t->echo_h, PTYPE_TEXT, 4, "late", 4);
		skynet_sendname(ctx, 0, "echo", PTYPE_TEXT, 6, "late-name", 9);
		return 0;
	} else if (type == PTYPE_ERROR && session == 4) {
		ct_check(ctx, "down_error_by_handle", t->down && source == t->echo_h, "down %d source %x", t->down, (unsigned)source);
		t->got |= 16;
	} else if (type == PTYPE_ERROR && session == 6) {
		ct_check(ctx, "down_error_by_name", t->down, "down %d", t->down);
		t->got |= 32;
	} else {
		skynet_error(ctx, "CHECK client_message FAIL type %d session %d from %x", type, session, (unsigned)source);
		return 0;
	}
	if (t->got == 15) {
		t->got |= 64;
		skynet_send(ctx, 0, t->echo_h, PTYPE_TEXT, 0, "bye", 3);
		skynet_error(ctx, "SENT BYE");
	}
	if (t->got == 127)
		ct_finish(ctx);
	return 0;
}

int
t_harbor_init(struct th *t, struct skynet_context *ctx, const char *parm) {
	t->self = ct_self(ctx);
	char role[16] = "", mode[16] = "";
	int id = 0, p1 = 0, p2 = 0, p3 = 0;
	unsigned slave = 0;
	sscanf(parm ? parm : "", "%15s", role);
	if (strcmp(role, "echo") == 0) {
		skynet_callback(ctx, t, echo_cb);
		return 0;
	}
	if (strcmp(role, "client") == 0) {
		if (sscanf(parm, "client :%x", &slave) != 1)
			return 1;
		t->slave = slave;
		skynet_callback(ctx, t, client_cb);
		/* Before node 2 exists: queued by the harbor until the name and the link come. */
		int s = skynet_sendname(ctx, 0, "echo", PTYPE_TEXT, 1, "hello-name", 10);
		ct_expect_int(ctx, "sendname_session", s, 1);
		skynet_sendname(ctx, 0, "echo", 10 | PTYPE_TAG_DONTCOPY, 5, big_message(), BIG);
		return 0;
	}
	if (strcmp(role, "slave") != 0 || sscanf(parm, "slave %d %15s %d %d %d", &id, mode, &p1, &p2, &p3) < 3)
		return 1;
	t->harbor_id = id;
	char args[64];
	snprintf(args, sizeof(args), "harbor %d %u", id, (unsigned)t->self);
	t->harbor = ct_launch(ctx, args);
	if (!ct_check(ctx, "launch_harbor", t->harbor != 0, "%s", args))
		return 1;
	skynet_callback(ctx, t, slave_cb);
	if (strcmp(mode, "listen") == 0) {
		t->link_l = skynet_socket_listen(ctx, "127.0.0.1", p2, 16);
		t->master_l = skynet_socket_listen(ctx, "127.0.0.1", p3, 16);
		if (p1 > 0)
			t->bad = skynet_socket_connect(ctx, "127.0.0.1", p1);
		snprintf(args, sizeof(args), "t_harbor client :%x", (unsigned)t->self);
		t->client = ct_launch(ctx, args);
		ct_check(ctx, "launch_client", t->client != 0, "client");
	} else {
		t->echo = ct_launch(ctx, "t_harbor echo");
		ct_check(ctx, "launch_echo", t->echo != 0, "echo");
		harbor_name(ctx, t, "echo", t->echo);
		if (strcmp(mode, "announce") == 0) {
			/* Listening before the master hears of the address. */
			t->link_l = skynet_socket_listen(ctx, "127.0.0.1", p2, 16);
			t->announce_port = p2;
			t->master = skynet_socket_connect(ctx, "127.0.0.1", p1);
		} else {
			t->master = skynet_socket_connect(ctx, "127.0.0.1", p2);
			t->link = skynet_socket_connect(ctx, "127.0.0.1", p1);
		}
	}
	return 0;
}
