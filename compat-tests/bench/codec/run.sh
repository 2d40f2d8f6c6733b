#!/bin/sh
# Codec benchmarks (codec_bench.lua: sproto, bson, sha1, DES) on one skynet executable.
# usage: sh compat-tests/bench/codec/run.sh <skynet-binary> [<upstream-skynet-binary>]
# A binary may be upstream's C build (its cservice/ and luaclib/ beside it are used), so the
# same Lua measures both. With a second binary, each bench runs on both, alternating, and three
# lines are printed per result: ours, `upstream_<name>`, and `<name>_ratio` (ours / upstream,
# higher is better). Node output goes to stderr on failure.
# Knobs: CODEC_BENCH_SPROTO [20000] CODEC_BENCH_BSON [20000] CODEC_BENCH_SHA1 [2000]
#        CODEC_BENCH_DES [2000] BENCH_TIMEOUT [120]
set -u
[ $# -ge 1 ] || { echo "usage: sh $0 <skynet-binary> [<upstream-skynet-binary>]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
ours=$(abs "$1") || exit 2
upstream=
lualib=
if [ $# -ge 2 ]; then
	upstream=$(abs "$2") || exit 2
	# Upstream's lualib beside its binary: both runs use its unchanged sproto.lua.
	lualib="$(dirname "$upstream")/lualib/?.lua"
fi
TIMEOUT=${BENCH_TIMEOUT:-120}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skynet-codecbench.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
status=0

# run_one BIN NAME ARGS...: prints the BENCH lines of one node.
run_one() {
	bin=$1
	bin_dir=$(dirname "$bin")
	name=$2
	shift 2
	cfg="$tmp/$name.config"
	cat >"$cfg" <<EOC
harbor = 0
thread = 2
cpath = "$bin_dir/cservice/?.so"
bootstrap = "snlua codec_bench $*"
lualoader = "$here/../../lua/loader.lua"
luaservice = "$here/?.lua"
lua_path = "$here/../../lua/?.lua;$lualib"
lua_cpath = "$bin_dir/luaclib/?.so"
EOC
	(cd "$tmp" && exec timeout -k 5 "$TIMEOUT" "$bin" "$cfg") >"$tmp/$name.out" 2>&1
	rc=$?
	lines=$(sed -n 's/^\[:[0-9a-fA-F]*\] \(BENCH .*\)$/\1/p' "$tmp/$name.out")
	if [ $rc -ne 0 ] || [ -z "$lines" ]; then
		echo "codec bench $name failed (rc=$rc):" >&2
		tail -n 20 "$tmp/$name.out" >&2
		status=1
		return
	fi
	echo "$lines"
}

# bench MODE N: ours (and upstream, with the ratio lines).
bench() {
	a=$(run_one "$ours" "$1" "$@")
	[ -n "$a" ] && echo "$a"
	[ -n "$upstream" ] || return
	b=$(run_one "$upstream" "$1" "$@")
	[ -n "$b" ] || return
	echo "$b" | sed 's/^BENCH /BENCH upstream_/'
	printf '%s\n%s\n' "$a" "$b" | awk '
		{ v[$2] = v[$2] " " $3 }
		END { for (k in v) { split(v[k], x, " "); if (x[2] > 0) printf "BENCH %s_ratio %.2f x\n", k, x[1] / x[2] } }'
}

bench sproto "${CODEC_BENCH_SPROTO:-20000}"
[ -n "$upstream" ] && bench sproto_lualib "${CODEC_BENCH_SPROTO:-20000}"
bench bson "${CODEC_BENCH_BSON:-20000}"
bench sha1 "${CODEC_BENCH_SHA1:-2000}"
bench des "${CODEC_BENCH_DES:-2000}"
exit $status
