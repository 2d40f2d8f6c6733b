-- t_shproto_w <n>: a worker of t_shproto. Requires the shared module, runs its exercise and
-- answers the launcher's text request with the outcome: "ok <heap delta of the require>" or
-- the differences found.
local t = require "t"
local c = t.c
local id = ...

collectgarbage()
local before = collectgarbage("count")
local m = require "shproto_mod"
local cost = collectgarbage("count") - before

c.callback(function(ty, msg, sz, session, source)
	if session == 0 then
		return
	end
	local bad = m.exercise(32)
	local reply = bad == "" and string.format("ok %.3f", cost) or ("worker " .. id .. ": " .. bad)
	c.send(source, t.RESPONSE, session, reply)
end)
