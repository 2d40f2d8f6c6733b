-- skynet-rs service loader: the `lualoader` of our Lua tests and of the example node.
--
-- snlua runs this chunk with one argument, the launch string "<service> <arg>...", and with
-- the node's settings in globals (LUA_SERVICE, LUA_PATH, LUA_CPATH, LUA_PRELOAD). Steps:
--   1. split the launch string into words; the first names the service;
--   2. try each LUA_SERVICE template in order, '?' standing for the service name;
--   3. move LUA_PATH/LUA_CPATH into package.path/cpath, with the service's own directory
--      searched first for its Lua modules;
--   4. run LUA_PRELOAD (if any) with every word, then the service chunk with the words after
--      the name.
-- If no template gives a loadable chunk, the error (one line, so that the log shows it whole)
-- names every file tried and why it failed.

local launch = ...

local words = {}
for w in launch:gmatch("%S+") do
	words[#words + 1] = w
end
local name = words[1] or error("loader: empty launch string")

-- Returns the compiled chunk and its file name, or nil and the reason of each failed attempt
-- (loadfile's message names the file).
local function find_service(templates)
	local failures = {}
	for template in templates:gmatch("[^;]+") do
		-- A function replacement: a service name must not be read as a '%' pattern.
		local file = template:gsub("%?", function() return name end)
		local chunk, why = loadfile(file)
		if chunk then
			return chunk, file
		end
		failures[#failures + 1] = why
	end
	return nil, failures
end

local chunk, found = find_service(LUA_SERVICE or "")
if not chunk then
	error(string.format("loader: service '%s' not found (%s)", name, table.concat(found, "; ")), 0)
end

-- The directory the service file lives in, with its trailing slash.
local dir = found:match("^(.*/)") or "./"
SERVICE_NAME = name
SERVICE_PATH = dir

-- The node's search paths replace the interpreter defaults; the settings are consumed.
package.path = dir .. "?.lua;" .. (LUA_PATH or package.path)
package.cpath = LUA_CPATH or package.cpath
LUA_PATH, LUA_CPATH = nil, nil

local preload = LUA_PRELOAD
LUA_PRELOAD = nil
if preload then
	local f = assert(loadfile(preload))
	f(table.unpack(words))
end

chunk(table.unpack(words, 2))
