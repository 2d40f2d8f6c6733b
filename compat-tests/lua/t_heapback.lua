-- t_heapback (bootstrap :2): killed services give their Lua heaps back to the allocator.
-- Children t_heapfill each build a heap of objects of many sizes; jemalloc's count of
-- allocated bytes rises by about their sum, and falls back once they are killed.
local t = require "t"
local c = t.c
local memory = require "skynet.memory"

local N = 40

local function allocated()
	collectgarbage()
	return memory.jestat()["stats.allocated"]
end

local function fill(h)
	local ty, text = t.call(h, "fill")
	assert(ty == t.RESPONSE, "no answer from the child")
	return tonumber(text)
end

t.start(function()
	-- warm-up: the first load of the files, the allocator's caches
	local w = c.addresscommand("LAUNCH", "snlua t_heapfill")
	fill(w)
	c.command("KILL", t.hex(w))
	t.sleep(1)
	local before = allocated()
	local children, heaps = {}, 0
	for i = 1, N do
		children[i] = c.addresscommand("LAUNCH", "snlua t_heapfill")
		heaps = heaps + fill(children[i])
	end
	local full = allocated()
	t.check("heaps_allocated", full - before >= heaps // 2, string.format("%d -> %d, heaps %d", before, full, heaps))
	for i = 1, N do
		c.command("KILL", t.hex(children[i]))
	end
	t.sleep(1)
	local after = allocated()
	t.check("heaps_given_back", after - before < heaps // 10, string.format("%d -> %d -> %d, heaps %d", before, full, after, heaps))
	t.done()
end)
