-- t_https_main: lualib's HTTPS and WSS stacks on our ltls.c, run by upstream's bootstrap with
-- `enablessl = true` (config certfile / keyfile: the server's PEM files, as lualib reads them).
-- One service holds both ends: an http.httpd server behind http.tlshelper, an http.websocket
-- server with "wss", and their clients http.httpc (https://) and websocket.connect (wss://).
-- Reports CHECK lines, then DONE, then aborts the node.
local skynet = require "skynet"
local socket = require "skynet.socket"
local httpd = require "http.httpd"
local httpc = require "http.httpc"
local sockethelper = require "http.sockethelper"
local tlshelper = require "http.tlshelper"
local websocket = require "http.websocket"

local function check(name, ok, detail)
	skynet.error("CHECK " .. name .. (ok and " ok" or (" FAIL " .. tostring(detail))))
end

local server_ctx
local function https_serve(id)
	socket.start(id)
	if not server_ctx then
		server_ctx = tlshelper.newctx()
		server_ctx:set_cert(skynet.getenv "certfile", skynet.getenv "keyfile")
	end
	local conn = tlshelper.newtls("server", server_ctx)
	local ok, err = pcall(tlshelper.init_responsefunc(id, conn))
	if ok then
		local read = tlshelper.readfunc(id, conn)
		local write = tlshelper.writefunc(id, conn)
		local code, url, method, header, body = httpd.read_request(read, 65536)
		if code == 200 then
			local reply = string.format("%s %s host=%s body=%s", method, url, header.host, body or "")
			httpd.write_response(write, 200, reply)
		else
			httpd.write_response(write, code or 400)
		end
	else
		skynet.error("HTTPS server handshake: " .. tostring(err))
	end
	socket.close(id)
	tlshelper.closefunc(conn)()
end

local ws_handle = {}
function ws_handle.message(id, msg, msg_type)
	websocket.write(id, "echo:" .. msg, msg_type)
end
local ws_closed
function ws_handle.close(id, code, reason)
	ws_closed = string.format("%s %s", tostring(code), tostring(reason))
end

skynet.start(function()
	local lid, _, port = socket.listen("127.0.0.1", 0)
	socket.start(lid, function(id)
		skynet.fork(https_serve, id)
	end)
	-- where "localhost" resolves to ::1 first, the same port there too (if it can be had)
	local ok6, lid6 = pcall(socket.listen, "::1", port)
	if ok6 and lid6 then
		socket.start(lid6, function(id)
			skynet.fork(https_serve, id)
		end)
	end
	local wid, _, wport = socket.listen("127.0.0.1", 0)
	socket.start(wid, function(id, addr)
		skynet.fork(websocket.accept, id, ws_handle, "wss", addr)
	end)
	httpc.timeout = 1000

	local function try(name, f, want)
		local ok, got = pcall(f)
		check(name, ok and got == want, ok and ("got " .. tostring(got)) or got)
	end

	try("httpc_https_by_address", function()
		local status, body = httpc.get(string.format("https://127.0.0.1:%d", port), "/a?x=1")
		return status .. " " .. body
	end, string.format("200 GET /a?x=1 host=127.0.0.1:%d body=", port))

	try("httpc_https_by_name", function()
		local status, body = httpc.get(string.format("https://localhost:%d", port), "/b")
		return status .. " " .. body
	end, string.format("200 GET /b host=localhost:%d body=", port))

	try("httpc_https_post", function()
		local status, body = httpc.post(string.format("https://127.0.0.1:%d", port), "/form", { k = "v" })
		return status .. " " .. body
	end, string.format("200 POST /form host=127.0.0.1:%d body=k=v", port))

	local ws
	try("wss_echo", function()
		ws = websocket.connect(string.format("wss://127.0.0.1:%d/ws", wport))
		local got = {}
		for i, msg in ipairs({ "hello", string.rep("x", 70000) }) do
			websocket.write(ws, msg)
			local back = websocket.read(ws)
			got[i] = back == "echo:" .. msg and "same" or tostring(back and #back)
		end
		return table.concat(got, ",")
	end, "same,same")

	try("wss_close", function()
		websocket.close(ws, 1000, "bye")
		for _ = 1, 100 do
			if ws_closed then
				break
			end
			skynet.sleep(1)
		end
		return ws_closed
	end, "1000 bye")

	skynet.error("DONE")
	skynet.sleep(5)
	require("skynet.core").command("ABORT")
end)
