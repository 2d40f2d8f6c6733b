-- t_cluster: one cluster node over skynet.cluster.core, skynet.socketdriver and skynet.netpack
-- (the packets clusterd/clustersender/clusteragent exchange, without their Lua services).
-- Each node listens on 127.0.0.1 port 0 ("LISTEN <ip> <port>") and answers requests:
--   handle 7 or "@echo": ("echo", s) → s reversed, #s;   "@sink": pushes are counted;
--   "@stats" → pushes, push bytes, traces, last trace tag;  "@port" push: connect to that port
--   and run the client suite;  "@bye" push: the peer's suite is over;  anything else: error.
-- Args: none (first node) or the first node's port (second node: connects, pushes "@port"
-- with its own port, runs the suite); a second arg is the port to listen on ("-" for no peer
-- port). Each node logs CHECK lines and finishes (DONE) once its own suite is over and the
-- peer said bye. With config key t_cluster_strict_peer = "true" the suite is the one for a
-- peer running with cluster_strict: only "@names" answer.
local t = require "t"
local c = t.c
local sd = require "skynet.socketdriver"
local netpack = require "skynet.netpack"
local cluster = require "skynet.cluster.core"

local peer_port, own_port = ...
peer_port = tonumber(peer_port)
own_port = tonumber(own_port) or 0
local queue
local listen_id, my_port
local server = {} -- fd → { large = {session → req}, tracetag }
local client = { fd = nil, session = 1, pending = {}, large = {} }
local stats = { pushes = 0, push_bytes = 0, traces = 0, tag = "", bad = 0 }
local suite_done, peer_bye = false, false

local function maybe_finish()
	if suite_done and peer_bye then
		suite_done = false
		c.error(string.format("STATS pushes=%d bad=%d", stats.pushes, stats.bad))
		t.fork(t.done)
	end
end

local function send(fd, packets)
	if not sd.send(fd, packets) then
		c.error("SEND FAILED " .. fd)
	end
end

local function respond(fd, session, ok, ...)
	if session == 0 then
		return
	end
	if ok then
		local p, sz = c.pack(...)
		local r = cluster.packresponse(session, true, p, sz)
		c.trash(p, sz)
		send(fd, r)
	else
		send(fd, cluster.packresponse(session, false, (...)))
	end
end

local run_suite

