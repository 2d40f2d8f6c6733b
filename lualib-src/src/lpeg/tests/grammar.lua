-- Grammars: rules, recursion, initial rules, nesting, and a few complete parsers.
local m = lpeg
local P, S, R, C, Cc, Cp, Ct, Cs, Cg, Cb, Cf, Cmt, V =
	m.P, m.S, m.R, m.C, m.Cc, m.Cp, m.Ct, m.Cs, m.Cg, m.Cb, m.Cf, m.Cmt, m.V

local function eq(a, b, msg)
	if a ~= b then
		error(string.format("%s: expected %s, got %s", msg or "eq", tostring(b), tostring(a)), 2)
	end
end

local function errmatch(msg, f, ...)
	local ok, err = pcall(f, ...)
	if ok then error("expected error: " .. msg, 2) end
	if not string.find(err, msg, 1, true) then
		error(string.format("expected error %q, got %q", msg, err), 2)
	end
end

-- balanced parentheses (recursion)
local bal = P{ "(" * ((1 - S"()") + V(1))^0 * ")" }
eq(m.match(bal, "(a(b)((c))d)x"), 13)
eq(m.match(bal, "((a)"), nil)
eq(m.match(bal * -1, ("("):rep(150) .. (")"):rep(150)), 301)

-- initial rule by name, by index 1, other keys
local g = P{ "S", S = V"A" * V"B", A = P"a"^1, B = P"b"^1 }
eq(m.match(g, "aabbc"), 5)
eq(m.match(P{ V"x", x = P"y" }, "y"), 2)
eq(m.match(P{ [1] = V(2), [2] = P"z" }, "z"), 2)
eq(m.match(P{ "start", start = V(1.5) * V(true), [1.5] = P"a", [true] = P"b" }, "ab"), 3)
-- a table given directly to match
eq(m.match({ "a" * V(1) + "b" }, "aaab"), 5)

-- mutual recursion: even number of a's
local even = P{ "E", E = "a" * V"O" + -P(1), O = "a" * V"E" }
eq(m.match(even, "aaaa"), 5)
eq(m.match(even, "aaa"), nil)

-- rules not referenced are still checked to be patterns, but not verified
eq(m.match(P{ P"a", unused = P"x" }, "a"), 2)

-- nested grammars: the inner one is closed
local inner = P{ "I", I = "x" * V"I" + "y" }
local outer = P{ "O", O = "[" * inner * "]" * V"O" + -P(1) }
eq(m.match(outer, "[xxy][y]"), 9)
-- the same rule name in two grammars
local ga = P{ "r", r = P"a" }
local gb = P{ "r", r = ga * "b" }
eq(m.match(gb, "ab"), 3)
-- a V shared by two grammars resolves in each
local v = V"r"
eq(m.match(P{ "s", s = v, r = P"1" }, "1"), 2)
eq(m.match(P{ "s", s = v, r = P"2" }, "2"), 2)

