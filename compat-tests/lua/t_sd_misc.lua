-- t_sd_misc: skynet.socketdriver inside one service: master's address parsing and errors,
-- listen on "127.0.0.1:0" reporting its port, connect/accept/start events, every send data
-- form, pause/start, close and half-close, socketdriver.info() fields, bind, resolve.
-- Peers are this service's own loopback sockets (127.0.0.1 / ::1).
local t = require "t"
local ts = require "tsock"
local c, sd = t.c, ts.sd
local CONNECT, CLOSE, ACCEPT, ERROR = ts.CONNECT, ts.CLOSE, ts.ACCEPT, ts.ERROR

-- pcall through a Lua function, so a luaL_error-style message carries this file's position.
local function err_of(f, ...)
	local args = t.pack(...)
	local ok, e = pcall(function()
		local r = f(table.unpack(args, 1, args.n)) -- not a tail call: keep this frame
		return r
	end)
	return not ok and e or nil
end

local function has_position(name, e, text)
	t.check(
		name,
		type(e) == "string" and e:match("^[^:]*t_sd_misc%.lua:%d+: (.*)$") == text,
		t.show(e) .. " want <position>: " .. text
	)
end

t.start(function()
	local me = c.addresscommand("REG")

	-- address and port parsing (master): "host:port", "[v6]:port", explicit port argument
	t.raises("listen_no_port", "Invalid address 127.0.0.1.", sd.listen, "127.0.0.1")
	t.raises("listen_bad_port", "Invalid port in address 127.0.0.1:x.", sd.listen, "127.0.0.1:x")
	t.raises("listen_big_port", "Invalid port in address 127.0.0.1:65536.", sd.listen, "127.0.0.1:65536")
	t.raises("listen_empty_port", "Invalid port in address 127.0.0.1:.", sd.listen, "127.0.0.1:")
	t.raises("listen_v6_unclosed", "Invalid address [::1.", sd.listen, "[::1")
	t.raises("listen_v6_no_port", "Invalid address [::1].", sd.listen, "[::1]")
	t.raises("listen_port_type", "number expected", sd.listen, "127.0.0.1", "x")
	t.raises("listen_backlog_type", "number expected", sd.listen, "127.0.0.1", 0, "x")
	t.raises("listen_addr_type", "string expected", sd.listen, nil, 80)
	has_position("listen_error", err_of(sd.listen, "192.0.2.1:0"), "Listen error")
	has_position("listen_error_position_parse", err_of(sd.listen, "h:p"), "Invalid port in address h:p.")
	t.raises("connect_port0", "Invalid port", sd.connect, "127.0.0.1:0")
	t.raises("connect_port0_arg", "Invalid port", sd.connect, "127.0.0.1", 0)
	t.raises("connect_no_port", "Invalid address 127.0.0.1.", sd.connect, "127.0.0.1")
	t.raises("connect_bad_port", "Invalid port in address 127.0.0.1:-1.", sd.connect, "127.0.0.1:-1")
	t.raises("connect_port_type", "number expected", sd.connect, "127.0.0.1", "x")
	t.raises("close_id_type", "number expected", sd.close, "x")
	t.raises("start_id_type", "number expected", sd.start, {})

	-- listen: port 0 picks one, reported by the CONNECT event (ud) with the bound address
	local l4 = sd.listen("127.0.0.1:0")
	t.check("listen_id", math.type(l4) == "integer" and l4 > 0, t.show(l4))
	local ev = ts.wait(CONNECT, l4)
	t.eq("listen_ip", ev.text, "127.0.0.1")
	local port = ev.ud
	t.check("listen_port", math.type(port) == "integer" and port > 0 and port < 65536, t.show(port))
	c.error("LISTEN 127.0.0.1 " .. port)
	local lb = sd.listen("127.0.0.1", 0, 8)
	local evb = ts.wait(CONNECT, lb)
	t.check("listen_port_arg", evb.text == "127.0.0.1" and evb.ud > 0 and evb.ud ~= port, t.show(evb.ud))
	local l6 = sd.listen("[::1]:0")
	local ev6 = ts.wait(CONNECT, l6)
	t.check("listen6", ev6.text == "::1" and ev6.ud > 0, t.show(ev6.text) .. " " .. t.show(ev6.ud))
	local lany = sd.listen(":0")
	local evany = ts.wait(CONNECT, lany)
	t.check("listen_any", evany.text == "0.0.0.0" and evany.ud > 0, t.show(evany.text))
	sd.close(lany)

	-- connect / accept / start
	sd.start(l4)
	ev = ts.wait(CONNECT, l4)
	t.eq("listen_start", ev.text, "start")
	local cl = sd.connect("127.0.0.1", port)
	t.check("connect_id", math.type(cl) == "integer" and cl > 0, t.show(cl))
	local acc = ts.wait(ACCEPT, l4)
	local a = acc.ud
	t.check("accept_new_id", math.type(a) == "integer" and a > 0 and a ~= cl, t.show(a))
	local cport = tonumber(acc.text:match("^127%.0%.0%.1:(%d+)$"))
	t.check("accept_peer", cport ~= nil, t.show(acc.text))
	ev = ts.wait(CONNECT, cl)
	t.eq("connect_peer_ip", ev.text, "127.0.0.1")
	sd.start(a)
	ev = ts.wait(CONNECT, a)
	t.eq("accepted_start", ev.text, "start")
	local c6 = sd.connect("[::1]:" .. ev6.ud)
	ev = ts.wait(CONNECT, c6)
	t.eq("connect6_peer_ip", ev.text, "::1")
	sd.close(c6)

	-- info: the listener (accept count, local name) and an unstarted listener (not listed)
	local li = ts.info(l4)
	t.check("info_listen", li ~= nil, "no entry")
	li = li or {}
	t.eq("info_listen_type", li.type, "LISTEN")
	t.eq("info_listen_address", li.address, me)
	t.eq("info_listen_accept", li.accept, 1)
	t.eq("info_listen_sock", li.sock, "127.0.0.1:" .. port)
	t.check("info_listen_rtime", math.type(li.rtime) == "integer", t.show(li.rtime))
	t.check("info_listen_fields", li.read == nil and li.write == nil and li.peer == nil, "extra fields")
	t.eq("info_plisten_unlisted", ts.info(lb), nil)

	-- every send data form, in order
	local p, n = sd.str2p("memory|")
	local p2, n2 = sd.str2p("lowmem|")
	t.eq("send_string", sd.send(cl, "string|"), true)
	t.eq("send_memory", sd.send(cl, p, n), true)
	t.eq("send_userdata_size", sd.send(cl, sd.buffer(), 3), true)
	t.eq("send_table", sd.send(cl, { "ta", "ble", 42, "|" }), true)
	t.eq("send_empty_table", sd.send(cl, {}), true)
	t.eq("send_number", sd.send(cl, 7), true)
	t.eq("lsend_string", sd.lsend(cl, "|low|"), true)
	t.eq("lsend_memory", sd.lsend(cl, p2, n2), true)
	t.eq("send_after_low", sd.send(cl, "end"), true)
	local want = "string|memory|\0\0\0table42|7|low|lowmem|end"
	t.eq("received_in_order", ts.read(a, #want), want)
	-- a whole userdata: all its bytes (a fresh read buffer begins with zeros; its last
	-- word is our type tag)
	t.eq("send_userdata", sd.send(cl, sd.buffer()), true)
	-- The tag is derived from an address, so any one byte may appear in it: the end marker is
	-- longer than the tag word and has no zero byte, so it cannot occur inside the buffer.
	local mark = "<end of the userdata>"
	sd.send(cl, mark)
	t.wait_until(function()
		return (ts.buf[a] or ""):find(mark, 1, true) ~= nil
	end)
	local ud = ts.read(a, ts.pending(a))
	ud = ud:sub(1, #ud - #mark)
	t.check("userdata_bytes", #ud > 32 and ud:sub(1, 32):match("^%z+$") ~= nil, t.show(ud))
	-- refused forms: a light userdata without a usable size is not sent (and stays ours)
	local q, qn = sd.str2p("object")
	t.eq("send_object_refused", sd.send(cl, q), false)
	t.eq("send_negative_refused", sd.send(cl, q, -1), false)
	t.eq("send_float_size_refused", sd.lsend(cl, q, 6.0), false)
	sd.drop(q, qn)
	t.raises("send_table_bad", "string expected", sd.send, cl, { "a", {} })
	t.raises("send_userdata_too_long", "invalid size 100 for a userdata", sd.send, cl, sd.buffer(), 100)
	t.raises("send_userdata_negative", "invalid size -1 for a userdata", sd.send, cl, sd.buffer(), -1)
	t.raises("send_no_data", "string expected", sd.send, cl)
	t.raises("send_bool", "string expected", sd.send, cl, true)
	t.eq("send_invalid_id", sd.send(0x7fffff00, "x"), false)
	t.eq("send_invalid_id_memory", sd.send(0x7fffff00, sd.str2p("x")), false)
	t.eq("lsend_invalid_id", sd.lsend(0x7fffff00, "x"), false)
	sd.send(cl, "after")
	t.eq("nothing_refused_arrived", ts.read(a, 5), "after")
	local total = #want + #ud + #mark + 5

	-- info: both ends of the connection
	local ci = ts.info(cl) or {}
	t.eq("info_tcp_type", ci.type, "TCP")
	t.eq("info_tcp_address", ci.address, me)
	t.eq("info_tcp_peer", ci.peer, "127.0.0.1:" .. port)
	t.eq("info_tcp_write", ci.write, total)
	t.eq("info_tcp_read", ci.read, 0)
	t.eq("info_tcp_wbuffer", ci.wbuffer, 0)
	t.eq("info_tcp_reading", ci.reading, true)
	t.eq("info_tcp_writing", ci.writing, false)
	t.check("info_tcp_times", math.type(ci.rtime) == "integer" and math.type(ci.wtime) == "integer", "times")
	t.check("info_tcp_no_listen_fields", ci.accept == nil and ci.sock == nil, "extra fields")
	local ai = ts.info(a) or {}
	t.eq("info_accepted_peer", ai.peer, acc.text)
	t.eq("info_accepted_read", ai.read, total)
	t.eq("info_accepted_write", ai.write, 0)

	-- pause: no data until start (which reports "transfer": already connected)
	sd.pause(a)
	t.eq("info_paused", (ts.info(a) or {}).reading, false)
	sd.send(cl, "while paused")
	sd.nodelay(cl)
	t.sleep(20)
	t.eq("no_data_while_paused", ts.pending(a), 0)
	sd.start(a)
	t.eq("info_resumed", (ts.info(a) or {}).reading, true)
	ev = ts.wait(CONNECT, a)
	t.eq("restart_transfer", ev.text, "transfer")
	t.eq("data_after_start", ts.read(a, 12), "while paused")

	-- the reply direction, and a low-priority send
	sd.lsend(a, "pong")
	t.eq("reply", ts.read(cl, 4), "pong")

	-- close: CLOSE for the closer; the peer sees EOF (CLOSE) and is half-closed ("CLOSING")
	sd.close(cl)
	ts.wait(CLOSE, cl)
	t.eq("info_closed_gone", ts.info(cl), nil)
	ts.wait(CLOSE, a)
	t.eq("info_closing", (ts.info(a) or {}).type, "CLOSING")
	t.eq("send_closed", sd.send(cl, "x"), false)
	sd.close(a)
	t.eq("info_half_closed_gone", ts.info(a), nil)
	t.eq("close_once", ts.take(CLOSE, a), nil)

	-- shutdown: immediate close with CLOSE
	local cl2 = sd.connect("127.0.0.1:" .. port)
	local a2 = ts.wait(ACCEPT, l4).ud
	ts.wait(CONNECT, cl2)
	sd.shutdown(cl2)
	ev = ts.wait(CLOSE, cl2)
	t.eq("shutdown_close", ev.id, cl2)
	sd.close(a2)

	-- a refused connection: ERROR
	local lbport = evb.ud
	sd.close(lb)
	local bad = sd.connect("127.0.0.1", lbport)
	t.check("refused_id", math.type(bad) == "integer" and bad > 0, t.show(bad))
	ev = ts.wait(ERROR, bad)
	t.check("connect_refused", type(ev.text) == "string" and ev.text:find("refused", 1, true) ~= nil, t.show(ev.text))

	-- UDP entries: no peer until udp_connect
	local u = sd.udp("127.0.0.1", 0)
	local ui = ts.info(u) or {}
	t.eq("info_udp_type", ui.type, "UDP")
	t.eq("info_udp_no_peer", ui.peer, nil)
	sd.udp_connect(u, "127.0.0.1", port)
	t.eq("info_udp_peer", (ts.info(u) or {}).peer, "127.0.0.1:" .. port)
	sd.close(u)

	-- bind: a descriptor of ours (stdout, a pipe to the test) as a socket
	local b = sd.bind(1)
	t.check("bind_id", math.type(b) == "integer" and b > 0, t.show(b))
	ev = ts.wait(CONNECT, b)
	t.eq("bind_event", ev.text, "binding")
	local bi = ts.info(b) or {}
	t.eq("info_bind_type", bi.type, "BIND")
	t.eq("info_bind_no_peer", bi.peer, nil)
	sd.close(b)
	t.eq("bind_bad_fd", sd.bind(-1), -1)
	t.eq("bind_closed_fd", sd.bind(1000000), -1)

	-- resolve: every address getaddrinfo gives (once per socket type, as upstream)
	local r = sd.resolve("127.0.0.1")
	local all4 = #r > 0
	for _, ip in ipairs(r) do
		all4 = all4 and ip == "127.0.0.1"
	end
	t.check("resolve_v4", all4, table.concat(r, ","))
	local r6 = sd.resolve("::1")
	local all6 = #r6 > 0
	for _, ip in ipairs(r6) do
		all6 = all6 and ip == "::1"
	end
	t.check("resolve_v6", all6, table.concat(r6, ","))
	t.raises("resolve_error", "Name or service not known", sd.resolve, "")

	sd.close(l4)
	sd.close(l6)
	t.eq("info_empty_at_end", #sd.info(), 0)
	t.done()
end)
