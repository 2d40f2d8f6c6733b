/*
 * Keeps the whole Lua C API of the embedded Lua in the executable, so that with
 * --export-dynamic a user's Lua C module (compiled against stock Lua headers and loaded through
 * package.cpath) resolves every lua_* / luaL_* / luaopen_* symbol against us. Nothing calls
 * these from Rust, so without this table the linker would leave unused API objects out.
 * The symbols are declared as plain objects: only their addresses are taken.
 */

extern char luaL_addgsub;
extern char luaL_addlstring;
extern char luaL_addstring;
extern char luaL_addvalue;
extern char luaL_argerror;
extern char luaL_buffinit;
extern char luaL_buffinitsize;
extern char luaL_callmeta;
extern char luaL_checkany;
extern char luaL_checkinteger;
extern char luaL_checklstring;
extern char luaL_checknumber;
extern char luaL_checkoption;
extern char luaL_checkstack;
extern char luaL_checktype;
extern char luaL_checkudata;
extern char luaL_checkversion_;
extern char luaL_error;
extern char luaL_execresult;
extern char luaL_fileresult;
extern char luaL_getmetafield;
extern char luaL_getsubtable;
extern char luaL_gsub;
extern char luaL_len;
extern char luaL_loadbufferx;
extern char luaL_loadfilex;
extern char luaL_loadstring;
extern char luaL_newmetatable;
extern char luaL_newstate;
extern char luaL_optinteger;
extern char luaL_optlstring;
extern char luaL_optnumber;
extern char luaL_prepbuffsize;
extern char luaL_pushresult;
extern char luaL_pushresultsize;
extern char luaL_ref;
extern char luaL_requiref;
extern char luaL_setfuncs;
extern char luaL_setmetatable;
extern char luaL_testudata;
extern char luaL_tolstring;
extern char luaL_traceback;
extern char luaL_typeerror;
extern char luaL_unref;
extern char luaL_where;
extern char lua_absindex;
extern char lua_arith;
extern char lua_atpanic;
extern char lua_callk;
extern char lua_checkstack;
extern char lua_close;
extern char lua_closeslot;
extern char lua_closethread;
extern char lua_compare;
extern char lua_concat;
extern char lua_copy;
extern char lua_createtable;
extern char lua_dump;
extern char lua_error;
extern char lua_gc;
extern char lua_getallocf;
extern char lua_getfield;
extern char lua_getglobal;
extern char lua_gethook;
extern char lua_gethookcount;
extern char lua_gethookmask;
extern char lua_geti;
extern char lua_getinfo;
extern char lua_getiuservalue;
extern char lua_getlocal;
extern char lua_getmetatable;
extern char lua_getstack;
extern char lua_gettable;
extern char lua_gettop;
extern char lua_getupvalue;
extern char lua_iscfunction;
extern char lua_isinteger;
extern char lua_isnumber;
extern char lua_isstring;
extern char lua_isuserdata;
extern char lua_isyieldable;
extern char lua_len;
extern char lua_load;
extern char lua_newstate;
extern char lua_newthread;
extern char lua_newuserdatauv;
extern char lua_next;
extern char lua_pcallk;
extern char lua_pushboolean;
extern char lua_pushcclosure;
extern char lua_pushfstring;
extern char lua_pushinteger;
extern char lua_pushlightuserdata;
extern char lua_pushlstring;
extern char lua_pushnil;
extern char lua_pushnumber;
extern char lua_pushstring;
extern char lua_pushthread;
extern char lua_pushvalue;
extern char lua_pushvfstring;
extern char lua_rawequal;
extern char lua_rawget;
extern char lua_rawgeti;
extern char lua_rawgetp;
extern char lua_rawlen;
extern char lua_rawset;
extern char lua_rawseti;
extern char lua_rawsetp;
extern char lua_resume;
extern char lua_rotate;
extern char lua_setallocf;
extern char lua_setfield;
extern char lua_setglobal;
extern char lua_sethook;
extern char lua_seti;
extern char lua_setiuservalue;
extern char lua_setlocal;
extern char lua_setmetatable;
extern char lua_settable;
extern char lua_settop;
extern char lua_setupvalue;
extern char lua_setwarnf;
extern char lua_status;
extern char lua_stringtonumber;
extern char lua_toboolean;
extern char lua_tocfunction;
extern char lua_toclose;
extern char lua_tointegerx;
extern char lua_tolstring;
extern char lua_tonumberx;
extern char lua_topointer;
extern char lua_tothread;
extern char lua_touserdata;
extern char lua_type;
extern char lua_typename;
extern char lua_upvalueid;
extern char lua_upvaluejoin;
extern char lua_version;
extern char lua_warning;
extern char lua_xmove;
extern char lua_yieldk;
/* our extension of the embedded Lua (lualib-src/luapatch/lshare.c) */
extern char luaL_loadfilex_;
extern char lua_clonefunction;
extern char lua_sharefunction;
extern char lua_sharestring;
extern char luaopen_base;
extern char luaopen_coroutine;
extern char luaopen_debug;
extern char luaopen_io;
extern char luaopen_math;
extern char luaopen_os;
extern char luaopen_package;
extern char luaopen_string;
extern char luaopen_table;
#ifdef SKYNET_LUA55
extern char luaL_alloc;
extern char luaL_makeseed;
extern char luaL_openselectedlibs;
extern char lua_numbertocstring;
extern char lua_pushexternalstring;
#else
extern char luaL_openlibs;
extern char lua_resetthread;
extern char lua_setcstacklimit;
#endif

