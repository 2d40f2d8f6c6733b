#!/bin/sh
# Cluster round trips between two local nodes (cluster_bench.lua over upstream's unchanged
# skynet.cluster Lua services, which need an upstream Lua tree: lualib/ and service/).
# usage: sh compat-tests/bench/cluster/run.sh <skynet-binary> <upstream-lua-tree>
#   ours:     sh compat-tests/bench/cluster/run.sh ./skynet ~/upstream-src/v1.8.0
#   upstream: sh compat-tests/bench/cluster/run.sh ~/upstream/v1.8.0/skynet ~/upstream/v1.8.0
# (an upstream executable finds its C services and Lua C modules in cservice/ and luaclib/
# beside it). Prints the BENCH lines on stdout; node output goes to stderr on failure.
# Knobs: CLUSTER_BENCH_SMALL [20000] CLUSTER_BENCH_LARGE [2000] BENCH_THREAD [8]
#        BENCH_TIMEOUT [120]
set -u
[ $# -ge 2 ] || { echo "usage: sh $0 <skynet-binary> <upstream-lua-tree>" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
bin_dir=$(cd "$(dirname "$1")" && pwd) || exit 2
bin="$bin_dir/$(basename "$1")"
root=$(cd "$2" && pwd) || exit 2
[ -f "$root/lualib/skynet/cluster.lua" ] || { echo "$root: no lualib/skynet/cluster.lua" >&2; exit 2; }
THREAD=${BENCH_THREAD:-8}
TIMEOUT=${BENCH_TIMEOUT:-120}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skynet-clusterbench.XXXXXX") || exit 2
server_pid=
client_pid=
cleanup() {
	[ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
sport=$(free_port)
cport=$(free_port)

config() {
	cat >"$tmp/$1.config" <<EOC
root = "$root/"
harbor = 0
thread = $THREAD
bootstrap = "snlua bootstrap"
start = "cluster_bench"
cpath = "$bin_dir/cservice/?.so"
lua_cpath = "$bin_dir/luaclib/?.so"
luaservice = root.."service/?.lua;$here/?.lua"
lualoader = root.."lualib/loader.lua"
lua_path = root.."lualib/?.lua;"..root.."lualib/?/init.lua"
bench_role = "$1"
bench_server_port = "$sport"
bench_client_port = "$cport"
bench_small = "${CLUSTER_BENCH_SMALL:-20000}"
bench_large = "${CLUSTER_BENCH_LARGE:-2000}"
EOC
}
config server
config client
(cd "$tmp" && exec "$bin" server.config) >"$tmp/server.out" 2>&1 &
server_pid=$!
(cd "$tmp" && exec "$bin" client.config) >"$tmp/client.out" 2>&1 &
client_pid=$!

waited=0
while ! grep -q "BENCH_DONE" "$tmp/client.out" 2>/dev/null; do
	if ! kill -0 "$client_pid" 2>/dev/null || [ "$waited" -ge $((TIMEOUT * 10)) ]; then
		echo "cluster bench failed:" >&2
		tail -n 20 "$tmp/client.out" "$tmp/server.out" >&2
		exit 1
	fi
	sleep 0.1
	waited=$((waited + 1))
done
sed -n 's/^\[:[0-9a-fA-F]*\] \(BENCH [^_].*\)$/\1/p' "$tmp/client.out" | grep -v '^BENCH_DONE'
