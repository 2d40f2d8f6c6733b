-- t_mchild: answers every request with "pong:<text>" (t_manifest copies it under other names).
local t = require "t"
local c = t.c

c.callback(function(_, msg, sz, session, source)
	c.send(source, t.RESPONSE, session, "pong:" .. c.tostring(msg, sz))
end)
