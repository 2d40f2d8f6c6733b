-- Socket events for our Lua socket test services (require "tsock"), over skynet.socketdriver.
--
-- Installs t.dispatch for PTYPE_SOCKET: DATA bytes are appended to a per-socket buffer (read
-- them with tsock.read), every other event is queued as
--   { ty = <type>, id = <socket>, ud = <ud>, text = <inline text>, data = <UDP datagram>,
--     addr = <UDP sender address record> }
-- and taken with tsock.wait(type, id). Both suspend the calling coroutine (t.wait_until).
local t = require "t"
local c = t.c
local sd = require "skynet.socketdriver"

local M = {
	sd = sd,
	PTYPE_SOCKET = 6,
	DATA = 1,
	CONNECT = 2,
	CLOSE = 3,
	ACCEPT = 4,
	ERROR = 5,
	UDP = 6,
	WARNING = 7,
	events = {},
	buf = {},
}

t.dispatch[M.PTYPE_SOCKET] = function(msg, sz)
	local ty, id, ud, p, addr = sd.unpack(msg, sz)
	if ty == M.DATA then
		M.buf[id] = (M.buf[id] or "") .. c.tostring(p, ud)
		sd.drop(p, ud)
		return
	end
	local ev = { ty = ty, id = id, ud = ud, addr = addr }
	if ty == M.UDP then
		ev.data = c.tostring(p, ud)
		sd.drop(p, ud)
	elseif type(p) == "string" then
		ev.text = p
	end
	M.events[#M.events + 1] = ev
end

-- Waits for the first queued event of type `ty` (and socket `id`, if given) and removes it.
function M.wait(ty, id)
	local found
	t.wait_until(function()
		for i, ev in ipairs(M.events) do
			if ev.ty == ty and (id == nil or ev.id == id) then
				found = table.remove(M.events, i)
				return true
			end
		end
		return false
	end)
	return found
end

-- The first queued event of type `ty` for `id` without waiting (removed), or nil.
function M.take(ty, id)
	for i, ev in ipairs(M.events) do
		if ev.ty == ty and ev.id == id then
			return table.remove(M.events, i)
		end
	end
end

-- Waits until `n` bytes arrived on socket `id` and takes them.
function M.read(id, n)
	t.wait_until(function()
		return #(M.buf[id] or "") >= n
	end)
	local b = M.buf[id]
	M.buf[id] = b:sub(n + 1)
	return b:sub(1, n)
end

-- Bytes received on `id` and not read yet.
function M.pending(id)
	return #(M.buf[id] or "")
end

-- The socketdriver.info() entry of socket `id`, or nil.
function M.info(id)
	for _, e in ipairs(sd.info()) do
		if e.id == id then
			return e
		end
	end
end

return M
