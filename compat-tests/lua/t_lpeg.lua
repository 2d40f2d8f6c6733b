-- t_lpeg (bootstrap :2): the built-in `lpeg` module in a real node: found through
-- package.preload (no luaclib/lpeg.so), a schema parser in the style of sproto's, an
-- expression evaluator, errors from match-time functions, and the backtrack limit.
local t = require "t"

t.start(function()
	local okreq, lpeg = pcall(require, "lpeg")
	t.check("require", okreq and type(package.preload.lpeg) == "function"
		and lpeg.version == "LPeg 1.1.0", tostring(lpeg))
	if not okreq then
		return t.done()
	end
	local P, S, R, C, Cc, Cg, Ct, Cmt, Cp, Cf, V =
		lpeg.P, lpeg.S, lpeg.R, lpeg.C, lpeg.Cc, lpeg.Cg, lpeg.Ct, lpeg.Cmt, lpeg.Cp, lpeg.Cf, lpeg.V

	-- a schema parser: types with tagged fields, nested types, arrays, comments
	local skip = (S" \t\r\n" + "#" * (1 - P"\n")^0)^0
	local function tok(p) return p * skip end
	local name = tok(C(R("az", "AZ", "__") * R("az", "AZ", "09", "__")^0))
	local tag = tok(C(R"09"^1) / tonumber)
	local field = Ct(Cg(name, "name") * Cg(tag, "tag") * tok":" * Cg(tok(C"*") + Cc(false), "array")
		* Cg(name, "type"))
	local schema = P{ "ALL",
		ALL = skip * Ct(V"TYPE"^0) * -P(1),
		TYPE = Ct(tok"." * Cg(name, "name") * tok"{" * Cg(Ct((field + V"TYPE")^0), "fields") * tok"}"),
	}
	local types = schema:match[[
.Person {   # a person
	name 0 : string
	.Phone { number 0 : string }
	phones 1 : *Phone
}
]]
	t.check("schema", t.deep(types, {
		{ name = "Person", fields = {
			{ name = "name", tag = 0, array = false, type = "string" },
			{ name = "Phone", fields = { { name = "number", tag = 0, array = false, type = "string" } } },
			{ name = "phones", tag = 1, array = "*", type = "Phone" },
		} },
	}), t.show(types))
	t.check("schema_syntax_error", schema:match".A { x 0 integer }" == nil)

	-- an evaluator with folds
	local num = C(R"09"^1) / tonumber * skip
	local function op(a, o, b) if o == "+" then return a + b elseif o == "-" then return a - b
		elseif o == "*" then return a * b else return a / b end end
	local calc = P{ "E",
		E = Cf(V"T" * Cg(tok(C(S"+-")) * V"T")^0, op),
		T = Cf(V"F" * Cg(tok(C(S"*/")) * V"F")^0, op),
		F = num + tok"(" * V"E" * tok")",
	}
	t.check("calc", calc:match"2 * (3 + 4) - 6 / 2" == 11)

	-- a Lua error in a match-time function reaches the caller unchanged
	local errobj = {}
	local ok, err = pcall(lpeg.match, Cmt(P(1), function() error(errobj) end), "x")
	t.check("cmt_error", not ok and err == errobj, tostring(err))
	t.check("after_error", lpeg.match(Cp() * C(1), "ab") == 1)

	-- deep recursion hits the backtrack limit and raises
	local nest = P{ "(" * V(1)^-1 * ")" }
	local ok2, err2 = pcall(lpeg.match, nest, ("("):rep(10000) .. (")"):rep(10000))
	t.check("backtrack_limit", not ok2 and tostring(err2):find("backtrack stack overflow", 1, true), tostring(err2))
	t.done()
end)
