-- t_crypt_server: the server side of a login-style handshake over skynet.crypt (the flow of
-- skynet's examples/login), one client at a time. Text requests, text responses:
--   "challenge"       -> base64(8 random bytes); starts a new handshake
--   "key <b64>"       -> base64(dhexchange(server key)); both sides now derive the secret
--   "auth <b64>"      -> "200 <hex(hmac_hash(secret, 'agree'))>" if the client sent
--                        hmac64(challenge, secret), else "401 Unauthorized"
--   "token <b64>"     -> "200 <user> <server> <password>" if the token decrypts with the
--                        secret (DES, base64 inside), else "403 <error>" (the error text
--                        without its position)
--   "exit"            -> EXIT
-- Each verdict is also logged as "SERVER <verdict>".
local t = require "t"
local c = t.c
local crypt = require "skynet.crypt"

local challenge, secret, authed

local function handle(text)
	if text == "challenge" then
		challenge = crypt.randomkey()
		secret, authed = nil, false
		return crypt.base64encode(challenge)
	end
	local cmd, arg = text:match("^(%a+) (.*)$")
	if cmd == "key" then
		local clientkey = crypt.base64decode(arg)
		local serverkey = crypt.randomkey()
		secret = crypt.dhsecret(clientkey, serverkey)
		return crypt.base64encode(crypt.dhexchange(serverkey))
	elseif cmd == "auth" then
		if secret and crypt.hmac64(challenge, secret) == crypt.base64decode(arg) then
			authed = true
			return "200 " .. crypt.hexencode(crypt.hmac_hash(secret, "agree"))
		end
		return "401 Unauthorized"
	elseif cmd == "token" then
		if not authed then
			return "401 Unauthorized"
		end
		local ok, user, server, password = pcall(function()
			local token = crypt.desdecode(secret, crypt.base64decode(arg))
			local u, s, p = token:match("([^@]*)@([^:]*):(.*)")
			assert(u, "Bad token")
			return crypt.base64decode(u), crypt.base64decode(s), crypt.base64decode(p)
		end)
		if not ok then
			return "403 " .. tostring(user):gsub("^[^:]*:%d+: ", "")
		end
		return string.format("200 %s %s %s", user, server, password)
	end
	return "400 Bad request"
end

c.callback(function(ty, msg, sz, session, source)
	if ty ~= t.TEXT then
		return
	end
	local text = c.tostring(msg, sz)
	if text == "exit" then
		c.command("EXIT")
		return
	end
	local ok, reply = pcall(handle, text)
	if not ok then
		reply = "500 " .. tostring(reply)
	end
	-- challenge and key replies are data (base64, no space): those count as 200
	local code = reply:match("^(%d%d%d) ") or "200"
	c.error("SERVER " .. code .. " for " .. text:match("^%a+"))
	c.send(source, t.RESPONSE, session, reply)
end)
