-- t_loop: endless loops to be broken by SIGNAL 0. Text requests:
--   "loop"        while true do end, right in the dispatcher (the error escapes to it)
--   "pcallloop"   the loop inside pcall: answers "<ok>|<error>"
--   "coloop"      the loop inside a coroutine: answers "<ok>|<error>" from coroutine.resume
--   "wraploop"    the loop inside coroutine.wrap, called under pcall: "<ok>|<error>"
--   "block"       blocks in C for 8 s (os.execute of sleep): no hook can interrupt it
--   anything else: "pong:<text>"
local t = require "t"
local c = t.c

local function loop()
	local n = 0
	while true do
		n = n + 1
	end
end

c.callback(function(_, msg, sz, session, source)
	local text = c.tostring(msg, sz)
	local reply
	if text == "loop" then
		loop()
	elseif text == "pcallloop" then
		local ok, err = pcall(loop)
		reply = tostring(ok) .. "|" .. tostring(err)
	elseif text == "coloop" then
		local ok, err = coroutine.resume(coroutine.create(loop))
		reply = tostring(ok) .. "|" .. tostring(err)
	elseif text == "block" then
		os.execute("exec sleep 8 </dev/null >/dev/null 2>&1")
		reply = "unblocked"
	elseif text == "wraploop" then
		local ok, err = pcall(coroutine.wrap(loop))
		reply = tostring(ok) .. "|" .. tostring(err)
	else
		reply = "pong:" .. text
	end
	if session ~= 0 then
		c.send(source, t.RESPONSE, session, reply)
	end
end)
