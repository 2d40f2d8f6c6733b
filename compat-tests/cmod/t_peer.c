/* t_peer: receiver for t_send. Registers ".peer" and logs every message as
 *   RECV type=<t> session=<s> src=:<08x> sz=<sz> nul=<msg[sz]==0, -1 if msg NULL>
 *        same=<1/0 payload carries its own address, -1 otherwise> text=[...]|NULL
 * Payloads of exactly 24 bytes "<7-char tag>@<16 hex digits>" carry the sender's buffer
 * address; only the tag is printed.
 * "KEEP..." is kept (callback returns 1) and checked/freed on "CHECKKEPT".
 * "END" is answered with PTYPE_RESPONSE "bye" (same session).
 */
#include "ctest.h"

struct peer {
	uint32_t self;
	char *kept;
	size_t kept_sz;
	int bad_current;
};

void *
t_peer_create(void) {
	return calloc(1, sizeof(struct peer));
}

void
t_peer_release(struct peer *p) {
	free(p->kept);
	free(p);
}

#define KEEP_TEXT "KEEP-buffer-contents"

static int
peer_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	struct peer *p = ud;
	const char *m = msg;
	if (skynet_current_handle() != p->self)
		p->bad_current++;

	int nul = m ? m[sz] == 0 : -1;
	int same = -1;
	int shown = m ? (int)sz : 0;
	if (m && sz == 24 && m[7] == '@') {
		char hex[17];
		memcpy(hex, m + 8, 16);
		hex[16] = 0;
		same = (uintptr_t)strtoull(hex, NULL, 16) == (uintptr_t)m;
		shown = 7;
	}
	if (m)
		skynet_error(ctx, "RECV type=%d session=%d src=:%08x sz=%zu nul=%d same=%d text=[%.*s]",
			type, session, (unsigned)source, sz, nul, same, shown, m);
	else
		skynet_error(ctx, "RECV type=%d session=%d src=:%08x sz=%zu nul=%d same=%d text=NULL",
			type, session, (unsigned)source, sz, nul, same);

	if (m == NULL)
		return 0;
	if (sz == strlen(KEEP_TEXT) && memcmp(m, KEEP_TEXT, sz) == 0) {
		free(p->kept);
		p->kept = (char *)m;
		p->kept_sz = sz;
		return 1; /* we own the buffer now */
	}
	if (sz == 9 && memcmp(m, "CHECKKEPT", 9) == 0) {
		ct_check(ctx, "keep_buffer", p->kept != NULL && p->kept_sz == strlen(KEEP_TEXT) &&
			memcmp(p->kept, KEEP_TEXT, p->kept_sz) == 0 && p->kept[p->kept_sz] == 0,
			"kept buffer lost or overwritten");
		free(p->kept);
		p->kept = NULL;
	} else if (sz == 3 && memcmp(m, "END", 3) == 0) {
		ct_expect_int(ctx, "peer_current_handle_mismatches", p->bad_current, 0);
		skynet_send(ctx, 0, source, PTYPE_RESPONSE, session, "bye", 3);
	}
	return 0;
}

int
t_peer_init(struct peer *p, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(parm);
	p->self = ct_self(ctx);
	ct_expect_str(ctx, "peer_reg", skynet_command(ctx, "REG", ".peer"), "peer");
	skynet_callback(ctx, p, peer_cb);
	return 0;
}
