-- shproto_mod: a module whose code, once cached, is shared by every VM of the node. exercise()
-- mixes the strings of this shared code (constants, field names, metamethod names) with
-- strings each VM builds at run time, under garbage-collector stress, and answers a
-- description of what differed from the expected results ("" when everything matched).
local M = {}

local function runtime(...)
	-- a string built at run time: a VM's own object, never the shared constant
	return table.concat({ ... })
end

local Point = {}
Point.__index = Point
Point.__name = "shproto.Point"
Point.__add = function(a, b)
	return setmetatable({ x = a.x + b.x, y = a.y + b.y }, Point)
end
Point.__eq = function(a, b)
	return a.x == b.x and a.y == b.y
end
Point.__tostring = function(p)
	return string.format("Point(%d, %d)", p.x, p.y)
end
Point.__len = function()
	return 2
end
function Point.norm1(p)
	return math.abs(p.x) + math.abs(p.y)
end

local function point(x, y)
	return setmetatable({ x = x, y = y }, Point)
end
M.point = point

local function round(i, bad)
	local function fail(what, got, want)
		bad[#bad + 1] = string.format("%d:%s got %s want %s", i, what, tostring(got), tostring(want))
	end
	-- constants vs run-time strings: equality, raw equality, table keys both ways
	local k = runtime("al", "pha")
	if k ~= "alpha" then fail("eq", k, "alpha") end
	if not rawequal(k, "alpha") then fail("rawequal", k, "alpha") end
	local t = { alpha = i, beta = -i }
	if t[k] ~= i then fail("const key, runtime lookup", t[k], i) end
	t[k] = i + 1
	if t.alpha ~= i + 1 then fail("runtime store, const lookup", t.alpha, i + 1) end
	local n = 0
	for _ in pairs(t) do n = n + 1 end
	if n ~= 2 then fail("keys after runtime store", n, 2) end
	local u = {}
	u[runtime("gam", "ma")] = i
	if u.gamma ~= i then fail("runtime key, const lookup", u.gamma, i) end
	if next(u, runtime("gam", "ma")) ~= nil then fail("next from runtime key", "a key", nil) end
	if next(u, "gamma") ~= nil then fail("next from const key", "a key", nil) end
	local seen = {}
	for key, v in next, t, nil do seen[#seen + 1] = key .. "=" .. v end
	table.sort(seen)
	local want = string.format("alpha=%d,beta=%d", i + 1, -i)
	if table.concat(seen, ",") ~= want then fail("traversal", table.concat(seen, ","), want) end
	-- metamethods defined with shared names, found by the VM's own names
	local p = point(i, 2) + point(1, i)
	if p.x ~= i + 1 or p.y ~= i + 2 then fail("__add", tostring(p), "sum") end
	if p ~= point(i + 1, i + 2) then fail("__eq", tostring(p), "equal") end
	if tostring(p) ~= string.format("Point(%d, %d)", i + 1, i + 2) then fail("__tostring", tostring(p), "Point") end
	if #p ~= 2 then fail("__len", #p, 2) end
	if p:norm1() ~= 2 * i + 3 then fail("__index method", p:norm1(), 2 * i + 3) end
	local getter = p[runtime("no", "rm1")]
	if getter ~= Point.norm1 then fail("__index runtime name", getter, Point.norm1) end
	local ok, err = pcall(string.rep, p)
	if ok or not tostring(err):find("shproto.Point", 1, true) then fail("__name", err, "shproto.Point") end
	-- string library with shared patterns and formats
	local s = string.format("%s-%05d-%q", k, i, "x")
	if s ~= string.format("alpha-%05d-\"x\"", i) then fail("format", s, "alpha-...") end
	local a, b = s:match("^(%a+)%-(%d+)")
	if a ~= "alpha" or tonumber(b) ~= i then fail("match", a, "alpha") end
	if (s:gsub("alpha", "omega")) ~= runtime("omega", s:sub(6)) then fail("gsub", s, "omega") end
	-- coroutines running shared code
	local co = coroutine.wrap(function(x)
		for j = 1, 3 do x = coroutine.yield(x + j) end
		return runtime("co", "-done")
	end)
	local sum = co(i) + co(1) + co(1)
	if sum ~= i + 1 + 1 + 2 + 1 + 3 then fail("coroutine", sum, "sum") end
	if co(0) ~= "co-done" then fail("coroutine end", "?", "co-done") end
	-- garbage: tables keyed by both kinds of strings, then a collector step
	local junk = {}
	for j = 1, 50 do
		junk[runtime("junk", j)] = { j, "alpha", runtime("beta", j) }
		junk["const" .. (j % 5)] = j
	end
	collectgarbage("step", 0)
end

-- Runs `n` rounds; every 16 rounds switches collector mode and collects fully.
function M.exercise(n)
	local bad = {}
	for i = 1, n do
		round(i, bad)
		if i % 16 == 0 then
			collectgarbage(i % 32 == 0 and "generational" or "incremental")
			collectgarbage()
		end
	end
	collectgarbage("incremental")
	return table.concat(bad, "; ")
end

function M.fail()
	error("shared failure")
end

-- some bulk, so that the code of this module weighs more than a closure
function M.bulk(x)
	local r = {}
	r[1] = x == "one" and 1 or x == "two" and 2 or x == "three" and 3 or x == "four" and 4 or 0
	r[2] = x == "five" and 5 or x == "six" and 6 or x == "seven" and 7 or x == "eight" and 8 or 0
	r[3] = x == "nine" and 9 or x == "ten" and 10 or x == "eleven" and 11 or x == "twelve" and 12 or 0
	r[4] = string.format("%s %s %s %s", "thirteen", "fourteen", "fifteen", "sixteen")
	r[5] = { seventeen = 17, eighteen = 18, nineteen = 19, twenty = 20, twentyone = 21 }
	r[6] = function(y) return y .. "twentytwo" .. "twentythree" .. "twentyfour" end
	r[7] = function(y) return y .. "twentyfive" .. "twentysix" .. "twentyseven" end
	r[8] = function(y) return y .. "twentyeight" .. "twentynine" .. "thirty" end
	return r
end

return M
