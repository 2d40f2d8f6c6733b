-- Cluster round trips between two local nodes over upstream's skynet.cluster (clusterd,
-- clustersender, clusteragent; the packets come from skynet.cluster.core). Started as `start`
-- by run.sh on both nodes. Config: bench_role ("server" | "client"), bench_server_port,
-- bench_client_port, bench_small (calls of a few bytes), bench_large (calls carrying 64 KiB
-- each way, multipart requests and responses). The client prints "BENCH <name> <value> <unit>"
-- lines, then BENCH_DONE.
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local role = skynet.getenv "bench_role"
local sport = skynet.getenv "bench_server_port"
local cport = skynet.getenv "bench_client_port"

local function echo(...)
	return ...
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		assert(cmd == "echo")
		skynet.ret(skynet.pack(echo(...)))
	end)
	cluster.reload({ server = "127.0.0.1:" .. sport, client = "127.0.0.1:" .. cport })
	cluster.register("svc", skynet.self())
	cluster.open(role)
	if role ~= "client" then
		return
	end
	local up
	for _ = 1, 400 do
		up = pcall(cluster.call, "server", "@svc", "echo", "ping")
		if up then
			break
		end
		skynet.sleep(5)
	end
	assert(up, "the server node is not up")
	local addr = cluster.query("server", "svc")
	local function run(name, n, payload)
		local t0 = skynet.hpc()
		for _ = 1, n do
			local r = cluster.call("server", addr, "echo", payload)
			assert(#r == #payload)
		end
		local ns = skynet.hpc() - t0
		skynet.error(string.format("BENCH %s %d calls/s", name, math.floor(n * 1e9 / ns)))
		skynet.error(string.format("BENCH %s_latency %.1f us", name, ns / n / 1000))
	end
	run("cluster_call_small", tonumber(skynet.getenv "bench_small"), "hello")
	run("cluster_call_64k", tonumber(skynet.getenv "bench_large"), string.rep("x", 64 * 1024))
	skynet.error("BENCH_DONE")
end)
