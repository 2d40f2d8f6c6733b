#!/bin/sh
# Lua benchmarks (compat-tests/bench/lua/lua_bench.lua, skynet.core only).
# usage: sh compat-tests/bench/lua/run.sh <skynet-binary>
# Prints the BENCH lines on stdout; node output goes to stderr on failure.
# Knobs: LUA_BENCH_SEND [1000000] LUA_BENCH_CALL [200000] LUA_BENCH_SPAWN [2000]
#        LUA_BENCH_TIMER [100000] BENCH_THREAD [8] BENCH_TIMEOUT [120]
set -u
[ $# -ge 1 ] || { echo "usage: sh $0 <skynet-binary>" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
bin_dir=$(cd "$(dirname "$1")" && pwd) || exit 2
bin="$bin_dir/$(basename "$1")"
THREAD=${BENCH_THREAD:-8}
TIMEOUT=${BENCH_TIMEOUT:-120}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skynet-luabench.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
status=0

run_one() {
	name=$1
	shift
	cfg="$tmp/$name.config"
	cat >"$cfg" <<EOC
harbor = 0
thread = $THREAD
cpath = "$bin_dir/cservice/?.so"
bootstrap = "snlua lua_bench $*"
lualoader = "$here/../../lua/loader.lua"
luaservice = "$here/?.lua"
lua_cpath = "$bin_dir/luaclib/?.so"
EOC
	(cd "$tmp" && exec timeout -k 5 "$TIMEOUT" "$bin" "$cfg") >"$tmp/$name.out" 2>&1
	rc=$?
	lines=$(sed -n 's/^\[:[0-9a-fA-F]*\] \(BENCH .*\)$/\1/p' "$tmp/$name.out")
	if [ $rc -ne 0 ] || [ -z "$lines" ]; then
		echo "lua bench $name failed (rc=$rc):" >&2
		tail -n 20 "$tmp/$name.out" >&2
		status=1
		return
	fi
	echo "$lines"
}

run_one send send "${LUA_BENCH_SEND:-1000000}"
run_one call call "${LUA_BENCH_CALL:-200000}"
run_one spawn spawn "${LUA_BENCH_SPAWN:-2000}"
run_one timer timer "${LUA_BENCH_TIMER:-100000}"
exit $status
