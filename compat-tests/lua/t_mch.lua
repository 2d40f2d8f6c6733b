-- t_mch: start service of the two-node multicast test (compat-tests/tests/harbor.rs). Runs on
-- both nodes with upstream's `skynet` lualib: a publisher under the global name
-- MCPUB<this harbor> and a subscriber to the other node's publisher, so the channel crosses
-- the harbor link in both directions at once.
local skynet = require "skynet"

skynet.start(function()
	local me = assert(tonumber(skynet.getenv "harbor"))
	skynet.newservice("t_mch_pub", me)
	skynet.newservice("t_mch_sub", 3 - me)
	skynet.error("MCH start harbor " .. me)
end)
