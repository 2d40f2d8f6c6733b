-- t_sharedata (bootstrap :2): skynet.sharedata.core across services. A table is published and
-- read by three reader services (t_shd_reader), updated (the readers switch to the new version
-- on their next read, as corelib.lua does), then the old version is freed once every reader
-- let go; readers exit first (their boxes go with their VMs) or the publisher goes first
-- (deleted conf, and t_shd_host, a publisher service that exits): the readers keep reading.
local t = require "t"
local c = t.c
local core = require "skynet.sharedata.core"

local function call(addr, ...)
	local session = c.send(addr, t.TEXT, nil, c.pack(...))
	local _, msg, sz = t.wait(session)
	return c.unpack(msg, sz)
end

t.start(function()
	local readers = {}
	for i = 1, 3 do
		readers[i] = c.addresscommand("LAUNCH", "snlua t_shd_reader")
	end
	local v1 = core.new({ name = "v1", list = { 1, 2, 3 }, sub = { x = 1 }, [10] = "ten" })
	for i, r in ipairs(readers) do
		core.incref(v1) -- in flight
		t.eq("attach_" .. i, call(r, "attach", v1), true)
		core.decref(v1) -- confirmed
	end
	t.eq("refs_v1", core.getref(v1), 3)
	for i, r in ipairs(readers) do
		t.eq("read_v1_" .. i, call(r, "read"), "v1|3|1|10,list,name,sub|4")
	end

	-- publish v2
	local v2 = core.new({ name = "v2", list = { 1 }, sub = { x = "two" } })
	core.markdirty(v1)
	for i, r in ipairs(readers) do
		core.incref(v2)
		t.eq("update_" .. i, call(r, "update", v2), true)
		core.decref(v2)
	end
	t.eq("refs_v2", core.getref(v2), 3)
	for i, r in ipairs(readers) do
		t.eq("read_v2_" .. i, call(r, "read"), "v2|1|two|list,name,sub|3")
		call(r, "gc")
	end
	t.eq("refs_v1_released", core.getref(v1), 0)
	core.delete(v1)
	t.raises("deleted_is_gone", "Need a conf object", core.getref, v1)

	-- readers first: two readers exit, their boxes are released with their VMs
	call(readers[1], "exit")
	call(readers[2], "exit")
	t.sleep(10)
	t.eq("refs_after_exits", core.getref(v2), 1)

	-- publisher first: the host deletes v2 while reader 3 still holds it
	core.delete(v2)
	t.eq("read_after_delete", call(readers[3], "read"), "v2|1|two|list,name,sub|3")

	-- a publisher service that exits before its reader
	local r4 = c.addresscommand("LAUNCH", "snlua t_shd_reader")
	c.command("LAUNCH", "snlua t_shd_host " .. t.hex(r4))
	t.sleep(20)
	t.eq("read_after_host_exit", call(r4, "read"), "host|1|hx|list,name,sub|3")
	call(r4, "gc")
	t.eq("read_again", call(r4, "read"), "host|1|hx|list,name,sub|3")
	call(r4, "exit")
	call(readers[3], "exit")
	t.done()
end)
