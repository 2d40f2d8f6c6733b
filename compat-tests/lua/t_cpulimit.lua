-- t_cpulimit (bootstrap :2, run with cpu_limit = 1): an endless loop in a request handler of
-- t_cpuloop (:3) is interrupted by the monitor; meanwhile t_loop (:4) answers; the caller of
-- the looping request gets PTYPE_ERROR and :3 goes on serving. Then an endless loop right in
-- :4's dispatcher is interrupted the same way and :4 goes on serving.
local t = require "t"
local c = t.c

local spinning = false
t.dispatch[t.TEXT] = function(msg, sz)
	spinning = c.tostring(msg, sz) == "spinning"
end

t.start(function()
	local looper = c.addresscommand("LAUNCH", "snlua t_cpuloop")
	local other = c.addresscommand("LAUNCH", "snlua t_loop")
	t.eq("handles", looper * 10 + other, 34)
	local ty, text = t.call(looper, "hello")
	t.check("looper_ready", ty == t.RESPONSE and text == "pong:hello", t.show(text))

	local session = c.send(looper, t.TEXT, nil, "spin")
	t.wait_until(function()
		return spinning
	end)
	local started = c.now()
	-- the loop has started and has not been interrupted yet (its error reply would have
	-- arrived unwaited for, an UNEXPECTED line): other services answer meanwhile
	for i = 1, 3 do
		ty, text = t.call(other, "while" .. i)
		t.check("other_answers_" .. i, ty == t.RESPONSE and text == "pong:while" .. i, t.show(text))
	end
	local rty = t.wait(session)
	c.error(string.format("INTERRUPTED_AFTER_CS %d", c.now() - started))
	t.eq("caller_gets_error", rty, t.ERROR)
	ty, text = t.call(looper, "after")
	t.check("looper_serves_after", ty == t.RESPONSE and text == "pong:after", t.show(text))

	-- right in the dispatcher (no coroutine): the error escapes to it and is logged
	c.send(other, t.TEXT, 0, "loop")
	ty, text = t.call(other, "after_loop")
	t.check("other_serves_after_loop", ty == t.RESPONSE and text == "pong:after_loop", t.show(text))
	t.done()
end)
