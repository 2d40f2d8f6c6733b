-- t_metrics (bootstrap :2, run with cpu_limit = 1 and metrics on): makes the events the metrics
-- endpoint counts happen, then logs "METRICS_READY" and waits (the test scrapes, then stops
-- the node). Named ".probe"; a child t_loop (:3) is launched and killed (one exit); a
-- t_cpuloop (:4) request loops until the monitor interrupts it; a timeout 1000 s away stays
-- pending.
local t = require "t"
local c = t.c

local spinning = false
t.dispatch[t.TEXT] = function(msg, sz)
	spinning = c.tostring(msg, sz) == "spinning"
end

t.start(function()
	t.eq("reg_name", c.command("REG", ".probe"), "probe")
	local child = c.addresscommand("LAUNCH", "snlua t_loop")
	t.eq("child", child, 3)
	c.command("KILL", t.hex(child))
	local looper = c.addresscommand("LAUNCH", "snlua t_cpuloop")
	t.eq("looper", looper, 4)
	local session = c.send(looper, t.TEXT, nil, "spin")
	t.wait_until(function()
		return spinning
	end)
	t.eq("looper_interrupted", t.wait(session), t.ERROR)
	c.intcommand("TIMEOUT", 100000)
	c.error("METRICS_READY")
end)
