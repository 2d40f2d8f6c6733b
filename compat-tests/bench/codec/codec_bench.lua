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

local function unhex(s)
	return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

-- Schema (binary form) of:
--   .Item { id 0 : integer  count 1 : integer  name 2 : string }
--   .Player { id 0 : integer  name 1 : string  level 2 : integer  exp 3 : integer  hp 4 : double
--             items 5 : *Item  tags 6 : *string  online 7 : boolean  pos 8 : *integer }
local SCHEMA = unhex(
	"010000003901000053000000020000000000040000004974656d4100000010000000040000000200"
		.. "01000200020000006964130000000400000002000100040005000000636f756e7412000000040000"
		.. "00060001000600040000006e616d65de00000002000000000006000000506c61796572ca00000010"
		.. "000000040000000200010002000200000069641200000004000000060001000400040000006e616d"
		.. "651300000004000000020001000600050000006c6576656c11000000040000000200010008000300"
		.. "00006578701000000004000000080001000a000200000068701500000005000000010002000c0004"
		.. "00050000006974656d731400000005000000060001000e0004000400000074616773140000000400"
		.. "0000040001001000060000006f6e6c696e651300000005000000020001001200040003000000706f"
		.. "73"
)

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
