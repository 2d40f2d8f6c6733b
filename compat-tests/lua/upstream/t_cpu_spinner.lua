-- t_cpu_spinner: "spin" loops forever; anything else answers "pong".
local skynet = require "skynet"

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd)
		if cmd == "spin" then
			local n = 0
			while true do
				n = n + 1
			end
		end
		skynet.ret(skynet.pack("pong"))
	end)
end)
