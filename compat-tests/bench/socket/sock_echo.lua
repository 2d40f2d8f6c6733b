-- sock_echo [host]: the Lua side of the socket echo benchmark (compat-tests/bench/socket).
-- skynet.core + skynet.socketdriver only (no skynet.lua), so the same service runs on the C
-- core and on ours. Listens on host (default 127.0.0.1) port 0, logs "LISTEN <ip> <port>",
-- starts every accepted connection with TCP_NODELAY and sends each DATA buffer back (light
-- userdata + size: its ownership passes to the socket layer, as gate-style servers do).
-- Runs until the node is killed; errors and warnings are logged as "SOCKECHO ...".
local c = require "skynet.core"
local sd = require "skynet.socketdriver"

local PTYPE_SOCKET = 6
local DATA, CONNECT, CLOSE, ACCEPT, ERROR, WARNING = 1, 2, 3, 4, 5, 7
local host = ... or "127.0.0.1"
local listen_id
local send, unpack = sd.send, sd.unpack

c.callback(function(ty, msg, sz)
	if ty ~= PTYPE_SOCKET then
		return
	end
	local t, id, ud, p = unpack(msg, sz)
	if t == DATA then
		send(id, p, ud)
	elseif t == ACCEPT then
		sd.start(ud)
		sd.nodelay(ud)
	elseif t == CLOSE then
		sd.close(id)
	elseif t == CONNECT then
		if id == listen_id and ud > 0 then
			c.error(string.format("LISTEN %s %d", p, ud))
		end
	elseif t == ERROR then
		c.error(string.format("SOCKECHO ERROR %d %s", id, p))
	elseif t == WARNING then
		c.error(string.format("SOCKECHO WARNING %d %d", id, ud))
	end
end)

listen_id = sd.listen(host, 0, 1024)
sd.start(listen_id)
