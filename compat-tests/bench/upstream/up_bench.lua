-- Benchmarks written against skynet's public Lua API (`require "skynet"`), run by
-- compat-tests/bench/upstream/bench_upstream.py on an upstream C build and on ours with the
-- same lualib/ and service/ trees. The node's `start` service; what it measures comes from the
-- config: bench_mode (spawn, send, call, timer) and bench_n (count). Results are logged as
-- "BENCHUP <metric> <value> <unit>" lines, then "BENCHUP_DONE", then the node aborts.
-- Helper roles (launched by the modes themselves): `up_bench sink` and `up_bench echo`.
local skynet = require "skynet"
require "skynet.manager" -- skynet.kill, skynet.abort

local role = ...

local function finish(lines)
	for _, l in ipairs(lines) do
		skynet.error("BENCHUP " .. l)
	end
	skynet.error "BENCHUP_DONE"
	-- let the logger print before ABORT retires it
	skynet.sleep(10)
	skynet.abort()
end

local function seconds(t0)
	return (skynet.hpc() - t0) / 1e9
end

-- VmRSS of the whole process, in KiB.
local function rss_kib()
	local f = assert(io.open("/proc/self/status"))
	local s = f:read "a"
	f:close()
	return assert(tonumber(s:match "VmRSS:%s*(%d+)"), "no VmRSS line")
end

local modes = {}

-- Spawns n trivial services one after another (skynet.newservice: through the launcher, until
-- each has started), then kills them all.
function modes.spawn(n)
	skynet.kill(skynet.newservice "up_trivial") -- warm-up: the first load of the files
	skynet.call(".launcher", "lua", "LIST")
	collectgarbage "collect"
	local rss0 = rss_kib()
	local t0 = skynet.hpc()
	local list = {}
	for i = 1, n do
		list[i] = skynet.newservice "up_trivial"
	end
	local spawn_s = seconds(t0)
	local rss1 = rss_kib()
	local t1 = skynet.hpc()
	for i = 1, n do
		skynet.kill(list[i])
	end
	-- the launcher has seen every REMOVE once it answers this
	skynet.call(".launcher", "lua", "LIST")
	local kill_s = seconds(t1)
	finish {
		string.format("spawn %.1f services/s", n / spawn_s),
		string.format("rss_per_service %.2f KiB", (rss1 - rss0) / n),
		string.format("kill %.1f services/s", n / kill_s),
	}
end

-- n one-way skynet.send to a sink, 1000 per turn (then a yield), timed until the sink has
-- handled them all.
function modes.send(n)
	local sink = skynet.newservice("up_bench", "sink")
	local batch = 1000
	local t0 = skynet.hpc()
	local sent = 0
	while sent < n do
		local last = math.min(sent + batch, n)
		for i = sent + 1, last do
			skynet.send(sink, "lua", i)
		end
		sent = last
		skynet.yield()
	end
	-- one sender, one receiver: this call is handled after every send before it
	local got = skynet.call(sink, "lua", "count")
	local s = seconds(t0)
	assert(got == n, string.format("sink got %d of %d", got, n))
	finish { string.format("send %.0f msgs/s", n / s) }
end

-- n sequential skynet.call round trips to an echo service.
function modes.call(n)
	local echo = skynet.newservice("up_bench", "echo")
	local t0 = skynet.hpc()
	for i = 1, n do
		local r = skynet.call(echo, "lua", i)
		if r ~= i then
			error(string.format("call %d answered %s", i, tostring(r)))
		end
	end
	local s = seconds(t0)
	finish { string.format("call %.0f calls/s", n / s) }
end

-- n skynet.timeout due over one second (delays of 300..399 ticks, centiseconds, so that
-- registering them all is over before the first is due); each records how many ticks after its
-- due tick (skynet.now() at registration + delay) it ran.
function modes.timer(n)
	local fired, sum, max = 0, 0, 0
	local done = false
	local waiter = coroutine.running()
	local t0 = skynet.hpc()
	for i = 1, n do
		local delay = 300 + i % 100
		local due = skynet.now() + delay
		skynet.timeout(delay, function()
			local late = skynet.now() - due
			sum = sum + late
			if late > max then
				max = late
			end
			fired = fired + 1
			if fired == n and not done then
				done = true
				skynet.wakeup(waiter)
			end
		end)
	end
	local register_s = seconds(t0)
	if fired < n then
		skynet.wait(waiter)
	end
	finish {
		string.format("timer_late_mean %.3f cs", sum / n),
		string.format("timer_late_max %d cs", max),
		string.format("timer_register %.2f s", register_s),
	}
end

if role == "sink" then
	local count = 0
	skynet.start(function()
		skynet.dispatch("lua", function(session, _, v)
			if session == 0 then
				count = count + 1
			else
				skynet.ret(skynet.pack(count))
			end
		end)
	end)
elseif role == "echo" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, v)
			skynet.ret(skynet.pack(v))
		end)
	end)
else
	skynet.start(function()
		local mode = assert(skynet.getenv "bench_mode", "config: bench_mode missing")
		local n = math.tointeger(tonumber(skynet.getenv "bench_n"))
		local f = assert(modes[mode], "unknown bench_mode " .. mode)
		assert(n and n > 0, "config: bench_n must be a positive integer")
		skynet.fork(f, n)
	end)
end
