-- Our own service loader (the `lualoader` of our Lua tests and of the example node).
-- Argument: the launch string "<service name> <args...>". Finds <name> through LUA_SERVICE,
-- sets package.path/cpath from LUA_PATH/LUA_CPATH, runs LUA_PRELOAD, then the service's
-- main chunk with the remaining words as arguments.
local args = {}
for word in string.gmatch(..., "%S+") do
	args[#args + 1] = word
end

SERVICE_NAME = args[1]

local main, tried = nil, {}
for template in string.gmatch(LUA_SERVICE, "([^;]+);*") do
	local filename = string.gsub(template, "%?", SERVICE_NAME)
	local f, err = loadfile(filename)
	if f then
		main = f
		SERVICE_PATH = string.match(filename, "(.*/)[^/]*$") or "./"
		break
	end
	tried[#tried + 1] = err
end
if not main then
	error(table.concat(tried, "\n"))
end

package.path, LUA_PATH = LUA_PATH, nil
package.cpath, LUA_CPATH = LUA_CPATH, nil
package.path = SERVICE_PATH .. "?.lua;" .. package.path

if LUA_PRELOAD then
	local f = assert(loadfile(LUA_PRELOAD))
	f(table.unpack(args))
	LUA_PRELOAD = nil
end

main(select(2, table.unpack(args)))
