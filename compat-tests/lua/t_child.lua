-- t_child: logs "CHILD name=<SERVICE_NAME> n=<#args> args=[<a,b,...>] self=:<handle>", then
-- answers text requests with "pong:<text>"; "exit" => EXIT.
local t = require "t"
local c = t.c

local args = t.pack(...)
c.error(
	string.format(
		"CHILD name=%s n=%d args=[%s] self=%s",
		SERVICE_NAME,
		args.n,
		table.concat(args, ","),
		t.hex(c.addresscommand("REG"))
	)
)

c.callback(function(ty, msg, sz, session, source)
	local text = c.tostring(msg, sz)
	if ty == t.TEXT and text == "exit" then
		c.command("EXIT")
	elseif session ~= 0 then
		c.send(source, t.RESPONSE, session, "pong:" .. text)
	end
end)
