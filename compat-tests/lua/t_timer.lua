-- t_timer (bootstrap): TIMEOUT through intcommand/command. Sessions come from the service's
-- counter; each expiry is a PTYPE_RESPONSE from source 0 with no payload; TIMEOUT 0 (and a
-- negative time) is queued at once; the rest fire in delay order, never early. Every expiry
-- is logged as "FIRE session=<s>" (the Rust test checks the order).
local t = require "t"
local c = t.c

t.start(function()
	-- TIMEOUT 0: the response is in our queue before the command returns
	t.eq("mqlen_before", c.intcommand("STAT", "mqlen"), 0)
	local s0 = c.intcommand("TIMEOUT", 0)
	t.eq("timeout0_session", s0, 1)
	t.eq("timeout0_queued_at_once", c.intcommand("STAT", "mqlen"), 1)
	local ty, msg, sz, source = t.wait(s0)
	t.check(
		"timeout0_response",
		ty == t.RESPONSE and source == 0 and sz == 0 and c.tostring(msg, sz) == "",
		string.format("type %d source %d sz %d", ty, source, sz)
	)

	-- a batch: sessions 2..10
	local main = coroutine.running()
	local delays = { 30, 10, 0, 20, -5, 10, 1 }
	local want_delay = {}
	local start = c.now()
	local got = {}
	for i, d in ipairs(delays) do
		got[i] = c.intcommand("TIMEOUT", d)
		want_delay[got[i]] = d
	end
	t.list("timeout_sessions", t.pack(table.unpack(got)), t.pack(2, 3, 4, 5, 6, 7, 8))
	local s = c.intcommand("TIMEOUT", "15")
	t.eq("timeout_string_param", s, 9)
	want_delay[s] = 15
	s = c.command("TIMEOUT", "25")
	t.eq("timeout_command_text", s, "10")
	want_delay[10] = 25
	t.eq("genid_after_timeouts", c.genid(), 11)

	local fired, bad = 0, {}
	t.dispatch[t.RESPONSE] = function(_, rsz, session, rsource)
		local elapsed = c.now() - start
		c.error("FIRE session=" .. session)
		local d = want_delay[session]
		if rsource ~= 0 or rsz ~= 0 or d == nil or elapsed < d then
			bad[#bad + 1] = string.format("session %d source %d sz %d elapsed %d", session, rsource, rsz, elapsed)
		end
		want_delay[session] = nil
		fired = fired + 1
		if fired == 9 then
			t.wakeup(main)
		end
	end
	coroutine.yield()
	t.dispatch[t.RESPONSE] = nil
	t.check("responses_shape_and_not_early", #bad == 0, table.concat(bad, "; "))
	t.check("all_fired_once", next(want_delay) == nil, "missing")
	t.check("elapsed_at_least_30cs", c.now() - start >= 30, c.now() - start)
	t.done()
end)
