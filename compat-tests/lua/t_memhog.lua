-- t_memhog (bootstrap :2, run with the config's memory_limit = 8 MiB): every snlua service
-- gets that limit without asking; a service that allocates without end fails alone (its own
-- memory error, logged), the others keep answering, and the node goes on; a service that sets
-- its own limit with the registry field (skynet.memlimit) gets that one instead.
-- Roles by argument: "hog" (:3) grows a table until its allocation fails, "echo" (:4) answers
-- "pong", "big" (:5) sets a 64 MiB limit and allocates 16 MiB.
local role = ...
local t = require "t"
local c = t.c
local LIMIT = 8 * 1024 * 1024

local function heap()
	return math.floor(collectgarbage("count") * 1024)
end

if role == "hog" then
	local grown = 0
	c.callback(function(_, msg, sz, session, source)
		local text = c.tostring(msg, sz)
		if text == "grow" then
			grown = grown + 1
			local big = {}
			local i = 0
			while true do
				i = i + 1
				big[i] = string.rep("h", 1000) .. i
			end
		elseif text == "ping" then
			collectgarbage()
			c.send(source, t.RESPONSE, session, string.format("alive %d %d", grown, heap()))
		end
	end)
	return
elseif role == "echo" then
	c.callback(function(_, msg, sz, session, source)
		c.send(source, t.RESPONSE, session, "pong")
	end)
	return
elseif role == "big" then
	debug.getregistry().memlimit = 64 * 1024 * 1024
	local keep
	c.callback(function(_, msg, sz, session, source)
		local ok, s = pcall(string.rep, "b", 16 * 1024 * 1024)
		keep = ok and s
		c.send(source, t.RESPONSE, session, ok and tostring(#s) or tostring(s))
	end)
	return
end

t.start(function()
	local ok, err = pcall(string.rep, "x", 2 * LIMIT)
	t.check("default_limit_applies", not ok and err == "not enough memory", t.show(err))
	local hog = c.addresscommand("LAUNCH", "snlua t_memhog hog")
	local echo = c.addresscommand("LAUNCH", "snlua t_memhog echo")
	local big = c.addresscommand("LAUNCH", "snlua t_memhog big")
	t.eq("handles", string.format("%d %d %d", hog, echo, big), "3 4 5")

	c.send(hog, t.TEXT, 0, "grow")
	for i = 1, 3 do
		local ty, text = t.call(echo, "ping")
		t.check("echo_answers_" .. i, ty == t.RESPONSE and text == "pong", t.show(text))
	end
	local ty, text = t.call(hog, "ping")
	local grown, hog_heap = string.match(text, "^alive (%d+) (%d+)$")
	t.check("hog_failed_alone", ty == t.RESPONSE and grown == "1", t.show(text))
	t.check("hog_heap_within_limit", tonumber(hog_heap or math.huge) <= LIMIT, t.show(text))
	c.send(hog, t.TEXT, 0, "grow")
	ty, text = t.call(hog, "ping")
	t.check("hog_fails_again", ty == t.RESPONSE and string.match(text, "^alive 2 ") ~= nil, t.show(text))
	ty, text = t.call(echo, "ping")
	t.check("echo_still_answers", ty == t.RESPONSE and text == "pong", t.show(text))

	ty, text = t.call(big, "alloc")
	t.check("own_memlimit_wins", ty == t.RESPONSE and text == tostring(16 * 1024 * 1024), t.show(text))
	t.done()
end)
