-- t_dcreader: the reading end for t_debugchannel. Commands (packed): "connect", handle ->
-- "connected"; "drain": reads (sleeping a tenth of a second when empty) until "end", checks
-- the lines come in order -> "read <n> in order"; "release" -> "released".
local t = require "t"
local c = t.c
local dc = require "skynet.debugchannel"

local r

t.dispatch[t.TEXT] = function(msg, sz, _, source)
	local cmd, h = c.unpack(msg, sz)
	local function say(s)
		c.send(source, t.TEXT, 0, s)
	end
	if cmd == "connect" then
		r = dc.connect(h)
		say("connected")
	elseif cmd == "drain" then
		local n, want = 0, 1
		while true do
			local line = r:read(1)
			if line == "end" then
				break
			elseif line then
				n = n + 1
				if line ~= "" then
					if line ~= "line " .. want then
						say("out of order: " .. line .. " for " .. want)
						return
					end
					want = want + 1
				end
			end
		end
		say(string.format("read %d in order", n))
	elseif cmd == "release" then
		dc.release(r)
		say("released")
	end
end

t.serve()
