-- t_tls: HTTPS over ltls.c and skynet.socketdriver in one service, driving the TLS objects the
-- way lualib's http.tlshelper does (the server: handshake(data) until finished, then write()
-- to flush; the client: set_ext_host_name, handshake(), then handshake(reply) until finished).
-- Config: certfile / keyfile (the server's PEM chain and key), cafile (the CA that signed it,
-- for the clients that verify).
--
-- Listens on 127.0.0.1:0 and logs "LISTEN 127.0.0.1 <port>". Each connection carries one
-- HTTP/1.1 request; the answer is 200 with body "hello <path>", except /big (200000 bytes,
-- see big_body) and /quit ("bye", then the node finishes once the service's own client checks
-- are done). A connection whose handshake fails logs "TLS_ERROR <message>" and is closed.
-- The service's own client requests itself without and with verification (CHECK lines) and
-- logs "SELF DONE". With config tls_peer_ports (a comma-separated list), it also verifies
-- and GETs "/" from each of those 127.0.0.1 ports first (CHECK peer_server_<n>).
local t = require "t"
local ts = require "tsock"
local c, sd = t.c, ts.sd

require("ltls.init.c").constructor()
local tls = require "ltls.c"

local certfile = assert(c.command("GETENV", "certfile"), "config certfile")
local keyfile = assert(c.command("GETENV", "keyfile"), "config keyfile")
local cafile = assert(c.command("GETENV", "cafile"), "config cafile")

local function big_body()
	local parts = {}
	for i = 1, 20000 do
		parts[i] = string.format("%09d\n", i)
	end
	return table.concat(parts)
end

local closed = {}
t.dispatch[ts.PTYPE_SOCKET] = (function(inner)
	return function(msg, sz, ...)
		local ty, id = sd.unpack(msg, sz)
		if ty == ts.CLOSE then
			closed[id] = true
		end
		return inner(msg, sz, ...)
	end
end)(t.dispatch[ts.PTYPE_SOCKET])

-- Everything received on `id` so far (waits for at least one byte); nil once the peer closed.
local function readsome(id)
	t.wait_until(function()
		return ts.pending(id) > 0 or closed[id]
	end)
	local n = ts.pending(id)
	if n == 0 then
		return nil
	end
	return ts.read(id, n)
end

local function send(id, s)
	if s and #s > 0 then
		sd.send(id, s)
	end
end

-- The head and body of an HTTP message read through `recv` (plaintext chunks; nil at close).
local function read_message(recv)
	local buf = ""
	while not buf:find("\r\n\r\n", 1, true) do
		local s = recv()
		if not s then
			return nil, "closed in the header"
		end
		buf = buf .. s
	end
	local at = buf:find("\r\n\r\n", 1, true)
	local head, body = buf:sub(1, at - 1), buf:sub(at + 4)
	local len = tonumber(head:match("[Cc]ontent%-[Ll]ength: *(%d+)") or "0")
	local parts = { body }
	local have = #body
	while have < len do
		local s = recv()
		if not s then
			return nil, "closed in the body"
		end
		parts[#parts + 1] = s
		have = have + #s
	end
	return head, table.concat(parts)
end

-- Plaintext chunks from `conn` over socket `id` (nil once the peer closed). The first call
-- only drains what the handshake already decrypted: the last handshake bytes may have carried
-- application data with them (tlshelper's readfunc starts the same way).
local function tls_recv(id, conn)
	local first = true
	return function()
		if first then
			first = false
			return conn:read("")
		end
		local ds = readsome(id)
		return ds and conn:read(ds)
	end
end

local self_done, quit = false, false
local function maybe_finish()
	if self_done and quit then
		quit = false
		t.fork(t.done)
	end
end

local sctx = tls.newctx()
sctx:set_cert(certfile, keyfile)

local function serve(id)
	sd.start(id)
	ts.wait(ts.CONNECT, id)
	local conn = tls.newtls("server", sctx)
	local ok, err = pcall(function()
		while not conn:finished() do
			local ds = readsome(id)
			if not ds then
				error("closed during the handshake")
			end
			send(id, conn:handshake(ds))
		end
		send(id, conn:write())
	end)
	if not ok then
		c.error("TLS_ERROR " .. tostring(err))
		conn:close()
		sd.close(id)
		return
	end
	local head = read_message(tls_recv(id, conn))
	local path = head and head:match("^GET (%S+) HTTP/1%.1")
	local body
	if path == "/big" then
		body = big_body()
	elseif path == "/quit" then
		body = "bye"
	else
		body = "hello " .. tostring(path)
	end
	send(
		id,
		conn:write(
			string.format("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", #body) .. body
		)
	)
	conn:close()
	sd.close(id)
	if path == "/quit" then
		quit = true
		maybe_finish()
	end
end

-- One GET over a new connection to 127.0.0.1:port: the status line and the body.
local function get(port, ctx, host, path)
	local id = sd.connect("127.0.0.1", port)
	ts.wait(ts.CONNECT, id)
	local conn = tls.newtls("client", ctx)
	local ok, a, b = pcall(function()
		conn:set_ext_host_name(host)
		send(id, conn:handshake())
		while not conn:finished() do
			local ds = readsome(id)
			if not ds then
				error("closed during the handshake")
			end
			send(id, conn:handshake(ds))
		end
		send(id, conn:write(string.format("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host or "")))
		return read_message(tls_recv(id, conn))
	end)
	conn:close()
	sd.close(id)
	if not ok then
		error(a, 0)
	end
	return a and a:match("^[^\r\n]*"), b
end

t.start(function()
	local l = sd.listen("127.0.0.1", 0)
	local port = ts.wait(ts.CONNECT, l).ud
	sd.start(l)
	ts.wait(ts.CONNECT, l)
	c.error("LISTEN 127.0.0.1 " .. port)
	t.fork(function()
		while true do
			local ev = ts.wait(ts.ACCEPT, l)
			t.fork(serve, ev.ud)
		end
	end)

	-- upstream's default client: no verification, no SNI when connecting by address
	local plain = tls.newctx()
	local status, body = get(port, plain, nil, "/hello")
	t.eq("https_get_status", status, "HTTP/1.1 200 OK")
	t.eq("https_get_body", body, "hello /hello")

	-- verified against the CA, SNI localhost, a body of many records
	local verified = tls.newctx()
	verified:set_ca(cafile)
	status, body = get(port, verified, "localhost", "/big")
	t.eq("https_verified_status", status, "HTTP/1.1 200 OK")
	t.check("https_verified_big_body", body == big_body(), #tostring(body))

	-- the name does not match the certificate: the client's handshake fails, and so does the
	-- server's (the client's alert); the server logs TLS_ERROR and serves on
	t.raises("https_verify_wrong_name", "handshake error", get, port, verified, "example.com", "/x")
	status, body = get(port, plain, "example.com", "/again")
	t.eq("https_after_failure", body, "hello /again")

	-- servers of another implementation (config tls_peer_ports: OpenSSL's s_server -www, one
	-- port per protocol version), verified against the same CA
	local peers = c.command("GETENV", "tls_peer_ports")
	local n = 0
	for p in (peers or ""):gmatch("%d+") do
		n = n + 1
		local ok, st = pcall(get, tonumber(p), verified, "localhost", "/")
		t.eq("peer_server_" .. n, ok and st or tostring(st), "HTTP/1.0 200 ok")
	end

	c.error("SELF DONE")
	self_done = true
	maybe_finish()
end)
