/* t_malloc (bootstrap): the executable's malloc family seen from a C module.
 *
 * init checks the functions themselves (alignment, zeroing, realloc keeping contents and
 * alignment, usable sizes, error codes). Then, in its own dispatch (so the blocks are charged
 * to it), it keeps a 1 MiB block and reports with skynet_debug_memory ("before", "held"),
 * hands the block to a peer (a second t_malloc, parm "peer") that frees it on its thread and
 * answers, and reports again ("after_peer_free"): the bytes go back to the allocating service.
 * Last, a block freed twice: the second free is left alone (reported on stderr).
 */
#include "ctest.h"
#include "skynet_malloc.h"

#include <errno.h>
#include <malloc.h>

static int
aligned(void *p, size_t a) {
	return ((uintptr_t)p & (a - 1)) == 0;
}

static int
all_zero(const unsigned char *p, size_t n) {
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void
check_functions(struct skynet_context *ctx) {
	void *p = malloc(0);
	ct_check(ctx, "malloc_zero", p != NULL, "NULL");
	free(p);
	free(NULL);

	unsigned char *m = malloc(100);
	ct_check(ctx, "malloc_aligned16", m && aligned(m, 16), "%p", (void *)m);
	ct_check(ctx, "usable_size", malloc_usable_size(m) >= 100, "%zu", malloc_usable_size(m));
	for (int i = 0; i < 100; i++)
		m[i] = (unsigned char)i;
	m = realloc(m, 100000);
	int kept = m != NULL;
	for (int i = 0; kept && i < 100; i++)
		kept = m[i] == (unsigned char)i;
	ct_check(ctx, "realloc_keeps", kept, "%p", (void *)m);
	m = realloc(m, 10);
	ct_check(ctx, "realloc_shrinks", m && m[9] == 9, "%p", (void *)m);
	ct_check(ctx, "realloc_zero_frees", realloc(m, 0) == NULL, "not NULL");

	unsigned char *z = calloc(1000, 7);
	ct_check(ctx, "calloc_zeroed", z && all_zero(z, 7000), "%p", (void *)z);
	free(z);
	errno = 0;
	volatile size_t half = SIZE_MAX / 2;
	ct_check(ctx, "calloc_overflow", calloc(half, 4) == NULL && errno == ENOMEM,
		"errno %d", errno);
	volatile size_t huge = SIZE_MAX - 8;
	ct_check(ctx, "malloc_huge", malloc(huge) == NULL, "not NULL");

	void *a = NULL;
	ct_expect_int(ctx, "posix_memalign_ok", posix_memalign(&a, 4096, 10), 0);
	ct_check(ctx, "posix_memalign_aligned", a && aligned(a, 4096), "%p", a);
	memset(a, 0x5a, 10);
	a = realloc(a, 50000);
	ct_check(ctx, "realloc_keeps_alignment", a && aligned(a, 4096) && ((unsigned char *)a)[9] == 0x5a,
		"%p", a);
	ct_check(ctx, "aligned_usable", malloc_usable_size(a) >= 50000, "%zu", malloc_usable_size(a));
	free(a);
	void *keep = &a;
	a = keep;
	ct_expect_int(ctx, "posix_memalign_einval", posix_memalign(&a, 24, 10), EINVAL);
	ct_check(ctx, "posix_memalign_untouched", a == keep, "%p", a);

	void *b = aligned_alloc(64, 128);
	ct_check(ctx, "aligned_alloc", b && aligned(b, 64), "%p", b);
	free(b);
	b = memalign(256, 1);
	ct_check(ctx, "memalign", b && aligned(b, 256), "%p", b);
	free(b);
	b = memalign(8, 24);
	ct_check(ctx, "memalign_small", b && aligned(b, 8), "%p", b);
	free(b);
	b = valloc(1);
	ct_check(ctx, "valloc", b && aligned(b, 4096), "%p", b);
	free(b);
	b = pvalloc(1);
	ct_check(ctx, "pvalloc", b && aligned(b, 4096) && malloc_usable_size(b) >= 4096, "%p", b);
	free(b);
	b = skynet_malloc(32);
	ct_check(ctx, "skynet_malloc", b != NULL, "NULL");
	skynet_free(b);

	char *s = strdup("libc's strdup allocates with our malloc");
	ct_expect_str(ctx, "strdup", s, "libc's strdup allocates with our malloc");
	free(s);
	s = skynet_strdup("skynet_strdup");
	ct_expect_str(ctx, "skynet_strdup", s, "skynet_strdup");
	skynet_free(s);

	void *l = skynet_lalloc(NULL, 0, 64);
	l = skynet_lalloc(l, 64, 1000);
	ct_check(ctx, "lalloc", l != NULL, "NULL");
	ct_check(ctx, "lalloc_free", skynet_lalloc(l, 1000, 0) == NULL, "not NULL");
}

struct state {
	uint32_t self;
	uint32_t peer;
	void *block;
};

#define BLOCK (1024 * 1024)

static int
boot_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	struct state *st = ud;
	CT_UNUSED(session);
	CT_UNUSED(source);
	if (type == PTYPE_TEXT && sz == 5 && memcmp(msg, "start", 5) == 0) {
		skynet_debug_memory("before");
		st->block = malloc(BLOCK);
		memset(st->block, 1, BLOCK);
		skynet_debug_memory("held");
		char text[64];
		snprintf(text, sizeof(text), "free %p", st->block);
		skynet_send(ctx, 0, st->peer, PTYPE_TEXT, 1, text, strlen(text));
	} else if (type == PTYPE_RESPONSE && session == 1) {
		skynet_debug_memory("after_peer_free");
		void *volatile twice = malloc(100); /* volatile: the compiler keeps both frees */
		free(twice);
		free(twice);
		void *again = malloc(100);
		ct_check(ctx, "malloc_after_double_free", again != NULL, "NULL");
		free(again);
		free(st);
		ct_finish(ctx);
	}
	return 0;
}

static int
peer_cb(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source,
        const void *msg, size_t sz) {
	CT_UNUSED(ud);
	char text[64];
	if (type != PTYPE_TEXT || sz >= sizeof(text))
		return 0;
	memcpy(text, msg, sz);
	text[sz] = 0;
	void *p = NULL;
	if (sscanf(text, "free %p", &p) == 1) {
		free(p);
		skynet_send(ctx, 0, source, PTYPE_RESPONSE, session, "freed", 5);
	}
	return 0;
}

int
t_malloc_init(void *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	if (parm && strcmp(parm, "peer") == 0) {
		skynet_callback(ctx, NULL, peer_cb);
		return 0;
	}
	check_functions(ctx);
	struct state *st = calloc(1, sizeof(*st));
	st->self = ct_self(ctx);
	st->peer = ct_launch(ctx, "t_malloc peer");
	ct_check(ctx, "peer_launched", st->peer != 0, "no peer");
	skynet_callback(ctx, st, boot_cb);
	ct_send_text(ctx, st->self, 0, "start");
	return 0;
}
