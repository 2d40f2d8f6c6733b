-- t_bson (bootstrap :2): the bson module and skynet.mongo.driver inside a running node, the
-- way skynet.db.mongo uses them: documents built with encode / encode_order (nested tables,
-- __pairs objects, __len arrays, every tagged type), exact bytes for a few known documents,
-- decode of documents and of light userdata pointing into a reply, makeindex + in-place
-- replacement, bson.type, OP_MSG framing, and a document carried in a message to ourselves.
local t = require "t"
local c = t.c
local bson = require "bson"
local driver = require "skynet.mongo.driver"

local function hex(s)
	return (s:gsub(".", function(ch)
		return string.format("%02x", ch:byte())
	end))
end

local function bytes(name, want, f)
	local ok, d = pcall(f)
	if not ok then
		return t.check(name, false, "raised " .. tostring(d))
	end
	local got = hex(tostring(d))
	return t.check(name, got == want, "got " .. got .. " want " .. want)
end

t.start(function()
	-- exact encodings (bytes recorded from upstream's C module)
	bytes("bytes_int32", "0c000000106100ffffff7f00", function()
		return bson.encode_order("a", 2147483647)
	end)
	bytes("bytes_int64", "10000000126100000000800000000000", function()
		return bson.encode_order("a", 2147483648)
	end)
	bytes("bytes_double", "10000000016100000000000000f03f00", function()
		return bson.encode_order("a", 1.0)
	end)
	bytes("bytes_array", "220000000461001a0000001030000100000010310002000000103200030000000000", function()
		return bson.encode_order("a", { 1, 2, 3 })
	end)
	bytes("bytes_nested", "240000000364001c000000037800140000000379000c000000107a000100000000000000", function()
		return bson.encode({ d = { x = { y = { z = 1 } } } })
	end)
	bytes("bytes_tagged", "120000000b72005e612e2a622400696d0000", function()
		return bson.encode_order("r", bson.regex("^a.*b$", "im"))
	end)
	bytes("bytes_date", "100000000964000068e5cf8b01000000", function()
		return bson.encode_order("d", bson.date(1700000000))
	end)
	bytes("bytes_objectid", "14000000076f000123456789abcdefabcdef0100", function()
		return bson.encode_order("o", bson.objectid("0123456789abcdefABCDEF01"))
	end)
	bytes("bytes_metaarray", "28000000046d00200000000230000200000031000231000200000032000232000200000033000000", function()
		return bson.encode_order("m", setmetatable({ n = 3 }, {
			__len = function(self) return self.n end,
			__index = function(_, i) return tostring(i) end,
		}))
	end)

	-- round trip of a document like upstream's testbson builds
	local sub = bson.encode_order("hello", 1, "world", 2)
	local d = bson.decode(sub)
	t.check("encode_order_decode", d.hello == 1 and d.world == 2, t.show(d.hello))
	local data = { ["1"] = 2, ["3"] = 4 }
	local obj = setmetatable({}, { __pairs = function() return next, data, nil end })
	local doc = bson.encode({
		a = 1, b = true, c = bson.null, d = { 1, 2, 3, 4 }, e = bson.binary("hello"),
		f = bson.regex("*", "i"), h = bson.date(1700000000), i = bson.timestamp(1700000000, 3),
		j = bson.objectid("00112233445566778899aabb"), k = { a = false, b = true }, l = {},
		m = bson.minkey, n = bson.maxkey, o = sub, p = 2 ^ 32 - 1, q = obj,
	})
	local back = doc:decode()
	t.check(
		"document_roundtrip",
		t.deep(back, {
			a = 1, b = true, c = bson.null, d = { 1, 2, 3, 4 }, e = bson.binary("hello"),
			f = bson.regex("*", "i"), h = bson.date(1700000000),
			i = bson.timestamp(1700000000, 3), j = bson.objectid("00112233445566778899aabb"),
			k = { a = false, b = true }, l = {}, m = bson.minkey, n = bson.maxkey,
			o = { hello = 1, world = 2 }, p = 2 ^ 32 - 1, q = { ["1"] = 2, ["3"] = 4 },
		}),
		"decoded differently"
	)
	t.check("len_tostring", #doc == #tostring(doc) and #doc > 100, tostring(#doc))

	-- bson.type
	t.list("type_objectid", t.pack(bson.type(back.j)), t.pack("objectid", "00112233445566778899aabb"))
	t.list("type_timestamp", t.pack(bson.type(back.i)), t.pack("timestamp", 1700000000, 3))
	t.list("type_regex", t.pack(bson.type(back.f)), t.pack("regex", "*", "i"))
	t.list("type_binary", t.pack(bson.type(back.e)), t.pack("binary", "hello", 0))
	t.list("type_null", t.pack(bson.type(back.c)), t.pack("nil"))
	t.list("type_number", t.pack(bson.type(back.p)), t.pack("number", 2 ^ 32 - 1))

	-- makeindex and in-place replacement
	doc:makeindex()
	doc.a = 2
	doc.b = false
	doc.h = bson.date(1800000000)
	doc.j = bson.objectid("ffeeddccbbaa998877665544")
	local r = doc:decode()
	t.check(
		"replace_in_place",
		r.a == 2 and r.b == false and r.h == bson.date(1800000000)
			and r.j == bson.objectid("ffeeddccbbaa998877665544"),
		t.show(r.a)
	)
	t.raises("replace_wrong_type", "32bit integer", function() doc.a = 1.5 end)
	t.raises("replace_unknown_key", "Can't replace key : zz", function() doc.zz = 1 end)

	-- errors
	t.raises("error_hole", "Bson array has a hole (nil), Use bson.null instead", bson.encode, { a = { 1, nil, 3, n = 3 } , b = setmetatable({}, { __len = function() return 3 end }) })
	t.raises("error_utf8", "Invalid utf8 string", bson.encode_order, "s", "\xff")
	t.raises("error_function", "Invalid value type : function", bson.encode, { f = print })
	t.raises("error_numkey", "Bson dictionary's key can't be number", bson.encode, { [1.5] = 1 })
	local deep = {}
	for _ = 1, 200 do deep = { deep } end
	t.raises("error_depth", "Too depth while encoding bson", bson.encode, { a = deep })
	t.raises("error_odd", "Invalid ordered dict", bson.encode_order, "a")

	-- OP_MSG framing, and a reply decoded through its light userdata
	local cmd = bson.encode_order("ping", 1, "$db", "admin")
	local pkt = driver.op_msg(7, 0, cmd)
	t.eq("op_msg_length", driver.length(pkt:sub(1, 4)), #pkt - 4)
	t.check("op_msg_body", pkt:sub(22) == tostring(cmd), hex(pkt))
	local body = tostring(bson.encode_order("ok", 1.0, "cursor", { id = 0, firstBatch = {} }))
	local reply = string.pack("<i4i4i4i4", 55, 7, 2013, 0) .. "\0" .. body
	local ok, id, rdoc = driver.reply(reply)
	local rt = ok and bson.decode(rdoc)
	t.check("reply_decode", ok == true and id == 7 and rt and rt.ok == 1.0 and rt.cursor.id == 0, t.show(id))
	t.raises("reply_bad_opcode", "Unsupported opcode:1", driver.reply, string.pack("<i4i4i4i4", 1, 2, 1, 0) .. "\0" .. body)
	t.eq("reply_short", driver.reply("short"), false)
	local lud = bson.to_lightuserdata(cmd)
	t.check("lightuserdata_embed", tostring(bson.encode_order("c", lud)) == tostring(bson.encode_order("c", cmd)), "differs")

	-- a document carried in a message to ourselves (as the bytes of its userdata)
	local me = c.addresscommand("REG")
	local main = coroutine.running()
	local received
	t.dispatch[0] = function(msg, sz)
		local s = c.tostring(msg, sz)
		local pkt2 = string.pack("<i4i4i4i4", 1, 99, 2013, 0) .. "\0" .. s
		local ok2, id2, d2 = driver.reply(pkt2)
		received = ok2 and id2 == 99 and bson.decode(d2)
		t.wakeup(main)
	end
	c.send(me, 0, 0, tostring(bson.encode_order("from", "self", "n", 42, "list", { "a", "b" })))
	coroutine.yield()
	t.check("message_document", received and received.from == "self" and received.n == 42 and received.list[2] == "b", t.show(received))
	t.done()
end)
