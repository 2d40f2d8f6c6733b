-- t_seri (bootstrap :2): skynet.core pack / unpack / packstring (the lua-seri format):
-- round trips through both the malloc'd buffer and the string form, the exact bytes
-- of each size class, nil holes, tables (array/hash parts, __pairs, nesting up to the depth
-- limit), light userdata, argument and stream errors, and a packed message sent to ourselves.
local t = require "t"
local c = t.c

local function hex(s)
	return (s:gsub(".", function(ch)
		return string.format("%02x", ch:byte())
	end))
end

-- Both round trips: pack + unpack(ptr, sz) + trash, and packstring + unpack(string).
local function roundtrip(...)
	local p, sz = c.pack(...)
	local a = t.pack(c.unpack(p, sz))
	c.trash(p, sz)
	local s = c.packstring(...)
	local b = t.pack(c.unpack(s))
	return a, b, sz, s
end

local function rt(name, ...)
	local want = t.pack(...)
	local ok, a, b, sz, s = pcall(roundtrip, ...)
	if not ok then
		return t.check(name, false, "raised " .. tostring(a))
	end
	local good = a.n == want.n and b.n == want.n and sz == #s
	for i = 1, want.n do
		good = good and t.deep(a[i], want[i]) and t.deep(b[i], want[i])
	end
	return t.check(
		name,
		good,
		"got " .. t.show_list(a) .. " / " .. t.show_list(b) .. " want " .. t.show_list(want)
	)
end

-- packstring(...) must give exactly `want` bytes.
local function bytes(name, want, ...)
	local ok, s = pcall(c.packstring, ...)
	if not ok then
		return t.check(name, false, "raised " .. tostring(s))
	end
	return t.check(name, s == want, "got " .. hex(s) .. " want " .. hex(want))
end

local function nest(n, leaf)
	local v = leaf
	for _ = 1, n do
		v = { v }
	end
	return v
end

local function array(n)
	local a = {}
	for i = 1, n do
		a[i] = i * 3
	end
	return a
end

