/* t_names (bootstrap): REG / NAME / QUERY result formats, skynet_queryname, names removed
 * when their service exits, skynet_isremote. Logs "REG=[<REG result>]" for the Rust test.
 * Works for any config harbor id (the test runs it with harbor 0 and 3).
 */
#include "ctest.h"

static void
names_checks(struct skynet_context *ctx) {
	const char *reg = skynet_command(ctx, "REG", NULL);
	skynet_error(ctx, "REG=[%s]", reg ? reg : "NULL");
	uint32_t self = ct_parse_handle(reg);
	char hs[16], hs_upper[16], param[64];
	snprintf(hs, sizeof(hs), ":%x", (unsigned)self);
	snprintf(hs_upper, sizeof(hs_upper), ":%08X", (unsigned)self);

	ct_expect_str(ctx, "reg_format", reg, hs);
	ct_expect_str(ctx, "reg_empty", skynet_command(ctx, "REG", ""), hs);
	ct_expect_str(ctx, "reg_name", skynet_command(ctx, "REG", ".alpha"), "alpha");
	ct_expect_str(ctx, "reg_dup", skynet_command(ctx, "REG", ".alpha"), NULL);
	ct_expect_str(ctx, "reg_global", skynet_command(ctx, "REG", "glob"), NULL);
	ct_expect_str(ctx, "query_name", skynet_command(ctx, "QUERY", ".alpha"), hs);
	ct_expect_str(ctx, "query_missing", skynet_command(ctx, "QUERY", ".nope"), NULL);
	ct_expect_str(ctx, "query_nodot", skynet_command(ctx, "QUERY", "alpha"), NULL);

	snprintf(param, sizeof(param), ".beta %s", hs);
	ct_expect_str(ctx, "name_set", skynet_command(ctx, "NAME", param), "beta");
	ct_expect_str(ctx, "name_dup", skynet_command(ctx, "NAME", param), NULL);
	ct_expect_str(ctx, "name_query", skynet_command(ctx, "QUERY", ".beta"), hs);
	snprintf(param, sizeof(param), ".alpha %s", hs_upper);
	ct_expect_str(ctx, "name_dup_of_reg", skynet_command(ctx, "NAME", param), NULL);
	snprintf(param, sizeof(param), ".eps %s", hs_upper);
	ct_expect_str(ctx, "name_padded_upper", skynet_command(ctx, "NAME", param), "eps");
	ct_expect_str(ctx, "name_padded_query", skynet_command(ctx, "QUERY", ".eps"), hs);
	ct_expect_str(ctx, "name_zero", skynet_command(ctx, "NAME", ".zero :0"), NULL);
	ct_expect_str(ctx, "name_zero_query", skynet_command(ctx, "QUERY", ".zero"), NULL);
	ct_expect_str(ctx, "name_badaddr", skynet_command(ctx, "NAME", ".bad xyz"), NULL);
	ct_expect_str(ctx, "name_badaddr_query", skynet_command(ctx, "QUERY", ".bad"), NULL);
	snprintf(param, sizeof(param), "gname %s", hs);
	ct_expect_str(ctx, "name_global", skynet_command(ctx, "NAME", param), NULL);

	/* Several names, registered out of order, all resolve. */
	static const char *const many[] = { "zeta", "a", "mm", "b", "Mm", "a0" };
	int all = 1;
	for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++) {
		snprintf(param, sizeof(param), ".%s", many[i]);
		const char *r = skynet_command(ctx, "REG", param);
		all &= r != NULL && strcmp(r, many[i]) == 0;
	}
	for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++) {
		snprintf(param, sizeof(param), ".%s", many[i]);
		const char *r = skynet_command(ctx, "QUERY", param);
		all &= r != NULL && strcmp(r, hs) == 0 && skynet_queryname(ctx, param) == self;
	}
	ct_check(ctx, "many_names", all, "a name did not register or resolve");

	ct_expect_int(ctx, "queryname_local", skynet_queryname(ctx, ".alpha"), self);
	ct_expect_int(ctx, "queryname_missing", skynet_queryname(ctx, ".nope"), 0);
	ct_expect_int(ctx, "queryname_hex", skynet_queryname(ctx, hs), self);
	ct_expect_int(ctx, "queryname_hex_padded", skynet_queryname(ctx, hs_upper), self);
	ct_expect_int(ctx, "queryname_hex_mixed", skynet_queryname(ctx, ":AbC"), 0xabc);
	ct_expect_int(ctx, "queryname_global", skynet_queryname(ctx, "glob"), 0);

	/* Names of an exiting service are removed. */
	uint32_t kid = ct_launch(ctx, "t_child");
	snprintf(param, sizeof(param), ".kid :%x", (unsigned)kid);
	ct_expect_str(ctx, "name_kid", skynet_command(ctx, "NAME", param), "kid");
	snprintf(param, sizeof(param), ".kid2 :%x", (unsigned)kid);
	ct_expect_str(ctx, "name_kid2", skynet_command(ctx, "NAME", param), "kid2");
	ct_expect_int(ctx, "queryname_kid", skynet_queryname(ctx, ".kid"), kid);
	skynet_command(ctx, "KILL", ".kid");
	ct_expect_str(ctx, "kid_gone", skynet_command(ctx, "QUERY", ".kid"), NULL);
	ct_expect_str(ctx, "kid2_gone", skynet_command(ctx, "QUERY", ".kid2"), NULL);
	ct_expect_int(ctx, "queryname_kid_gone", skynet_queryname(ctx, ".kid"), 0);
	ct_expect_str(ctx, "kid_reusable", skynet_command(ctx, "REG", ".kid"), "kid");
	ct_expect_str(ctx, "kid_reused_query", skynet_command(ctx, "QUERY", ".kid"), hs);

	/* skynet_isremote: remote iff top byte != 0 and != own harbor id. */
	const char *hv = skynet_command(ctx, "GETENV", "harbor");
	unsigned harbor = hv ? (unsigned)strtoul(hv, NULL, 10) & 0xff : 0;
	ct_expect_int(ctx, "self_harbor_bits", self >> 24, harbor);
	int hb = -1;
	ct_expect_int(ctx, "isremote_self", skynet_isremote(ctx, self, &hb), 0);
	ct_expect_int(ctx, "isremote_self_harbor", hb, harbor);
	hb = -1;
	ct_expect_int(ctx, "isremote_local_id", skynet_isremote(ctx, self & 0xffffff, &hb), 0);
	ct_expect_int(ctx, "isremote_local_id_harbor", hb, 0);
	uint32_t other = ((harbor + 1) & 0xff) << 24 | 1;
	if (other >> 24 == 0)
		other = 1u << 24 | 1;
	hb = -1;
	ct_expect_int(ctx, "isremote_other", skynet_isremote(ctx, other, &hb), 1);
	ct_expect_int(ctx, "isremote_other_harbor", hb, other >> 24);
	ct_expect_int(ctx, "isremote_null_harbor", skynet_isremote(ctx, other, NULL), 1);
	hb = -1;
	ct_expect_int(ctx, "isremote_ff", skynet_isremote(ctx, 0xff000001u, &hb), harbor != 0xff);
	ct_expect_int(ctx, "isremote_ff_harbor", hb, 0xff);
}

int
t_names_init(void *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	CT_UNUSED(parm);
	names_checks(ctx);
	ct_finish(ctx);
	return 0;
}
