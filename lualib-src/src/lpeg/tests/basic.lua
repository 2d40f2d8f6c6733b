-- Matching without captures: every pattern constructor, operator and `match` argument.
local m = lpeg
local P, S, R, B, V = m.P, m.S, m.R, m.B, m.V

local function eq(a, b, msg)
	if a ~= b then
		error(string.format("%s: expected %s, got %s", msg or "eq", tostring(b), tostring(a)), 2)
	end
end

-- module shape
eq(m.version, "LPeg 1.1.0")
for _, name in ipairs { "ptree", "pcode", "match", "B", "V", "C", "Cc", "Cmt", "Cb", "Carg", "Cp",
	"Cs", "Ct", "Cf", "Cg", "P", "S", "R", "utfR", "locale", "setmaxstack", "type" } do
	eq(type(m[name]), "function", name)
end
local mt = getmetatable(P(1))
for _, name in ipairs { "__mul", "__add", "__pow", "__len", "__div", "__mod", "__unm", "__sub", "__gc" } do
	eq(type(mt[name]), "function", name)
end
eq(mt.__index, m)
eq(m.type(P"a"), "pattern")
eq(m.type("a"), nil)
eq(m.type({}), nil)
eq(m.type(nil), nil)
eq(type(P"a"), "userdata")

-- strings
eq(m.match("abc", "abcd"), 4)
eq(m.match(P"abc", "abcd"), 4)
eq(m.match(P"abc", "ab"), nil)
eq(m.match(P"", "xyz"), 1)
eq(m.match(P"a\0b", "a\0bc"), 4)
eq(P"abc":match("abc"), 4)

-- numbers
eq(m.match(P(0), ""), 1)
eq(m.match(P(3), "abcd"), 4)
eq(m.match(P(3), "ab"), nil)
eq(m.match(P(-1), ""), 1)
eq(m.match(P(-1), "a"), nil)
eq(m.match(P(-3), "ab"), 1)
eq(m.match(P(-3), "abc"), nil)
eq(m.match(1, "x"), 2)
eq(m.match(P(2^20), ("x"):rep(2^20)), 2^20 + 1)

-- booleans
eq(m.match(P(true), ""), 1)
eq(m.match(P(false), ""), nil)
eq(m.match(P(false) + "a", "a"), 2)
eq(m.match(P(true) + "a", "a"), 1)
eq(m.match("a" + P(false), "b"), nil)
eq(m.match("a" + P(true), "b"), 1)

-- P of a pattern is the same pattern
local pa = P"a"
eq(P(pa), pa)

-- sets and ranges
eq(m.match(S"abc", "b"), 2)
eq(m.match(S"abc", "d"), nil)
eq(m.match(S"", "a"), nil)
eq(m.match(S"\0\255", "\255"), 2)
eq(m.match(R"az", "q"), 2)
eq(m.match(R"az", "Q"), nil)
eq(m.match(R("az", "AZ", "09"), "Q"), 2)
eq(m.match(R("az", "AZ", "09"), "5"), 2)
eq(m.match(R("az", "AZ", "09"), "_"), nil)
eq(m.match(R(), "a"), nil)
eq(m.match(R"za", "m"), nil) -- empty range
eq(m.match(R"\0\255", "\200"), 2)

-- sequence, choice, difference
eq(m.match(P"a" * "b" * "c", "abc"), 4)
eq(m.match("a" * P"b", "ab"), 3)
eq(m.match(P"a" * "b", "ac"), nil)
eq(m.match(P"ab" + "cd", "cd"), 3)
eq(m.match(P"ab" + "a", "ac"), 2)
eq(m.match(P"a" + "ab", "ab"), 2) -- ordered choice
eq(m.match(R"az" - "q", "q"), nil)
eq(m.match(R"az" - "q", "r"), 2)
eq(m.match(P"abc" - "abd", "abc"), 4)
eq(m.match(P"abc" - "ab", "abc"), nil)
eq(m.match(1 - S"xy", "z"), 2)

