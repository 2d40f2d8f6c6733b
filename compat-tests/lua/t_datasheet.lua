-- t_datasheet (bootstrap :2): skynet.datasheet.core shared between services. We build
-- documents (t_dsdump) and hand their handles to two t_dsreader services (:3, :4), which
-- build proxies over them, follow an update (keeping their sub-table proxies), keep reading
-- after our strings are gone, and get Lua errors for a bad handle and a corrupt document.
local t = require "t"
local c = t.c
local core = require "skynet.datasheet.core"
local dump = require "t_dsdump"

local reports = {}
t.dispatch[t.TEXT] = function(msg, sz)
	reports[#reports + 1] = c.tostring(msg, sz)
end

local function ask_all(readers, ...)
	for _, r in ipairs(readers) do
		c.send(r, t.TEXT, 0, c.packstring(...))
	end
	t.wait_until(function() return #reports == #readers end)
	local r = reports
	reports = {}
	table.sort(r)
	return table.concat(r, ";")
end

t.start(function()
	local s1 = dump { name = "sheet", list = { 1, 2, 3 }, sub = { deep = { 42, "x" }, f = 1.5 }, on = true }
	local h1 = core.stringpointer(s1)
	local readers = {
		c.addresscommand("LAUNCH", "snlua t_dsreader"),
		c.addresscommand("LAUNCH", "snlua t_dsreader"),
	}
	t.eq("v1", ask_all(readers, "new", h1),
		"3 sheet 1,2,3 42 x 1.5 true;4 sheet 1,2,3 42 x 1.5 true")
	local s2 = dump { name = "sheet2", list = { 7, 8 }, sub = { deep = { 43 }, f = -2 }, on = false }
	local h2 = core.stringpointer(s2)
	t.eq("v2", ask_all(readers, "update", h2),
		"3 sheet2 7,8 43 nil -2 false same;4 sheet2 7,8 43 nil -2 false same")
	-- our strings go: the readers' proxies keep the bytes they use
	s1, s2 = nil, nil
	collectgarbage()
	collectgarbage()
	t.eq("after_gc", ask_all(readers, "read"),
		"3 sheet2 7,8 43 nil -2 false same;4 sheet2 7,8 43 nil -2 false same")
	local bad = dump { k = "v" }
	bad = bad:sub(1, -6) .. "\255\255\255\255\0" -- the string table offset now points nowhere
	local hb = core.stringpointer(string.pack("<I4", 0x7fffffff) .. bad:sub(5))
	t.eq("corrupt", ask_all(readers, "corrupt", hb), "3 error;4 error")
	t.eq("bad_handle", ask_all(readers, "bad"), "3 error;4 error")
	t.done()
end)
