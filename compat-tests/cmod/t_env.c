/* t_env (bootstrap): GETENV / SETENV and skynet_getenv / skynet_setenv.
 * Logs "ENV <key>=[<value>]" or "ENV <key>=NULL" for the Rust test to compare.
 */
#include "ctest.h"
#include "skynet_env.h"

static void
show(struct skynet_context *ctx, const char *key) {
	const char *v = skynet_command(ctx, "GETENV", key);
	if (v)
		skynet_error(ctx, "ENV %s=[%s]", key, v);
	else
		skynet_error(ctx, "ENV %s=NULL", key);
}

int
t_env_init(void *inst, struct skynet_context *ctx, const char *parm) {
	CT_UNUSED(inst);
	CT_UNUSED(parm);
	static const char *const keys[] = {
		"thread", "harbor", "profile", "logservice", "bootstrap", "cpath", "logger",
		"daemon", "logpath", "mystr", "mynum", "myint", "mybool", "nokey",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		show(ctx, keys[i]);

	const char *mystr = skynet_getenv("mystr");
	ct_expect_str(ctx, "getenv_c_api", mystr, "hello");
	ct_expect_str(ctx, "getenv_c_api_missing", skynet_getenv("nokey"), NULL);

	ct_expect_str(ctx, "setenv_result", skynet_command(ctx, "SETENV", "newkey some value"), NULL);
	show(ctx, "newkey");
	skynet_command(ctx, "SETENV", "nospace");
	show(ctx, "nospace");
	skynet_setenv("ckey", "cval");
	show(ctx, "ckey");
	ct_expect_str(ctx, "setenv_c_api", skynet_getenv("ckey"), "cval");
	ct_expect_str(ctx, "getenv_c_api_cmd_key", skynet_getenv("newkey"), "some value");
	/* values are immutable: pointers stay valid after more keys are added */
	char key[32];
	for (int i = 0; i < 64; i++) {
		snprintf(key, sizeof(key), "filler%d", i);
		skynet_setenv(key, key);
	}
	ct_expect_str(ctx, "getenv_pointer_stable", mystr, "hello");
	ct_expect_str(ctx, "getenv_filler", skynet_getenv("filler63"), "filler63");
	ct_finish(ctx);
	return 0;
}
