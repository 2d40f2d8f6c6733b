-- t_shd_host <reader>: a publisher that exits first: publishes a conf, hands it to the reader
-- (incref while in flight, decref once boxed, as sharedatad does), deletes its own reference
-- and exits; the reader must still read it.
local t = require "t"
local c = t.c
local core = require "skynet.sharedata.core"
local reader = tonumber((...):sub(2), 16)

t.start(function()
	local conf = core.new({ name = "host", list = { 1 }, sub = { x = "hx" } })
	core.incref(conf)
	local session = c.send(reader, t.TEXT, nil, c.pack("attach", conf))
	t.wait(session)
	core.decref(conf)
	t.eq("host_refs_after_attach", core.getref(conf), 1)
	core.delete(conf)
	c.error("HOST gone")
	c.command("EXIT")
end)
