-- A game-client-style script for a stock Lua 5.4 interpreter, using our client modules
-- (client.socket, client.crypt, sproto.core from luaclib/). Talks to
-- compat-tests/lua/t_client_login.lua (see the protocol there).
-- usage: lua5.4 login_client.lua <repo> <port> [badauth]
local repo, port, mode = ...
package.cpath = repo .. "/luaclib/?.so"
package.path = repo .. "/compat-tests/lua/?.lua"

local socket = require "client.socket"
local crypt = require "client.crypt"
local core = require "sproto.core"

local player_type = core.querytype(core.newproto(require "player_schema"), "Player")
local fd = assert(socket.connect("127.0.0.1", tonumber(port)))
local last = ""

local function send(text)
	socket.send(fd, string.pack(">s2", text))
end

-- The next frame; waits at most 10 s.
local function recv()
	for _ = 1, 10000 do
		if #last >= 2 then
			local n = string.unpack(">I2", last)
			if #last >= 2 + n then
				local text = last:sub(3, 2 + n)
				last = last:sub(3 + n)
				return text
			end
		end
		local r = socket.recv(fd)
		if r == "" then
			error "Server closed"
		elseif r then
			last = last .. r
		else
			socket.usleep(1000)
		end
	end
	error "timeout"
end

local function handshake(wrong)
	local key = crypt.randomkey()
	send("HELLO " .. crypt.base64encode(crypt.dhexchange(key)))
	local skey, challenge = recv():match("^(%S+) (%S+)$")
	local secret = crypt.dhsecret(crypt.base64decode(skey), key)
	if wrong then
		secret = crypt.randomkey()
	end
	send(crypt.base64encode(crypt.hmac64(crypt.base64decode(challenge), secret)))
	return recv(), secret
end

if mode == "badauth" then
	print("AUTH " .. handshake(true))
end
local answer, secret = handshake(false)
print("AUTH " .. answer)
print("LOCAL " .. crypt.hexencode(crypt.hashkey(secret)))

local items = {}
for i = 1, 3 do
	items[i] = { id = i, count = i * 10, name = "item" .. i }
end
local request = {
	id = 7,
	name = "hero",
	level = 41,
	exp = -5,
	hp = 99.5,
	items = items,
	tags = { "a", "b" },
	online = true,
	pos = { 1, -2, 3000000000 },
}
send(crypt.base64encode(crypt.desencode(secret, core.pack(core.encode(player_type, request)))))
local reply = core.decode(player_type, core.unpack(crypt.desdecode(secret, crypt.base64decode(recv()))))
print(string.format("PLAYER %s %d items=%d hp=%s pos3=%d", reply.name, reply.level, #reply.items, reply.hp, reply.pos[3]))
send("QUIT")
socket.close(fd)
