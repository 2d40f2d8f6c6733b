-- t_memlimit (bootstrap :2): the memory limit a service sets in its main chunk (what
-- skynet.memlimit does: registry field "memlimit") is applied after the loader returns
-- ("Set memory limit to 16.00 M"); allocations beyond it fail with "not enough memory"
-- (catchable), and the service goes on working. An out-of-memory error escaping the
-- dispatcher is logged as "lua memory error". The child t_memwarn (:3, no limit) crosses the
-- 32 MiB warning threshold.
local LIMIT = 16 * 1024 * 1024
debug.getregistry().memlimit = LIMIT

local t = require "t"
local c = t.c
local memory = require "skynet.memory"

local got_text = {}
t.dispatch[t.TEXT] = function(msg, sz)
	local text = c.tostring(msg, sz)
	got_text[#got_text + 1] = text
	if text == "oom" then
		local s = string.rep("o", 2 * LIMIT) -- raises out of the dispatcher
		got_text[#got_text + 1] = #s
	end
end

t.start(function()
	t.eq("memlimit_in_registry", debug.getregistry().memlimit, LIMIT)
	t.sleep(0) -- the loader has returned: the limit is on, the registry field cleared
	t.eq("memlimit_cleared", debug.getregistry().memlimit, nil)

	local ok, err = pcall(string.rep, "x", 2 * LIMIT)
	t.check("alloc_beyond_limit", not ok and err == "not enough memory", t.show(err))
	ok, err = pcall(function()
		local big = {}
		for i = 1, 100000000 do
			big[i] = i
		end
		return #big
	end)
	t.check("table_growth_beyond_limit", not ok and err == "not enough memory", t.show(err))
	collectgarbage()
	local s
	ok, s = pcall(string.rep, "y", LIMIT // 4)
	t.check("alloc_below_limit", ok and #s == LIMIT // 4, t.show(s))
	s = nil
	collectgarbage()
	local cur = memory.current()
	t.check("current_below_limit", cur > 0 and cur <= LIMIT, cur)

	-- uncaught: logged as a memory error, the service survives
	c.send(c.addresscommand("REG"), t.TEXT, 0, "oom")
	c.send(c.addresscommand("REG"), t.TEXT, 0, "after")
	t.sleep(0)
	t.eq("oom_handler_stopped", table.concat(got_text, ","), "oom,after")

	-- the warning threshold, in a service without a limit
	local warn = c.addresscommand("LAUNCH", "snlua t_memwarn")
	t.eq("memwarn_handle", warn, 3)
	local ty, text = t.call(warn, "alloc")
	t.check("memwarn_allocated", ty == t.RESPONSE and (tonumber(text) or 0) > 40 * 1024 * 1024, t.show(text))
	ty, text = t.call(warn, "free")
	t.check("memwarn_freed", ty == t.RESPONSE and (tonumber(text) or math.huge) < 8 * 1024 * 1024, t.show(text))
	t.done()
end)
