-- Limits: deep recursion in subjects, patterns and captures raises errors (never overflows a
-- stack); the backtrack limit follows setmaxstack.
local m = lpeg
local P, S, R, C, Cc, Cs, Ct, Cg, Cmt, V = m.P, m.S, m.R, m.C, m.Cc, m.Cs, m.Ct, m.Cg, m.Cmt, m.V

local function errmatch(msg, f, ...)
	local ok, err = pcall(f, ...)
	if ok then error("expected error: " .. msg, 2) end
	if type(err) ~= "string" or not string.find(err, msg, 1, true) then
		error(string.format("expected error %q, got %q", msg, tostring(err)), 2)
	end
end

-- backtrack stack: a grammar that needs two entries per level (a choice and a call)
local lim = 10000
local p = P{ "0" * V(1) + "0" }
errmatch("backtrack stack overflow (current limit is 400)", m.match, p, ("0"):rep(lim))
m.setmaxstack(2 * lim)
errmatch("backtrack stack overflow (current limit is 20000)", m.match, p, ("0"):rep(lim))
m.setmaxstack(2 * lim + 4)
assert(m.match(p, ("0"):rep(lim)) == lim + 1)
-- a repetition needs no stack of its own, only the call does
p = P{ ("a" * V(1))^0 * "b" + "c" }
m.setmaxstack(200)
assert(p:match(("a"):rep(180) .. "c" .. ("b"):rep(180)) == 362)
-- limits below the initial size (400) act as 400
m.setmaxstack(10)
assert(m.match(P{ "(" * V(1)^-1 * ")" }, ("("):rep(150) .. (")"):rep(150)) == 301)
errmatch("backtrack stack overflow (current limit is 10)", m.match, P{ "(" * V(1)^-1 * ")" }, ("("):rep(500) .. (")"):rep(500))
m.setmaxstack(400)

-- very deep recursion with a big limit: the machine's stack is on the heap
m.setmaxstack(1000000)
local nest = P{ "(" * V(1)^-1 * ")" }
local deep = 200000
assert(m.match(nest, ("("):rep(deep) .. (")"):rep(deep)) == 2 * deep + 1)
-- deep captures: their evaluation is bounded and raises instead
local nestc = P{ C("(" * V(1)^-1 * ")") }
errmatch("subcapture nesting too deep", m.match, nestc, ("("):rep(deep) .. (")"):rep(deep))
local nests = P{ Cs("(" * V(1)^-1 * ")") }
errmatch("subcapture nesting too deep", m.match, nests, ("("):rep(deep) .. (")"):rep(deep))
local nestt = P{ Ct("(" * V(1)^-1 * ")") }
errmatch("subcapture nesting too deep", m.match, nestt, ("("):rep(deep) .. (")"):rep(deep))
-- ... but moderate nesting works
local t = m.match(nestt, ("("):rep(100) .. (")"):rep(100))
for _ = 1, 99 do t = t[1] end
assert(type(t) == "table" and t[1] == nil)
m.setmaxstack(400)

-- nested captures in the pattern itself
p = C(1)
for _ = 1, 300 do p = Ct(p) end
errmatch("too deep", p.match, p, "x")
p = C(1)
for _ = 1, 150 do p = Ct(p) end
assert(type(p:match("x")) == "table")

