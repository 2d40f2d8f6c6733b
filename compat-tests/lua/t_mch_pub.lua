-- t_mch_pub <harbor>: owns a skynet.multicast channel and hands its id to whoever calls
-- "channel" (found through the global name MCPUB<harbor>). "go" publishes N messages
-- (small ones and a 100 KiB one, in order); "done" publishes once more (the only subscriber
-- has left: nobody must get it) and deletes the channel.
local skynet = require "skynet"
local harbor = require "skynet.harbor"
local multicast = require "skynet.multicast"

local me = ...
local N = 5

-- Message i's payload; the subscriber rebuilds it to check what arrived.
local function payload(i)
	if i == 3 then
		return string.rep("0123456789abcdef", 6400) -- 100 KiB
	end
	return "msg" .. i
end

skynet.start(function()
	local ch = multicast.new()
	skynet.dispatch("lua", function(_, source, cmd)
		if cmd == "channel" then
			skynet.error(string.format("MCH pub%s channel %d to harbor %d", me, ch.channel,
				skynet.harbor(source)))
			skynet.ret(skynet.pack(ch.channel, N))
		elseif cmd == "go" then
			for i = 1, N do
				ch:publish(i, payload(i))
			end
			skynet.error(string.format("MCH pub%s published %d", me, N))
			skynet.ret(skynet.pack(N))
		elseif cmd == "done" then
			ch:publish(N + 1, "late")
			ch:delete()
			skynet.error(string.format("MCH pub%s deleted", me))
			skynet.ret(skynet.pack(true))
		else
			error("unknown command " .. tostring(cmd))
		end
	end)
	harbor.globalname("MCPUB" .. me)
end)
