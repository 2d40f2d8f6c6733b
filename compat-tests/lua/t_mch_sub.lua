-- t_mch_sub <harbor>: finds the publisher MCPUB<harbor> (on the other node) through the
-- master, subscribes to its channel, asks for the messages, logs each one as it arrives
-- (checking the payload), then unsubscribes and lets the publisher delete the channel.
local skynet = require "skynet"
local harbor = require "skynet.harbor"
local multicast = require "skynet.multicast"

local other = ...

local function payload(i)
	if i == 3 then
		return string.rep("0123456789abcdef", 6400)
	end
	return "msg" .. i
end

skynet.start(function()
	local pub = harbor.queryname("MCPUB" .. other)
	local id, n = skynet.call(pub, "lua", "channel")
	local got = {}
	local waiting
	local ch = multicast.new {
		channel = id,
		dispatch = function(_, source, i, data)
			skynet.error(string.format("MCH sub%s got %d len=%d ok=%s from harbor %d", other, i,
				#data, data == payload(i), skynet.harbor(source)))
			got[#got + 1] = i
			if #got == n and waiting then
				skynet.wakeup(waiting)
			end
		end,
	}
	ch:subscribe()
	skynet.error(string.format("MCH sub%s subscribed %d", other, id))
	skynet.call(pub, "lua", "go")
	if #got < n then
		waiting = coroutine.running()
		skynet.wait(waiting)
	end
	ch:unsubscribe()
	-- unsubscribe is a send: our multicastd then tells the owner node (USUBR). Creating a
	-- channel is a call to the same multicastd, so once it returns that USUBR is on the link
	-- ahead of our "done"; otherwise the owner may delete the channel first and multicastd's
	-- USUBR assertion fails (upstream's own race, seen on its C build too).
	multicast.new():delete()
	skynet.call(pub, "lua", "done")
	skynet.error(string.format("MCH sub%s done %s", other, table.concat(got, ",")))
end)