__attribute__((used)) void *const skynet_lua_api[] = {
	(void *)&luaL_addgsub, (void *)&luaL_addlstring, (void *)&luaL_addstring,
	(void *)&luaL_addvalue, (void *)&luaL_argerror, (void *)&luaL_buffinit,
	(void *)&luaL_buffinitsize, (void *)&luaL_callmeta, (void *)&luaL_checkany,
	(void *)&luaL_checkinteger, (void *)&luaL_checklstring, (void *)&luaL_checknumber,
	(void *)&luaL_checkoption, (void *)&luaL_checkstack, (void *)&luaL_checktype,
	(void *)&luaL_checkudata, (void *)&luaL_checkversion_, (void *)&luaL_error,
	(void *)&luaL_execresult, (void *)&luaL_fileresult, (void *)&luaL_getmetafield,
	(void *)&luaL_getsubtable, (void *)&luaL_gsub, (void *)&luaL_len, (void *)&luaL_loadbufferx,
	(void *)&luaL_loadfilex, (void *)&luaL_loadstring, (void *)&luaL_newmetatable,
	(void *)&luaL_newstate, (void *)&luaL_optinteger, (void *)&luaL_optlstring,
	(void *)&luaL_optnumber, (void *)&luaL_prepbuffsize, (void *)&luaL_pushresult,
	(void *)&luaL_pushresultsize, (void *)&luaL_ref, (void *)&luaL_requiref,
	(void *)&luaL_setfuncs, (void *)&luaL_setmetatable, (void *)&luaL_testudata,
	(void *)&luaL_tolstring, (void *)&luaL_traceback, (void *)&luaL_typeerror,
	(void *)&luaL_unref, (void *)&luaL_where, (void *)&lua_absindex, (void *)&lua_arith,
	(void *)&lua_atpanic, (void *)&lua_callk, (void *)&lua_checkstack, (void *)&lua_close,
	(void *)&lua_closeslot, (void *)&lua_closethread, (void *)&lua_compare, (void *)&lua_concat,
	(void *)&lua_copy, (void *)&lua_createtable, (void *)&lua_dump, (void *)&lua_error,
	(void *)&lua_gc, (void *)&lua_getallocf, (void *)&lua_getfield, (void *)&lua_getglobal,
	(void *)&lua_gethook, (void *)&lua_gethookcount, (void *)&lua_gethookmask, (void *)&lua_geti,
	(void *)&lua_getinfo, (void *)&lua_getiuservalue, (void *)&lua_getlocal,
	(void *)&lua_getmetatable, (void *)&lua_getstack, (void *)&lua_gettable, (void *)&lua_gettop,
	(void *)&lua_getupvalue, (void *)&lua_iscfunction, (void *)&lua_isinteger,
	(void *)&lua_isnumber, (void *)&lua_isstring, (void *)&lua_isuserdata,
	(void *)&lua_isyieldable, (void *)&lua_len, (void *)&lua_load, (void *)&lua_newstate,
	(void *)&lua_newthread, (void *)&lua_newuserdatauv, (void *)&lua_next, (void *)&lua_pcallk,
	(void *)&lua_pushboolean, (void *)&lua_pushcclosure, (void *)&lua_pushfstring,
	(void *)&lua_pushinteger, (void *)&lua_pushlightuserdata, (void *)&lua_pushlstring,
	(void *)&lua_pushnil, (void *)&lua_pushnumber, (void *)&lua_pushstring,
	(void *)&lua_pushthread, (void *)&lua_pushvalue, (void *)&lua_pushvfstring,
	(void *)&lua_rawequal, (void *)&lua_rawget, (void *)&lua_rawgeti, (void *)&lua_rawgetp,
	(void *)&lua_rawlen, (void *)&lua_rawset, (void *)&lua_rawseti, (void *)&lua_rawsetp,
	(void *)&lua_resume, (void *)&lua_rotate, (void *)&lua_setallocf, (void *)&lua_setfield,
	(void *)&lua_setglobal, (void *)&lua_sethook, (void *)&lua_seti, (void *)&lua_setiuservalue,
	(void *)&lua_setlocal, (void *)&lua_setmetatable, (void *)&lua_settable, (void *)&lua_settop,
	(void *)&lua_setupvalue, (void *)&lua_setwarnf, (void *)&lua_status,
	(void *)&lua_stringtonumber, (void *)&lua_toboolean, (void *)&lua_tocfunction,
	(void *)&lua_toclose, (void *)&lua_tointegerx, (void *)&lua_tolstring, (void *)&lua_tonumberx,
	(void *)&lua_topointer, (void *)&lua_tothread, (void *)&lua_touserdata, (void *)&lua_type,
	(void *)&lua_typename, (void *)&lua_upvalueid, (void *)&lua_upvaluejoin, (void *)&lua_version,
	(void *)&lua_warning, (void *)&lua_xmove, (void *)&lua_yieldk, (void *)&luaopen_base,
	(void *)&luaopen_coroutine, (void *)&luaopen_debug, (void *)&luaopen_io,
	(void *)&luaopen_math, (void *)&luaopen_os, (void *)&luaopen_package, (void *)&luaopen_string,
	(void *)&luaopen_table, (void *)&luaL_loadfilex_, (void *)&lua_clonefunction,
	(void *)&lua_sharefunction, (void *)&lua_sharestring,
#ifdef SKYNET_LUA55
	(void *)&luaL_alloc, (void *)&luaL_makeseed, (void *)&luaL_openselectedlibs,
	(void *)&lua_numbertocstring, (void *)&lua_pushexternalstring,
#else
	(void *)&luaL_openlibs, (void *)&lua_resetthread, (void *)&lua_setcstacklimit,
#endif
};
