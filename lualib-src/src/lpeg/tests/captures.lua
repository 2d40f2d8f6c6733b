-- Captures of every kind, nested, and their values.
local m = lpeg
local P, S, R, C, Cc, Cp, Ct, Cs, Cg, Cb, Cf, Cmt, Carg, V =
	m.P, m.S, m.R, m.C, m.Cc, m.Cp, m.Ct, m.Cs, m.Cg, m.Cb, m.Cf, m.Cmt, m.Carg, m.V

local function same(a, b, path)
	path = path or "value"
	if type(a) ~= "table" or type(b) ~= "table" then
		if a ~= b then
			error(string.format("%s: expected %s, got %s\n%s", path, tostring(b), tostring(a), debug.traceback()), 2)
		end
		return
	end
	for k, v in pairs(a) do same(v, b[k], path .. "." .. tostring(k)) end
	for k, v in pairs(b) do same(a[k], v, path .. "." .. tostring(k)) end
end

local function all(...) return { n = select("#", ...), ... } end

-- C: whole match, then nested values
same(all(m.match(C"ab", "abc")), all("ab"))
same(all(m.match(C(C"a" * C"b"), "ab")), all("ab", "a", "b"))
same(all(m.match(C(P"a"^0) * C"b", "aab")), all("aa", "b"))
same(all(m.match(C(""), "x")), all(""))
same(all(m.match(C(P"x"^0), "")), all(""))

-- no captures: the end position
same(all(m.match(P"ab", "abc")), all(3))

-- Cc: constants, including nil and several values
same(all(m.match(Cc(1, "two", nil, true), "")), all(1, "two", nil, true))
same(all(m.match(Cc(), "")), all(1))
same(all(m.match(Cc(nil), "")), all(nil))
same(all(m.match(Cc(print), "")), all(print))
same(all(m.match(P"a" * Cc"x" + P"b" * Cc"y", "b")), all("y"))

-- Cp
same(all(m.match(Cp() * "ab" * Cp(), "abc")), all(1, 3))
same(all(m.match(P"ab" * Cp(), "abc", 2)), all(nil))
same(all(m.match(P"b" * Cp(), "abc", 2)), all(3))

-- Carg
same(all(m.match(Carg(1) * Carg(2) * Carg(1), "", 1, "x", 20)), all("x", 20, "x"))
same(all(m.match(Carg(1), "", 1, nil)), all(nil))

-- Ct: positional values and named groups as fields
same(m.match(Ct(C"a" * C"b"), "ab"), { "a", "b" })
same(m.match(Ct(""), "ab"), {})
same(m.match(Ct(Cg(C"a", "x") * C"b" * Cg(Cc(1, 2), "y")), "ab"), { x = "a", "b", y = 1 })
same(m.match(Ct(Cg(Cc(1, 2))), ""), { 1, 2 })
same(m.match(Ct((C(1) * ",")^0 * C(1)), "a,b,c"), { "a", "b", "c" })
same(m.match(Ct(Ct(C"a") * Ct(C"b")), "ab"), { { "a" }, { "b" } })
local p = Ct(Cg(1, print) * Cg(1, 23.5) * Cg(1, io))
local t = p:match("abcdefghij")
assert(t[print] == "a" and t[23.5] == "b" and t[io] == "c")

-- Cg: anonymous groups return all values; named groups return none outside tables
same(all(m.match(Cg(C"a" * C"b"), "ab")), all("a", "b"))
same(all(m.match(Cg(C"a", "n") * C"b", "ab")), all("b"))
same(all(m.match(Cg(P"a"), "a")), all("a"))

