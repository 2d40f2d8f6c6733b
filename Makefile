# skynet-rs: `make` builds ./skynet, `make test` runs every test, `make bench` prints BENCH lines.
CARGO ?= cargo
CC ?= cc
CFLAGS ?= -O2 -g -Wall -Wextra -Wno-unused-parameter -fPIC
CFLAGS += -Iinclude
SHARED := -shared
BUILD := compat-tests/build

CMODS := $(patsubst compat-tests/cmod/%.c,$(BUILD)/%.so,$(wildcard compat-tests/cmod/*.c))
BMODS := $(patsubst compat-tests/bench/%.c,$(BUILD)/bench/%.so,$(wildcard compat-tests/bench/*.c))
HEADERS := $(wildcard include/*.h)

.PHONY: all skynet test bench cmods bmods clean fmt lint headers

all: skynet cmods

skynet:
	$(CARGO) build --release -p skynet-ffi --bin skynet
	cp target/release/skynet ./skynet

cmods: $(CMODS)

bmods: $(BMODS)

$(BUILD)/%.so: compat-tests/cmod/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SHARED) -o $@ $<

$(BUILD)/bench/%.so: compat-tests/bench/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SHARED) -o $@ $<

test: all
	$(CARGO) test --release --workspace

bench: all bmods
	sh compat-tests/bench/run.sh ./skynet

# Regenerates include/*.h with cbindgen from ffi/src/abi/*.rs (configs in ffi/cbindgen/).
headers:
	UPDATE_HEADERS=1 $(CARGO) test --release -p skynet-ffi --test headers -- --nocapture

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(BUILD) ./skynet
