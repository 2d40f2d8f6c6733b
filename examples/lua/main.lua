-- The example node's bootstrap, in Lua on skynet.core (no skynet.lua needed).
-- It launches a Lua `adder` service, calls it a few times with packed arguments, then launches
-- the C `hello` module of examples/cservice, which talks to its own counter and stops the node.
local c = require "skynet.core"

local PTYPE_TEXT, PTYPE_RESPONSE, PTYPE_LUA = 0, 1, 10

c.error("main: hello from a Lua bootstrap on skynet-rs,", _VERSION)

local adder = c.addresscommand("LAUNCH", "snlua adder")
c.error(string.format("main: launched the Lua adder as :%08x", adder))

local pending = {}
local replies, ROUNDS = 0, 3

c.callback(function(ty, msg, sz, session, source)
	if ty == PTYPE_RESPONSE and pending[session] then
		local a, b = table.unpack(pending[session])
		pending[session] = nil
		local sum = c.unpack(msg, sz)
		c.error(string.format("main: :%08x says %d + %d = %d (session %d)", source, a, b, sum, session))
		replies = replies + 1
		if replies == ROUNDS then
			-- C and Lua services share the node: the C module takes over from here.
			c.error("main: all sums in; launching the C hello module")
			c.command("LAUNCH", "hello")
		end
	end
end)

for i = 1, ROUNDS do
	local a, b = i, i * 10
	local session = c.send(adder, PTYPE_LUA, nil, c.pack(a, b))
	pending[session] = { a, b }
end
