-- Error messages: malformed arguments, and errors found while matching.
local m = lpeg
local P, S, R, C, Cc, Cs, Ct, Cg, Cb, Cf, Cmt, Carg, B, V =
	m.P, m.S, m.R, m.C, m.Cc, m.Cs, m.Ct, m.Cg, m.Cb, m.Cf, m.Cmt, m.Carg, m.B, m.V

local function errmatch(msg, f, ...)
	local ok, err = pcall(f, ...)
	if ok then error("expected error: " .. msg, 2) end
	if type(err) ~= "string" or not string.find(err, msg, 1, true) then
		error(string.format("expected error %q, got %q", msg, tostring(err)), 2)
	end
	return err
end

-- arguments of constructors
errmatch("bad argument #1 to", P)
errmatch("lpeg-pattern expected", P, nil)
errmatch("lpeg-pattern expected", P, io.stdout)
errmatch("lpeg-pattern expected", m.match, nil, "a")
errmatch("bad argument #2", m.match, P"a")
errmatch("bad argument #2", m.match, P"a", {})
errmatch("bad argument #3", m.match, P"a", "a", "x")
errmatch("bad argument #1", S)
errmatch("bad argument #1", S, {})
errmatch("range must have two characters", R, "a")
errmatch("range must have two characters", R, "az", "abc")
errmatch("bad argument #1", R, {})
errmatch("non-nil value expected", V, nil)
errmatch("empty range", m.utfR, 1, 0)
errmatch("invalid code point", m.utfR, 1, 0x10ffff + 1)
errmatch("invalid code point", m.utfR, 0x110000, 0x110001)
errmatch("bad argument #1", m.utfR, "x", 2)
errmatch("invalid argument index", Carg, 0)
errmatch("invalid argument index", Carg, -1)
errmatch("invalid argument index", Carg, 2^18)
errmatch("bad argument #1", Carg, "x")
errmatch("bad argument #1", m.Cb)
errmatch("bad argument #2", Cf, P(1), "notafunction")
errmatch("bad argument #2", Cf, P(1))
errmatch("bad argument #2", Cmt, P(1), {})
errmatch("unexpected boolean as 2nd operand to LPeg '/'", function() return P(1) / true end)
errmatch("unexpected nil as 2nd operand to LPeg '/'", function() return P(1) / nil end)
errmatch("invalid number", function() return P(1) / -1 end)
errmatch("invalid number", function() return P(1) / 2^16 end)
errmatch("number expected", function() return P(1) ^ "x" end)
errmatch("number has no integer representation", function() return P(1) ^ 1.5 end)
errmatch("out of range", m.setmaxstack, 0)
errmatch("out of range", m.setmaxstack, -5)
errmatch("bad argument #1", m.setmaxstack, "x")
errmatch("bad argument #1", m.locale, 3)
errmatch("lpeg-pattern expected", function() return P(1) * io.stdout end)
errmatch("grammar has no initial rule", function() return P(1) * {} end)
errmatch("lpeg-pattern expected", function() return P(1) + io.stdout end)

-- look-behind needs a fixed length, no captures, at most 255
errmatch("pattern may not have fixed length", B, P"a"^1)
errmatch("pattern may not have fixed length", B, P"a" + "bc")
errmatch("pattern may not have fixed length", B, V"x")
errmatch("pattern have captures", B, C"a")
errmatch("too long to look behind", B, 260)
errmatch("fixed length", B, m.utfR(0, 0x10ffff))
assert(B(P(255)))
assert(B(m.utfR(0x80, 0x7ff)))

-- loops
errmatch("loop body may accept empty string", function() return P""^0 end)
errmatch("loop body may accept empty string", function() return (-P"a")^1 end)
errmatch("loop body may accept empty string", function() return (#P"a")^2 end)
errmatch("loop body may accept empty string", function() return (P"a"^0)^0 end)
errmatch("loop body may accept empty string", function() return C(P"a"^-2)^0 end)

-- errors while matching
errmatch("invalid capture index (1)", m.match, P(1) / "%1", "abc")
errmatch("invalid capture index (9)", m.match, P(1) / "%9", "abc")
errmatch("invalid capture value (a boolean)", m.match, Cc(true) / "%1", "a")
errmatch("no values in capture index 1", m.match, (P(1) / 0) / "%1", "a")
errmatch("invalid replacement value (a table)", m.match, Cs(Cc{} * 1), "a")
errmatch("no capture '3'", m.match, (C(1) * C(1)) / 3, "ab")
errmatch("no initial value for fold capture", m.match, Cf(P(5), print), "aaaaaa")
errmatch("no initial value for fold capture", m.match, Cf(P(1) / 0, print), "a")
errmatch("no previous value for accumulator capture", m.match, P(5) % print, "aaaaaa")
errmatch("invalid context for an accumulator capture", m.match, Cs(Cc(1) * (P(1) % print)), "a")
errmatch("back reference 'x' not found", m.match, Cb"x", "")
errmatch("back reference 'b' not found", m.match, Cg(1, "a") * Cb"b", "a")
errmatch("back reference 'x' not found", m.match, Cb"x" * Cg(1, "x"), "a")
errmatch("reference to absent extra argument #1", m.match, Carg(1), "a", 1)
errmatch("reference to absent extra argument #3", m.match, Carg(3), "a", 1, 1, 2)
errmatch("invalid position returned by match-time capture", m.match, function() return 2^20 end, "abc")
errmatch("invalid position returned by match-time capture", m.match, function() return 0 end, "abc")
errmatch("invalid position returned by match-time capture", m.match, P(2) * function(s, i) return i - 1 end, "abc")
errmatch("invalid position returned by match-time capture", m.match, P(function(s, i) return #s + 2 end) * -1, "abc")

-- errors raised by Lua code inside a match pass through unchanged
local err = errmatch("boom", m.match, Cmt(P(1), function() error("boom") end), "a")
local obj = {}
local ok, e = pcall(m.match, P(1) / function() error(obj) end, "a")
assert(not ok and e == obj)
ok, e = pcall(m.match, Cf(C(1) * C(1), function() error(obj) end), "ab")
assert(not ok and e == obj)
ok, e = pcall(m.match, C(1) / setmetatable({}, { __index = function() error(obj) end }), "a")
assert(not ok and e == obj)
ok, e = pcall(m.match, Cs(P(1) / function() error(obj) end), "a")
assert(not ok and e == obj)
-- the library keeps working afterwards
assert(m.match(C(1) / function(x) return x .. "!" end, "a") == "a!")

-- error messages carry the caller's position
local ok2, e2 = pcall(function() return m.match(Cb"zz", "") end)
assert(not ok2 and e2:find("^[^:]+:%d+: back reference 'zz' not found"), e2)
local ok3, e3 = pcall(function() return m.P({}) end)
assert(not ok3 and e3:find("^[^:]+:%d+: grammar has no initial rule"), e3)
