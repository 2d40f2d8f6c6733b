-- Our writer of the datasheet document format (what skynet.datasheet.dump produces), for
-- t_datasheet: dump(table) -> string. Keys: 1..n array, then string keys in sorted order.
return function(root)
	local tables, strings, soff, sidx = {}, {}, 0, {}
	local function str(s)
		if not sidx[s] then
			sidx[s] = soff
			soff = soff + #s + 1
			strings[#strings + 1] = s
		end
		return string.pack("<I4", sidx[s])
	end
	local function tbl(t)
		local idx = #tables + 1
		tables[idx] = false
		local types, vals, kvs, n = {}, {}, {}, 0
		local function enc(v)
			local ty = type(v)
			if ty == "table" then
				return "\4", string.pack("<i4", tbl(v) - 1)
			elseif ty == "number" then
				if math.tointeger(v) and v <= 0x7fffffff and v >= -0x80000000 then
					return "\1", string.pack("<i4", v)
				end
				return "\2", string.pack("<f", v)
			elseif ty == "boolean" then
				return "\3", v and "\0\0\0\1" or "\0\0\0\0"
			end
			return "\5", str(v)
		end
		for i, v in ipairs(t) do
			types[i], vals[i] = enc(v)
			n = i
		end
		local keys = {}
		for k in pairs(t) do
			if type(k) == "string" then
				keys[#keys + 1] = k
			end
		end
		table.sort(keys)
		for _, k in ipairs(keys) do
			local kk = str(k)
			local ty, ev = enc(t[k])
			types[#types + 1] = ty
			kvs[#kvs + 1] = kk .. ev
		end
		local ts = table.concat(types)
		tables[idx] = string.pack("<i4i4", n, #kvs) .. ts .. string.rep("\0", (4 - #ts & 3) & 3)
			.. table.concat(vals) .. table.concat(kvs)
		return idx
	end
	tbl(root)
	local index, off = {}, 0
	for i, v in ipairs(tables) do
		index[i] = string.pack("<I4", off)
		off = off + #v
	end
	return string.pack("<I4I4", 8 + 4 * #tables + off, #tables) .. table.concat(index)
		.. table.concat(tables) .. table.concat(strings, "\0") .. "\0"
end