-- Cb: back references to named groups
same(all(m.match(Cg(C"a", "x") * Cb"x" * Cb"x", "a")), all("a", "a"))
same(all(m.match(Cg(C"a" * C"b", "x") * Cb"x", "ab")), all("a", "b"))
same(all(m.match(Cg(C"a", "x") * Cg(C"b", "x") * Cb"x", "ab")), all("b")) -- latest wins
same(all(m.match(Cg(Cc(1), 1) * Cb(1), "")), all(1))
-- a group nested inside another capture is not visible from outside it
assert(not pcall(m.match, C(Cg(C"a", "x")) * Cb"x", "a"))
same(all(m.match(Cg(C"a", "x") * C(Cb"x"), "a")), all("", "a"))
-- long-string delimiters with a back reference check
local eqs = P"="^0
local open = "[" * Cg(eqs, "init") * "["
local close = "]" * C(eqs) * "]"
local closeeq = Cmt(close * Cb"init", function(s, i, a, b) return a == b end)
local str = open * C((P(1) - closeeq)^0) * close / 1
same(all(m.match(str, "[==[a]]b]=]c]==]")), all("a]]b]=]c"))
same(all(m.match(str, "[[x]]")), all("x"))

-- Cs: substitution
same(m.match(Cs((P"a" / "b" + 1)^0), "banana"), "bbnbnb")
same(m.match(Cs(P"x"^0), "yyy"), "")
same(m.match(Cs((C"a" / "%1%1" + 1)^0), "cab"), "caab")
same(m.match(Cs((S"aeiou" / "" + 1)^0), "education"), "dctn")
same(m.match(Cs(Cs(P"a" / "x") * (P"b" / "y")), "ab"), "xy")
same(m.match(Cs((P"a" / { a = "1" } + P"b" / { } + 1)^0), "abc"), "1bc")
same(m.match(Cs((C(1) / function(c) return c:upper() end)^0), "abc"), "ABC")
same(m.match(Cs((P"n" / function() return 12 end)^0 * 1), "nnx"), "1212x")
same(m.match(Cs(Cp() * 1), "a"), "1a")

-- / string: %0 whole match, %1..%9 nested captures, %% and other escapes
same(m.match(P"abc" / "<%0>", "abc"), "<abc>")
same(m.match(C"a" * C"b" / "%2%1%%", "ab"), "ba%")
same(m.match(C(C"a" * C"b") / "%1-%2-%3", "ab"), "ab-a-b")
same(m.match(P"a" / "%x", "a"), "x")
same(m.match((C"a" * Cc(10)) / "%1%2", "a"), "a10")
-- a nested group counts as one value (its first)
same(m.match(Cg(C"a" * C"b") / "[%1]", "ab"), "[a]")
local ok, err = pcall(m.match, Cg(C"a" * C"b") / "[%1%2]", "ab")
assert(not ok and err:find("invalid capture index (2)", 1, true), err)

-- / number: select a value; 0 gives none
same(all(m.match((C"a" * C"b" * C"c") / 2, "abc")), all("b"))
same(all(m.match((C"a" * C"b") / 0, "ab")), all(3))
same(all(m.match(C"a" / 0 * C"b", "ab")), all("b"))

-- / table: lookup, nil gives no value
local tab = { a = 1, b = false }
same(all(m.match(C(1) / tab, "a")), all(1))
same(all(m.match(C(1) / tab, "b")), all(false))
same(all(m.match(C(1) / tab * Cc"end", "c")), all("end"))
same(all(m.match(P"a" / tab, "a")), all(1)) -- whole match as key
local withindex = setmetatable({}, { __index = function(_, k) return k .. "!" end })
same(all(m.match(C(1) / withindex, "z")), all("z!"))

-- / function: all nested values as arguments, all results as values
same(all(m.match(C"a" * C"b" / function(x, y) return y, x, 3 end, "ab")), all("b", "a", 3))
same(all(m.match(P"ab" / function(...) return select("#", ...), ... end, "ab")), all(1, "ab"))
same(all(m.match(P"ab" / function() end, "ab")), all(3))
same(all(m.match((P"ab" / function() return nil end) * Cc"z", "ab")), all(nil, "z"))

