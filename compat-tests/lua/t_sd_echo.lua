-- t_sd_echo [host [port]]: a TCP echo server over skynet.socketdriver (the shape of a gate).
-- Listens on host (default 127.0.0.1) port (default 0) and logs "LISTEN <ip> <port>"; starts every
-- accepted connection and sends each DATA buffer back (its ownership passes to the socket
-- layer: light userdata + size); closes a connection on CLOSE. Data "QUIT" on a connection:
-- once every other connection has closed, logs
-- "ECHO accepted=<n> closed=<n> bytes=<n> errors=<n>" and finishes.
local t = require "t"
local c = t.c
local sd = require "skynet.socketdriver"
local DATA, CONNECT, CLOSE, ACCEPT, ERROR, WARNING = 1, 2, 3, 4, 5, 7

local host, port = ...
host = host or "127.0.0.1"
port = tonumber(port) or 0
local listen_id
local accepted, closed, bytes, errors, quitting = 0, 0, 0, 0, false

local function check_done()
	if quitting and closed >= accepted - 1 then
		quitting = false
		c.error(string.format("ECHO accepted=%d closed=%d bytes=%d errors=%d", accepted, closed, bytes, errors))
		sd.close(listen_id)
		t.fork(t.done)
	end
end

t.dispatch[6] = function(msg, sz)
	local ty, id, ud, p = sd.unpack(msg, sz)
	if ty == CONNECT then
		if id == listen_id and ud > 0 then
			c.error(string.format("LISTEN %s %d", p, ud))
		end
	elseif ty == ACCEPT then
		accepted = accepted + 1
		sd.start(ud)
	elseif ty == DATA then
		if ud == 4 and c.tostring(p, ud) == "QUIT" then
			sd.drop(p, ud)
			quitting = true
			check_done()
			return
		end
		bytes = bytes + ud
		if not sd.send(id, p, ud) then
			errors = errors + 1
		end
	elseif ty == CLOSE then
		closed = closed + 1
		sd.close(id)
		check_done()
	elseif ty == ERROR then
		errors = errors + 1
		c.error(string.format("ERROR %d %s", id, p))
	elseif ty == WARNING then
		c.error(string.format("WARNING %d %d", id, ud))
	end
end

t.start(function()
	listen_id = sd.listen(host, port, 1024)
	sd.start(listen_id)
end)
