#!/bin/sh
# Socket echo benchmarks: a Lua echo server over skynet.socketdriver (sock_echo.lua) and a C
# echo server on skynet_socket.h (bench_sockecho.so), each under the same load from our own
# load generator (echo_load, compat-tests/src/bin): BENCH_SOCK_CONNS connections, each with one
# BENCH_SOCK_SIZE-byte request in flight, for BENCH_SOCK_SECS seconds after a 1 s warm-up.
#
# usage: sh compat-tests/bench/socket/run.sh <skynet-binary> <echo_load-binary>
#
# Prints, per bench (lua_sock_echo, c_sock_echo):
#   BENCH <name>_rps <n> req/s           completed request/response pairs per second
#   BENCH <name>_latency <n> us          mean round trip
#   BENCH <name>_cpu <n> s               CPU (user + system) of the skynet process in the window
# The load generator's full line (percentiles) and failures go to stderr. Every node runs
# in the background only for its bench and is killed afterwards (and on exit).
#
# Knobs: BENCH_SOCK_CONNS [100] BENCH_SOCK_SECS [10] BENCH_SOCK_SIZE [64] BENCH_THREAD [8]
#        BENCH_SOCK_ONLY [lua c] BENCH_MODDIR [compat-tests/build/bench]
# The same scripts run against an upstream build: its cservice/ and luaclib/ next to the
# binary are searched too (sock_echo.lua needs only skynet.core and skynet.socketdriver).
set -u

if [ $# -lt 2 ]; then
	echo "usage: sh $0 <skynet-binary> <echo_load-binary>" >&2
	exit 2
fi
CONNS=${BENCH_SOCK_CONNS:-100}
SECS=${BENCH_SOCK_SECS:-10}
SIZE=${BENCH_SOCK_SIZE:-64}
THREAD=${BENCH_THREAD:-8}
ONLY=${BENCH_SOCK_ONLY:-lua c}

here=$(cd "$(dirname "$0")" && pwd)
bin_dir=$(cd "$(dirname "$1")" && pwd) || exit 2
bin="$bin_dir/$(basename "$1")"
load=$2
if [ ! -x "$bin" ]; then
	echo "run.sh: $1 is not an executable skynet binary" >&2
	exit 2
fi
if [ ! -x "$load" ]; then
	echo "run.sh: $load is not executable (cargo build --release -p compat-tests --bin echo_load)" >&2
	exit 2
fi
moddir=$(cd "${BENCH_MODDIR:-$here/../../build/bench}" 2>/dev/null && pwd) || {
	echo "run.sh: bench modules not found (run 'make bmods' or set BENCH_MODDIR)" >&2
	exit 2
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skynet-sockbench.XXXXXX") || exit 2
node_pid=
stop_node() {
	if [ -n "$node_pid" ]; then
		kill "$node_pid" 2>/dev/null
		i=0
		while kill -0 "$node_pid" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$node_pid" 2>/dev/null
		wait "$node_pid" 2>/dev/null
		node_pid=
	fi
}
trap 'stop_node; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
status=0

# run_one <bench name> <bootstrap>
run_one() {
	name=$1
	boot=$2
	cfg="$tmp/$name.config"
	out="$tmp/$name.out"
	cat >"$cfg" <<EOC
harbor = 0
thread = $THREAD
cpath = "$moddir/?.so;$bin_dir/cservice/?.so"
bootstrap = "$boot"
lualoader = "$here/../../lua/loader.lua"
luaservice = "$here/?.lua"
lua_cpath = "$bin_dir/luaclib/?.so"
EOC
	(cd "$tmp" && exec "$bin" "$cfg") >"$out" 2>&1 &
	node_pid=$!
	port=
	i=0
	while [ -z "$port" ] && [ $i -lt 100 ] && kill -0 "$node_pid" 2>/dev/null; do
		sleep 0.1
		port=$(sed -n 's/^\[:[0-9a-fA-F]*\] LISTEN [^ ]* \([0-9][0-9]*\)$/\1/p' "$out" | head -n 1)
		i=$((i + 1))
	done
	if [ -z "$port" ]; then
		echo "run.sh: $name: the server did not report its port" >&2
		tail -n 20 "$out" >&2
		stop_node
		status=1
		return
	fi
	result=$(timeout -k 5 $((SECS + 30)) "$load" --port "$port" --conns "$CONNS" \
		--secs "$SECS" --size "$SIZE" --pid "$node_pid")
	rc=$?
	stop_node
	if [ $rc -ne 0 ] || [ -z "$result" ]; then
		echo "run.sh: $name: load generator failed (rc=$rc)" >&2
		tail -n 20 "$out" >&2
		status=1
		return
	fi
	if grep -q "SOCKECHO" "$out"; then
		echo "run.sh: $name: the server reported errors:" >&2
		grep "SOCKECHO" "$out" | head -n 5 >&2
		status=1
		return
	fi
	echo "run.sh: $name: $result" >&2
	field() { echo "$result" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
	echo "BENCH ${name}_rps $(field rps) req/s"
	echo "BENCH ${name}_latency $(field mean_us) us"
	echo "BENCH ${name}_cpu $(field cpu_s) s"
}

for b in $ONLY; do
	case $b in
	lua) run_one lua_sock_echo "snlua sock_echo 127.0.0.1" ;;
	c) run_one c_sock_echo "bench_sockecho 127.0.0.1" ;;
	*)
		echo "run.sh: unknown bench '$b' in BENCH_SOCK_ONLY" >&2
		status=1
		;;
	esac
done
exit $status