-- Cf (fold) and % (accumulator)
local add = function(a, b) return a + b end
same(m.match(Cf(Cc(0) * (C(R"09") / tonumber)^0, add), "1234"), 10)
same(m.match(Cf(C(1) * C(1)^0, function(a, b) return b .. a end), "abc"), "cba")
same(m.match(Ct"" * (Cc("k", "v") % rawset), ""), { k = "v" })
local ok, err = pcall(m.match, Ct(Cc"x") % rawset, "")
assert(not ok and err:find("no previous value for accumulator capture", 1, true), err)
local kv = Cg(C(R"az"^1) * "=" * C(R"az"^1))
same(m.match(Cf(Ct"" * (kv * P","^-1)^0, rawset), "a=b,c=d"), { a = "b", c = "d" })
same(m.match(Ct"" * (kv % rawset * P","^-1)^0, "a=b,c=d"), { a = "b", c = "d" })
same(m.match(Cc(1) * (C(R"09") / tonumber % add)^0, "123"), 7)
same(all(m.match(Cc(1) * (P"a" % function(acc) return acc + 1 end) * Cc"k", "a")), all(2, "k"))
same(m.match(Cc(0) * (P(1) / 1 / tonumber % add)^0, "123"), 6)

-- Cmt: false/nil fail, true keeps position, number moves, extra values are captures
same(all(m.match(Cmt(P"a", function(s, i) return true end), "ab")), all(2))
same(all(m.match(Cmt(P"a", function(s, i) return false end), "ab")), all(nil))
same(all(m.match(Cmt(P"a", function(s, i) return nil end) + "ab", "ab")), all(3))
same(all(m.match(Cmt(P"a", function(s, i) return 3 end) * Cp(), "abc")), all(3))
same(all(m.match(Cmt(P"a", function(s, i) return i, "x", 2 end), "ab")), all("x", 2))
same(all(m.match(Cmt(C"a" * C"b", function(s, i, x, y) return true, y, x end), "ab")), all("b", "a"))
same(all(m.match(Cmt(P"a", function(s, i, ...) return true, select("#", ...), ... end), "ab")), all(1, "a"))
same(all(m.match(Cmt(Cc(nil), function(s, i, x) return true, type(x) end), "")), all("nil"))
-- subject and position arguments
same(all(m.match(P"ab" * Cmt(P"c", function(s, i) return true, s, i end), "abcd")), all("abcd", 4))
-- captures made by a failing Cmt are dropped, the alternative runs
same(all(m.match(Cmt(C(1) * C(1), function() return false end) + C(1), "ab")), all("a"))
-- values from a Cmt inside a loop; a failing later iteration keeps earlier values
local digit = Cmt(C(R"09"), function(s, i, d) return true, tonumber(d) * 10 end)
same(m.match(Ct(digit^0), "123x"), { 10, 20, 30 })
same(m.match(Ct((digit * "," + Cmt(C(1), function() return false end))^0), "1,2,3"), { 10, 20 })
-- dynamic values under predicates and backtracking are discarded
same(all(m.match(#Cmt(P"a", function() return true, "v" end) * C"a", "a")), all("a"))
same(all(m.match((Cmt(P"a", function() return true, "v" end) * "x") + C"a", "a")), all("a"))
same(all(m.match(-Cmt(P"a", function() return true, "v" end) + C"a", "a")), all("a"))
-- nested Cmt: the inner values are arguments of the outer function
same(all(m.match(Cmt(Cmt(C"a", function(s, i, x) return true, x .. "1" end), function(s, i, x) return true, x .. "2" end), "a")), all("a12"))
-- P(function) gets no captures and may return values
same(all(m.match(P(function(s, i) return i, "v" end), "")), all("v"))

-- many captures
local many = Ct((C(1))^0)
local big = ("x"):rep(50000)
assert(#m.match(many, big) == 50000)
local r = { m.match(C(1)^0, ("ab"):rep(1000)) }
assert(#r == 2000 and r[1] == "a" and r[2000] == "b")

-- values of a grammar's rules
local list = P{ "L", L = Ct(V"I" * ("," * V"I")^0), I = C(R"09"^1) / tonumber + V"L2", L2 = "[" * V"L" * "]" }
same(m.match(list, "1,[2,3],4"), { 1, { 2, 3 }, 4 })

-- capture inside a repetition that fails partway keeps the good iterations only
same(m.match(Ct((C(1) * "-")^0), "a-b-c"), { "a", "b" })

-- full captures next to empty ones
same(all(m.match(C(1) * Cp() * C(1) * Cc"k", "ab")), all("a", 2, "b", "k"))
same(all(m.match(Cp() * C(P"ab") * Cp(), "ab")), all(1, "ab", 3))
