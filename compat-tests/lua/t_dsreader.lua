-- t_dsreader: a datasheet reader for t_datasheet. Commands (packed): "new", handle;
-- "update", handle; "read": each answers with a summary of the sheet; "corrupt", handle and
-- "bad": "<self> error" when reading fails with a Lua error.
local t = require "t"
local c = t.c
local core = require "skynet.datasheet.core"
local SELF = c.addresscommand("REG")

local root, sub

local function summary()
	local l = {}
	for i = 1, #root.list do
		l[i] = root.list[i]
	end
	local s = string.format("%d %s %s %s %s %s %s", SELF, root.name, table.concat(l, ","),
		root.sub.deep[1], tostring(root.sub.deep[2]), root.sub.f, root.on)
	if sub then
		s = s .. (sub == root.sub and " same" or " different")
	end
	return s
end

t.dispatch[t.TEXT] = function(msg, sz, _, source)
	local cmd, h = c.unpack(msg, sz)
	local reply
	if cmd == "new" then
		root = core.new(h)
		reply = summary()
		sub = root.sub
	elseif cmd == "update" then
		core.update(root, h)
		reply = summary()
	elseif cmd == "read" then
		reply = summary()
	elseif cmd == "corrupt" then
		local ok = pcall(function()
			local t2 = core.new(h)
			return t2.k
		end)
		reply = SELF .. (ok and " read" or " error")
	elseif cmd == "bad" then
		local p, psz = c.pack(1) -- a pointer that is not a registered document
		local ok = pcall(core.new, p)
		c.trash(p, psz)
		reply = SELF .. (ok and " read" or " error")
	end
	c.send(source, t.TEXT, 0, reply)
end

t.serve()
