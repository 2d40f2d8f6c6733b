-- t_client_login: the server side of a login-style handshake with a stock-Lua client
-- (compat-tests/client/login_client.lua, run under lua5.4 with our luaclib/). Listens on
-- 127.0.0.1 port 0 ("LISTEN <ip> <port>"); every packet is a 2-byte big-endian length frame.
--   client: "HELLO <base64 clientkey>"      clientkey = dhexchange(client secret key)
--   server: "<base64 serverkey> <base64 challenge>"
--   client: "<base64 hmac64(challenge, secret)>"
--   server: "200 <hex hashkey(secret)>" (and logs "SECRET <hex>") or "401 Unauthorized"
--   client: base64(desencode(secret, sproto.pack(encode(Player))))
--   server: the player with level + 1 and its name upper-cased, encoded the same way
--   client: "QUIT"  -> the server logs "LOGIN ok=<n> refused=<n>" and finishes.
local t = require "t"
local c = t.c
local sd = require "skynet.socketdriver"
local netpack = require "skynet.netpack"
local crypt = require "skynet.crypt"
local core = require "sproto.core"

local sp = core.newproto(require "player_schema")
local player_type = core.querytype(sp, "Player")

local queue, listen_id
local conns = {}
local ok_count, refused = 0, 0

local function send(fd, text)
	local p, sz = netpack.pack(text)
	sd.send(fd, p, sz)
end

local function packet(fd, p, sz)
	local text = netpack.tostring(p, sz)
	local s = conns[fd]
	if text == "QUIT" then
		c.error(string.format("LOGIN ok=%d refused=%d", ok_count, refused))
		sd.close(listen_id)
		netpack.clear(queue)
		t.fork(t.done)
	elseif s.state == "hello" then
		local ckey = crypt.base64decode(assert(text:match("^HELLO (%S+)$")))
		local skey = crypt.randomkey()
		s.challenge = crypt.randomkey()
		s.secret = crypt.dhsecret(ckey, skey)
		send(fd, crypt.base64encode(crypt.dhexchange(skey)) .. " " .. crypt.base64encode(s.challenge))
		s.state = "auth"
	elseif s.state == "auth" then
		if crypt.base64decode(text) == crypt.hmac64(s.challenge, s.secret) then
			local h = crypt.hexencode(crypt.hashkey(s.secret))
			c.error("SECRET " .. h)
			send(fd, "200 " .. h)
			ok_count = ok_count + 1
			s.state = "play"
		else
			send(fd, "401 Unauthorized")
			refused = refused + 1
			s.state = "hello"
		end
	elseif s.state == "play" then
		local bytes = core.unpack(crypt.desdecode(s.secret, crypt.base64decode(text)))
		local pl = core.decode(player_type, bytes)
		pl.level = pl.level + 1
		pl.name = pl.name:upper()
		local reply = crypt.desencode(s.secret, core.pack(core.encode(player_type, pl)))
		send(fd, crypt.base64encode(reply))
	end
end

local handlers = {
	init = function(id, text, port)
		if id == listen_id and port > 0 then
			c.error(string.format("LISTEN %s %d", text, port))
		end
	end,
	open = function(fd)
		conns[fd] = { state = "hello" }
		sd.start(fd)
	end,
	data = packet,
	more = function()
		for fd, p, sz in netpack.pop, queue do
			packet(fd, p, sz)
		end
	end,
	close = function(fd)
		conns[fd] = nil
		sd.close(fd)
	end,
	error = function(fd, text)
		c.error(string.format("ERROR %d %s", fd, text))
		sd.shutdown(fd)
	end,
	warning = function() end,
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
