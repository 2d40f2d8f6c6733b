-- Uses a Lua C module of our own (compat-tests/luaclib/ourmod.c) and Debian's lua-cjson, both
-- loaded through package.cpath against the Lua API exported by the skynet executable.
local c = require "skynet.core"

local function check(name, ok, detail)
	c.error(string.format("CHECK %s %s%s", name, ok and "ok" or "FAIL", ok and "" or (" " .. tostring(detail))))
end

local ok, ourmod = pcall(require, "ourmod")
check("require_ourmod", ok, ourmod)
if ok then
	check("add", ourmod.add(40, 2) == 42)
	check("join", ourmod.join(", ", "a", 1, true) == "a, 1, true", ourmod.join(", ", "a", 1, true))
	local n = ourmod.counter()
	n(); n()
	check("closure_upvalue", n() == 3)
	check("userdata_method", ourmod.box(9):get() == 9)
	local e1, m1 = pcall(ourmod.fail, 3)
	check("luaL_error", not e1 and m1:find("ourmod failure 3", 1, true) ~= nil, m1)
	local e2, r2 = ourmod.safecall(function(a) return a * 2 end, 21)
	check("pcall_from_c", e2 and r2 == 42)
	local e3, r3 = ourmod.safecall(error, "boom")
	check("pcall_error_from_c", not e3 and r3 == "boom", r3)
	-- Blocks freed through the state's allocator without their size are given back whole:
	-- jemalloc's allocated bytes do not keep the 8 MB (a sized free with size 0 would file
	-- each block under the smallest size class).
	local memory = require "skynet.memory"
	local function allocated()
		collectgarbage()
		return memory.jestat()["stats.allocated"]
	end
	ourmod.allocf_unsized(100, 1024) -- warm-up
	local before = allocated()
	ourmod.allocf_unsized(8192, 1024)
	local after = allocated()
	check("allocf_unsized_freed", after - before < 1024 * 1024, string.format("%d -> %d", before, after))
	check("version_matches", ourmod.built_for == _VERSION, ourmod.built_for .. " vs " .. _VERSION)
end

local want_cjson = ...
if want_cjson == "cjson" then
	local okj, cjson = pcall(require, "cjson")
	check("require_cjson", okj, cjson)
	if okj then
		local s = cjson.encode({ list = { 1, 2, 3 }, name = "skynet", nested = { flag = true } })
		local t = cjson.decode(s)
		check("cjson_roundtrip", t.name == "skynet" and t.list[3] == 3 and t.nested.flag == true, s)
		local okbad = pcall(cjson.decode, "{bad json")
		check("cjson_error", not okbad)
	end
end

c.error("DONE")
c.callback(function(ty)
	if ty == 1 then
		c.command("ABORT")
	end
end)
c.command("TIMEOUT", "2")
