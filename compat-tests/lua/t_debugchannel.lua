-- t_debugchannel (bootstrap :2): a skynet.debugchannel between two services on different
-- worker threads. We create the channel and send its handle to t_dcreader (:3), which
-- connects (the only reader) and reads lines until "end" while we write them; then both ends
-- let go and the handle is refused.
local t = require "t"
local c = t.c
local dc = require "skynet.debugchannel"

local reports = {}
t.dispatch[t.TEXT] = function(msg, sz)
	reports[#reports + 1] = c.tostring(msg, sz)
end

local function report()
	t.wait_until(function() return #reports > 0 end)
	return table.remove(reports, 1)
end

t.start(function()
	local w, h = dc.create()
	t.eq("handle_type", type(h), "userdata")
	local reader = c.addresscommand("LAUNCH", "snlua t_dcreader")
	c.send(reader, t.TEXT, 0, c.packstring("connect", h))
	t.eq("connected", report(), "connected")
	t.raises("second_reader", "new channel failed", dc.connect, h)
	local ws = {}
	t.raises("write_needs_string", "bad argument", w.write, w, ws)
	c.send(reader, t.TEXT, 0, c.packstring("drain"))
	for i = 1, 300 do
		w:write("line " .. i)
		if i % 50 == 0 then
			t.sleep(1)
		end
	end
	w:write("")
	w:write("end")
	t.eq("drained", report(), "read 301 in order")
	dc.release(w)
	t.raises("write_after_release", "released", w.write, w, "x")
	c.send(reader, t.TEXT, 0, c.packstring("release"))
	t.eq("reader_released", report(), "released")
	collectgarbage()
	t.raises("handle_refused_after_release", "Invalid channel pointer", dc.connect, h)
	t.done()
end)
