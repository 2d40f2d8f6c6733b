-- Lua hot-path benchmarks on skynet.core alone (no skynet.lua), so the same code runs on the
-- C core and on ours. Launch: snlua lua_bench <mode> <args...>; results are logged as
-- "BENCH <name> <value> <unit>" lines.
local c = require "skynet.core"

local PTYPE_TEXT, PTYPE_RESPONSE = 0, 1
local mode = ...
local args = { select(2, ...) }

local function finish(lines)
	for _, l in ipairs(lines) do
		c.error(l)
	end
	-- ABORT also retires the logger: give it a moment to print first.
	c.callback(function(ty)
		if ty == PTYPE_RESPONSE then
			c.command("ABORT")
		end
	end)
	c.command("TIMEOUT", "20")
end

local function self()
	return c.addresscommand("REG")
end

local function launch(...)
	return c.addresscommand("LAUNCH", table.concat({ "snlua", "lua_bench", ... }, " "))
end

local function rate(n, ns)
	return math.floor(n / (ns / 1e9))
end

local modes = {}

-- One-way send A -> B of N small messages, until B has handled them all.
function modes.send(n)
	n = math.tointeger(n)
	local batch = 1000
	local sink = launch("sink", n, self())
	local sent, t0 = 0, nil
	local me = self()
	c.callback(function(ty, msg, sz)
		if ty == PTYPE_TEXT and c.tostring(msg, sz) == "more" then
			t0 = t0 or c.hpc()
			local last = math.min(sent + batch, n)
			for _ = sent + 1, last do
				c.send(sink, PTYPE_TEXT, 0, "payload")
			end
			sent = last
			if sent < n then
				c.send(me, PTYPE_TEXT, 0, "more")
			end
		elseif ty == PTYPE_TEXT then
			finish { string.format("BENCH lua_send %d msgs/s", rate(n, c.hpc() - t0)) }
		end
	end)
	c.send(me, PTYPE_TEXT, 0, "more")
end

function modes.sink(n, parent)
	n, parent = math.tointeger(n), math.tointeger(parent)
	local got = 0
	c.callback(function()
		got = got + 1
		if got == n then
			c.send(parent, PTYPE_TEXT, 0, "done")
		end
	end)
end

-- Sequential request/response round trips with sessions.
function modes.call(n)
	n = math.tointeger(n)
	local echo = launch("echo")
	local done, t0 = 0, c.hpc()
	c.callback(function(ty)
		if ty ~= PTYPE_RESPONSE then
			return
		end
		done = done + 1
		if done < n then
			c.send(echo, 10, nil, "ping")
		else
			local ns = c.hpc() - t0
			finish {
				string.format("BENCH lua_call %d calls/s", rate(n, ns)),
				string.format("BENCH lua_call_latency %.2f us", ns / n / 1000),
			}
		end
	end)
	c.send(echo, 10, nil, "ping")
end

function modes.echo()
	c.callback(function(ty, msg, sz, session, source)
		c.send(source, PTYPE_RESPONSE, session, c.tostring(msg, sz))
	end)
end

local function rss_kib()
	local f = io.open("/proc/self/statm")
	if not f then
		return 0
	end
	local _, resident = f:read("n", "n")
	f:close()
	return resident * 4
end

-- Spawn N trivial services; each reports when its Lua start-up ran.
function modes.spawn(n)
	n = math.tointeger(n)
	local me = self()
	local up = 0
	local rss0 = rss_kib()
	local t0 = c.hpc()
	c.callback(function(ty)
		if ty ~= PTYPE_TEXT then
			return
		end
		up = up + 1
		if up == n then
			local ns = c.hpc() - t0
			finish {
				string.format("BENCH lua_spawn %d services/s", rate(n, ns)),
				string.format("BENCH lua_spawn_rss %.1f KiB/service", (rss_kib() - rss0) / n),
			}
		end
	end)
	for _ = 1, n do
		launch("child", me)
	end
end

function modes.child(parent)
	c.callback(function() end)
	c.send(math.tointeger(parent), PTYPE_TEXT, 0, "up")
end

-- N timers at random delays up to 1 s; reports the worst lateness in centiseconds.
function modes.timer(n)
	n = math.tointeger(n)
	local due = {}
	local fired, worst, total = 0, 0, 0
	math.randomseed(42)
	c.callback(function(ty, _, _, session)
		if ty ~= PTYPE_RESPONSE then
			return
		end
		local late = c.now() - due[session]
		if late > worst then
			worst = late
		end
		total = total + late
		fired = fired + 1
		if fired == n then
			finish {
				string.format("BENCH lua_timer_late_max %d cs", worst),
				string.format("BENCH lua_timer_late_mean %.3f cs", total / n),
			}
		end
	end)
	for _ = 1, n do
		local d = math.random(1, 100)
		local session = c.intcommand("TIMEOUT", d)
		due[session] = c.now() + d
	end
end

modes[mode](table.unpack(args))
