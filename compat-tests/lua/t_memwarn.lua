-- t_memwarn: "alloc" keeps a 40 MiB string (crossing the 32 MiB warning threshold), "free"
-- drops it; both answer with the VM's heap in bytes.
local t = require "t"
local c = t.c

local keep
c.callback(function(_, msg, sz, session, source)
	local text = c.tostring(msg, sz)
	if text == "alloc" then
		keep = string.rep("w", 40 * 1024 * 1024)
	elseif text == "free" then
		keep = nil
		collectgarbage()
		collectgarbage()
	end
	c.send(source, t.RESPONSE, session, tostring(math.floor(collectgarbage("count") * 1024)))
end)
