-- t_sd_udp <server4 port> <client port> <server6 port>: UDP over skynet.socketdriver.
-- A server socket on 127.0.0.1:<server4 port> echoes each datagram d from the test as
-- "echo:<d>" to its sender (cycling through the data forms) until the datagram "quit", then
-- logs "UDP echoed=<n>". Towards the test's client socket (127.0.0.1:<client port>) it sends
-- "dialed" (udp_dial) and "connected" (udp + udp_connect). Inside the node: an IPv6 round trip
-- (udp_listen on ::1 and udp_dial), and the error cases.
local t = require "t"
local ts = require "tsock"
local c, sd = t.c, ts.sd
local UDP = ts.UDP

local sp4, cp, sp6 = ...
sp4, cp, sp6 = math.tointeger(sp4), math.tointeger(cp), math.tointeger(sp6)

t.start(function()
	-- errors
	t.raises("udp_listen_port0", "udp listen host failed", sd.udp_listen, "127.0.0.1", 0)
	t.raises("udp_listen_port0_addr", "udp listen host failed", sd.udp_listen, "127.0.0.1:0")
	t.raises("udp_no_port", "Invalid address 127.0.0.1.", sd.udp, "127.0.0.1")
	t.raises("udp_init_failed", "udp init failed", sd.udp, "192.0.2.1", 9)
	t.raises("udp_dial_bad_port", "Invalid port in address 127.0.0.1:99999.", sd.udp_dial, "127.0.0.1:99999")
	t.raises("udp_dial_no_port", "Invalid address 127.0.0.1.", sd.udp_dial, "127.0.0.1")
	t.raises("udp_connect_invalid", "udp connect failed", sd.udp_connect, 0x7fffff00, "127.0.0.1:9")
	t.raises("udp_connect_v6_unbracketed", "Invalid port in address ::1.", sd.udp_connect, 1, "::1")
	t.raises("udp_send_no_address", "string expected", sd.udp_send, 1)

	local s4 = sd.udp("127.0.0.1:" .. sp4)
	t.check("udp_bound_id", math.type(s4) == "integer" and s4 > 0, t.show(s4))
	local s6 = sd.udp_listen("::1", sp6)
	local unbound = sd.udp()
	t.check("udp_unbound_id", math.type(unbound) == "integer" and unbound > 0, t.show(unbound))
	t.eq("udp_send_bad_address", sd.udp_send(s4, "abc", "x"), false)
	t.eq("udp_send_invalid_id", sd.udp_send(0x7fffff00, "\1\0\80\127\0\0\1", "x"), false)
	c.error("UDPREADY")

	-- towards the test: a dialed socket and a connected one
	local d = sd.udp_dial("127.0.0.1", cp)
	t.eq("send_dialed", sd.send(d, "dialed"), true)
	t.eq("udp_connect", sd.udp_connect(unbound, "127.0.0.1:" .. cp), nil)
	t.eq("send_connected", sd.send(unbound, "connected"), true)

	-- IPv6 inside the node
	local d6 = sd.udp_dial("[::1]:" .. sp6)
	sd.send(d6, "hello6")
	local ev = ts.wait(UDP, s6)
	t.eq("v6_data", ev.data, "hello6")
	t.eq("v6_addr_size", #ev.addr, 19)
	local ip, port = sd.udp_address(ev.addr)
	t.check("v6_sender", ip == "::1" and port > 0, t.show(ip) .. " " .. t.show(port))
	t.eq("v6_udp_send", sd.udp_send(s6, ev.addr, "echo6:" .. ev.data), true)
	ev = ts.wait(UDP, d6)
	t.eq("v6_echo", ev.data, "echo6:hello6")
	t.list("v6_echo_from", t.pack(sd.udp_address(ev.addr)), t.pack("::1", sp6))

	-- the test's datagrams
	local n = 0
	while true do
		ev = ts.wait(UDP, s4)
		if ev.data == "quit" then
			break
		end
		if n == 0 then
			t.eq("v4_addr_size", #ev.addr, 7)
			t.list("v4_sender", t.pack(sd.udp_address(ev.addr)), t.pack("127.0.0.1", cp))
		end
		n = n + 1
		local ok
		if n % 3 == 0 then
			ok = sd.udp_send(s4, ev.addr, "echo:" .. ev.data)
		elseif n % 3 == 1 then
			ok = sd.udp_send(s4, ev.addr, sd.str2p("echo:" .. ev.data))
		else
			ok = sd.udp_send(s4, ev.addr, { "echo:", ev.data })
		end
		if not ok then
			c.error("CHECK udp_send FAIL " .. n)
		end
	end
	c.error("UDP echoed=" .. n)
	for _, id in ipairs { s4, s6, unbound, d, d6 } do
		sd.close(id)
	end
	t.done()
end)
