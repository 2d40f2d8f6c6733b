-- t_cpu_main (upstream's skynet.lua, run by tests/loading.rs with cpu_limit = 1): a
-- skynet.call whose handler loops forever fails in the caller, and the callee answers the next
-- call.
local skynet = require "skynet"
local c = require "skynet.core"

skynet.start(function()
	local spinner = skynet.newservice("t_cpu_spinner")
	local ok, err = pcall(skynet.call, spinner, "lua", "spin")
	skynet.error(string.format("SPIN_CALL ok=%s err=%s", tostring(ok), tostring(err)))
	skynet.error("AFTER " .. tostring(skynet.call(spinner, "lua", "ping")))
	skynet.sleep(10) -- lets the logger print the lines above first
	c.command("ABORT")
end)
