-- Codec benchmarks: sproto, bson, sha1 and DES on fixed data, through skynet.core alone, so the
-- same file runs on the C core (with upstream's luaclib) and on ours (built-in modules).
-- Launch: snlua codec_bench <mode> <n>; logs "BENCH <name> <value> <unit>" lines.
local c = require "skynet.core"

local mode, n = ...
n = math.tointeger(n)

local function finish(lines)
	for _, l in ipairs(lines) do
		c.error(l)
	end
	-- ABORT also retires the logger: give it a moment to print first.
	c.callback(function(ty)
		if ty == 1 then
			c.command("ABORT")
		end
	end)
	c.command("TIMEOUT", "20")
end

-- The Player/Item schema in binary form (compat-tests/lua/player_schema.lua).
local SCHEMA = require "player_schema"

local function player()
	local items = {}
	for i = 1, 20 do
		items[i] = { id = 1000 + i, count = i * 7, name = "item_" .. i }
	end
	return {
		id = 123456789012,
		name = "player one",
		level = 42,
		exp = -98765,
		hp = 1234.5,
		items = items,
		tags = { "alpha", "beta", "gamma", "delta" },
		online = true,
		pos = { 1, -2, 3000000000, 4 },
	}
end

local function rate(count, ns)
	return math.floor(count / (ns / 1e9))
end

local modes = {}

function modes.sproto()
	local core = require "sproto.core"
	local sp = core.newproto(SCHEMA)
	local ty = core.querytype(sp, "Player")
	local obj = player()
	local t0 = c.hpc()
	local bytes
	for _ = 1, n do
		bytes = core.encode(ty, obj)
		local r = core.decode(ty, bytes)
		assert(r.level == 42)
	end
	local t1 = c.hpc()
	local packed
	for _ = 1, n do
		packed = core.pack(bytes)
		assert(#core.unpack(packed) >= #bytes)
	end
	local t2 = c.hpc()
	finish {
		string.format("BENCH sproto_encode_decode %d ops/s", rate(n, t1 - t0)),
		string.format("BENCH sproto_pack_unpack %d ops/s", rate(n, t2 - t1)),
	}
end

-- The same work through upstream's unchanged lualib/sproto.lua (what services call), when the
-- run has an upstream tree's lualib on its path (run.sh with an upstream binary).
function modes.sproto_lualib()
	local sproto = require "sproto"
	local sp = sproto.new(SCHEMA)
	local obj = player()
	local t0 = c.hpc()
	for _ = 1, n do
		local r = sp:pdecode("Player", sp:pencode("Player", obj))
		assert(r.level == 42)
	end
	finish { string.format("BENCH sproto_lualib_pencode_pdecode %d ops/s", rate(n, c.hpc() - t0)) }
end

function modes.bson()
	local bson = require "bson"
	local obj = player()
	obj.pos = nil -- bson arrays of mixed int sizes are fine, but keep the document plain
	local t0 = c.hpc()
	for _ = 1, n do
		local doc = bson.encode(obj)
		local r = doc:decode()
		assert(r.level == 42)
	end
	finish { string.format("BENCH bson_encode_decode %d ops/s", rate(n, c.hpc() - t0)) }
end

function modes.sha1()
	local crypt = require "skynet.crypt"
	local data = string.rep("0123456789abcdef", 4096) -- 64 KiB
	local t0 = c.hpc()
	for _ = 1, n do
		assert(#crypt.sha1(data) == 20)
	end
	local mib = n * #data / 1048576
	finish { string.format("BENCH sha1_64k %.1f MiB/s", mib / ((c.hpc() - t0) / 1e9)) }
end

function modes.des()
	local crypt = require "skynet.crypt"
	local key = "12345678"
	local data = string.rep("0123456789abcdef", 256) -- 4 KiB
	local t0 = c.hpc()
	for _ = 1, n do
		local e = crypt.desencode(key, data)
		assert(#crypt.desdecode(key, e) == #data)
	end
	-- each round encrypts and decrypts the 4 KiB once
	local mib = n * #data * 2 / 1048576
	finish { string.format("BENCH des_4k %.1f MiB/s", mib / ((c.hpc() - t0) / 1e9)) }
end

local f = modes[mode]
if not f then
	error("unknown mode " .. tostring(mode))
end
f()
