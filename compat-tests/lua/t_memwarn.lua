-- t_memwarn: "alloc" keeps 40 MiB of strings (crossing the 32 MiB warning threshold), "free"
-- drops it; both answer with the VM's heap in bytes.
local t = require "t"
local c = t.c

local keep
c.callback(function(_, msg, sz, session, source)
	local text = c.tostring(msg, sz)
	if text == "alloc" then
		-- many 1 KiB strings: Lua 5.5 keeps one huge string outside its GC count
		keep = {}
		for i = 1, 40 * 1024 do
			keep[i] = string.rep("w", 1024) .. i
		end
	elseif text == "free" then
		keep = nil
		collectgarbage()
		collectgarbage()
	end
	c.send(source, t.RESPONSE, session, tostring(math.floor(collectgarbage("count") * 1024)))
end)