-- captures across rules
local nums = P{ "L", L = Ct(V"N" * ("," * V"N")^0), N = C(R"09"^1) / tonumber }
local t = m.match(nums, "10,20,3")
eq(#t, 3); eq(t[1], 10); eq(t[3], 3)

-- an arithmetic evaluator
local function fold(acc, op, v)
	if op == "+" then return acc + v elseif op == "-" then return acc - v
	elseif op == "*" then return acc * v else return acc / v end
end
local space = S" \t"^0
local num = C(P"-"^-1 * R"09"^1) / tonumber * space
local addop = C(S"+-") * space
local mulop = C(S"*/") * space
local open = "(" * space
local close = ")" * space
local calc = P{ "Exp",
	Exp = Cf(V"Term" * Cg(addop * V"Term")^0, fold),
	Term = Cf(V"Factor" * Cg(mulop * V"Factor")^0, fold),
	Factor = num + open * V"Exp" * close,
}
calc = space * calc * -1
eq(m.match(calc, "1 + 2 * 3"), 7)
eq(m.match(calc, "(1 + 2) * 3 - -4"), 13)
eq(m.match(calc, "2 * (3 + 4) * (5 - 1) / 8"), 7)
eq(m.match(calc, "1 +"), nil)

-- a schema language in the style of sproto's parser: types with fields, comments, errors
-- with line numbers through Cmt/Cp
local function line_of(s, pos)
	local n = 1
	for _ in s:sub(1, pos):gmatch("\n") do n = n + 1 end
	return n
end
local blank = S" \t\r\n"
local comment = "#" * (1 - P"\n")^0
local skip = (blank + comment)^0
local function tok(p) return p * skip end
local name = tok(C(R("az", "AZ", "__") * R("az", "AZ", "09", "__")^0))
local number = tok(C(R"09"^1) / tonumber)
local function sym(s) return tok(P(s)) end
local errpos
local function fail(s, pos) errpos = pos; return false end
local field = Ct(Cg(name, "name") * Cg(number, "tag") * sym":" * Cg(C"*" + Cc(false), "array") * Cg(name, "type"))
local schema = P{ "ALL",
	ALL = skip * Ct(V"TYPE"^0) * (-P(1) + Cmt(Cp(), fail)),
	TYPE = Ct(sym"." * Cg(name, "name") * sym"{" * Cg(Ct((field + V"TYPE")^0), "fields") * sym"}"),
}
local src = [[
# people
.Person {
	name 0 : string
	id 1 : integer
	.Phone { number 0 : string }
	phones 2 : *Phone
}
.Empty {}
]]
local types = m.match(schema, src)
eq(#types, 2)
eq(types[1].name, "Person")
eq(types[1].fields[1].name, "name")
eq(types[1].fields[2].tag, 1)
eq(types[1].fields[3].name, "Phone")
eq(types[1].fields[4].array, "*")
eq(types[1].fields[4].type, "Phone")
eq(types[2].name, "Empty")
eq(m.match(schema, ".A { x 0 integer }\n"), nil)
eq(line_of(".A {\n x 0 integer }\n", errpos), 1)

-- grammar errors
errmatch("rule '1' may be left recursive", m.match, { V(1) * "a" }, "a")
errmatch("rule 'A' may be left recursive", m.P, { "A", A = V"B" + "x", B = P"y"^-1 * V"A" })
errmatch("rule '1' used outside a grammar", m.match, V(1), "")
errmatch("rule 'hiii' used outside a grammar", m.match, V"hiii" * "x", "")
errmatch("rule 'hiii' undefined in given grammar", m.P, { V"hiii" })
errmatch("undefined in given grammar", m.P, { V{} })
errmatch("rule 'A' is not a pattern", m.P, { P(1), A = {} })
errmatch("rule 'A' is not a pattern", m.P, { P(1), A = "x" })
errmatch("grammar has no initial rule", m.P, {})
errmatch("grammar has no initial rule", m.P, { "S" })
errmatch("initial rule 'S' is not a pattern", m.P, { "S", S = 1 })
errmatch("empty loop in rule 'X'", m.P, { "X", X = (V"Y")^0, Y = P"a"^-1 })
errmatch("loop body may accept empty string", function() return (P"a"^-1)^0 end)
errmatch("loop body may accept empty string", function() return (P"a" + "")^1 end)
-- an inner grammar cannot see the outer one's rules
errmatch("rule 'x' undefined in given grammar", function() return P{ "o", o = P{ V"x" }, x = P"1" } end)

-- large grammars: a chain of 1000 rules is fine, 1001 are too many
local chain = {}
for i = 3, 1000 do chain[i] = V(i - 1) end
chain[1] = V(1000)
chain[2] = C"alo"
eq(m.match(P(chain), "alo"), "alo")
chain[#chain + 1] = P"x"
errmatch("too many rules", m.P, chain)
