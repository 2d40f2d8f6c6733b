-- t_misc (bootstrap :2): skynet.core error / trace / now / hpc / harbor; skynet.profile;
-- coroutine.resume / wrap (snlua's profiling versions) behaving like the standard ones;
-- skynet.memory; skynet.codecache; what snlua prepares before the loader.
-- The lines logged by c.error / c.trace are checked by the Rust test.
local t = require "t"
local c = t.c

-- before anything else: the modules snlua preinstalled, the registry, the loader's globals
local reg = debug.getregistry()
local preinstalled_profile = package.loaded["skynet.profile"]
local preinstalled_codecache = package.loaded["skynet.codecache"]

t.start(function()
	t.check("profile_preinstalled", type(preinstalled_profile) == "table", tostring(preinstalled_profile))
	t.check("codecache_preinstalled", type(preinstalled_codecache) == "table", tostring(preinstalled_codecache))
	t.eq("registry_noenv", reg.LUA_NOENV, true)
	t.eq("registry_context", type(reg.skynet_context), "userdata")
	t.eq("service_name", SERVICE_NAME, "t_misc")
	t.check("service_path", type(SERVICE_PATH) == "string" and SERVICE_PATH:match("/lua/$"), tostring(SERVICE_PATH))
	t.eq("lua_path_cleared", LUA_PATH, nil)
	t.eq("lua_service_global", type(LUA_SERVICE), "string")

	-- error: arguments through tostring (__tostring too), joined by single spaces
	c.error("MISC", 1, 2.5, nil, true, 2.0, -0)
	c.error()
	c.error("MISC single")
	c.error(42)
	c.error(setmetatable({}, { __tostring = function()
		return "MISC tostring"
	end }), "x")
	c.error("MISC two\nlines")
	c.error("MISC long " .. string.rep("0123456789", 100))
	c.error("MISC", "")
	c.error(setmetatable({}, { __tostring = function()
		return 1 -- a number is a string to luaL_tolstring
	end }), "MISC number tostring")
	t.raises("error_bad_tostring", "'__tostring' must return a string", c.error, setmetatable({}, {
		__tostring = function()
			return {}
		end,
	}), 2)

	-- trace: "<TRACE tag> <ns> user", with " : source:line ..." when a level is asked for
	c.trace("plain", "MISC trace")
	local function traced()
		c.trace("lvl", "MISC trace level", 1)
	end
	traced()
	local co = coroutine.create(function()
		coroutine.yield()
	end)
	coroutine.resume(co)
	c.trace("co", "MISC trace co", co)
	t.raises("trace_needs_strings", "bad argument #2", c.trace, "tag")

	-- now (cs) and hpc (ns): integers, monotonic, consistent with the wall clock
	local n1, h1 = c.now(), c.hpc()
	t.check("now_integer", math.type(n1) == "integer" and n1 >= 0, t.show(n1))
	t.check("hpc_integer", math.type(h1) == "integer" and h1 > 0, t.show(h1))
	t.check("hpc_increases", c.hpc() > h1, "not increasing")
	t.sleep(3)
	local n2, h2 = c.now(), c.hpc()
	-- (only loose bounds: a timer thread running late makes a 3 cs timeout fire early in
	-- real time, as upstream; `now` is in cs, see now_tracks_wall)
	t.check("now_advances", n2 >= n1 and n2 - n1 < 100, n2 - n1)
	t.check("hpc_advances", h2 > h1 and h2 - h1 < 10000000000, h2 - h1)
	local start = c.intcommand("STARTTIME")
	t.check("now_tracks_wall", math.abs(start + n2 // 100 - os.time()) <= 2, start + n2 // 100 - os.time())

	-- harbor: (harbor id, remote?)
	t.list("harbor_self", t.pack(c.harbor(c.addresscommand("REG"))), t.pack(0, false))
	t.list("harbor_remote", t.pack(c.harbor(0x05000001)), t.pack(5, true))
	t.list("harbor_local_id", t.pack(c.harbor(3)), t.pack(0, false))

	-- profile: CPU seconds of a coroutine, not counting the time it is suspended
	local profile = require "skynet.profile"
	t.check("profile_same_module", profile == preinstalled_profile, "another table")
	profile.start()
	t.spin(20)
	local elapsed = profile.stop()
	t.check("profile_elapsed", math.type(elapsed) == "float" and elapsed > 0 and elapsed < 5, t.show(elapsed))
	profile.start()
	t.raises("profile_start_twice", "start profile more than once", profile.start)
	profile.stop()
	t.raises("profile_stop_without_start", "Call profile.start() before profile.stop()", profile.stop)
	local pco = coroutine.create(function()
		t.spin(10)
		coroutine.yield()
		t.spin(10)
	end)
	profile.start(pco)
	coroutine.resume(pco)
	t.spin(40) -- pco is suspended: not counted
	coroutine.resume(pco)
	local pt = profile.stop(pco)
	t.check("profile_coroutine", pt > 0 and pt < 0.035, t.show(pt))
	t.check("profile_stop_twice", pcall(profile.stop, pco) == false, "stopped twice")

	-- coroutine.resume / wrap are snlua's, and behave like the standard ones
	t.check("resume_replaced", coroutine.resume == profile.resume, "coroutine.resume is not skynet.profile.resume")
	t.check("wrap_replaced", coroutine.wrap == profile.wrap, "coroutine.wrap is not skynet.profile.wrap")
	local cy = coroutine.create(function(a, b)
		local x, y = coroutine.yield(a + b, "y")
		return x * 2, y, "done"
	end)
	t.list("resume_first", t.pack(coroutine.resume(cy, 1, 2)), t.pack(true, 3, "y"))
	t.eq("status_suspended", coroutine.status(cy), "suspended")
	t.list("resume_second", t.pack(coroutine.resume(cy, 5, nil)), t.pack(true, 10, nil, "done"))
	t.eq("status_dead", coroutine.status(cy), "dead")
	t.list("resume_dead", t.pack(coroutine.resume(cy)), t.pack(false, "cannot resume dead coroutine"))
	local ok, err = coroutine.resume(coroutine.create(function()
		error("co oops")
	end))
	t.check("resume_error", ok == false and type(err) == "string" and err:match("t_misc.lua:%d+: co oops$"), t.show(err))
	local errobj = {}
	t.list("resume_error_object", t.pack(coroutine.resume(coroutine.create(function()
		error(errobj)
	end))), t.pack(false, errobj))
	local self_resume
	coroutine.resume(coroutine.create(function()
		self_resume = t.pack(coroutine.resume(coroutine.running()))
	end))
	t.list("resume_running", self_resume, t.pack(false, "cannot resume non-suspended coroutine"))
	t.raises("resume_not_thread", "bad argument #1", coroutine.resume, 42)
	local many = coroutine.create(function()
		local r = {}
		for i = 1, 300 do
			r[i] = i
		end
		coroutine.yield(table.unpack(r))
	end)
	t.eq("resume_many_results", select("#", coroutine.resume(many)), 301)
	local yp = coroutine.create(function()
		return pcall(coroutine.yield, "in pcall")
	end)
	t.list("yield_across_pcall_1", t.pack(coroutine.resume(yp)), t.pack(true, "in pcall"))
	t.list("yield_across_pcall_2", t.pack(coroutine.resume(yp, "back")), t.pack(true, true, "back"))
	local inner = coroutine.create(function()
		coroutine.yield("inner")
		return "inner done"
	end)
	local outer = coroutine.create(function()
		local _, v = coroutine.resume(inner)
		coroutine.yield("outer saw " .. v)
		local _, w = coroutine.resume(inner)
		return w
	end)
	t.list("nested_1", t.pack(coroutine.resume(outer)), t.pack(true, "outer saw inner"))
	t.list("nested_2", t.pack(coroutine.resume(outer)), t.pack(true, "inner done"))
	t.list("running_in_coroutine", t.pack(select(2, coroutine.running())), t.pack(false))
	t.eq("isyieldable", coroutine.isyieldable(), true)

	local w = coroutine.wrap(function(x)
		local y = coroutine.yield(x + 1)
		return y .. "!"
	end)
	t.eq("wrap_first", w(1), 2)
	t.eq("wrap_second", w("a"), "a!")
	ok, err = pcall(w)
	t.check("wrap_dead", not ok and err:match("cannot resume dead coroutine$"), t.show(err))
	ok, err = pcall(coroutine.wrap(function()
		error("wrapped oops")
	end))
	t.check("wrap_error", not ok and err:match("t_misc.lua:%d+: wrapped oops$"), t.show(err))
	t.list("wrap_error_object", t.pack(pcall(coroutine.wrap(function()
		error(errobj)
	end))), t.pack(false, errobj))
	t.raises("wrap_not_function", "bad argument #1", coroutine.wrap, 42)
	local gen = coroutine.wrap(function()
		for i = 1, 3 do
			coroutine.yield(i)
		end
	end)
	t.list("wrap_generator", t.pack(gen(), gen(), gen()), t.pack(1, 2, 3))
	local closed = coroutine.create(function()
		coroutine.yield()
	end)
	coroutine.resume(closed)
	t.list("close_suspended", t.pack(coroutine.close(closed)), t.pack(true))
	t.eq("status_closed", coroutine.status(closed), "dead")

	-- skynet.memory: the process's C memory (malloc family), charged to the service that
	-- allocated it; Lua heaps are apart (counted by each VM)
	local memory = require "skynet.memory"
	local cur = memory.current()
	t.check("memory_current", math.type(cur) == "integer" and cur >= 0, t.show(cur))
	local packed, packed_sz = c.pack(string.rep("m", 1024 * 1024))
	local grown = memory.current()
	t.check("memory_current_grows", grown >= cur + 1000000, grown - cur)
	local total, blocks = memory.total(), memory.block()
	t.check("memory_total", math.type(total) == "integer" and total >= grown, t.show(total))
	t.check("memory_block", math.type(blocks) == "integer" and blocks > 0, t.show(blocks))
	local info = memory.info()
	t.check("memory_info_self", type(info) == "table" and (info[2] or 0) >= 1000000, t.show(info[2]))
	c.trash(packed, packed_sz)
	t.check("memory_current_freed", memory.current() < grown - 1024 * 1024 // 2, memory.current() - grown)
	local b0 = memory.block()
	local msgs = {}
	for i = 1, 200 do
		msgs[i] = table.pack(c.pack(i))
	end
	local b1 = memory.block()
	for i = 1, 200 do
		c.trash(msgs[i][1], msgs[i][2])
	end
	local b2 = memory.block()
	-- other threads allocate and free meanwhile: a margin of 50 blocks
	t.check("memory_block_counts", b1 >= b0 + 150 and b2 <= b1 - 150, string.format("%d %d %d", b0, b1, b2))
	local before = memory.current()
	local keep = string.rep("m", 1024 * 1024)
	t.check("memory_lua_heap_apart", memory.current() < before + #keep // 2, memory.current() - before)
	keep = nil
	local je = memory.jestat()
	t.check("memory_jestat", je["stats.allocated"] > 0 and je["stats.resident"] >= je["stats.allocated"]
		and je["stats.mapped"] > 0 and je["stats.active"] >= je["stats.allocated"], t.show(je["stats.allocated"]))
	t.eq("memory_mallctl_page", memory.mallctl("arenas.page"), 4096)
	t.eq("memory_mallctl_unknown", memory.mallctl("no.such.name"), 0)
	t.eq("memory_profactive", memory.profactive(), false)

	-- skynet.codecache: mode() is "ON" by default; setting returns nothing
	local cc = require "skynet.codecache"
	t.check("codecache_same_module", cc == preinstalled_codecache, "another table")
	t.eq("codecache_default", cc.mode(), "ON")
	t.list("codecache_set_returns_nothing", t.pack(cc.mode("OFF")), t.pack())
	t.eq("codecache_off", cc.mode(), "OFF")
	cc.mode("EXIST")
	t.eq("codecache_exist", cc.mode(), "EXIST")
	t.raises("codecache_bad_mode", "invalid option 'bogus'", cc.mode, "bogus")
	cc.mode("ON")
	t.list("codecache_clear", t.pack(pcall(cc.clear)), t.pack(true))
	t.eq("codecache_loadfile", type(cc.loadfile), "function")
	t.done()
end)
