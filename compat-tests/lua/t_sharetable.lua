-- t_sharetable (bootstrap :2): skynet.sharetable.core across services, the way lualib's
-- sharetable service uses it: matrices made from a data file (loadfile), from source with
-- arguments (loadstring) and from a packed table through skynet.unpack (loadtable), whose
-- pointers another service clones (query); a new version of the file (update) is seen by a new
-- clone, and the closed old version can no longer be cloned.
local t = require "t"
local c = t.c
local core = require "skynet.sharetable.core"

local function call(addr, ...)
	local session = c.send(addr, t.TEXT, nil, c.pack(...))
	local _, msg, sz = t.wait(session)
	return c.unpack(msg, sz)
end

local function write(path, text)
	local f = assert(io.open(path, "w"))
	f:write(text)
	f:close()
end

t.start(function()
	local reader = c.addresscommand("LAUNCH", "snlua t_sht_reader")
	local path = os.tmpname()
	write(path, "local n = ... return { version = 1, n = n, list = { 'a', 'b' } }")

	-- loadfile + query
	local m1 = core.matrix("@" .. path, 5)
	t.check("size", m1:size() > 0, m1:size())
	local p1 = m1:getptr()
	t.eq("query_file", call(reader, "query", p1), "{list={1=a,2=b},n=5,version=1} shared=true,true")

	-- loadstring
	local m2 = core.matrix("return { ... }", 1, 2.5, true)
	t.eq("query_string", call(reader, "query", m2:getptr()), "{1=1,2=2.5,3=true} shared=true,false")

	-- loadtable: the data crosses as a skynet.pack message, unpacked in the matrix's VM
	local msg, sz = c.pack({ x = 1, y = { "hello world" }, ["hello world"] = true })
	local ok, m3 = pcall(core.matrix, "local unpack, ptr, len = ... return unpack(ptr, len)", c.unpack, msg, sz)
	c.trash(msg, sz)
	t.check("loadtable", ok, m3)
	t.eq("query_table", call(reader, "query", m3:getptr()), "{hello world=true,x=1,y={1=hello world}} shared=true,true")

	-- update: a new version of the file; the old one is closed once nobody queries it
	write(path, "return { version = 2 }")
	local m4 = core.matrix("@" .. path)
	m1:close()
	t.eq("query_new_version", call(reader, "query", m4:getptr()), "{version=2} shared=true,false")
	local old = call(reader, "query", p1)
	t.check("query_closed_version", old:find("ERR", 1, true) == 1, old)
	t.raises("bad_source", "Not a table", core.matrix, "return 42")

	os.remove(path)
	m2:close()
	m3:close()
	m4:close()
	call(reader, "exit", nil)
	t.done()
end)
