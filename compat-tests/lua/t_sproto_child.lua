-- t_sproto_child <slot>: on a text request, loads the sproto saved in <slot> by t_sproto and
-- encodes/decodes with it (bytes recorded from upstream), then answers "ok".
local t = require "t"
local c = t.c
local core = require "sproto.core"
local slot = tonumber((...))

local function unhex(h)
	return (h:gsub("..", function(x)
		return string.char(tonumber(x, 16))
	end))
end

local function hex(s)
	return (s:gsub(".", function(ch)
		return string.format("%02x", ch:byte())
	end))
end

c.callback(function(ty, msg, sz, session, source)
	if ty ~= t.TEXT then
		return
	end
	local sp = core.loadproto(slot)
	local tag, req, resp = core.protocol(sp, "foo")
	t.check("child_protocol", tag == 1 and resp == core.querytype(sp, "Item"))
	local e = core.encode(req, { i = 0x7ffe, big = 0x7fff, neg = -1 })
	t.eq("child_encode", hex(e), "0300feff0000000004000000ff7f000004000000ffffffff")
	local d = core.decode(req, core.unpack(core.pack(e)))
	t.check("child_decode", d.i == 0x7ffe and d.big == 0x7fff and d.neg == -1)
	c.send(source, t.RESPONSE, session, "ok")
end)
