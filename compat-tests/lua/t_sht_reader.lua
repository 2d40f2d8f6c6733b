-- t_sht_reader: clones sharetable pointers it is sent (packed (cmd, ptr)) and answers a
-- summary: clone(ptr) → "k=v,..." of the sorted top-level keys (sub-tables as "{...}"),
-- whether the clone and a sub-table are marked shared, or "ERR ..." if clone raised.
local t = require "t"
local c = t.c
local core = require "skynet.sharetable.core"

local function show(v)
	if type(v) == "table" then
		local keys = {}
		for k in pairs(v) do
			keys[#keys + 1] = k
		end
		table.sort(keys, function(a, b)
			return tostring(a) < tostring(b)
		end)
		local out = {}
		for _, k in ipairs(keys) do
			out[#out + 1] = tostring(k) .. "=" .. show(v[k])
		end
		return "{" .. table.concat(out, ",") .. "}"
	end
	return tostring(v)
end

c.callback(function(_, msg, sz, session, source)
	local cmd, ptr = c.unpack(msg, sz)
	local ok, r = pcall(core.clone, ptr)
	local reply
	if not ok then
		reply = "ERR " .. tostring(r)
	else
		local sub = false
		for _, v in pairs(r) do
			if type(v) == "table" then
				sub = core.is_sharedtable(v)
			end
		end
		reply = show(r) .. " shared=" .. tostring(core.is_sharedtable(r)) .. "," .. tostring(sub)
	end
	c.send(source, t.RESPONSE, session, c.pack(reply))
	if cmd == "exit" then
		c.command("EXIT")
	end
end)
