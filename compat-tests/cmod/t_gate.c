/* t_gate: drives the built-in `gate` service as a watchdog does (tests/gate.rs).
 *
 * "t_gate watchdog" (bootstrap): launches two gates on 127.0.0.1 port 0,
 *   S: "gate S :<self> 127.0.0.1:0 0 8"   L: "gate L :<self> 127.0.0.1:0 0 8"
 * and an agent ("t_gate agent :<S> :<L> :<self>"); finds the ports with skynet_socket_info
 * (the listener owned by each gate) and logs "LISTEN <S|L> <port>". Reports from the gates:
 *   "<id> open <id> <addr>:0" -> logs "OPEN <g> <id> <addr>" and sends "start <id>";
 *   "<id> close"              -> logs "CLOSE <g> <id>";
 *   "<id> data <bytes>"       -> logs "DATA <g> <id> <bytes>" (session must be <id>), and acts
 *                                on the packet: "forward" (to the agent, client = self),
 *                                "kick", "broker" (the agent becomes the broker), "release"
 *                                (KILL that gate).
 * Text "quit" from the agent finishes the node.
 *
 * "t_gate agent :<S> :<L> :<watchdog>": logs every PTYPE_CLIENT packet as
 * "AGENT <g> <id> <packet>" (or "AGENT <g> <id> len=<n>" past 100 bytes), checks its source
 * (the watchdog for a forward from S, the L gate for its broker) and answers with a
 * PTYPE_CLIENT message "echo:<packet>" + the 4-byte little-endian id to the gate; a packet
 * "quit" is passed to the watchdog. At start it sends the S gate two bad PTYPE_CLIENT messages
 * (unknown id, too short), which the gate logs.
 */
#include "ctsock.h"

struct tgate {
	int agent_mode;
	uint32_t self, gs, gl, agent, watchdog;
	int port_s, port_l;
	int polls;
};

void *
t_gate_create(void) {
	return calloc(1, sizeof(struct tgate));
}

void
t_gate_release(struct tgate *g) {
	free(g);
}

static const char *
gate_name(struct tgate *g, uint32_t h) {
	return h == g->gs ? "S" : h == g->gl ? "L" : "?";
}

static void
send_cmd(struct skynet_context *ctx, uint32_t gate, const char *fmt, int id, uint32_t a, uint32_t b) {
	char cmd[128];
	snprintf(cmd, sizeof(cmd), fmt, id, (unsigned)a, (unsigned)b);
	ct_send_text(ctx, gate, 0, cmd);
}

/* Finds each gate's listener in skynet_socket_info; 1 once both are known. */
static int
find_ports(struct tgate *g) {
	struct socket_info *si = skynet_socket_info();
	for (struct socket_info *p = si; p; p = p->next) {
		if (p->type != SOCKET_INFO_LISTEN)
			continue;
		const char *colon = strrchr(p->name, ':');
		int port = colon ? atoi(colon + 1) : 0;
		if (p->opaque == g->gs)
			g->port_s = port;
		else if (p->opaque == g->gl)
			g->port_l = port;
	}
	socket_info_release(si);
	return g->port_s > 0 && g->port_l > 0;
}

static void
gate_report(struct skynet_context *ctx, struct tgate *g, int session, uint32_t source,
            const char *msg, size_t sz) {
	const char *gn = gate_name(g, source);
	char *end;
	long id = strtol(msg, &end, 10);
	size_t head = (size_t)(end - msg);
	if (sz >= head + 6 && memcmp(end, " open ", 6) == 0) {
		/* "<id> open <id> <addr>:0" */
		char addr[64];
		size_t n = sz - head - 6;
		if (n >= sizeof(addr))
			n = sizeof(addr) - 1;
		memcpy(addr, end + 6, n);
		addr[n] = '\0';
		char *sp = strchr(addr, ' ');
		ct_check(ctx, "open_format", sp && atol(addr) == id && n > 2 && strcmp(addr + n - 2, ":0") == 0, "%s", addr);
		if (sp && n > 2) {
			addr[n - 2] = '\0';
			skynet_error(ctx, "OPEN %s %ld %s", gn, id, sp + 1);
		}
		send_cmd(ctx, source, "start %d", (int)id, 0, 0);
	} else if (sz == head + 6 && memcmp(end, " close", 6) == 0) {
		skynet_error(ctx, "CLOSE %s %ld", gn, id);
	} else if (sz >= head + 6 && memcmp(end, " data ", 6) == 0) {
		const char *p = end + 6;
		size_t n = sz - head - 6;
		ct_check(ctx, "data_session", session == id, "session %d id %ld", session, id);
		skynet_error(ctx, "DATA %s %ld %.*s", gn, id, (int)n, p);
		if (n == 7 && memcmp(p, "forward", 7) == 0) {
			send_cmd(ctx, source, "forward %d :%x :%x", (int)id, g->agent, g->self);
			skynet_error(ctx, "FORWARDED %s %ld", gn, id);
		} else if (n == 4 && memcmp(p, "kick", 4) == 0) {
			send_cmd(ctx, source, "kick %d", (int)id, 0, 0);
		} else if (n == 6 && memcmp(p, "broker", 6) == 0) {
			char cmd[64];
			snprintf(cmd, sizeof(cmd), "broker :%x", (unsigned)g->agent);
			ct_send_text(ctx, source, 0, cmd);
			skynet_error(ctx, "BROKER %s", gn);
		} else if (n == 7 && memcmp(p, "release", 7) == 0) {
			ct_cmd_handle(ctx, "KILL", source, NULL);
			skynet_error(ctx, "RELEASED %s", gn);
		}
	} else {
		skynet_error(ctx, "CHECK report_format FAIL %.*s", (int)sz, msg);
	}
}

