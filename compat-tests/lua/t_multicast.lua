-- t_multicast (bootstrap :2): skynet.multicast.core across services, the way multicastd uses
-- it: the publisher packs a message, binds the package to the number of subscribers and sends
-- each of them the 8 bytes of the outer block as a PTYPE_MULTICAST (2) message; every
-- subscriber unpacks its copy and closes the package once. Subscribers close at different
-- times and exit in different orders; the package must stay readable until the last close
-- and be gone (its handle refused) after it.
--   t_mcsub :3 "now"    closes at once, then exits
--   t_mcsub :4 "later"  closes when told to
--   t_mcsub :5 "now"    closes at once, stays
-- A probe (type 13, the wire bytes sent to ourselves) tells whether a package is still alive.
local t = require "t"
local c = t.c
local mc = require "skynet.multicast.core"
local SELF = c.addresscommand("REG")

local MULTICAST = 2
local PROBE = 13
local reports = {}
local probes = {}

t.dispatch[t.TEXT] = function(msg, sz)
	reports[#reports + 1] = c.tostring(msg, sz)
end

t.dispatch[PROBE] = function(msg, sz)
	local ok, _, data, dsz = pcall(mc.unpack, msg, sz)
	probes[#probes + 1] = ok and select(1, c.unpack(data, dsz)) or false
end

-- Packs and binds a message for n subscribers; returns the wire bytes.
local function publish(n, ...)
	local pp, psz = mc.pack(c.pack(...))
	local wire = c.tostring(pp, psz)
	return wire, mc.bind(pp, n)
end

local function wait_reports(n)
	t.wait_until(function() return #reports == n end)
	local r = reports
	reports = {}
	table.sort(r)
	return table.concat(r, ";")
end

local function probe(wire)
	probes = {}
	c.send(SELF, PROBE, 0, wire)
	t.wait_until(function() return #probes == 1 end)
	return probes[1]
end

t.start(function()
	local subs = {
		c.addresscommand("LAUNCH", "snlua t_mcsub now"),
		c.addresscommand("LAUNCH", "snlua t_mcsub later"),
		c.addresscommand("LAUNCH", "snlua t_mcsub now"),
	}
	t.eq("handles", subs[1] * 100 + subs[2] * 10 + subs[3], 345)
	for _, s in ipairs(subs) do
		c.send(s, t.TEXT, 0, "hello")
	end
	t.eq("ready", wait_reports(3), "ready 3;ready 4;ready 5")

	local wire = publish(#subs, "hello", 42)
	t.eq("alive_after_bind", probe(wire), "hello")
	for _, s in ipairs(subs) do
		c.send(s, MULTICAST, 0, wire)
	end
	t.eq("received", wait_reports(5),
		"closed 3;closed 5;got 3 hello 42;got 4 hello 42;got 5 hello 42")
	-- :3 has exited, :4 still holds the package: it is alive and intact
	t.eq("alive_before_last_close", probe(wire), "hello")
	c.send(subs[2], t.TEXT, 0, "close")
	t.eq("last_closed", wait_reports(1), "closed 4")
	t.eq("gone_after_last_close", probe(wire), false)
	t.raises("close_junk", "Invalid multicast package", mc.close, nil)

	-- many packages closed concurrently by two subscribers (two worker threads)
	local live = { subs[2], subs[3] }
	for _, s in ipairs(live) do
		c.send(s, t.TEXT, 0, "auto")
	end
	t.eq("auto", wait_reports(2), "auto 4;auto 5")
	local wires = {}
	for i = 1, 200 do
		wires[i] = publish(#live, "m", i)
		for _, s in ipairs(live) do
			c.send(s, MULTICAST, 0, wires[i])
		end
	end
	for _, s in ipairs(live) do
		c.send(s, t.TEXT, 0, "count")
	end
	t.eq("stress_counts", wait_reports(2), "count 4 200;count 5 200")
	probes = {}
	for _, w in ipairs(wires) do
		c.send(SELF, PROBE, 0, w)
	end
	t.wait_until(function() return #probes == 200 end)
	local freed = 0
	for _, p in ipairs(probes) do
		if p == false then
			freed = freed + 1
		end
	end
	t.eq("stress_all_freed", freed, 200)

	-- a dead channel: bound to 1 and closed at once
	local b = mc.pack(c.pack("x")) -- an unrelated package, unaffected
	local dead, dpkg = publish(1, "dead")
	mc.close(dpkg)
	t.eq("dead_channel_freed", probe(dead), false)
	t.raises("dead_close_again", "Invalid multicast package", mc.close, dpkg)
	t.eq("unrelated_alive", probe(c.tostring(b, 8)), "x")
	-- remote: the message comes back to the caller; package and outer block go
	local m, msz = c.pack("far", 1)
	local rp = mc.packremote(m, msz)
	c.trash(m, msz)
	local rwire = c.tostring(rp, 8)
	local msg, sz = mc.remote(rp)
	t.list("remote_message", t.pack(c.unpack(msg, sz)), t.pack("far", 1))
	c.trash(msg, sz)
	t.eq("remote_gone", probe(rwire), false)
	t.raises("remote_twice", "Invalid multicast package pointer", mc.remote, rp)
	t.raises("bind_after_remote", "Invalid multicast package pointer", mc.bind, rp, 1)
	local d, dsz = mc.remote(b)
	c.trash(d, dsz)
	t.eq("nextid", mc.nextid(0x7fffff02), 2)
	t.done()
end)