-- repetitions
local a = P"a"
eq(m.match(a^0, ""), 1)
eq(m.match(a^0, "aaab"), 4)
eq(m.match(a^1, "b"), nil)
eq(m.match(a^1, "aab"), 3)
eq(m.match(a^3, "aa"), nil)
eq(m.match(a^3, "aaaaa"), 6)
eq(m.match(a^-1, ""), 1)
eq(m.match(a^-1, "aa"), 2)
eq(m.match(a^-3, "aaaaa"), 4)
eq(m.match(a^-3 * "b", "aab"), 4)
eq(m.match(a^-2 * "a", "aa"), nil) -- greedy, no backtracking into the repetition
eq(m.match(P"ab"^2, "ababab"), 7)
eq(m.match(S"ab"^0, "abbac"), 5)
eq(m.match(P(1)^0, "xyz"), 4)
eq(m.match((P"a" + "bc")^0, "abcabcx"), 7)
eq(m.match(P(false)^0, "a"), 1)
eq(m.match((#P"a" * 1)^0, "aab"), 3)

-- predicates
eq(m.match(#P"a", "a"), 1)
eq(m.match(#P"a", "b"), nil)
eq(m.match(#P"abc" * "ab", "abc"), 3)
eq(m.match(-P"a", "b"), 1)
eq(m.match(-P"a", "a"), nil)
eq(m.match(-P(1), ""), 1)
eq(m.match(-P(1), "a"), nil)
eq(m.match(#(P"a"^1 * "b") * "a", "aaab"), 2)
eq(m.match(#(P"a"^1 * "b") * "a", "aaac"), nil)
eq(m.match(-(-P"a") * "a", "a"), 2)

-- look-behind
eq(m.match(P"ab" * B"b", "ab"), 3)
eq(m.match(P"ab" * B"a", "ab"), nil)
eq(m.match(P(1) * B(P"a" + "b") * 1, "bc"), 3)
eq(m.match(B"a", "a"), nil) -- nothing before the start
eq(m.match(P(3) * B(P(3)), "abc"), 4)
eq(m.match(P(2) * B(P(3)), "abc"), nil)
eq(m.match(P(2) * -B"a", "ab"), 3)
eq(m.match(P(1) * B"a" * 1, "ab"), 3)

-- init position
eq(m.match(P"b", "ab", 2), 3)
eq(m.match(P"b", "ab", -1), 3)
eq(m.match(P"a", "ab", -2), 2)
eq(m.match(P"a", "ab", -10), 2) -- clamped to the start
eq(m.match(P(0), "ab", 10), 3) -- clamped to the end
eq(m.match(P(1), "ab", 3), nil)
eq(m.match(P"ab", "ab", 0), nil) -- 0 counts from the end
eq(m.match(-P(1), "ab", 3), 3)

-- subjects are strings; numbers are converted
eq(m.match(P"12", 123), 3)

-- functions as patterns (match-time)
eq(m.match(P(function(s, i) return i + 2 end), "abc"), 3)
eq(m.match(P(function() return true end), "abc"), 1)
eq(m.match(P(function() return false end), "abc"), nil)
eq(m.match(P(function() return nil end), "abc"), nil)

-- UTF-8 ranges
local utf = m.utfR(0x80, 0x10ffff)
eq(m.match(utf, "\u{80}"), 3)
eq(m.match(utf, "\u{10ffff}"), 5)
eq(m.match(utf, "a"), nil)
eq(m.match(m.utfR(0x4e00, 0x9fff)^1, "中文字x"), 10)
eq(m.match(m.utfR(0, 0x7f), "a"), 2)
eq(m.match(m.utfR(0x41, 0x5a)^1, "ABCd"), 4)
eq(m.match(m.utfR(0x100, 0x200), "\u{ff}"), nil)
eq(m.match(m.utfR(0x100, 0x200), "\u{150}"), 3)
eq(m.match(utf, "\xc0\x80"), nil) -- overlong
eq(m.match(utf, "\xe4\xb8"), nil) -- truncated
eq(m.match(utf, "\xed\xa0\x80"), 4) -- surrogates are accepted (as LPeg)
eq(m.match(utf, "\xf4\x90\x80\x80"), nil) -- above U+10FFFF

-- locale
local l = m.locale()
eq(m.match(l.digit^1, "123a"), 4)
eq(m.match(l.alpha^1, "abC1"), 4)
eq(m.match(l.space, " "), 2)
eq(m.match(l.upper, "a"), nil)
eq(m.match(l.xdigit^0, "fF0g"), 4)
local t = {}
eq(m.locale(t), t)
eq(m.type(t.alnum), "pattern")
for _, k in ipairs { "alnum", "alpha", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper", "xdigit" } do
	eq(m.type(t[k]), "pattern", k)
end

-- operators accept non-patterns on either side
eq(m.match("a" * P"b" * "c", "abc"), 4)
eq(m.match(1 * P"b", "xb"), 3)
eq(m.match(P"a" + 1, "z"), 2)
eq(m.match(P"a" - true, "a"), nil)

-- large sets and long subjects
local letters = R("az", "AZ")
local word = letters^1
local text = ("hello world "):rep(10000)
eq(m.match((word * " ")^0 * -1, text), #text + 1)

-- printers (LPeg's own only work in its debug builds)
pcall(m.ptree, P"a" * S"bc" + R"09"^1)
pcall(m.pcode, P"a" * S"bc" + R"09"^1)
pcall(m.ptree, P{ "a" * V(1) + "b" })
pcall(m.pcode, P{ "a" * V(1) + "b" })
