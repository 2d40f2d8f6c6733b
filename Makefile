# skynet-rs: `make` builds ./skynet, `make test` runs every test, `make bench` prints BENCH lines.
CARGO ?= cargo
CC ?= cc
CFLAGS ?= -O2 -g -Wall -Wextra -Wno-unused-parameter -fPIC
CFLAGS += -Iinclude
SHARED := -shared
BUILD := compat-tests/build

CMODS := $(patsubst compat-tests/cmod/%.c,$(BUILD)/%.so,$(wildcard compat-tests/cmod/*.c))
EMODS := $(patsubst examples/cservice/%.c,examples/build/%.so,$(wildcard examples/cservice/*.c))
BMODS := $(patsubst compat-tests/bench/%.c,$(BUILD)/bench/%.so,$(wildcard compat-tests/bench/*.c))
HEADERS := $(wildcard include/*.h)
# A user's own Lua C module (compat-tests/luaclib) builds against stock Lua 5.4 headers
# (Debian: liblua5.4-dev); without them it is skipped and its test says so.
LUA_INC ?= /usr/include/lua5.4
LMODS := $(if $(wildcard $(LUA_INC)/lua.h),$(patsubst compat-tests/luaclib/%.c,$(BUILD)/luaclib/%.so,$(wildcard compat-tests/luaclib/*.c)))

.PHONY: all skynet lib lib-lua55 install install-files container-test systemd-test luaclib test test-lua55 test-threads fuzz-smoke bench bench-upstream bench-chart cmods bmods emods lmods run clean fmt lint headers

all: skynet lib luaclib cmods emods lmods bmods

# The client-side modules as Lua C modules for a stock Lua 5.4 interpreter (`lua5.4`): one
# library that exports every entry point, installed under each name Lua's C searcher looks for
# (require "client.socket" finds luaopen_client_socket in client.so, and so on).
LUACLIB_TARGET := $(CURDIR)/target/standalone
LUACLIB_NAMES := client sproto lpeg md5
luaclib:
	CARGO_TARGET_DIR=$(LUACLIB_TARGET) $(CARGO) build --release --manifest-path lualib-src/standalone/Cargo.toml
	@mkdir -p luaclib
	for n in $(LUACLIB_NAMES); do cp $(LUACLIB_TARGET)/release/libskynet_luaclib.so luaclib/$$n.so; done

skynet:
	$(CARGO) build --profile release-lto -p skynet-ffi --bin skynet
	cp $${CARGO_TARGET_DIR:-target}/release-lto/skynet ./skynet

# libskynet.a and libskynet.so: the node for a program with its own main (include/skynet_imp.h,
# include/skynet_static.h). The .so is linked from the whole archive so that it exports every
# global symbol of it (the C ABI, skynet_error, the Lua C API), as the executable does.
LIB_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
# $(call link_so,DIR): DIR/libskynet.so from DIR/libskynet.a.
link_so = $(CC) -shared -o $(1)/libskynet.so -Wl,-soname,libskynet.so \
	-Wl,--whole-archive $(1)/libskynet.a -Wl,--no-whole-archive $(LIB_LIBS)
lib:
	$(CARGO) build --release -p skynet-ffi --lib
	cp $${CARGO_TARGET_DIR:-target}/release/libskynet_ffi.a ./libskynet.a
	$(call link_so,.)

# The same with Lua 5.5 (skynet master): target-lua55/libskynet.{a,so}.
LUA55_TARGET := $(CURDIR)/target-lua55
lib-lua55:
	CARGO_TARGET_DIR=$(LUA55_TARGET) $(CARGO) build --release -p skynet-ffi --lib --no-default-features --features lua55
	cp $(LUA55_TARGET)/release/libskynet_ffi.a $(LUA55_TARGET)/libskynet.a
	$(call link_so,$(LUA55_TARGET))

# make install PREFIX=/opt/skynet [DESTDIR=...]: bin/skynet, include/skynet/*.h,
# lib/libskynet.{a,so}, lib/pkgconfig/skynet.pc. A C module then builds with
# cc -shared -fPIC $$(pkg-config --cflags skynet) -o mod.so mod.c
PREFIX ?= /usr/local
DESTDIR ?=
install: skynet lib
	$(MAKE) install-files PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)

# The copying part of install (what compat-tests/tests/install.rs runs on a built tree).
install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/skynet \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 skynet $(DESTDIR)$(PREFIX)/bin/skynet
	install -m 644 $(HEADERS) $(DESTDIR)$(PREFIX)/include/skynet/
	install -m 644 libskynet.a $(DESTDIR)$(PREFIX)/lib/libskynet.a
	install -m 755 libskynet.so $(DESTDIR)$(PREFIX)/lib/libskynet.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)|' \
		-e 's|@LIBS@|$(LIB_LIBS)|' skynet.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/skynet.pc

# The Dockerfile built with podman (base images made locally, no Docker Hub) and the image run
# on a mounted node directory: tools/container-test. Slow, needs root, podman and debootstrap;
# not part of `make test` or CI.
container-test:
	tools/container-test

# examples/systemd/skynet.service run under systemd as pid 1 of a podman container (the base
# image of container-test plus the systemd package): tools/systemd-test. Needs root, podman and
# debootstrap; not part of `make test` or CI.
systemd-test:
	tools/systemd-test

cmods: $(CMODS)

bmods: $(BMODS)

emods: $(EMODS)

lmods: $(LMODS)

$(BUILD)/luaclib/%.so: compat-tests/luaclib/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Wextra -fPIC -I$(LUA_INC) $(SHARED) -o $@ $<

examples/build/%.so: examples/cservice/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SHARED) -o $@ $<

# Builds and runs the example node.
run: all
	./skynet examples/config

$(BUILD)/%.so: compat-tests/cmod/%.c $(HEADERS) $(wildcard compat-tests/cmod/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SHARED) -o $@ $<

$(BUILD)/bench/%.so: compat-tests/bench/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SHARED) -o $@ $<

LUA55_BIN := $(LUA55_TARGET)/release/skynet

# Under `make test` a test whose module or binary is missing fails instead of skipping.
test test-lua55 test-threads: export SKYNET_REQUIRE_ALL := 1

test: all
	$(CARGO) test --release --workspace
	$(MAKE) test-lua55

# Every test that runs the executable again with 1 and with 16 workers (the suites use 2);
# scenarios that need two workers at once pin `thread = 2` themselves.
test-threads: all
	SKYNET_TEST_THREADS=1 $(CARGO) test --release --no-fail-fast -p compat-tests
	SKYNET_TEST_THREADS=16 $(CARGO) test --release --no-fail-fast -p compat-tests

# The same core with Lua 5.5 (skynet master): unit tests of the Lua modules and every test
# that runs the executable.
test-lua55:
	$(CARGO) test --release -p skynet-lualib --no-default-features --features lua55
	CARGO_TARGET_DIR=$(LUA55_TARGET) $(CARGO) build --release -p skynet-ffi --no-default-features --features lua55
	$(MAKE) lib-lua55
	SKYNET_BIN=$(LUA55_BIN) SKYNET_LUA=5.5 SKYNET_LIBSKYNET=$(LUA55_TARGET)/libskynet.a \
		$(CARGO) test --release -p compat-tests
	SKYNET_BIN=$(LUA55_BIN) SKYNET_LUA=5.5 $(CARGO) test --release -p skynet-ffi --test abi_symbols

ECHO_LOAD := $${CARGO_TARGET_DIR:-target}/release/echo_load

# UPSTREAM_SKYNET=path/to/upstream/skynet also runs the codec benches on upstream's C build
# (its luaclib/) and prints ours/upstream ratios. SKYNET_UPSTREAM=path/to/upstream/tree runs
# the cluster round-trip bench (it needs upstream's clusterd & co. from that tree); on
# upstream's own build: sh compat-tests/bench/cluster/run.sh TREE/skynet TREE.
UPSTREAM_SKYNET ?=
SKYNET_UPSTREAM ?=
bench: all bmods
	sh compat-tests/bench/run.sh ./skynet
	sh compat-tests/bench/codec/run.sh ./skynet $(UPSTREAM_SKYNET)
	sh compat-tests/bench/lua/run.sh ./skynet
	$(CARGO) build --release -p compat-tests --bin echo_load
	sh compat-tests/bench/socket/run.sh ./skynet $(ECHO_LOAD)
	$(CARGO) build --release -p compat-tests --bin tls_bench
	SKYNET_UPSTREAM="$(SKYNET_UPSTREAM)" $${CARGO_TARGET_DIR:-target}/release/tls_bench
	@if [ -n "$(SKYNET_UPSTREAM)" ]; then \
		sh compat-tests/bench/cluster/run.sh ./skynet "$(SKYNET_UPSTREAM)"; \
	else echo "cluster bench skipped: set SKYNET_UPSTREAM to an upstream tree (Lua services)"; fi

# Our executable (B) against an upstream C build (A) with the same workloads: our own Lua bench
# services on the tree's unchanged lualib/, and our C bench modules; A B A B A B per benchmark,
# medians and B/A printed as `BENCH upstream.<metric>.<A|B|ratio>` lines plus a table, and
# written to target/bench-upstream/<tree name>/results.tsv. UPSTREAM is the directory of a built
# upstream tree (skynet, lualib/, service/, cservice/, luaclib/); a tree with Lua 5.5 (master) is
# measured against our Lua 5.5 build. Knobs: see compat-tests/bench/upstream/bench_upstream.py
# (BENCH_UP_SCALE, BENCH_UP_SOCK_SECS, BENCH_UP_ONLY, ...).
UPSTREAM ?=
BENCH_UP_DIR := target/bench-upstream
UPSTREAM_IS_LUA55 = $(shell grep -qE '^\#define[[:space:]]+LUA_VERSION_MINOR_N[[:space:]]+5' "$(UPSTREAM)/3rd/lua/lua.h" 2>/dev/null && echo 1)
bench-upstream: skynet bmods
	@if [ -z "$(UPSTREAM)" ]; then echo "usage: make bench-upstream UPSTREAM=path/to/built/skynet"; exit 2; fi
	$(CARGO) build --release -p compat-tests --bin echo_load
	$(if $(UPSTREAM_IS_LUA55),CARGO_TARGET_DIR=$(LUA55_TARGET) $(CARGO) build --profile release-lto -p skynet-ffi --no-default-features --features lua55)
	python3 compat-tests/bench/upstream/bench_upstream.py --upstream "$(UPSTREAM)" \
		--ours $(if $(UPSTREAM_IS_LUA55),$(LUA55_TARGET)/release-lto/skynet,./skynet) --moddir $(BUILD)/bench \
		--echo-load $(ECHO_LOAD) --out $(BENCH_UP_DIR)/$(notdir $(abspath $(UPSTREAM)))

# Renders every target/bench-upstream/*/results.tsv (one bar per tree and metric) as
# docs/bench-upstream.svg.
BENCH_CHART_INPUTS ?= $(sort $(wildcard $(BENCH_UP_DIR)/*/results.tsv))
bench-chart:
	@if [ -z "$(BENCH_CHART_INPUTS)" ]; then echo "no results: run make bench-upstream UPSTREAM=... first"; exit 2; fi
	@mkdir -p docs
	python3 compat-tests/bench/upstream/chart.py $(BENCH_CHART_INPUTS) docs/bench-upstream.svg

# Regenerates include/*.h with cbindgen from ffi/src/abi/*.rs (configs in ffi/cbindgen/).
headers:
	UPDATE_HEADERS=1 $(CARGO) test --release -p skynet-ffi --test headers -- --nocapture

# A short run of every fuzz target (cargo fuzz; libFuzzer needs nightly flags, which
# RUSTC_BOOTSTRAP lets the stable toolchain accept).
FUZZ_SECONDS ?= 15
fuzz-smoke:
	@cargo fuzz --version >/dev/null 2>&1 || { echo "fuzz-smoke needs cargo-fuzz (cargo install cargo-fuzz --locked)"; exit 1; }
	cd fuzz && for t in $$(RUSTC_BOOTSTRAP=1 cargo fuzz list); do \
		RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path lualib-src/standalone/Cargo.toml

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path lualib-src/standalone/Cargo.toml -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	CARGO_TARGET_DIR=$(LUACLIB_TARGET) $(CARGO) clippy --release --manifest-path lualib-src/standalone/Cargo.toml -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(BUILD) examples/build ./skynet luaclib libskynet.a libskynet.so
