-- t_qlimit (bootstrap :2): queue limits from Lua. The node's config sets queue_limit = 77 and
-- queue_bytes_limit = 12345, which QUEUELIMIT answers; the child "t_qlimit busy" (:3) lowers
-- its own limit to 3 and, once called with "spin", answers and then keeps its worker busy
-- until env key qlimit_wake exists. Meanwhile 3 one-way messages fill its queue, a request
-- is answered at once with PTYPE_ERROR and a 4th one-way message is dropped; after the wake
-- the child has seen exactly the 3 queued messages (a request sent before it drained its
-- queue is refused too, so the last one is retried).
local t = require "t"
local c = t.c

local mode = ...

if mode == "busy" then
	local got = 0
	t.dispatch[t.TEXT] = function(msg, sz, session, source)
		local text = c.tostring(msg, sz)
		if text == "spin" then
			c.send(source, t.RESPONSE, session, "spinning")
			local deadline = c.hpc() + 30 * 1000000000 -- 30 s at most
			while c.command("GETENV", "qlimit_wake") == nil and c.hpc() < deadline do
				t.spin(1)
			end
		elseif text == "count" then
			c.send(source, t.RESPONSE, session, tostring(got))
		else
			got = got + 1
		end
	end
	t.serve()
	t.eq("busy_queuelimit", c.command("QUEUELIMIT", "3"), "3 12345")
	return
end

t.start(function()
	t.eq("config_limits", c.command("QUEUELIMIT"), "77 12345")
	local busy = c.addresscommand("LAUNCH", "snlua t_qlimit busy")
	t.eq("busy_handle", busy, 3)
	local ty, text = t.call(busy, "spin")
	t.eq("busy_spinning", text, "spinning")
	for i = 1, 3 do
		c.send(busy, t.TEXT, 0, "o" .. i)
	end
	ty, text = t.call(busy, "refused?")
	t.eq("call_to_full_queue_gets_error", ty, t.ERROR)
	c.send(busy, t.TEXT, 0, "dropped")
	c.command("SETENV", "qlimit_wake 1")
	-- refused (PTYPE_ERROR) until the child woke and drained its queue
	ty, text = t.call(busy, "count")
	for _ = 1, 3000 do
		if ty ~= t.ERROR then
			break
		end
		t.sleep(1)
		ty, text = t.call(busy, "count")
	end
	t.check("busy_saw_three", ty == t.RESPONSE and text == "3", t.show(ty) .. " " .. t.show(text))
	t.done()
end)
