-- t_shd_reader: a sharedata reader the way corelib.lua reads. Requests are packed
-- (cmd, ...) messages, answered with the packed results: attach(conf) boxes a conf,
-- update(conf) announces a newer version (boxed into the holder table, as corelib does),
-- read() → a summary of the current version (switching to the newer one first if the current
-- is dirty), gc() collects, exit() answers then exits (the box goes with the VM).
local t = require "t"
local c = t.c
local core = require "skynet.sharedata.core"

local obj, box, sub

local function current()
	if core.isdirty(obj) then
		local n, holder = core.needupdate(box)
		if n then
			obj, box = n, holder.__gcobj
			sub = nil
		end
	end
	return obj
end

local function summary()
	local o = current()
	sub = sub or core.index(o, "sub")
	local list = core.index(o, "list")
	local keys = {}
	local k = core.nextkey(o)
	while k ~= nil do
		keys[#keys + 1] = tostring(k)
		k = core.nextkey(o, k)
	end
	table.sort(keys)
	return string.format(
		"%s|%d|%s|%s|%d",
		core.index(o, "name"),
		core.len(list),
		tostring(core.index(sub, "x")),
		table.concat(keys, ","),
		core.hashlen(o)
	)
end

local CMD = {}
function CMD.attach(conf)
	obj, box = conf, core.box(conf)
	return true
end
function CMD.update(conf)
	core.update(box, conf, { __gcobj = core.box(conf) })
	return true
end
function CMD.read()
	return summary()
end
function CMD.gc()
	collectgarbage()
	collectgarbage()
	return true
end
function CMD.exit()
	return true
end

c.callback(function(_, msg, sz, session, source)
	local args = t.pack(c.unpack(msg, sz))
	local r = t.pack(pcall(CMD[args[1]], table.unpack(args, 2, args.n)))
	if not r[1] then
		r = t.pack(false, "ERR " .. tostring(r[2]))
	end
	c.send(source, t.RESPONSE, session, c.pack(table.unpack(r, 2, r.n)))
	if args[1] == "exit" then
		c.command("EXIT")
	end
end)