local function handle(fd, st, addr, session, data, is_push)
	local cmd, a = c.unpack(data)
	if addr == 7 or addr == "@echo" then
		respond(fd, session, true, a:reverse(), #a)
	elseif addr == "@sink" then
		stats.pushes = stats.pushes + 1
		stats.push_bytes = stats.push_bytes + #a
	elseif addr == "@stats" then
		respond(fd, session, true, stats.pushes, stats.push_bytes, stats.traces, st.lasttag or "")
	elseif addr == "@port" then
		t.fork(run_suite, a)
	elseif addr == "@bye" then
		peer_bye = true
		maybe_finish()
	else
		respond(fd, session, false, "Invalid name")
	end
end

local function on_request(fd, msg, sz)
	local st = server[fd]
	local r = table.pack(pcall(cluster.unpackrequest, msg, sz))
	c.trash(msg, sz)
	if not r[1] then
		stats.bad = stats.bad + 1
		c.error("BAD PACKET " .. tostring(r[2]))
		return
	end
	local addr, session, m, msz, padding, is_push = table.unpack(r, 2, r.n)
	if session == nil then
		st.tracetag = addr
		stats.traces = stats.traces + 1
		return
	end
	if padding then
		local req = st.large[session] or { addr = addr, is_push = is_push, tracetag = st.tracetag }
		st.tracetag = nil
		st.large[session] = req
		cluster.append(req, m, msz)
		return
	end
	local req = st.large[session]
	if req then
		st.large[session] = nil
		cluster.append(req, m, msz)
		m, msz = cluster.concat(req)
		addr, is_push = req.addr, req.is_push
		st.tracetag = req.tracetag
	end
	if not m then
		send(fd, cluster.packresponse(session, false, "Invalid large req"))
		return
	end
	if st.tracetag then
		st.lasttag, st.tracetag = st.tracetag, nil
	end
	local data = c.tostring(m, msz)
	c.trash(m, msz)
	handle(fd, st, addr, session, data, is_push)
end

local function on_response(msg, sz)
	local str = netpack.tostring(msg, sz)
	local session, ok, data, padding = cluster.unpackresponse(str)
	if not session then
		c.error("BAD RESPONSE")
		return
	end
	if padding then
		local r = client.large[session] or {}
		client.large[session] = r
		r[#r + 1] = data
		return
	end
	local r = client.large[session]
	if r then
		client.large[session] = nil
		r[#r + 1] = data
		local total = table.remove(r, 1)
		data = table.concat(r)
		if #data ~= total then
			ok, data = false, "size mismatch"
		end
	end
	local co = client.pending[session]
	client.pending[session] = nil
	if co then
		t.wakeup(co, ok, data)
	else
		c.error("UNEXPECTED RESPONSE " .. session)
	end
end

local function on_packet(fd, msg, sz)
	if fd == client.fd then
		on_response(msg, sz)
	elseif server[fd] then
		on_request(fd, msg, sz)
	else
		c.trash(msg, sz)
	end
end

-- Client side ------------------------------------------------------------------------------

local function request(addr, ...)
	local p, sz = c.pack(...)
	local s = client.session
	local first, nxt, parts = cluster.packrequest(addr, s, p, sz)
	client.session = nxt
	send(client.fd, first)
	if parts then
		send(client.fd, parts)
	end
	client.pending[s] = coroutine.running()
	local ok, data = coroutine.yield()
	if ok then
		return true, c.unpack(data)
	end
	return false, data
end

local function push(addr, ...)
	local p, sz = c.pack(...)
	local first, nxt, parts = cluster.packpush(addr, client.session, p, sz)
	if parts then
		client.session = nxt
	end
	send(client.fd, first)
	if parts then
		send(client.fd, parts)
	end
end

local function big(n, seed)
	local b = {}
	for i = 1, n // 16 do
		b[i] = string.format("%s%014d\n", seed, i)
	end
	return table.concat(b) .. string.rep("#", n % 16)
end

local connect_waiter

run_suite = function(port)
	client.fd = sd.connect("127.0.0.1", port)
	connect_waiter = coroutine.running()
	coroutine.yield()
	if not peer_port then
		-- second to connect: the peer already knows our port
	else
		push("@port", "port", my_port)
	end
	if c.command("GETENV", "t_cluster_strict_peer") == "true" then
		local ok, r = request(7, "echo", "hello")
		t.list("strict_handle", t.pack(ok, r), t.pack(false, "Invalid name"))
		ok, r = request(".echo", "echo", "hello")
		t.list("strict_localname", t.pack(ok, r), t.pack(false, "Invalid name"))
		local huge = big(200 * 1024, "s")
		ok, r = request(7, "echo", huge)
		t.list("strict_multipart", t.pack(ok, r), t.pack(false, "Invalid name"))
		local n
		ok, r, n = request("@echo", "echo", "by name")
		t.list("strict_name", t.pack(ok, r, n), t.pack(true, "eman yb", 7))
		push("@bye", "bye")
		suite_done = true
		maybe_finish()
		return
	end
	local ok, r, n = request(7, "echo", "hello")
	t.list("call_handle", t.pack(ok, r, n), t.pack(true, "olleh", 5))
	ok, r, n = request("@echo", "echo", "by name")
	t.list("call_name", t.pack(ok, r, n), t.pack(true, "eman yb", 7))
	local mid = big(40 * 1024, "m")
	ok, r, n = request("@echo", "echo", mid)
	t.check("call_40k", ok and r == mid:reverse() and n == #mid, tostring(r):sub(1, 40))
	local huge = big(1024 * 1024, "h")
	ok, r, n = request(7, "echo", huge)
	t.check("call_1m", ok and r == huge:reverse() and n == #huge, tostring(r):sub(1, 40))
	send(client.fd, cluster.packtrace("tag-" .. my_port))
	ok, r, n = request("@echo", "echo", "traced")
	t.list("call_traced", t.pack(ok, r, n), t.pack(true, "decart", 6))
	push("@sink", "push", "small")
	push("@sink", "push", huge)
	local _, pushes, bytes, traces, tag = request("@stats", "stats")
	t.list("stats", t.pack(pushes, bytes, traces, tag), t.pack(2, 5 + #huge, 1, "tag-" .. my_port))
	ok, r = request("@nosuch", "x")
	t.list("call_unknown", t.pack(ok, r), t.pack(false, "Invalid name"))
	-- session wrap: the last positive int32 session, then 1
	client.session = 0x7fffffff
	ok, r = request(7, "echo", "wrap")
	t.list("session_top", t.pack(ok, r, client.session), t.pack(true, "parw", 1))
	ok, r = request(7, "echo", huge)
	t.check("session_wrapped_1m", ok and r == huge:reverse())
	-- a large request whose parts do not add up: an error response, the link stays up
	local s = client.session
	client.session = s + 1
	local head = string.pack("<BI4I4I4", 1, 7, s, 100)
	local part = string.pack("<BI4", 3, s) .. string.rep("z", 50)
	send(client.fd, { string.pack(">s2", head), string.pack(">s2", part) })
	client.pending[s] = coroutine.running()
	ok, r = coroutine.yield()
	t.list("bad_large_req", t.pack(ok, r), t.pack(false, "Invalid large req"))
	-- garbage packets: the peer logs an error for each, and keeps serving
	send(client.fd, { string.pack(">s2", "\xff\1\2"), string.pack(">s2", "\0\1"), string.pack(">s2", "\1\2\3") })
	ok, r = request("@echo", "echo", "still here")
	t.list("after_garbage", t.pack(ok, r), t.pack(true, "ereh llits"))
	push("@bye", "bye")
	suite_done = true
	maybe_finish()
end

-- Socket events ----------------------------------------------------------------------------

local handlers = {
	init = function(id, text, port)
		if id == listen_id and port and port > 0 then
			my_port = port
			c.error(string.format("LISTEN %s %d", text, port))
			if peer_port then
				t.fork(run_suite, peer_port)
			end
		elseif id == client.fd and connect_waiter then
			local co = connect_waiter
			connect_waiter = nil
			t.wakeup(co)
		end
	end,
	open = function(fd)
		server[fd] = { large = {} }
		sd.start(fd)
	end,
	data = on_packet,
	more = function()
		for fd, p, sz in netpack.pop, queue do
			on_packet(fd, p, sz)
		end
	end,
	close = function(fd)
		server[fd] = nil
	end,
	error = function(fd, text)
		c.error(string.format("ERROR %d %s", fd, text))
	end,
	warning = function() end,
}

t.dispatch[6] = function(msg, sz)
	local q, ty, a, b, d = netpack.filter(queue, msg, sz)
	queue = q
	if ty then
		handlers[ty](a, b, d)
	end
end

t.start(function()
	listen_id = sd.listen("127.0.0.1", own_port)
	sd.start(listen_id)
end)
