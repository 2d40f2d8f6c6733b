-- The trivial service of the spawn/kill benchmark (up_bench.lua): loads skynet.lua and does
-- nothing else, so its cost is the bare price of a Lua service.
local skynet = require "skynet"

skynet.start(function() end)
