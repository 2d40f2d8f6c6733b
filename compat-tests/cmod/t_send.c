/* t_send (bootstrap): skynet_send / skynet_sendname return values, session allocation,
 * genid (dest 0 + NULL data), type masking, copy vs DONTCOPY ownership, NULL payloads,
 * callback keeping its buffer, size limit (-2), dest 0 with data (-1), unknown names and
 * handles (-1, no reply). The receiving side (t_peer) logs what it sees; the Rust test
 * compares those RECV lines.
 */
#include "ctest.h"

#define HUGE_SZ ((size_t)1 << 56)

struct sender {
	uint32_t self;
	uint32_t peer;
	int end_session;
	int wait_session;
	int errors;
};

void *
t_send_create(void) {
	return calloc(1, sizeof(struct sender));
}

void
t_send_release(struct sender *s) {
	free(s);
}

/* 24-byte payload "<tag>@<address of buf, 16 hex digits>", followed by '#' (not NUL). */
static size_t
tagged(char *buf, const char *tag7) {
	snprintf(buf, 26, "%.7s@%016llx", tag7, (unsigned long long)(uintptr_t)buf);
	buf[24] = '#';
	return 24;
}

static int
send_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	struct sender *s = ud;
	if (skynet_current_handle() != s->self)
		ct_check(ctx, "sender_current_handle", 0, "got %x", (unsigned)skynet_current_handle());
	if (type == PTYPE_RESPONSE && session == s->end_session) {
		ct_check(ctx, "end_reply", source == s->peer && sz == 3 && memcmp(msg, "bye", 3) == 0,
			"source :%x sz %zu", (unsigned)source, sz);
		s->wait_session = ct_timeout(ctx, "10"); /* give stray replies time to show up */
	} else if (type == PTYPE_RESPONSE && session == s->wait_session) {
		ct_expect_int(ctx, "no_error_replies", s->errors, 0);
		ct_finish(ctx);
	} else {
		s->errors++;
		skynet_error(ctx, "UNEXPECTED type=%d session=%d src=:%08x sz=%zu", type, session,
			(unsigned)source, sz);
	}
	return 0;
}

