-- t_manifest (bootstrap :2, run by tests/loading.rs under a load_manifest): the listed files
-- load; an unlisted or changed Lua service, Lua module (require, loadfile, dofile), C module or
-- Lua C module (require, package.loadlib) is refused. The test copies this directory (with t.lua and loader.lua) and the C module
-- t_child.so into a temporary directory, writes the manifest, then changes some files.
local t = require "t"
local c = t.c

-- A service whose start-up was refused exits: a request to it fails to send or gets an error
-- (a service that did start would answer "pong:ping").
local function refused(name, h)
	local s = h and c.send(h, t.TEXT, nil, "ping")
	local ty, msg, sz = nil, nil, nil
	if s then
		ty, msg, sz = t.wait(s)
	end
	t.check(name, ty == nil or ty == t.ERROR, t.show(ty) .. " " .. t.show(msg and c.tostring(msg, sz)))
end

t.start(function()
	local child = c.addresscommand("LAUNCH", "snlua t_mchild")
	local ty, text = t.call(child, "hi")
	t.check("listed_service_runs", ty == t.RESPONSE and text == "pong:hi", t.show(text))
	refused("unlisted_service_refused", c.addresscommand("LAUNCH", "snlua t_munlisted"))
	refused("changed_service_refused", c.addresscommand("LAUNCH", "snlua t_mchanged"))

	t.eq("listed_module_required", require "t_mmod", 42)
	t.raises("changed_module_refused", "load_manifest: refused Lua file", require, "t_mmodchanged")
	local f, err = loadfile(SERVICE_PATH .. "t_mmodchanged.lua")
	t.check("loadfile_refused", f == nil and tostring(err):find("does not match", 1, true), t.show(err))
	t.eq("listed_loadfile", loadfile(SERVICE_PATH .. "t_mmod.lua")(), 42)
	t.raises("dofile_refused", "not listed in the manifest", dofile, SERVICE_PATH .. "t_munlisted.lua")

	local cchild = c.addresscommand("LAUNCH", "t_child a")
	ty, text = t.call(cchild, "ping")
	t.check("listed_cmodule_runs", ty == t.RESPONSE and text == "pong", t.show(text))
	t.eq("changed_cmodule_refused", c.addresscommand("LAUNCH", "x.t_child b"), nil)
	t.eq("unlisted_cmodule_refused", c.addresscommand("LAUNCH", "y.t_child c"), nil)

	-- Lua C modules (lua_cpath is the same directory)
	t.raises("unlisted_luaclib_refused", "load_manifest: refused Lua C module", require, "fakelib")
	-- listed: passes the check and reaches Lua's own loader (t_child.so has no luaopen_ function)
	t.raises("listed_luaclib_checked", "luaopen_t_child", require, "t_child")
	t.eq("listed_loadlib", package.loadlib(SERVICE_PATH .. "t_child.so", "*"), true)
	local r = t.pack(package.loadlib(SERVICE_PATH .. "x.t_child.so", "*"))
	t.check(
		"changed_loadlib_refused",
		r.n == 3 and r[1] == nil and tostring(r[2]):find("does not match", 1, true) and r[3] == "open",
		t.show_list(r)
	)
	t.done()
end)
