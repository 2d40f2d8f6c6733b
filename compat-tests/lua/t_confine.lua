-- t_confine (bootstrap :2): LAUNCH refuses service and module names that would leave the
-- directories of the config's path templates (a ".." segment, a leading "/", a NUL byte,
-- more than 255 bytes): the command returns nothing and the core logs "LAUNCH refused".
-- "../lua/t_child" and "../build/t_child" would otherwise find real files (luaservice is
-- compat-tests/lua/?.lua, cpath compat-tests/build/?.so). Relative names with "/" still work.
local t = require "t"
local c = t.c

local function none(...)
	return t.pack(...), t.pack()
end

t.start(function()
	local long = string.rep("a", 300)
	t.list("snlua_dotdot", none(c.command("LAUNCH", "snlua ../x")))
	t.list("snlua_dotdot_real", none(c.command("LAUNCH", "snlua ../lua/t_child")))
	t.list("snlua_absolute", none(c.command("LAUNCH", "snlua /tmp/x")))
	t.list("snlua_long", none(c.command("LAUNCH", "snlua " .. long)))
	t.list("snlua_nul", none(c.command("LAUNCH", "snlua t_child\0x")))
	t.list("snlua_dotdot_addr", none(c.addresscommand("LAUNCH", "snlua a/../../x 1 2")))
	t.list("cmod_dotdot", none(c.command("LAUNCH", "../build/t_child")))
	t.list("cmod_absolute", none(c.command("LAUNCH", "/tmp/x")))
	t.list("cmod_long", none(c.command("LAUNCH", long)))
	t.list("cmod_nul", none(c.command("LAUNCH", "t_child\0x")))

	-- ordinary names keep working, including a relative one with "/" in it
	local plain = c.addresscommand("LAUNCH", "snlua t_child plain")
	t.check("plain_launched", plain ~= nil, "no handle")
	local slash = c.addresscommand("LAUNCH", "snlua ./t_child slash")
	t.check("slash_launched", slash ~= nil, "no handle")
	t.check("plain_answers", t.call(plain, "hi") == t.RESPONSE, "no answer")
	t.check("slash_answers", t.call(slash, "hi") == t.RESPONSE, "no answer")
	t.done()
end)