int
t_send_init(struct sender *s, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	int alloc = PTYPE_TEXT | PTYPE_TAG_ALLOCSESSION;
	s->self = ct_self(ctx);
	s->peer = ct_launch(ctx, "t_peer");
	char peer_hex[16];
	snprintf(peer_hex, sizeof(peer_hex), ":%x", (unsigned)s->peer);

	/* Sessions 1, 2, 3 ... per sender, through every entry point. */
	ct_expect_int(ctx, "alloc_session_1", skynet_send(ctx, 0, s->peer, alloc, 0, "s1", 2), 1);
	ct_expect_int(ctx, "alloc_session_2", skynet_sendname(ctx, 0, ".peer", alloc, 0, "s2", 2), 2);
	ct_expect_int(ctx, "alloc_session_3", skynet_sendname(ctx, 0, peer_hex, alloc, 0, "s3", 2), 3);
	/* genid: dest 0 + NULL data allocates a session and sends nothing */
	ct_expect_int(ctx, "genid", skynet_send(ctx, 0, 0, alloc, 0, NULL, 0), 4);
	ct_expect_int(ctx, "explicit_session", skynet_send(ctx, 0, s->peer, PTYPE_TEXT, 42,
		"explicit", 8), 42);
	ct_expect_int(ctx, "no_session", skynet_send(ctx, 0, s->peer, PTYPE_TEXT, 0,
		"nosession", 9), 0);
	ct_expect_int(ctx, "type_low_bits", skynet_send(ctx, 0, s->peer, 0x1fe, 0, "lowbits", 7), 0);

	/* copy mode: the receiver gets a NUL-terminated copy */
	char local[32];
	size_t n = tagged(local, "copymod");
	ct_expect_int(ctx, "copy_send", skynet_send(ctx, 0, s->peer, PTYPE_TEXT, 0, local, n), 0);
	ct_check(ctx, "copy_source_untouched", local[24] == '#', "byte after payload changed");

	/* DONTCOPY: the receiver gets this very buffer (no NUL appended) */
	char *buf = malloc(32);
	n = tagged(buf, "dontcpy");
	ct_expect_int(ctx, "dontcopy_send", skynet_send(ctx, 0, s->peer,
		PTYPE_TEXT | PTYPE_TAG_DONTCOPY, 0, buf, n), 0);
	buf = malloc(32);
	n = tagged(buf, "dontcp2");
	ct_expect_int(ctx, "dontcopy_alloc_session", skynet_send(ctx, 0, s->peer,
		alloc | PTYPE_TAG_DONTCOPY, 0, buf, n), 5);

	/* NULL payload: not copied, sz passed through */
	ct_expect_int(ctx, "null_payload", skynet_send(ctx, 0, s->peer, PTYPE_TEXT, 0, NULL, 5), 0);

	/* Receiver keeps this buffer (returns 1) and checks it on the next message. */
	ct_expect_int(ctx, "keep_send", ct_send_text(ctx, s->peer, 0, "KEEP-buffer-contents"), 0);
	ct_expect_int(ctx, "checkkept_send", ct_send_text(ctx, s->peer, 0, "CHECKKEPT"), 0);

	/* Size limit: -2 before any session is drawn (each logs "too large"). */
	ct_expect_int(ctx, "too_large_copy", skynet_send(ctx, 0, s->peer, PTYPE_TEXT, 0, local,
		HUGE_SZ), -2);
	buf = malloc(8);
	ct_expect_int(ctx, "too_large_dontcopy", skynet_send(ctx, 0, s->peer,
		PTYPE_TEXT | PTYPE_TAG_DONTCOPY, 0, buf, HUGE_SZ | 1), -2);
	ct_expect_int(ctx, "too_large_alloc", skynet_send(ctx, 0, s->peer, alloc, 0, local,
		(size_t)1 << 63), -2);
	ct_expect_int(ctx, "too_large_sendname", skynet_sendname(ctx, 0, ".peer", PTYPE_TEXT, 0,
		local, HUGE_SZ), -2);
	/* a .name is resolved first: unknown => -1, nothing logged */
	ct_expect_int(ctx, "too_large_unknown_name", skynet_sendname(ctx, 0, ".nobody", PTYPE_TEXT, 0,
		local, HUGE_SZ), -1);
	ct_expect_int(ctx, "session_after_too_large", skynet_send(ctx, 0, 0, alloc, 0, NULL, 0), 6);

	/* dest 0 with data: -1 (logged). */
	ct_expect_int(ctx, "dest0_copy", skynet_send(ctx, 0, 0, PTYPE_TEXT, 0, "x", 1), -1);
	buf = malloc(8);
	memcpy(buf, "x", 2);
	ct_expect_int(ctx, "dest0_dontcopy", skynet_send(ctx, 0, 0, PTYPE_TEXT | PTYPE_TAG_DONTCOPY,
		0, buf, 1), -1);

	/* Unknown local name / unknown handle: -1, no log, no reply. */
	ct_expect_int(ctx, "sendname_unknown", skynet_sendname(ctx, 0, ".nobody", PTYPE_TEXT, 98,
		"x", 1), -1);
	buf = malloc(8);
	ct_expect_int(ctx, "sendname_unknown_dontcopy", skynet_sendname(ctx, 0, ".nobody",
		PTYPE_TEXT | PTYPE_TAG_DONTCOPY, 0, buf, 1), -1);
	ct_expect_int(ctx, "send_unknown_handle", skynet_send(ctx, 0, 0xfffff0, PTYPE_TEXT, 99,
		"x", 1), -1);
	buf = malloc(8);
	ct_expect_int(ctx, "send_unknown_handle_dontcopy", skynet_send(ctx, 0, 0xfffff0,
		PTYPE_TEXT | PTYPE_TAG_DONTCOPY, 0, buf, 1), -1);

	ct_expect_int(ctx, "sendname_hex_session", skynet_sendname(ctx, 0, peer_hex, PTYPE_TEXT, 43,
		"byhex", 5), 43);

	s->end_session = skynet_send(ctx, 0, s->peer, alloc, 0, "END", 3);
	ct_expect_int(ctx, "end_session", s->end_session, 7);
	skynet_callback(ctx, s, send_cb);
	return 0;
}
