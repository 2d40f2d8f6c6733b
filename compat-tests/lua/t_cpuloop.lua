-- t_cpuloop: a service whose request handlers run in coroutines, with skynet.lua's error rule:
-- a handler that fails answers the caller with PTYPE_ERROR and the error is logged. Requests:
--   "spin"   tells the sender "spinning" (a TEXT message), then loops forever
--   anything else: "pong:<text>"
local t = require "t"
local c = t.c

local function handle(text, session, source)
	if text == "spin" then
		c.send(source, t.TEXT, 0, "spinning")
		local n = 0
		while true do
			n = n + 1
		end
	end
	c.send(source, t.RESPONSE, session, "pong:" .. text)
end

c.callback(function(_, msg, sz, session, source)
	local text = c.tostring(msg, sz)
	local co = coroutine.create(handle)
	local ok, err = coroutine.resume(co, text, session, source)
	if not ok then
		if session ~= 0 then
			c.send(source, t.ERROR, session, "")
		end
		c.error("handler error: " .. tostring(err))
	end
end)
