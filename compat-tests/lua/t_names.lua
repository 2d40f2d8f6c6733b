-- t_names (bootstrap :2): REG / QUERY / NAME through command / addresscommand / intcommand,
-- sending by ".name", KILL by name, and a few other text commands seen from Lua.
local t = require "t"
local c = t.c

local function none(...)
	return t.pack(...), t.pack()
end

t.start(function()
	t.eq("reg_self_addr", c.addresscommand("REG"), 2)
	t.eq("reg_self_text", c.command("REG"), ":2")
	t.eq("reg_empty", c.command("REG", ""), ":2")
	t.eq("reg_name", c.command("REG", ".alpha"), "alpha")
	t.list("reg_dup", none(c.command("REG", ".alpha")))
	t.eq("reg_second_name", c.command("REG", ".alpha2"), "alpha2")
	t.list("reg_global", none(c.command("REG", "glob")))
	t.eq("query_name", c.command("QUERY", ".alpha"), ":2")
	t.eq("query_name_addr", c.addresscommand("QUERY", ".alpha2"), 2)
	t.list("query_missing", none(c.command("QUERY", ".nosuch")))
	t.list("query_missing_addr", none(c.addresscommand("QUERY", ".nosuch")))
	t.list("query_global", none(c.command("QUERY", "glob")))
	t.list("addresscommand_not_address", none(c.addresscommand("REG", ".gamma")))
	t.raises("intcommand_not_number", "Invalid result :2", c.intcommand, "REG")

	local echo = c.addresscommand("LAUNCH", "snlua t_echo")
	t.eq("echo_handle", echo, 3)
	t.eq("name_set", c.command("NAME", ".beta " .. t.hex(echo)), "beta")
	t.list("name_dup", none(c.command("NAME", ".beta " .. t.hex(echo))))
	t.eq("name_lowercase_addr", c.command("NAME", ".beta2 :3"), "beta2")
	t.eq("name_query", c.addresscommand("QUERY", ".beta"), echo)
	t.eq("name_query_text", c.command("QUERY", ".beta2"), ":3")
	t.list("name_global", none(c.command("NAME", "gname " .. t.hex(echo))))

	-- send by name: to echo (answers), and to our own name
	local s = c.send(".beta", t.TEXT, nil, "byname")
	t.eq("send_by_name_session", s, 1)
	local ty, msg, sz, source = t.wait(s)
	t.check(
		"send_by_name_reply",
		ty == t.RESPONSE and source == echo and c.tostring(msg, sz) == "echo:byname",
		string.format("type %d source %s", ty, t.hex(source))
	)
	local selfmsg
	t.dispatch[t.TEXT] = function(m, msz, session, src)
		selfmsg = string.format("%s session=%d src=%s", c.tostring(m, msz), session, t.hex(src))
	end
	t.eq("send_to_own_name", c.send(".alpha", t.TEXT, 5, "toself"), 5)
	t.sleep(0) -- queued after our own message
	t.eq("own_name_received", selfmsg, "toself session=5 src=:00000002")

	-- KILL by name: names go with the service
	t.list("kill_by_name", none(c.command("KILL", ".beta")))
	t.list("killed_name_gone", none(c.command("QUERY", ".beta")))
	t.list("killed_second_name_gone", none(c.command("QUERY", ".beta2")))
	t.list("send_to_killed_name", none(c.send(".beta", t.TEXT, 0, "x")))
	t.list("send_to_killed_handle", none(c.send(echo, t.TEXT, 0, "x")))
	t.eq("name_reusable", c.command("NAME", ".beta :2"), "beta")
	t.eq("name_reused_query", c.addresscommand("QUERY", ".beta"), 2)

	-- other commands as Lua sees them
	t.eq("getenv", c.command("GETENV", "thread"), "2")
	t.eq("getenv_luaservice_set", c.command("GETENV", "luaservice") ~= nil, true)
	t.list("getenv_missing", none(c.command("GETENV", "nosuchkey")))
	local st = c.intcommand("STARTTIME")
	t.check("starttime", math.type(st) == "integer" and math.abs(st - os.time()) < 60, t.show(st))
	t.eq("stat_unknown_is_zero", c.intcommand("STAT", "bogus"), 0)
	t.eq("stat_mqlen", c.intcommand("STAT", "mqlen"), 0)
	local n = c.intcommand("STAT", "message")
	t.check("stat_message", math.type(n) == "integer" and n >= 3, t.show(n))
	local cpu = c.intcommand("STAT", "cpu")
	t.check("stat_cpu_float", math.type(cpu) == "float" and cpu >= 0, t.show(cpu))
	t.list("unknown_command", none(c.command("NOSUCHCOMMAND", "x")))
	t.raises("intcommand_fraction", "number has no integer representation", c.intcommand, "TIMEOUT", 1.5)
	t.done()
end)
