-- t_cluster_up: a cluster node over upstream's skynet.cluster (its clusterd, clustersender and
-- clusteragent, unchanged), run as `start` on our executable and on upstream's by
-- tests/cluster.rs. Config: cluster_me, cluster_port, cluster_peer, cluster_peerport,
-- cluster_mode ("suite": call the peer; "kill": the suite, then a call the peer never answers
-- (the test kills it) and calls until it is back; "serve": only serve).
-- Service "@svc": echo(...) → ...; rev(s) → s reversed, #s; push(s) (sent, counted);
-- stats() → pushes, bytes; hang() never answers; whoami() → cluster_me.
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local me = skynet.getenv "cluster_me"
local port = skynet.getenv "cluster_port"
local peer = skynet.getenv "cluster_peer"
local peerport = skynet.getenv "cluster_peerport"
local mode = skynet.getenv "cluster_mode"
local pushes, push_bytes = 0, 0

local function check(name, ok, detail)
	skynet.error("CHECK " .. name .. (ok and " ok" or (" FAIL " .. tostring(detail))))
end

local function big(n, seed)
	local b = {}
	for i = 1, n // 16 do
		b[i] = string.format("%s%014d\n", seed, i)
	end
	return table.concat(b) .. string.rep("#", n % 16)
end

local cmd = {}
function cmd.echo(...)
	return ...
end
function cmd.rev(s)
	return s:reverse(), #s
end
function cmd.push(s)
	pushes = pushes + 1
	push_bytes = push_bytes + #s
end
function cmd.stats()
	return pushes, push_bytes
end
function cmd.hang()
	skynet.error("HANGING")
	skynet.wait()
end
function cmd.whoami()
	return me
end

local function suite()
	local ok, a, b = pcall(cluster.call, peer, "@svc", "echo", "hello", 42)
	check("call_name", ok and a == "hello" and b == 42, a)
	local addr = cluster.query(peer, "svc")
	check("query", type(addr) == "number", addr)
	ok, a = pcall(cluster.call, peer, addr, "whoami")
	check("call_handle", ok and a == peer, a)
	local s = big(100 * 1024, me)
	ok, a, b = pcall(cluster.call, peer, "@svc", "rev", s)
	check("call_100k", ok and a == s:reverse() and b == #s, ok and #a or a)
	local m = big(1024 * 1024, me)
	ok, a, b = pcall(cluster.call, peer, addr, "rev", m)
	check("call_1m", ok and a == m:reverse() and b == #m, ok and #a or a)
	local proxy = cluster.proxy(peer, "@svc")
	ok, a = pcall(skynet.call, proxy, "lua", "echo", "via proxy")
	check("proxy", ok and a == "via proxy", a)
	skynet.trace("cluster-" .. me)
	ok, a = pcall(cluster.call, peer, "@svc", "echo", "traced")
	check("traced", ok and a == "traced", a)
	cluster.send(peer, "@svc", "push", "small")
	local p = big(40 * 1024, me)
	cluster.send(peer, "@svc", "push", p)
	cluster.send(peer, addr, "push", p)
	-- Multipart pushes go out as low-priority socket writes (socketchannel), so a later call
	-- may overtake them: poll.
	for _ = 1, 200 do
		ok, a, b = pcall(cluster.call, peer, "@svc", "stats")
		if not ok or a >= 3 then
			break
		end
		skynet.sleep(2)
	end
	check("pushes", ok and a == 3 and b == 5 + 2 * #p, tostring(a) .. " " .. tostring(b))
	ok, a = pcall(cluster.call, peer, "@nosuch", "echo", 1)
	check("unknown_name", not ok, a)
	ok, a = pcall(cluster.call, peer, "@svc", "echo", "still up")
	check("after_error", ok and a == "still up", a)
end

skynet.start(function()
	skynet.dispatch("lua", function(session, source, c, ...)
		local f = cmd[c]
		if session == 0 then
			f(...)
		else
			skynet.ret(skynet.pack(f(...)))
		end
	end)
	cluster.reload({ [me] = "127.0.0.1:" .. port, [peer] = "127.0.0.1:" .. peerport })
	cluster.register("svc", skynet.self())
	cluster.open(me)
	skynet.error("READY " .. me)
	if mode == "serve" then
		return
	end
	local up
	for _ = 1, 200 do
		up = pcall(cluster.call, peer, "@svc", "echo", "ping")
		if up then
			break
		end
		skynet.sleep(5)
	end
	check("peer_up", up)
	suite()
	skynet.error("SUITE DONE " .. me)
	if mode ~= "kill" then
		return
	end
	local ok, err = pcall(cluster.call, peer, "@svc", "hang")
	check("pending_call_fails", not ok, err)
	skynet.error("PENDING FAILED " .. tostring(err))
	local back
	for _ = 1, 400 do
		cluster.reload({ [peer] = "127.0.0.1:" .. peerport })
		local ok2, r = pcall(cluster.call, peer, "@svc", "echo", "again")
		if ok2 then
			back = r
			break
		end
		skynet.sleep(5)
	end
	check("recovered", back == "again", back)
	ok, err = pcall(cluster.call, peer, "@svc", "rev", big(64 * 1024, me))
	check("recovered_large", ok, err)
	skynet.error("DONE")
end)
