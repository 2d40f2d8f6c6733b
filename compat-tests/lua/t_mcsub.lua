-- t_mcsub <mode>: a multicast subscriber for t_multicast. On a PTYPE_MULTICAST (2) message it
-- unpacks the package, reports "got <self> <values>" to the source and closes the package:
-- mode "now" closes at once (the first one then exits), "later" keeps it until told "close".
-- Text commands: "hello" -> "ready <self>"; "close"; "auto" (close at once from now on, count
-- messages) -> "auto <self>"; "count" -> "count <self> <n>".
local t = require "t"
local c = t.c
local mc = require "skynet.multicast.core"
local SELF = c.addresscommand("REG")

local mode = ...
local held, publisher
local auto, count = false, 0
local first_exit = SELF == 3

local function say(text)
	c.send(publisher, t.TEXT, 0, text)
end

t.dispatch[2] = function(msg, sz, _, source)
	local pkg, data, dsz = mc.unpack(msg, sz)
	if auto then
		count = count + 1
		mc.close(pkg)
		return
	end
	local a, b = c.unpack(data, dsz)
	say(string.format("got %d %s %s", SELF, a, b))
	if mode == "now" then
		mc.close(pkg)
		say("closed " .. SELF)
		if first_exit then
			c.command("EXIT")
		end
	else
		held = pkg
	end
end

t.dispatch[t.TEXT] = function(msg, sz, _, source)
	local cmd = c.tostring(msg, sz)
	publisher = source
	if cmd == "hello" then
		say("ready " .. SELF)
	elseif cmd == "close" then
		mc.close(held)
		held = nil
		say("closed " .. SELF)
	elseif cmd == "auto" then
		auto = true
		say("auto " .. SELF)
	elseif cmd == "count" then
		say(string.format("count %d %d", SELF, count))
	end
end

t.serve()
