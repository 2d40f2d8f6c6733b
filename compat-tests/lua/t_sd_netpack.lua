-- t_sd_netpack: a gate-like server over skynet.socketdriver + skynet.netpack. Listens on
-- 127.0.0.1 port 0 ("LISTEN <ip> <port>"), starts every connection ("open"), and answers each
-- 2-byte-length packet <text> with the packet "re:<text>" (netpack.pack, ownership passes to
-- the socket layer). The packet "QUIT": once every other connection has closed, logs
-- "NETPACK opened=<n> closed=<n> packets=<n> bytes=<n> errors=<n>" and finishes.
local t = require "t"
local c = t.c
local sd = require "skynet.socketdriver"
local netpack = require "skynet.netpack"

local queue
local listen_id
local opened, closed, packets, bytes, errors, quitting = 0, 0, 0, 0, 0, false

local function check_done()
	if quitting and closed >= opened - 1 then
		quitting = false
		c.error(
			string.format(
				"NETPACK opened=%d closed=%d packets=%d bytes=%d errors=%d",
				opened,
				closed,
				packets,
				bytes,
				errors
			)
		)
		sd.close(listen_id)
		netpack.clear(queue)
		t.fork(t.done)
	end
end

local function packet(fd, p, sz)
	local text = netpack.tostring(p, sz)
	if text == "QUIT" then
		quitting = true
		check_done()
		return
	end
	packets = packets + 1
	bytes = bytes + sz
	local rp, rsz = netpack.pack("re:" .. text)
	if not sd.send(fd, rp, rsz) then
		errors = errors + 1
	end
end

local handlers = {
	init = function(id, text, port)
		if id == listen_id and port > 0 then
			c.error(string.format("LISTEN %s %d", text, port))
		end
	end,
	open = function(fd)
		opened = opened + 1
		sd.start(fd)
	end,
	data = packet,
	more = function()
		for fd, p, sz in netpack.pop, queue do
			packet(fd, p, sz)
		end
	end,
	close = function(fd)
		closed = closed + 1
		sd.close(fd)
		check_done()
	end,
	error = function(fd, text)
		errors = errors + 1
		c.error(string.format("ERROR %d %s", fd, text))
		sd.shutdown(fd)
	end,
	warning = function(fd, kib)
		c.error(string.format("WARNING %d %d", fd, kib))
	end,
}

t.dispatch[6] = function(msg, sz)
	local q, ty, a, b, d = netpack.filter(queue, msg, sz)
	queue = q
	if ty then
		handlers[ty](a, b, d)
	end
end

t.start(function()
	listen_id = sd.listen("127.0.0.1", 0)
	sd.start(listen_id)
end)
