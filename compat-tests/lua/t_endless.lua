-- t_endless (bootstrap :2): SIGNAL 0 breaks an endless loop in t_loop (:3) with the Lua error
-- "signal 0" wherever it runs (the dispatcher itself, pcall, a coroutine, coroutine.wrap),
-- and the service goes on answering. SIGNAL 1 logs the VM's memory.
local t = require "t"
local c = t.c

local DELAY = 10 -- cs the loop runs before we interrupt it

t.start(function()
	local loop = c.addresscommand("LAUNCH", "snlua t_loop")
	t.eq("loop_handle", loop, 3)
	local ty, text = t.call(loop, "hello")
	t.check("loop_ready", ty == t.RESPONSE and text == "pong:hello", t.show(text))

	-- in the dispatcher: the error escapes to it and is logged; the next message is served
	c.send(loop, t.TEXT, 0, "loop")
	t.sleep(DELAY)
	t.list("signal_result", t.pack(c.command("SIGNAL", t.hex(loop) .. " 0")), t.pack())
	ty, text = t.call(loop, "after_loop")
	t.check("alive_after_loop", ty == t.RESPONSE and text == "pong:after_loop", t.show(text))

	-- caught by pcall / coroutine.resume / coroutine.wrap inside the service
	for _, case in ipairs { "pcallloop", "coloop", "wraploop" } do
		local session = c.send(loop, t.TEXT, nil, case)
		t.sleep(DELAY)
		-- the default signal number is 0; a name works as the address too
		c.command("SIGNAL", case == "coloop" and t.hex(loop) or string.format(":%x", loop))
		local rty, msg, sz = t.wait(session)
		local r = c.tostring(msg, sz)
		t.check(
			case .. "_interrupted",
			rty == t.RESPONSE and r:match("^false|") and r:find("signal 0", 1, true),
			t.show(r)
		)
		ty, text = t.call(loop, "after_" .. case)
		t.check("alive_after_" .. case, ty == t.RESPONSE and text == "pong:after_" .. case, t.show(text))
	end

	-- a second loop in the dispatcher: the trap is re-armed
	c.send(loop, t.TEXT, 0, "loop")
	t.sleep(DELAY)
	c.command("SIGNAL", t.hex(loop) .. " 0")
	ty, text = t.call(loop, "after_loop2")
	t.check("alive_after_loop2", ty == t.RESPONSE and text == "pong:after_loop2", t.show(text))

	-- SIGNAL 1: memory report only
	c.command("SIGNAL", t.hex(loop) .. " 1")
	ty, text = t.call(loop, "after_signal1")
	t.check("alive_after_signal1", ty == t.RESPONSE and text == "pong:after_signal1", t.show(text))
	t.done()
end)
