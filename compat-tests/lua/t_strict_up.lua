-- t_strict_up: cluster_strict with upstream's unchanged cluster services (clusterd,
-- clustersender, clusteragent). Config: strict_role ("a": serves, "b": calls),
-- strict_port_a, strict_port_b. Node a registers its echo service as "echo" and names it
-- ".localecho"; node b calls it by @name (served), by the handle cluster.query gives and by
-- ".localecho" (both refused when node a runs with cluster_strict, as a call to an unknown
-- @name is), logging
-- "STRICT <what> <ok> <text>" lines, then "STRICT DONE".
local skynet = require "skynet"
require "skynet.manager"
local cluster = require "skynet.cluster"

local role = skynet.getenv "strict_role"

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, s)
		skynet.ret(skynet.pack(cmd .. ":" .. s))
	end)
	cluster.reload({
		a = "127.0.0.1:" .. skynet.getenv "strict_port_a",
		b = "127.0.0.1:" .. skynet.getenv "strict_port_b",
	})
	if role == "a" then
		skynet.name(".localecho", skynet.self())
		cluster.register("echo", skynet.self())
		cluster.open "a"
		skynet.error("STRICT READY")
		return
	end
	local function try(what, addr)
		local ok, r = pcall(cluster.call, "a", addr, "echo", what)
		skynet.error(string.format("STRICT %s %s %s", what, ok, tostring(r)))
	end
	try("by_name", "@echo")
	try("unknown", "@nosuch")
	local handle = cluster.query("a", "echo")
	try("by_handle", handle)
	try("by_localname", ".localecho")
	try("after", "@echo")
	skynet.error("STRICT DONE")
end)
