-- t_crypt (bootstrap :2): a login-style handshake with t_crypt_server (:3), this side using
-- client.crypt and the server skynet.crypt, as skynet's examples/login does: challenge, DH key
-- exchange, both sides derive the same secret, the client proves it with hmac64, then sends a
-- DES-encrypted, base64-wrapped token. Then the failing cases: a wrong secret is refused, and a
-- token encrypted with another key is rejected. Plus md5.core and the module shapes as seen
-- through require in a real service.
local t = require "t"
local c = t.c
local crypt = require "client.crypt"
local scrypt = require "skynet.crypt"
local md5 = require "md5.core"

local function call(server, text)
	local ty, reply = t.call(server, text)
	assert(ty == t.RESPONSE, "response type " .. tostring(ty))
	return reply
end

-- Runs a handshake; `tamper(secret)` may change the secret the client uses afterwards.
local function handshake(server, tamper)
	local challenge = crypt.base64decode(call(server, "challenge"))
	local clientkey = crypt.randomkey()
	local serverpub = crypt.base64decode(
		call(server, "key " .. crypt.base64encode(crypt.dhexchange(clientkey)))
	)
	local secret = crypt.dhsecret(serverpub, clientkey)
	if tamper then
		secret = tamper(secret)
	end
	local hmac = crypt.hmac64(challenge, secret)
	return challenge, secret, call(server, "auth " .. crypt.base64encode(hmac))
end

local function token_of(user, server, password)
	return string.format(
		"%s@%s:%s",
		crypt.base64encode(user),
		crypt.base64encode(server),
		crypt.base64encode(password)
	)
end

t.start(function()
	local server = c.addresscommand("LAUNCH", "snlua t_crypt_server")
	t.eq("server_handle", server, 3)

	-- module shapes through require
	t.check("client_crypt_padding", crypt.padding.iso7816_4 == 0 and crypt.padding.pkcs7 == 1)
	t.check("skynet_crypt_padding", scrypt.padding.pkcs7 == 1)
	t.eq("md5_sum", crypt.hexencode(md5.sum("abc")), "900150983cd24fb0d6963f7d28e17f72")
	t.eq("md5_decrypt", md5.decrypt(md5.crypt("message", "key", "seed"), "key"), "message")

	-- the good handshake
	local challenge, secret, verdict = handshake(server)
	t.eq("challenge_size", #challenge, 8)
	t.eq("secret_size", #secret, 8)
	t.eq(
		"auth_ok_and_secrets_agree",
		verdict,
		"200 " .. crypt.hexencode(crypt.hmac_hash(secret, "agree"))
	)
	local etoken = crypt.desencode(secret, token_of("alice", "sample", "p@ss:word"))
	t.eq("token_accepted", call(server, "token " .. crypt.base64encode(etoken)), "200 alice sample p@ss:word")
	local etoken7 = crypt.desencode(secret, token_of("bob", "s", "pw"), crypt.padding.iso7816_4)
	t.eq("second_token_accepted", call(server, "token " .. crypt.base64encode(etoken7)), "200 bob s pw")

	-- a wrong secret: the hmac does not match
	local _, _, bad = handshake(server, function(s)
		return crypt.xor_str(s, "\1")
	end)
	t.eq("wrong_secret_refused", bad, "401 Unauthorized")
	t.eq("token_refused_without_auth", call(server, "token " .. crypt.base64encode(etoken)), "401 Unauthorized")

	-- authenticated again, but the token is encrypted with another key
	local _, secret2, verdict2 = handshake(server)
	t.check("reauth_ok", verdict2:sub(1, 4) == "200 ", verdict2)
	t.check("new_secret", secret2 ~= secret, "same secret twice")
	-- the old token (encrypted with the previous secret) no longer gives alice's credentials
	-- (almost always a padding error; garbage that happens to parse is still not alice's)
	local old = call(server, "token " .. crypt.base64encode(etoken))
	t.check("old_token_rejected", old ~= "200 alice sample p@ss:word", old)
	-- a plaintext-sized garbage token: DES length error
	t.eq("short_token_rejected", call(server, "token " .. crypt.base64encode("1234567")),
		"403 Invalid des crypt text length 7")

	c.send(server, t.TEXT, 0, "exit")
	t.done()
end)
