-- Echo server over skynet.socket (skynet's Lua socket API) for the socket benchmark of
-- compat-tests/bench/upstream/bench_upstream.py: listens on 127.0.0.1, port 0, logs
-- "LISTEN <ip> <port>", and echoes whatever each connection sends (one coroutine per
-- connection: socket.read, socket.write), until the node is killed.
local skynet = require "skynet"
local socket = require "skynet.socket"
local driver = require "skynet.socketdriver"

local function serve(id)
	socket.start(id)
	driver.nodelay(id)
	while true do
		local data = socket.read(id)
		if not data then
			break
		end
		socket.write(id, data)
	end
	socket.close(id)
end

skynet.start(function()
	local id, addr, port = socket.listen("127.0.0.1", 0, 1024)
	socket.start(id, function(fd)
		skynet.fork(serve, fd)
	end)
	skynet.error(string.format("LISTEN %s %d", addr, port))
end)
