-- t_send (bootstrap): skynet.core send / redirect / genid. Sessions (nil => allocated 1, 2,
-- 3 ...), responses with the same session, redirect with an explicit source, unknown
-- destinations (nothing returned), too large light userdata (false), argument errors.
-- Two t_echo services: echo :3, sink :4 (the redirected replies go there).
local t = require "t"
local c = t.c

local function none(...)
	return t.pack(...), t.pack()
end

t.start(function()
	local echo = c.addresscommand("LAUNCH", "snlua t_echo")
	local sink = c.addresscommand("LAUNCH", "snlua t_echo")
	t.eq("echo_handle", echo, 3)
	t.eq("sink_handle", sink, 4)

	-- session nil => ALLOCSESSION: 1, 2, 3 (by handle, by ":%08x" string), genid goes on
	t.eq("alloc_session_1", c.send(echo, t.TEXT, nil, "one"), 1)
	t.eq("alloc_session_2", c.send(echo, t.TEXT, nil, "two"), 2)
	t.eq("alloc_session_3", c.send(t.hex(echo), t.TEXT, nil, "three"), 3)
	t.eq("genid", c.genid(), 4)
	t.eq("explicit_session", c.send(echo, t.TEXT, 42, "explicit"), 42)
	t.eq("no_session", c.send(echo, t.TEXT, 0, "nosession"), 0)
	t.eq("empty_string", c.send(echo, t.TEXT, 0, ""), 0)
	t.eq("embedded_nul", c.send(echo, t.TEXT, 0, "a\0b\0"), 0)
	t.eq("type_low_bits", c.send(echo, 0x1fe, 0, "lowbits"), 0)
	t.eq("dest_float_integral", c.send(3.0, t.TEXT, 0, "float3"), 0)
	t.eq("dest_numeric_string", c.send("3", t.TEXT, 0, "string3"), 0)
	-- PTYPE_SOCKET (6) and PTYPE_SYSTEM (4) carry core-made pointers: a service cannot send them
	local forged = string.pack("=i4i4i4i4I8", 1, 1, 8, 0, 0xdeadbeef)
	t.eq("forged_socket_refused", c.send(echo, 6, 0, forged), nil)
	t.eq("forged_system_refused", c.send(echo, 4, 0, forged), nil)
	t.eq("forged_socket_redirect_refused", c.redirect(echo, echo, 6, 0, forged), nil)
	t.eq("forged_socket_by_name_refused", c.send(t.hex(echo), 6, 0, forged), nil)

	-- the responses: PTYPE_RESPONSE, same session, from echo, in order
	for _, r in ipairs { { 1, "one" }, { 2, "two" }, { 3, "three" }, { 42, "explicit" } } do
		local ty, msg, sz, source = t.wait(r[1])
		local text = c.tostring(msg, sz)
		t.check(
			"response_" .. r[1],
			ty == t.RESPONSE and source == echo and text == "echo:" .. r[2],
			string.format("type %d source %s text %s", ty, t.hex(source), t.show(text))
		)
	end

	-- redirect: explicit source; the reply goes to that source (sink)
	t.eq("redirect_session", c.redirect(echo, sink, t.TEXT, 77, "redirected"), 77)
	t.eq("redirect_alloc", c.redirect(echo, sink, t.TEXT, nil, "redir2"), 5)
	t.eq("redirect_by_name", c.redirect(t.hex(echo), sink, t.TEXT, 78, "redir3"), 78)

	-- unknown destinations: nothing at all. An unknown handle still consumes the session
	-- (allocated before the lookup); an unknown .name does not (fails before).
	t.list("send_unknown_handle", none(c.send(0x00ffffff, t.TEXT, nil, "x")))
	t.eq("unknown_handle_consumed_session", c.genid(), 7)
	t.list("send_unknown_name", none(c.send(".nosuch", t.TEXT, nil, "x")))
	t.eq("unknown_name_kept_session", c.genid(), 8)
	t.list("send_unknown_hex", none(c.send(":00abcdef", t.TEXT, 0, "x")))
	t.list("redirect_unknown", none(c.redirect(0x00fffffe, sink, t.TEXT, 0, "x")))

	-- too large: a light userdata with a negative size (size_t wraps) => false, logged by the
	-- core; no session consumed. A NULL light userdata: the payload of a timeout response.
	local _, null, nullsz = t.sleep(0)
	t.eq("null_payload_size", nullsz, 0)
	t.eq("too_large", c.send(echo, t.TEXT, 0, null, -1), false)
	t.eq("too_large_alloc", c.send(echo, t.TEXT, nil, null, -1), false)
	t.eq("too_large_kept_session", c.genid(), 10) -- 9 was the TIMEOUT
	t.eq("name_echo", c.command("NAME", ".echo " .. t.hex(echo)), "echo")
	t.eq("too_large_by_name", c.send(".echo", t.TEXT, 0, null, -1), false)
	t.list("too_large_unknown_name", none(c.send(".nosuch", t.TEXT, 0, null, -1)))
	t.eq("null_payload_send", c.send(echo, t.TEXT, 0, null, 0), 0)

	-- argument errors raise before anything is sent or allocated
	t.raises("msg_table", "invalid param table", c.send, echo, t.TEXT, 0, {})
	t.raises("msg_number", "invalid param number", c.send, echo, t.TEXT, 0, 5)
	t.raises("msg_boolean", "invalid param boolean", c.send, echo, t.TEXT, nil, true)
	t.raises("msg_nil", "invalid param nil", c.send, echo, t.TEXT, 0, nil)
	t.raises("msg_none", "invalid param no value", c.send, echo, t.TEXT, 0)
	t.raises("dest_zero", "Invalid service address 0", c.send, 0, t.TEXT, nil, "x")
	t.raises("dest_fraction", "Invalid service address 0", c.send, 3.5, t.TEXT, 0, "x")
	t.raises(
		"dest_table",
		"dest address type (table) must be a string or number.",
		c.send,
		{},
		t.TEXT,
		0,
		"x"
	)
	t.raises(
		"dest_boolean",
		"dest address type (boolean) must be a string or number.",
		c.send,
		true,
		t.TEXT,
		0,
		"x"
	)
	t.raises("redirect_dest_zero", "Invalid service address 0", c.redirect, 0, sink, t.TEXT, 0, "x")
	t.eq("session_after_errors", c.genid(), 11)

	-- sync with both services: their logs are complete once they answer
	local ty, text = t.call(echo, "end")
	t.check("echo_end", ty == t.RESPONSE and text == "echo:end", t.show(text))
	ty, text = t.call(sink, "end")
	t.check("sink_end", ty == t.RESPONSE and text == "echo:end", t.show(text))
	t.done()
end)
