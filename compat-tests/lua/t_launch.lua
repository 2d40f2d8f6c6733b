-- t_launch (bootstrap :2): LAUNCH from Lua (":%08X" text, integer via addresscommand),
-- arguments reaching the child's main chunk, KILL / EXIT, and Lua start failures (a missing
-- service file, a main chunk raising): LAUNCH still succeeds, then the child logs
-- "lua loader error", sends "ERROR" to .launcher (us) and exits. We are the exit MONITOR,
-- so every exit is also reported to us (PTYPE_CLIENT from the exiting handle).
local t = require "t"
local c = t.c

local function none(...)
	return t.pack(...), t.pack()
end

local exited = {} -- handle => true (monitor notices)

-- Sends to a service that has exited: nothing comes back. The monitor notice is sent just
-- before the handle is retired, so a send racing with that is still queued, and answered
-- with PTYPE_ERROR when the queue is dropped; the handle is gone then for sure.
local function send_after_exit(h)
	local s = c.send(h, t.TEXT, nil, "x")
	if s then
		local ty = t.wait(s)
		if ty ~= t.ERROR then
			return "answered with type " .. ty
		end
		s = c.send(h, t.TEXT, nil, "x")
	end
	return s
end
local errors = {} -- "ERROR" texts from failed starts, by source

t.dispatch[3] = function(_, sz, session, source)
	c.error(string.format("EXITED %s session=%d sz=%d", t.hex(source), session, sz))
	exited[source] = true
end

t.dispatch[t.TEXT] = function(msg, sz, session, source)
	local text = c.tostring(msg, sz)
	c.error(string.format("LAUNCHER got [%s] session=%d from %s", text, session, t.hex(source)))
	errors[source] = text
end

t.start(function()
	local me = c.addresscommand("REG")
	t.eq("reg_launcher", c.command("REG", ".launcher"), "launcher")
	t.list("monitor_set", none(c.command("MONITOR", t.hex(me))))
	t.eq("monitor_query", c.command("MONITOR"), ":2")

	local r = c.command("LAUNCH", "snlua t_child a b c")
	t.eq("launch_text", r, ":00000003")
	local kid = c.addresscommand("LAUNCH", "snlua t_child  x   y")
	t.eq("launch_addr", kid, 4)
	t.eq("launch_noargs", c.command("LAUNCH", "snlua t_child"), ":00000005")
	t.list("launch_missing_module", none(c.command("LAUNCH", "nosuchmodule")))

	-- Lua start failures: LAUNCH returns the handle anyway
	t.eq("launch_missing_file", c.command("LAUNCH", "snlua t_nosuch"), ":00000006")
	t.eq("launch_bad_main", c.addresscommand("LAUNCH", "snlua t_bad"), 7)
	t.wait_until(function()
		return exited[6] and exited[7] and errors[6] and errors[7]
	end)
	t.eq("missing_file_error_text", errors[6], "ERROR")
	t.eq("bad_main_error_text", errors[7], "ERROR")
	t.eq("send_to_failed", send_after_exit(7), nil)

	-- the children answer
	local ty, text, source = t.call(3, "hi")
	t.check("child3_answers", ty == t.RESPONSE and text == "pong:hi" and source == 3, t.show(text))
	t.check("child4_alive", t.call(kid, "hi") == t.RESPONSE, "no answer")

	-- more launches. The handle table (8 slots now, :6 and :7 free) is probed from the cursor
	-- (9), so the next free slots are those of :e and :f. The first handle with a hex letter
	-- is printed in uppercase.
	t.eq("launch_more_8", c.addresscommand("LAUNCH", "snlua t_child more"), 8)
	t.eq("launch_uppercase", c.command("LAUNCH", "snlua t_child more"), ":0000000E")
	t.eq("launch_more_f", c.addresscommand("LAUNCH", "snlua t_child more"), 0xf)

	-- KILL another service; EXIT by request
	t.list("kill_result", none(c.command("KILL", t.hex(kid))))
	t.wait_until(function()
		return exited[kid]
	end)
	t.eq("send_to_killed", send_after_exit(kid), nil)
	t.list("kill_bad_syntax", none(c.command("KILL", "bogus")))
	t.eq("exit_request", c.send(3, t.TEXT, 0, "exit"), 0)
	t.wait_until(function()
		return exited[3]
	end)
	t.eq("send_to_exited", send_after_exit(3), nil)
	-- a child's main chunk runs on a worker after LAUNCH returns: let it run before the KILL
	for _, h in ipairs { 8, 0xe, 0xf } do
		t.call(h, "started?")
	end
	for _, h in ipairs { 5, 8, 0xe, 0xf } do
		c.command("KILL", string.format(":%x", h))
	end
	t.wait_until(function()
		return exited[5] and exited[8] and exited[0xe] and exited[0xf]
	end)
	t.check("all_exits_seen", true)
	t.done()
end)
