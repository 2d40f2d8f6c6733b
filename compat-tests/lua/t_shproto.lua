-- t_shproto (bootstrap :2): code-cache prototypes shared by all VMs. Shared code mixed with
-- each VM's own strings under collector stress, in this VM and in workers running at the
-- same time on the node's threads; the heap cost of a cached load against a fresh compile;
-- codecache.clear with a file edited on disk; debug information of shared code.
local t = require "t"
local c = t.c
local cc = require "skynet.codecache"

local WORKERS = 4

-- heap growth (KiB) while `f` runs, its results kept alive
local function heap_cost(f)
	collectgarbage()
	collectgarbage()
	local before = collectgarbage("count")
	local keep = t.pack(f())
	local cost = collectgarbage("count") - before
	return cost, keep
end

local function write(path, text)
	local f = assert(io.open(path, "w"))
	f:write(text)
	f:close()
end

t.start(function()
	local m = require "shproto_mod"
	t.eq("local_exercise", m.exercise(64), "")

	-- workers (new VMs) on the node's threads, exercising the same shared code at once
	local workers = {}
	for i = 1, WORKERS do
		workers[i] = c.addresscommand("LAUNCH", "snlua t_shproto_w " .. i)
	end
	-- all requests at once, so that the workers run at the same time
	local replies, count, main = {}, 0, coroutine.running()
	for i = 1, WORKERS do
		t.fork(function()
			local _, text = t.call(workers[i], "go")
			replies[i], count = text, count + 1
			if count == WORKERS then
				t.wakeup(main)
			end
		end)
	end
	coroutine.yield()
	for i = 1, WORKERS do
		t.check("worker_" .. i, replies[i]:match("^ok ") ~= nil, replies[i])
	end
	t.eq("exercise_after_workers", m.exercise(16), "")

	-- a cached load costs a VM a closure; a compile costs it the prototypes
	local path = SERVICE_PATH .. "shproto_mod.lua"
	cc.mode("OFF")
	local compiled = heap_cost(function() return loadfile(path) end)
	cc.mode("ON")
	local cached, kept = heap_cost(function() return loadfile(path) end)
	t.check("cached_load_is_cheap", cached * 8 < compiled,
		string.format("cached %.3f KiB, compiled %.3f KiB", cached, compiled))
	local m2 = kept[1]()
	t.check("cached_chunk_is_a_new_instance", m2 ~= m and m2.exercise ~= m.exercise, "same module")
	t.eq("cached_chunk_runs", m2.exercise(8), "")

	-- errors and debug information come from the shared prototype
	local ok, err = pcall(m.fail)
	t.check("error_position", not ok and err:find("shproto_mod.lua:%d+: shared failure") ~= nil, err)
	local info = debug.getinfo(m.exercise, "S")
	t.check("getinfo_source", info.source:find("shproto_mod.lua", 1, true) ~= nil, info.source)
	local dumped = load(string.dump(m.bulk), "=dumped", "b")
	t.eq("dump_of_shared_function", dumped("two")[1], 2)

	-- clear: an edited file is read again, closures of the old version keep working
	local tmp = os.tmpname()
	write(tmp, "local v = 'one' return function() return v .. '-' .. 'first' end")
	local v1 = loadfile(tmp)()
	write(tmp, "local v = 'two' return function() return v .. '-' .. 'second' end")
	t.eq("cached_before_clear", loadfile(tmp)()(), "one-first")
	cc.clear()
	local v2 = loadfile(tmp)()
	collectgarbage()
	t.eq("reloaded_after_clear", v2(), "two-second")
	t.eq("old_version_alive", v1(), "one-first")

	-- EXIST: a cached file comes from the cache, another one from disk, not cached
	cc.mode("EXIST")
	write(tmp, "return 'three'")
	t.eq("exist_uses_cache", loadfile(tmp)()(), "two-second")
	local tmp2 = os.tmpname()
	write(tmp2, "return 'a'")
	t.eq("exist_reads_disk", loadfile(tmp2)(), "a")
	write(tmp2, "return 'b'")
	t.eq("exist_does_not_fill", loadfile(tmp2)(), "b")
	cc.mode("ON")
	t.eq("on_fills", loadfile(tmp2)(), "b")
	write(tmp2, "return 'c'")
	t.eq("on_uses_cache", loadfile(tmp2)(), "b")

	-- each load has its own upvalues: loadfile's env changes that closure only
	write(tmp, "return x")
	cc.clear()
	t.eq("env_of_clone", loadfile(tmp, "bt", { x = 5 })(), 5)
	t.eq("other_clone_keeps_globals", loadfile(tmp)(), nil)
	t.eq("env_of_second_clone", loadfile(tmp, "bt", { x = 6 })(), 6)

	-- a file that does not compile is reported and not cached
	write(tmp2, "return +")
	cc.clear()
	local f, why = loadfile(tmp2)
	t.check("syntax_error", f == nil and why:find(tmp2, 1, true) ~= nil, why)
	write(tmp2, "return 'fixed'")
	t.eq("syntax_error_not_cached", loadfile(tmp2)(), "fixed")
	os.remove(tmp)
	os.remove(tmp2)

	-- after clear, a new VM gets the module compiled again; the old code keeps running here
	local late = c.addresscommand("LAUNCH", "snlua t_shproto_w late")
	local _, text = t.call(late, "go")
	t.check("worker_after_clear", text:match("^ok ") ~= nil, text)
	t.eq("exercise_after_clear", m.exercise(16), "")
	-- the workers kept both threads busy: give the logger time to print every line before
	-- t.done ends the node (on a loaded machine 5 cs is not always enough)
	t.sleep(50)
	t.done()
end)