t.start(function()
	-- integers: every size class and its boundaries (values and math.type survive)
	rt("int_zero", 0)
	rt("int_byte", 1, 255)
	rt("int_word", 256, 65535)
	rt("int_dword", 65536, 0x7fffffff, -1, -0x80000000)
	rt("int_qword", 0x80000000, -0x80000001, math.maxinteger, math.mininteger, 1 << 40)
	bytes("bytes_zero", "\x02", 0)
	bytes("bytes_byte", "\x0a\x01\x0a\xff", 1, 255)
	bytes("bytes_word", "\x12\x00\x01\x12\xff\xff", 256, 65535)
	bytes("bytes_dword", string.pack("<Bi4Bi4Bi4", 0x22, 65536, 0x22, 0x7fffffff, 0x22, -1), 65536, 0x7fffffff, -1)
	bytes("bytes_dword_min", string.pack("<Bi4", 0x22, -0x80000000), -0x80000000)
	bytes("bytes_qword", string.pack("<Bi8Bi8", 0x32, 0x80000000, 0x32, -0x80000001), 0x80000000, -0x80000001)
	bytes("bytes_maxinteger", string.pack("<Bi8", 0x32, math.maxinteger), math.maxinteger)

	-- floats stay floats, even integral ones
	rt("float_values", 1.5, -2.25, 0.0, 2.0, 2 ^ 31, 2 ^ 63, 1e308, 5e-324, math.pi)
	rt("float_inf", math.huge, -math.huge)
	rt("float_nan", 0 / 0)
	local ok, negzero = pcall(function()
		return c.unpack(c.packstring(-0.0))
	end)
	t.check("float_negative_zero", ok and math.type(negzero) == "float" and 1 / negzero == -math.huge, tostring(negzero))
	bytes("bytes_real", string.pack("<Bd", 0x42, 1.5), 1.5)
	bytes("bytes_real_integral", string.pack("<Bd", 0x42, 2.0), 2.0)

	-- strings: short (< 32), long with 16-bit and 32-bit lengths, binary content
	local all = {}
	for i = 0, 255 do
		all[#all + 1] = string.char(i)
	end
	all = table.concat(all)
	rt("string_short", "", "a", string.rep("x", 31), "a\0b\0")
	rt("string_long16", string.rep("y", 32), string.rep("ab\0", 21845))
	rt("string_long32", string.rep("z", 65536), string.rep("\0\1\2", 100000))
	rt("string_binary", all)
	bytes("bytes_short_string", "\x1cabc", "abc")
	bytes("bytes_empty_string", "\x04", "")
	bytes("bytes_string31", "\xfc" .. string.rep("s", 31), string.rep("s", 31))
	bytes("bytes_string32", "\x15\x20\x00" .. string.rep("s", 32), string.rep("s", 32))
	bytes("bytes_string65535", "\x15\xff\xff" .. string.rep("s", 65535), string.rep("s", 65535))
	bytes("bytes_string65536", "\x25\x00\x00\x01\x00" .. string.rep("s", 65536), string.rep("s", 65536))

	-- booleans, nil, nil holes in the argument list (counted, trailing ones too)
	rt("booleans", true, false)
	rt("nil_holes", 1, nil, 3)
	rt("nil_only", nil)
	rt("nil_trailing", 1, nil, nil)
	rt("nil_leading", nil, nil, "x")
	bytes("bytes_bool_nil", "\x09\x01\x00", true, false, nil)
	local okn, n3 = pcall(function()
		return select("#", c.unpack(c.pack(1, nil, 3)))
	end)
	t.check("unpack_pack_nil_hole_count", okn and n3 == 3, tostring(n3))

	-- no values at all
	local okz, zp, zsz = pcall(c.pack)
	t.check("pack_nothing_size", okz and type(zp) == "userdata" and zsz == 0, tostring(zsz))
	if okz then
		t.list("unpack_nothing", t.pack(c.unpack(zp, zsz)), t.pack())
		c.trash(zp, zsz)
	end
	local oke, es = pcall(c.packstring)
	t.check("packstring_nothing", oke and es == "", tostring(es))
	t.list("unpack_empty_string", t.pack(pcall(c.unpack, "")), t.pack(true))
	t.list("unpack_nil", t.pack(pcall(c.unpack, nil)), t.pack(true))
	t.list("unpack_none", t.pack(pcall(c.unpack)), t.pack(true))

	-- many values
	local many = {}
	for i = 1, 500 do
		many[i] = i % 3 == 0 and tostring(i) or i
	end
	rt("many_values", table.unpack(many))

	-- tables
	rt("table_empty", {})
	rt("table_array", { 1, 2, 3 })
	rt("table_mixed", { 1, 2, 3, a = 4, b = { "x", y = false } })
	rt("table_keys", { [1.5] = "f", [true] = "t", [-1] = "neg", [0] = "zero", [100] = 1, x = {}, ["\0"] = 0 })
	rt("table_float_values", { 1.0, 2.5, k = 3.0 })
	rt("table_nested", { a = { b = { c = { d = { "deep" } } } }, { { 1 }, { 2 } } })
	rt("table_holes", { 1, nil, 3, nil, 5 })
	rt("table_array30", array(30))
	rt("table_array31", array(31))
	rt("table_array1000", array(1000))
	rt("table_big_hash", (function()
		local h = {}
		for i = 1, 1000 do
			h["k" .. i] = i
		end
		return h
	end)())
	bytes("bytes_table_empty", "\x06\x00", {})
	bytes("bytes_table_array30", "\xf6" .. string.rep("\x0a\x01", 30) .. "\x00", (function()
		local a = {}
		for i = 1, 30 do
			a[i] = 1
		end
		return a
	end)())
	bytes("bytes_table_array31", "\xfe\x0a\x1f" .. string.rep("\x0a\x01", 31) .. "\x00", (function()
		local a = {}
		for i = 1, 31 do
			a[i] = 1
		end
		return a
	end)())
	bytes("bytes_table_hash", "\x06\x0ck\x0a\x05\x00", { k = 5 })
	-- a mixed value: integers of several widths, a float, strings, nested tables
	bytes(
		"bytes_surface_example",
		"\x0a\x01\x22\xff\xff\xff\xff\x0a\xff\x12\x00\x01\x22\x00\x00\x01\x00"
			.. "\x42\x00\x00\x00\x00\x00\x00\xf8\x3f\x1c\x61\x62\x63"
			.. "\x1e\x0a\x01\x0a\x02\x0a\x03\x0c\x61\x0a\x04\x00\x09\x01\x00",
		1,
		-1,
		255,
		256,
		65536,
		1.5,
		"abc",
		{ 1, 2, 3, a = 4 },
		true,
		false,
		nil
	)

	-- metatables: raw access, except __pairs which replaces the traversal (array part 0)
	rt("table_meta_index_ignored", setmetatable({ a = 1 }, { __index = function()
		return 5
	end, __len = function()
		return 10
	end }))
	local pairs_src = { 10, 20, x = "y" }
	local proxy = setmetatable({}, { __pairs = function()
		return next, pairs_src, nil
	end })
	local okp, got = pcall(function()
		return c.unpack(c.packstring(proxy))
	end)
	t.check("table_pairs_metamethod", okp and t.deep(got, pairs_src) and getmetatable(got) == nil, tostring(got))
	local okb, b1 = pcall(function()
		return c.packstring(setmetatable({}, { __pairs = function()
			return next, { 7 }, nil
		end }))
	end)
	t.check("bytes_table_pairs", okb and b1 == "\x06\x0a\x01\x0a\x07\x00", okb and hex(b1) or tostring(b1))
	t.raises("table_pairs_error", "pairs boom", c.packstring, setmetatable({}, { __pairs = function()
		error("pairs boom")
	end }))

	-- light userdata: the pointer itself
	local okl, lp, lsz = pcall(c.pack, "payload")
	if okl then
		local okr, back = pcall(function()
			return c.unpack(c.packstring(lp))
		end)
		t.check("lightuserdata_roundtrip", okr and back == lp and type(back) == "userdata", tostring(back))
		bytes("bytes_lightuserdata", "\x03" .. string.pack("<J", tonumber(tostring(lp):match("0x(%x+)"), 16)), lp)
		t.eq("pack_buffer_is_packstring", c.tostring(lp, lsz), "\x3cpayload")
		c.trash(lp, lsz)
	else
		t.check("lightuserdata_roundtrip", false, "pack raised " .. tostring(lp))
	end

	-- depth: top-level values are at depth 0, each table adds 1, anything deeper than 32 fails
	rt("depth_33_tables", nest(33))
	t.raises("depth_value_at_33", "serialize can't pack too depth table", c.pack, nest(33, 1))
	t.raises("depth_34_tables", "serialize can't pack too depth table", c.pack, nest(34))
	t.raises("depth_packstring", "serialize can't pack too depth table", c.packstring, "x", nest(40))
	local loop = {}
	loop.self = loop
	t.raises("depth_cycle", "serialize can't pack too depth table", c.pack, loop)
	t.raises("depth_in_key", "serialize can't pack too depth table", c.pack, { [nest(33)] = true })

	-- unsupported types, also nested
	t.raises("unsupported_function", "Unsupport type function to serialize", c.pack, print)
	t.raises("unsupported_thread", "Unsupport type thread to serialize", c.pack, coroutine.create(print))
	t.raises("unsupported_userdata", "Unsupport type userdata to serialize", c.pack, io.stdout)
	t.raises("unsupported_nested", "Unsupport type function to serialize", c.packstring, 1, { a = { f = print } })

	-- bad streams
	local _, null = t.sleep(0) -- a NULL light userdata (the timeout's payload)
	t.raises("unpack_null_pointer", "deserialize null pointer", c.unpack, null, 5)
	t.list("unpack_null_zero_size", t.pack(pcall(c.unpack, null, 0)), t.pack(true))
	local garbage = {
		bad_type = "\x07",
		bad_number_cookie = "\x1a",
		short_byte = "\x0a",
		short_dword = "\x22\x01\x02",
		short_real = "\x42\x00\x00",
		short_string = "\x1cab",
		short_long_len = "\x15\x05",
		bad_long_cookie = "\x1d\x00\x00\x00",
		short_long_body = "\x15\x10\x00abc",
		short_pointer = "\x03\x00\x00\x00\x00",
		table_unterminated = "\x0e\x0a\x01",
		table_missing_value = "\x06\x0ck",
		table_size_real = "\xfe\x42" .. string.pack("<d", 1.0),
		table_size_not_number = "\xfe\x0ck",
		valid_then_garbage = "\x0a\x01\x07",
	}
	for name, s in pairs(garbage) do
		t.raises("unpack_" .. name, "Invalid serialize stream", c.unpack, s)
	end
	local okg, gp, gsz = pcall(c.pack, "abcdef")
	if okg then
		t.raises("unpack_truncated_buffer", "Invalid serialize stream", c.unpack, gp, gsz - 2)
		c.trash(gp, gsz)
	end
	-- any non-zero boolean cookie reads as true
	local okc, tv = pcall(c.unpack, "\x11")
	t.check("unpack_boolean_cookie", okc and tv == true, tostring(tv))

	-- the usual use: a packed message (DONTCOPY) to ourselves, unpacked in the dispatcher
	local me = c.addresscommand("REG")
	local main = coroutine.running()
	local received
	t.dispatch[10] = function(msg, sz, session, source)
		received = t.pack(pcall(c.unpack, msg, sz))
		received.session, received.source = session, source
		t.wakeup(main)
	end
	local oks, session = pcall(function()
		return c.send(me, 10, nil, c.pack("hello", 42, { x = 1.5 }, nil))
	end)
	if oks and session then
		coroutine.yield()
		t.check(
			"message_unpacked",
			received.n == 5
				and received[1] == true
				and received[2] == "hello"
				and received[3] == 42
				and t.deep(received[4], { x = 1.5 })
				and received.session == session
				and received.source == me,
			t.show_list(received)
		)
	else
		t.check("message_unpacked", false, "send raised " .. tostring(session))
	end
	t.done()
end)
