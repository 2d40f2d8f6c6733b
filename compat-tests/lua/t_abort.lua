-- t_abort (bootstrap :2) <request>: ABORT while t_loop (:3) is stuck in a handler. The
-- request is "loop" (a Lua loop: ABORT interrupts it) or "block" (blocked in C: the node
-- stops without it). Either way the process must end by itself.
local t = require "t"
local c = t.c
local request = ...

t.start(function()
	local loop = c.addresscommand("LAUNCH", "snlua t_loop")
	local ty, text = t.call(loop, "hello")
	t.check("loop_ready", ty == t.RESPONSE and text == "pong:hello", t.show(text))
	c.send(loop, t.TEXT, 0, request)
	t.sleep(10)
	c.error("DONE")
	c.error("ABORTING")
	t.sleep(5) -- let the logger write the lines above before ABORT retires it
	c.command("ABORT")
end)
