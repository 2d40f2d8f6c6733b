-- t_metrics_loop (bootstrap): starts t_loop and sends it "loop" (an endless loop in its
-- dispatcher), then logs LOOPING. The test scrapes the metrics endpoint until the monitor's
-- endless-loop detection shows up there.
local t = require "t"
local c = t.c

t.start(function()
	local loop = c.addresscommand("LAUNCH", "snlua t_loop")
	local ty, text = t.call(loop, "hello")
	t.check("loop_ready", ty == t.RESPONSE and text == "pong:hello", t.show(text))
	c.send(loop, t.TEXT, 0, "loop")
	c.error("LOOPING")
end)
