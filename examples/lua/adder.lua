-- Answers PTYPE_LUA requests (two packed numbers) with their packed sum.
local c = require "skynet.core"

local PTYPE_RESPONSE, PTYPE_LUA = 1, 10

c.callback(function(ty, msg, sz, session, source)
	if ty == PTYPE_LUA then
		local a, b = c.unpack(msg, sz)
		c.send(source, PTYPE_RESPONSE, session, c.pack(a + b))
	end
end)
