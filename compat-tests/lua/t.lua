-- Shared helper of our Lua test services (require "t").
--
-- Reporting, read by compat-tests/tests/lua.rs (same convention as the C modules):
--   "CHECK <what> ok" | "CHECK <what> FAIL <details>"   one line per check
--   "DONE"                                               scenario finished
-- t.done() logs DONE, waits 5 cs so the logger can drain, then ABORTs the node.
--
-- A small coroutine scheduler over skynet.core: t.start(f) installs the dispatcher and runs
-- f in a coroutine; inside, t.wait(session) / t.call / t.sleep suspend until the PTYPE_RESPONSE
-- (or PTYPE_ERROR) with that session arrives. Other messages go to t.dispatch[type].

local c = require "skynet.core"

local t = {
	c = c,
	TEXT = 0,
	RESPONSE = 1,
	ERROR = 7,
	dispatch = {},
}

local function show(v)
	if type(v) == "string" then
		if #v > 80 then
			return string.format("%q...(%d bytes)", v:sub(1, 80), #v)
		end
		return string.format("%q", v)
	end
	return tostring(v) .. "(" .. (math.type(v) or type(v)) .. ")"
end
t.show = show

function t.check(name, ok, detail)
	if ok then
		c.error("CHECK " .. name .. " ok")
	else
		c.error("CHECK " .. name .. " FAIL " .. tostring(detail))
	end
	return ok
end

-- Same value and same type (integer vs float matter).
local function same(a, b)
	if type(a) ~= type(b) or math.type(a) ~= math.type(b) then
		return false
	end
	if a ~= a then
		return b ~= b -- NaN
	end
	return a == b
end
t.same = same

function t.eq(name, got, want)
	return t.check(name, same(got, want), "got " .. show(got) .. " want " .. show(want))
end

-- Packs the results of a call: t.pack(f(...)) keeps the count (trailing nils included).
function t.pack(...)
	return { n = select("#", ...), ... }
end

local function show_list(l)
	local s = {}
	for i = 1, l.n do
		s[i] = show(l[i])
	end
	return "(" .. table.concat(s, ", ") .. ")"
end
t.show_list = show_list

-- got and want are t.pack(...) lists: same count, same values.
function t.list(name, got, want)
	local ok = got.n == want.n
	for i = 1, math.max(got.n, want.n) do
		ok = ok and same(got[i], want[i])
	end
	return t.check(name, ok, "got " .. show_list(got) .. " want " .. show_list(want))
end

-- f(...) must raise an error whose text contains `needle` (plain search).
function t.raises(name, needle, f, ...)
	local ok, err = pcall(f, ...)
	return t.check(
		name,
		not ok and type(err) == "string" and err:find(needle, 1, true) ~= nil,
		"pcall gave " .. show(ok) .. ", " .. show(err) .. "; want an error containing " .. show(needle)
	)
end

function t.hex(h)
	return string.format(":%08x", h)
end

-- Deep comparison of plain values and tables (no metatables, no cycles).
local function deep(a, b)
	if type(a) ~= "table" or type(b) ~= "table" then
		return same(a, b)
	end
	for k, v in pairs(a) do
		if not deep(v, b[k]) then
			return false
		end
	end
	for k in pairs(b) do
		if a[k] == nil then
			return false
		end
	end
	return true
end
t.deep = deep

-- scheduler ---------------------------------------------------------------------------------

local waiting = {} -- session -> coroutine
local conds = {} -- coroutine -> condition (t.wait_until)

local function resume(co, ...)
	local ok, err = coroutine.resume(co, ...)
	if not ok then
		c.error("CHECK coroutine FAIL " .. tostring(err) .. "\n" .. debug.traceback(co))
	end
end

local function dispatch(ty, msg, sz, session, source)
	if ty == t.RESPONSE or ty == t.ERROR then
		local co = waiting[session]
		if co then
			waiting[session] = nil
			return resume(co, ty, msg, sz, source)
		end
	end
	local h = t.dispatch[ty]
	if h then
		h(msg, sz, session, source)
	else
		c.error(
			string.format("UNEXPECTED type=%d session=%d src=:%08x sz=%d", ty, session, source, sz)
		)
	end
	-- The ready ones are collected first: a resumed coroutine may wait again (a new key), which
	-- a `pairs` traversal in progress must not see.
	local ready = {}
	for co, cond in pairs(conds) do
		if cond() then
			ready[#ready + 1] = co
		end
	end
	for _, co in ipairs(ready) do
		conds[co] = nil
		resume(co)
	end
end

-- Resumes a coroutine, reporting its error as a failed check.
t.wakeup = resume

-- Installs the dispatcher (t.start does it too).
function t.serve()
	c.callback(dispatch)
end

function t.fork(f, ...)
	resume(coroutine.create(f), ...)
end

function t.start(f)
	t.serve()
	t.fork(f)
end

-- Suspends until the response (or error) for `session`: returns type, msg, sz, source. The
-- message is valid until the calling coroutine suspends again.
function t.wait(session)
	assert(waiting[session] == nil, "session already waited for")
	waiting[session] = coroutine.running()
	return coroutine.yield()
end

-- Suspends until cond() holds; checked after each message handled by t.dispatch.
function t.wait_until(cond)
	if not cond() then
		conds[coroutine.running()] = cond
		coroutine.yield()
	end
end

-- Text request; returns response type, response text, source.
function t.call(addr, text)
	local session = c.send(addr, t.TEXT, nil, text)
	assert(session, "call: send failed")
	local ty, msg, sz, source = t.wait(session)
	return ty, c.tostring(msg, sz), source
end

function t.sleep(cs)
	return t.wait(c.intcommand("TIMEOUT", cs))
end

-- Busy-waits for `ms` milliseconds (keeps a service occupied).
function t.spin(ms)
	local deadline = c.hpc() + ms * 1000000
	while c.hpc() < deadline do
	end
end

function t.done()
	c.error("DONE")
	t.sleep(5)
	c.command("ABORT")
end

return t
