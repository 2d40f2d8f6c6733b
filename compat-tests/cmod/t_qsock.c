/* t_qsock <flood_bytes> <max_rss_kib>: a slow TCP service with a small queue limit
 * (compat-tests/tests/socket.rs). Sets its own limit with QUEUELIMIT "64 1048576", listens on
 * 127.0.0.1 port 0 (logs "LISTEN <ip> <port>") and starts every accepted connection. The
 * first byte a connection sends gives its role:
 *   'F' flood: <flood_bytes> bytes follow, byte k being k % 251. The service blocks its
 *       worker for about a second at the first of them and a little at every DATA message
 *       after, so its queue fills and the socket server must stop reading the connection.
 *       Every byte is checked in order; at the end it answers "D" on the connection.
 *   'P' ping: every byte after the role byte is echoed back at once.
 *   'Q' quit: checks the flood (complete, in order) and the peak RSS of the process
 *       (VmHWM < <max_rss_kib>), logs "QSOCK flood=<bytes> bad=<n> accepted=<n>", finishes.
 * Any other connection just stays open (idle).
 */
#include "ctsock.h"

#include <unistd.h>

#define TABLE 32768 /* more than the connections of a test */

struct conn {
	int id; /* 0 = free */
	char role; /* 0 until the first byte */
};

struct qsock {
	int listen_id;
	long long flood_bytes;
	long max_rss_kib;
	long long got; /* flood bytes received */
	long long bad; /* flood bytes out of order */
	int slept;
	int accepted;
	struct conn conns[TABLE];
};

void *
t_qsock_create(void) {
	return calloc(1, sizeof(struct qsock));
}

void
t_qsock_release(struct qsock *q) {
	free(q);
}

static struct conn *
conn_of(struct qsock *q, int id) {
	unsigned h = (unsigned)id % TABLE;
	for (int i = 0; i < TABLE; i++, h = (h + 1) % TABLE) {
		if (q->conns[h].id == id)
			return &q->conns[h];
		if (q->conns[h].id == 0) {
			q->conns[h].id = id;
			q->conns[h].role = 0;
			return &q->conns[h];
		}
	}
	return NULL;
}

static long
vm_hwm_kib(void) {
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return -1;
	char line[256];
	long kib = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmHWM:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib;
}

static void
flood(struct skynet_context *ctx, struct qsock *q, int id, const uint8_t *p, size_t n) {
	if (!q->slept) {
		q->slept = 1;
		for (int i = 0; i < 1000; i++)
			usleep(1000);
	} else {
		usleep(200);
	}
	for (size_t i = 0; i < n; i++, q->got++) {
		if (p[i] != (uint8_t)(q->got % 251))
			q->bad++;
	}
	if (q->got == q->flood_bytes)
		skynet_socket_send(ctx, id, cts_dup("D", 1), 1);
}

static void
quit(struct skynet_context *ctx, struct qsock *q) {
	ct_expect_int(ctx, "flood_complete", q->got, q->flood_bytes);
	ct_expect_int(ctx, "flood_in_order", q->bad, 0);
	long hwm = vm_hwm_kib();
	ct_check(ctx, "rss_bounded", hwm > 0 && hwm < q->max_rss_kib, "VmHWM %ld KiB, bound %ld KiB",
	         hwm, q->max_rss_kib);
	skynet_error(ctx, "QSOCK flood=%lld bad=%lld accepted=%d", q->got, q->bad, q->accepted);
	skynet_socket_close(ctx, q->listen_id);
	ct_finish(ctx);
}

static void
data(struct skynet_context *ctx, struct qsock *q, const struct skynet_socket_message *m) {
	const uint8_t *p = (const uint8_t *)m->buffer;
	size_t n = (size_t)m->ud;
	struct conn *c = conn_of(q, m->id);
	if (c != NULL && c->role == 0 && n > 0) {
		c->role = (char)p[0];
		p++;
		n--;
	}
	char role = c ? c->role : 0;
	if (role == 'F') {
		flood(ctx, q, m->id, p, n);
	} else if (role == 'P' && n > 0) {
		skynet_socket_send(ctx, m->id, cts_dup(p, n), (int)n);
	} else if (role == 'Q') {
		quit(ctx, q);
	}
	free(m->buffer);
}

static int
qsock_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
         const void *msg, size_t sz) {
	CT_UNUSED(session);
	CT_UNUSED(source);
	struct qsock *q = ud;
	if (type != PTYPE_SOCKET)
		return 0;
	const struct skynet_socket_message *m = msg;
	char text[160];
	switch (m->type) {
	case SKYNET_SOCKET_TYPE_CONNECT:
		if (m->id == q->listen_id && m->ud > 0)
			skynet_error(ctx, "LISTEN %s %d", cts_copy_text(m, sz, text, sizeof(text)), m->ud);
		break;
	case SKYNET_SOCKET_TYPE_ACCEPT:
		q->accepted++;
		skynet_socket_start(ctx, m->ud);
		break;
	case SKYNET_SOCKET_TYPE_DATA:
		data(ctx, q, m);
		break;
	case SKYNET_SOCKET_TYPE_CLOSE:
		skynet_socket_close(ctx, m->id);
		break;
	case SKYNET_SOCKET_TYPE_ERROR:
		skynet_error(ctx, "ERROR %d %s", m->id, cts_copy_text(m, sz, text, sizeof(text)));
		break;
	}
	return 0;
}

int
t_qsock_init(struct qsock *q, struct skynet_context *ctx, const char *parm) {
	if (parm == NULL || sscanf(parm, "%lld %ld", &q->flood_bytes, &q->max_rss_kib) != 2) {
		skynet_error(ctx, "CHECK args FAIL %s", parm ? parm : "NULL");
		return 1;
	}
	ct_expect_str(ctx, "queuelimit", skynet_command(ctx, "QUEUELIMIT", "64 1048576"),
	              "64 1048576");
	q->listen_id = skynet_socket_listen(ctx, "127.0.0.1", 0, 4096);
	if (q->listen_id < 0) {
		skynet_error(ctx, "CHECK listen FAIL");
		return 1;
	}
	skynet_socket_start(ctx, q->listen_id);
	skynet_callback(ctx, q, qsock_cb);
	return 0;
}
