/*
 * A program with its own main that starts a node through libskynet, with one C service
 * module (t_static.c) linked in statically. argv[1] is the config file.
 */
#include <stdio.h>
#include <stdlib.h>

#include "skynet_env.h"
#include "skynet_imp.h"
#include "skynet_static.h"

void *t_static_create(void);
int t_static_init(void *inst, struct skynet_context *ctx, const char *parm);
void t_static_release(void *inst);

/* The Lua auxiliary library's code cache set-up that a main written for skynet's patched Lua
 * calls at start; stock Lua headers do not declare it, so the program does. */
void luaL_initcodecache(void);
/* From the Lua C API libskynet carries (lua_Number is double; the state is not used). */
struct lua_State;
double lua_version(struct lua_State *L);

/* The key's value, or `def` written into the env first. */
static const char *
opt_string(const char *key, const char *def) {
	const char *v = skynet_getenv(key);
	if (v == NULL && def != NULL) {
		skynet_setenv(key, def);
		v = skynet_getenv(key);
	}
	return v;
}

static int
opt_int(const char *key, int def) {
	const char *v = skynet_getenv(key);
	return v ? atoi(v) : def;
}

int
main(int argc, char *argv[]) {
	if (argc != 2) {
		fprintf(stderr, "usage: %s CONFIG\n", argv[0]);
		return 2;
	}
	/* twice: a repeated set-up must be harmless */
	luaL_initcodecache();
	luaL_initcodecache();
	fprintf(stderr, "MAIN lua_version=%d\n", (int)lua_version(NULL));
	skynet_globalinit();
	skynet_env_init();
	if (skynet_config_load(argv[1]) != 0)
		return 1;
	printf("MAIN register null_init=%d\n",
		skynet_module_register_static("t_static", NULL, NULL, NULL, NULL));
	printf("MAIN register bad_name=%d\n",
		skynet_module_register_static("bad name", t_static_create, t_static_init, NULL, NULL));
	printf("MAIN register t_static=%d\n",
		skynet_module_register_static("t_static", t_static_create, t_static_init, t_static_release, NULL));
	fflush(stdout);

	struct skynet_config config;
	config.thread = opt_int("thread", 2);
	config.harbor = opt_int("harbor", 1);
	config.profile = 1;
	config.daemon = opt_string("daemon", NULL);
	config.module_path = opt_string("cpath", "./cservice/?.so");
	config.bootstrap = opt_string("bootstrap", "snlua bootstrap");
	config.logger = opt_string("logger", NULL);
	config.logservice = opt_string("logservice", "logger");
	skynet_start(&config);
	printf("MAIN after start\n");
	fflush(stdout);
	/* a process starts one node: a second start only says so and returns */
	skynet_start(&config);
	printf("MAIN after second start\n");
	skynet_globalexit();
	return 0;
}
