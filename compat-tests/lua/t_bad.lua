-- t_bad: its main chunk fails (after keeping busy for the optional argument, in ms).
local t = require "t"
local ms = ...
if ms then
	t.spin(tonumber(ms))
end
error("boom in main chunk")