static int
watchdog_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
            const void *msg, size_t sz) {
	struct tgate *g = ud;
	if (type == PTYPE_RESPONSE) {
		/* polling for the listeners' ports */
		if (find_ports(g)) {
			skynet_error(ctx, "LISTEN S %d", g->port_s);
			skynet_error(ctx, "LISTEN L %d", g->port_l);
		} else if (++g->polls > 500) {
			skynet_error(ctx, "CHECK listen_ports FAIL not found in socket info");
		} else {
			ct_timeout(ctx, "1");
		}
	} else if (type == PTYPE_TEXT && (source == g->gs || source == g->gl)) {
		gate_report(ctx, g, session, source, msg, sz);
	} else if (type == PTYPE_TEXT && source == g->agent && sz == 4 && memcmp(msg, "quit", 4) == 0) {
		ct_finish(ctx);
	} else {
		skynet_error(ctx, "CHECK unexpected_message FAIL type %d from %x", type, (unsigned)source);
	}
	return 0;
}

static int
agent_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
         const void *msg, size_t sz) {
	struct tgate *g = ud;
	if (type != PTYPE_CLIENT) {
		skynet_error(ctx, "CHECK agent_type FAIL type %d from %x", type, (unsigned)source);
		return 0;
	}
	/* A forward from S comes from the client we named (the watchdog); the broker's packets
	 * come from the gate itself. */
	uint32_t gate = source == g->watchdog ? g->gs : source == g->gl ? g->gl : 0;
	if (!ct_check(ctx, "agent_source", gate != 0, "source %x", (unsigned)source))
		return 0;
	const char *gn = gate_name(g, gate);
	if (sz <= 100)
		skynet_error(ctx, "AGENT %s %d %.*s", gn, session, (int)sz, (const char *)msg);
	else
		skynet_error(ctx, "AGENT %s %d len=%zu", gn, session, sz);
	if (sz == 4 && memcmp(msg, "quit", 4) == 0) {
		ct_send_text(ctx, g->watchdog, 0, "quit");
		return 0;
	}
	size_t n = 5 + sz + 4;
	uint8_t *reply = malloc(n);
	memcpy(reply, "echo:", 5);
	memcpy(reply + 5, msg, sz);
	uint32_t id = (uint32_t)session;
	reply[n - 4] = id & 0xff;
	reply[n - 3] = (id >> 8) & 0xff;
	reply[n - 2] = (id >> 16) & 0xff;
	reply[n - 1] = (id >> 24) & 0xff;
	skynet_send(ctx, 0, gate, PTYPE_CLIENT | PTYPE_TAG_DONTCOPY, 0, reply, n);
	return 0;
}

int
t_gate_init(struct tgate *g, struct skynet_context *ctx, const char *parm) {
	g->self = ct_self(ctx);
	if (parm && strncmp(parm, "agent", 5) == 0) {
		unsigned s = 0, l = 0, w = 0;
		if (sscanf(parm, "agent :%x :%x :%x", &s, &l, &w) != 3)
			return 1;
		g->agent_mode = 1;
		g->gs = s;
		g->gl = l;
		g->watchdog = w;
		skynet_callback(ctx, g, agent_cb);
		/* Bad PTYPE_CLIENT messages: an unknown connection id, and no room for an id. */
		uint8_t bad[6] = { 'x', 'y', 0x3f, 0x42, 0x0f, 0 };
		skynet_send(ctx, 0, g->gs, PTYPE_CLIENT, 0, bad, sizeof(bad));
		skynet_send(ctx, 0, g->gs, PTYPE_CLIENT, 0, bad, 4);
		return 0;
	}
	char args[128];
	snprintf(args, sizeof(args), "gate S :%x 127.0.0.1:0 0 8", (unsigned)g->self);
	g->gs = ct_launch(ctx, args);
	snprintf(args, sizeof(args), "gate L :%x 127.0.0.1:0 0 8", (unsigned)g->self);
	g->gl = ct_launch(ctx, args);
	if (!ct_check(ctx, "launch_gates", g->gs && g->gl, "S %x L %x", g->gs, g->gl))
		return 1;
	/* Bad parameters are refused. */
	ct_check(ctx, "gate_bad_header", ct_launch(ctx, "gate X ! 127.0.0.1:0 0 8") == 0, "launched");
	ct_check(ctx, "gate_bad_watchdog", ct_launch(ctx, "gate S .nobody 127.0.0.1:0 0 8") == 0, "launched");
	ct_check(ctx, "gate_no_max", ct_launch(ctx, "gate S ! 127.0.0.1:0 0") == 0, "launched");
	snprintf(args, sizeof(args), "t_gate agent :%x :%x :%x", (unsigned)g->gs, (unsigned)g->gl, (unsigned)g->self);
	g->agent = ct_launch(ctx, args);
	if (!ct_check(ctx, "launch_agent", g->agent != 0, "agent"))
		return 1;
	skynet_callback(ctx, g, watchdog_cb);
	ct_timeout(ctx, "1");
	return 0;
}
