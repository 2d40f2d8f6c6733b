-- t_exitq (bootstrap :2): messages still queued to a service when it goes away are answered
-- with PTYPE_ERROR (7), the same session, no payload, from the dead handle, even for session
-- 0; a message sent after the handle is gone gets nothing back.
--   echo :3   EXIT while messages are queued behind the "exit" request
--   echo :4   KILLed by us while busy, with a request queued
--   t_bad :7  its main chunk fails (after 100 ms) while a request is queued (:5 and :6 hash to
--             the slots of the live :1 and :2 in the 4-slot handle table)
local t = require "t"
local c = t.c

local errors = {} -- PTYPE_ERROR not waited for: "session=<s> from=<h> sz=<sz>"

t.dispatch[t.ERROR] = function(_, sz, session, source)
	local e = string.format("session=%d from=%s sz=%d", session, t.hex(source), sz)
	c.error("GOT ERROR " .. e)
	errors[#errors + 1] = e
end

local function expect_error(name, session, from)
	local ty, _, sz, source = t.wait(session)
	t.check(
		name,
		ty == t.ERROR and source == from and sz == 0,
		string.format("type %d source %s sz %d", ty, t.hex(source), sz)
	)
end

t.start(function()
	local echo = c.addresscommand("LAUNCH", "snlua t_echo")
	local echo2 = c.addresscommand("LAUNCH", "snlua t_echo")
	t.eq("handles", echo * 10 + echo2, 34)

	-- EXIT with a queue: busy first, so everything below is queued when "exit" runs
	c.send(echo, t.TEXT, 0, "busy 100")
	c.send(echo, t.TEXT, 0, "exit")
	local s1 = c.send(echo, t.TEXT, nil, "queued1")
	t.eq("queued_session", s1, 1)
	t.eq("queued_session0", c.send(echo, t.TEXT, 0, "queued0"), 0)
	t.eq("queued_explicit", c.send(echo, t.TEXT, 99, "queued99"), 99)
	expect_error("exit_error_reply", s1, echo)
	expect_error("exit_error_reply_explicit", 99, echo)
	t.eq("exit_error_reply_session0", errors[1], "session=0 from=:00000003 sz=0")
	t.list("send_after_exit", t.pack(c.send(echo, t.TEXT, nil, "late")), t.pack())

	-- KILL while the service is busy (or has not even started: then "busy" is answered
	-- with an error too) with a request queued
	c.send(echo2, t.TEXT, 0, "busy 100")
	local s2 = c.send(echo2, t.TEXT, nil, "queued2")
	c.command("KILL", t.hex(echo2))
	expect_error("kill_error_reply", s2, echo2)

	-- a failing Lua start with a request queued behind the start message
	local bad = c.addresscommand("LAUNCH", "snlua t_bad 100")
	t.eq("bad_handle", bad, 7)
	local s3 = c.send(bad, t.TEXT, nil, "queued3")
	expect_error("failed_start_error_reply", s3, bad)

	-- nothing else came back (should echo2 not have started "busy" before the KILL, that
	-- message is answered too)
	t.sleep(2)
	local others = {}
	for _, e in ipairs(errors) do
		if e ~= "session=0 from=:00000004 sz=0" then
			others[#others + 1] = e
		end
	end
	t.eq("other_errors", table.concat(others, "; "), "session=0 from=:00000003 sz=0")
	t.done()
end)
