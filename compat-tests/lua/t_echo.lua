-- t_echo: logs every message it gets as
--   ECHO type=<t> session=<s> src=:<source> sz=<sz> text=[<bytes, NUL as \0>]
-- and answers text requests (session ~= 0) with PTYPE_RESPONSE "echo:<text>" to the source.
-- Commands (text): "exit" -> EXIT; "busy <ms>" -> keep busy for ms, then answer as usual.
local t = require "t"
local c = t.c

local function note(ty, msg, sz, session, source)
	local text = c.tostring(msg, sz) or ""
	c.error(
		string.format(
			"ECHO type=%d session=%d src=:%08x sz=%d text=[%s]",
			ty,
			session,
			source,
			sz,
			(text:gsub("%z", "\\0"))
		)
	)
	return text
end

c.callback(function(ty, msg, sz, session, source)
	local text = note(ty, msg, sz, session, source)
	if ty ~= t.TEXT then
		return
	end
	if text == "exit" then
		c.command("EXIT")
		return
	end
	local ms = text:match("^busy (%d+)$")
	if ms then
		t.spin(tonumber(ms))
	end
	if session ~= 0 then
		c.send(source, t.RESPONSE, session, "echo:" .. text)
	end
end)
