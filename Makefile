# Thin wrapper over Meson + Ninja. `make demo` and `make check` install what is
# missing (Debian packages, as root), so a fresh machine needs nothing else.
# Both fetch Debian's kernel and build nectl's enclave kernel into the cache
# (/var/cache/nectl as root): minutes the first time on a machine, then none.
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps demo check check-normal check-asan fuzz bench clean

all: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)
	ln -sf src/cli/nectl $(BUILD)/nectl

deps:
	@sh scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false

$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzzers=enabled

demo: all
	$(BUILD)/nectl kernel fetch >/dev/null
	$(BUILD)/nectl kernel build >/dev/null
	sh scripts/demo.sh $(BUILD)/nectl $(BUILD)/examples/hello/hello

# Every test, in the normal build and under ASan+UBSan; one closing line.
check: deps $(BUILD)/build.ninja $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD)
	ln -sf src/cli/nectl $(BUILD)/nectl
	$(BUILD)/nectl kernel fetch >/dev/null
	$(BUILD)/nectl kernel build >/dev/null
	$(BUILD)/nectl kernel build --arch aarch64 >/dev/null
	ninja -C $(BUILD_ASAN)
	sh scripts/run-tests.sh $(BUILD) $(BUILD_ASAN)

check-normal: all
	sh scripts/run-tests.sh $(BUILD)

check-asan: deps $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)
	sh scripts/run-tests.sh $(BUILD_ASAN)

# Coverage-guided fuzzing with libFuzzer (clang) on a copy of the corpora;
# findings land in $(BUILD_FUZZ)/fuzz-out/.
fuzz: deps $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ)
	sh scripts/fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

bench: all
	$(BUILD)/nectl kernel fetch >/dev/null
	$(BUILD)/nectl kernel build >/dev/null
	python3 bench/eif-measure $(BUILD)/nectl
	python3 bench/build $(BUILD)/nectl
	python3 bench/boot $(BUILD)/nectl
	python3 bench/vsock $(BUILD)/nectl
	python3 bench/kernel $(BUILD)/nectl
	$(BUILD)/bench/load 512 3

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
