/*
 * A Lua C module of our own, compiled against stock Lua headers (Debian's liblua5.4-dev) and
 * loaded through package.cpath: it resolves every Lua API symbol against the skynet
 * executable. It uses a spread of the API: arguments, buffers, closures with upvalues,
 * userdata with a metatable, the registry, errors and protected calls.
 */
#include <lua.h>
#include <lauxlib.h>

#include <string.h>

struct counter {
	lua_Integer n;
};

static int
add(lua_State *L) {
	lua_Integer a = luaL_checkinteger(L, 1);
	lua_Integer b = luaL_checkinteger(L, 2);
	lua_pushinteger(L, a + b);
	return 1;
}

/* join(sep, ...): strings joined with sep, through a luaL_Buffer. */
static int
join(lua_State *L) {
	size_t seplen;
	const char *sep = luaL_checklstring(L, 1, &seplen);
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	int i;
	for (i = 2; i <= n; i++) {
		lua_pushvalue(L, i);
		luaL_tolstring(L, -1, NULL);
		lua_remove(L, -2);
		luaL_addvalue(&b);
		if (i < n)
			luaL_addlstring(&b, sep, seplen);
	}
	luaL_pushresult(&b);
	return 1;
}

static int
counter_next(lua_State *L) {
	lua_Integer n = lua_tointeger(L, lua_upvalueindex(1)) + 1;
	lua_pushinteger(L, n);
	lua_copy(L, -1, lua_upvalueindex(1));
	return 1;
}

/* counter(): a closure counting its calls in an upvalue. */
static int
counter(lua_State *L) {
	lua_pushinteger(L, 0);
	lua_pushcclosure(L, counter_next, 1);
	return 1;
}

static int
box_get(lua_State *L) {
	struct counter *c = luaL_checkudata(L, 1, "ourmod.box");
	lua_pushinteger(L, c->n);
	return 1;
}

/* box(n): a full userdata with a metatable and a method. */
static int
box(lua_State *L) {
	struct counter *c = lua_newuserdatauv(L, sizeof(*c), 0);
	c->n = luaL_checkinteger(L, 1);
	luaL_setmetatable(L, "ourmod.box");
	return 1;
}

static int
fail(lua_State *L) {
	return luaL_error(L, "ourmod failure %d", (int)luaL_optinteger(L, 1, 7));
}

/* allocf_unsized(n, size): n blocks from the state's allocator (lua_getallocf), each freed
 * with osize 0 rather than its size, as some C modules do. */
static int
allocf_unsized(lua_State *L) {
	lua_Integer n = luaL_checkinteger(L, 1);
	size_t size = (size_t)luaL_checkinteger(L, 2);
	void *ud;
	lua_Alloc f = lua_getallocf(L, &ud);
	lua_Integer i;
	for (i = 0; i < n; i++) {
		void *p = f(ud, NULL, 0, size);
		if (p == NULL)
			return luaL_error(L, "allocation failed");
		memset(p, 0x5a, size);
		f(ud, p, 0, 0);
	}
	return 0;
}

/* safecall(f, ...): lua_pcall from C, returns ok, result-or-message. */
static int
safecall(lua_State *L) {
	luaL_checktype(L, 1, LUA_TFUNCTION);
	int r = lua_pcall(L, lua_gettop(L) - 1, 1, 0);
	lua_pushboolean(L, r == LUA_OK);
	lua_insert(L, -2);
	return 2;
}

int
luaopen_ourmod(lua_State *L) {
	luaL_Reg funcs[] = {
		{ "add", add },
		{ "join", join },
		{ "counter", counter },
		{ "box", box },
		{ "fail", fail },
		{ "safecall", safecall },
		{ "allocf_unsized", allocf_unsized },
		{ NULL, NULL },
	};
	if (luaL_newmetatable(L, "ourmod.box")) {
		lua_createtable(L, 0, 1);
		lua_pushcfunction(L, box_get);
		lua_setfield(L, -2, "get");
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	lua_pushstring(L, LUA_VERSION);
	lua_setfield(L, -2, "built_for");
	return 1;
}