-- pattern trees nest at most a fixed depth; long chains stay flat
p = P"a"
for _ = 1, 10000 do p = p * "a" end
assert(p:match(("a"):rep(10001)) == 10002)
p = P"x"
for i = 1, 5000 do p = p + string.format("k%05d", i) end
assert(p:match("k04999") == 7 and p:match("k05001") == nil)
p = P"a"
local ok = pcall(function() for _ = 1, 100000 do p = #p end end)
assert(not ok)
local ok2, err2 = pcall(function() local q = P"a"; for _ = 1, 100000 do q = C(q) end end)
assert(not ok2 and err2:find("pattern nesting too deep", 1, true), err2)

-- a match-time capture that matches recursively is bounded by Lua's C stack
local rec
rec = Cmt(P(1), function(s, i) return m.match(rec, s, i) ~= nil end) + -P(1)
local okr, errr = pcall(m.match, rec, ("x"):rep(100000))
assert(not okr and type(errr) == "string", errr)
-- and a shallow one works
assert(m.match(rec, ("x"):rep(20)))

-- many values
local lim2 = 2^16 - 1
local c = 0
local function seq(n)
	if n == 1 then c = c + 1; return Cc(c) end
	local h = math.floor(n / 2)
	return seq(h) * seq(n - h)
end
p = Ct(seq(lim2))
t = p:match("")
assert(t[lim2] == lim2)
errmatch("too many", function() return p / print end)
errmatch("too many", seq, lim2 + 1)

-- match-time captures with many results
local function manyCmt(n)
	return Cmt("a", function()
		local a = {}
		for i = 1, n do a[i] = n - i end
		return true, table.unpack(a)
	end)
end
local res = { m.match(manyCmt(2^11 - 10), "a") }
assert(#res == 2^11 - 10 and res[1] == 2^11 - 11)
errmatch("too many", m.match, manyCmt(2^15), "a")

-- long subjects and big repetitions
local big = ("ab"):rep(500000)
assert(m.match((P"ab")^0 * -1, big) == #big + 1)
assert(m.match(Cs((P"a" / "x" + 1)^0), big) == ("xb"):rep(500000))
assert(m.match(P(1)^-5, big) == 6)
assert(m.match(P"ab"^1000, big) == #big + 1)
errmatch("pattern code too large", m.match, P"abc"^-10000000, "abc")

-- calling __gc by hand, even from inside a match of the same pattern, cannot crash: the running
-- match keeps its program, and later uses of the pattern raise errors
local gc = getmetatable(P(1)).__gc
local victim
victim = Cmt(P(1), function() gc(victim); collectgarbage(); return true end) * C(P(1))
assert(victim:match("ab") == "b")
assert(not pcall(m.match, victim, "ab"))
assert(not pcall(function() return victim * "x" end))
gc(victim)

-- an accumulator can only replace a value of its own list: never the table being filled, the
-- function of a pending call, or the arguments of a match-time function (LPeg leaves these
-- cases undefined and may corrupt its stack)
local f = function(a, b) return tostring(a) .. "+" .. tostring(b) end
errmatch("no previous value for accumulator capture", m.match, Ct(C"a" * (P"b" % f)), "ab")
errmatch("no previous value for accumulator capture", m.match, Cs(Ct(C"a" * C(P"b" % f))), "ab")
errmatch("no previous value for accumulator capture", m.match, C"a" / print * (P"b" % f) / print, "ab")
errmatch("no previous value for accumulator capture", m.match, Cmt(P"a" % f, print), "a")
errmatch("no previous value for accumulator capture", m.match, m.Cf(C"a" * (P"b" % f), f), "ab")
assert(m.match(Ct(Cg(C"a" * (P"b" % f))), "ab")[1] == "a+b")
assert(m.match(C"a" * (P"b" % f), "ab") == "a+b")
-- a fold's first value comes from inside the fold (LPeg may take the next capture instead)
errmatch("no initial value for fold capture", m.match, Ct(Cg(m.Cf(S"ab", f), "f") * Cc"k"), "a")

-- the debug library cannot break a pattern or call the matcher's internals with bad data
local p2 = C(P"a") / function(x) return x end
assert(p2:match("a") == "a")
debug.setuservalue(p2, 42, 2)
errmatch("invalid pattern", m.match, p2, "a")
local p3 = P"b" / "x"
debug.setuservalue(p3, "str", 1)
errmatch("invalid pattern", function() return p3 * "c" end)
local innerf
m.match(Cmt(P(1), function() innerf = debug.getinfo(2, "f").func; return true end), "a")
assert(type(innerf) == "function")
for _, arg in ipairs { 0, "x", io.stdout } do
	errmatch("invalid call", innerf, arg)
end
errmatch("invalid call", innerf)
if nullptr then errmatch("invalid call", innerf, nullptr) end

-- rules called from several places are analysed once per question, not once per path
-- (LPeg walks them once per path: 2^60 walks here)
local g = { "r1" }
for i = 1, 60 do
	g["r" .. i] = V("r" .. (i + 1)) * "x" + V("r" .. (i + 1)) * "y" + "z"
end
g.r61 = P"a"
local gp = P(g)
assert(gp:match("a" .. ("x"):rep(60)) == 62)
assert(gp:match("a" .. ("x"):rep(59) .. "y") == 62)

-- patterns that double in size at each step stop with an error, not an allocation failure
errmatch("pattern too big", function() local q = P"ab"; for _ = 1, 64 do q = q * q end end)
errmatch("pattern too big", function() local q = P"ab"; for _ = 1, 64 do q = q^2 end end)
errmatch("pattern too big", function() local q = P"ab"; for _ = 1, 64 do q = C(q) + q end end)
errmatch("pattern too big", function() local q = P"ab"; for _ = 1, 64 do q = q - q end end)
errmatch("pattern too big", function() return P"a"^(2^40) end)
errmatch("pattern too big", P, ("x"):rep(1 << 22))
