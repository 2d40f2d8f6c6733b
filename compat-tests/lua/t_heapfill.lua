-- t_heapfill: "fill" builds a heap of objects of many sizes (strings, tables with array and
-- hash parts grown step by step, closures), answering with the VM's heap in
-- bytes.
local t = require "t"
local c = t.c

local keep
c.callback(function(_, msg, sz, session, source)
	if c.tostring(msg, sz) == "fill" then
		keep = {}
		for i = 1, 1000 do
			local n = i % 97
			local tab = {}
			for j = 1, n % 13 do
				tab[j] = j
				tab["k" .. j] = string.rep("v", j * 7)
			end
			keep[i] = {
				s = string.rep("s", i % 401) .. i,
				t = tab,
				f = function()
					return n, tab
				end,
			}
		end
	end
	c.send(source, t.RESPONSE, session, tostring(math.floor(collectgarbage("count") * 1024)))
end)
