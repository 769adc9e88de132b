# gotools: build, check, test, bench and install (common.md "install.sh and
# the Makefile"). "make" builds the static binary bin/gotools.

GO      ?= go
DESTDIR ?=
PREFIX  ?= /usr/local
# Extra install.sh options, e.g. make install INSTALLFLAGS=--s6-names
INSTALLFLAGS ?=

VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/gotools-dev/gotools/lib/cli.Version=$(VERSION)
BIN     := bin/gotools

.PHONY: build check-static test soak bench footprint bench-podman size man install demo clean

# Static always (STYLE.md rule 16): CGO_ENABLED=0, no PT_INTERP, no DT_NEEDED.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

# Fails if $(BIN) has a program interpreter or a dynamic section. Uses
# readelf if present, else file(1), else reads the ELF64 program headers
# with od (the host's byte order, as for any binary built here).
check-static: build
	@f=$(BIN); \
	if command -v readelf >/dev/null 2>&1; then \
		h=$$(readelf -lW $$f) || exit 1; \
		if printf '%s\n' "$$h" | grep -Eq '^[[:space:]]*(INTERP|DYNAMIC)[[:space:]]'; then \
			echo "$$f: not static: readelf -l shows INTERP or DYNAMIC" >&2; exit 1; \
		fi; \
		echo "$$f: static (readelf: no INTERP, no DYNAMIC)"; \
	elif command -v file >/dev/null 2>&1; then \
		case $$(file -L $$f) in \
		*"statically linked"* | *"static-pie linked"*) echo "$$f: static (file)" ;; \
		*) echo "$$f: not static: $$(file -L $$f)" >&2; exit 1 ;; \
		esac; \
	else \
		[ "$$(od -An -c -N4 $$f | tr -d ' ')" = '177ELF' ] || { echo "$$f: not an ELF file" >&2; exit 1; }; \
		phoff=$$(od -An -tu8 -j32 -N8 $$f | tr -d ' '); \
		phent=$$(od -An -tu2 -j54 -N2 $$f | tr -d ' '); \
		phnum=$$(od -An -tu2 -j56 -N2 $$f | tr -d ' '); \
		i=0; while [ $$i -lt $$phnum ]; do \
			t=$$(od -An -tu4 -j$$((phoff + i * phent)) -N4 $$f | tr -d ' '); \
			case $$t in 2|3) echo "$$f: not static: program header $$i is PT_DYNAMIC or PT_INTERP" >&2; exit 1 ;; esac; \
			i=$$((i + 1)); \
		done; \
		echo "$$f: static (ELF program headers: no INTERP, no DYNAMIC)"; \
	fi

# gofmt, vet, staticcheck (when installed), unit tests with -race (needs cgo
# and a C compiler; without one they run without -race), then the end-to-end
# tests, which build their own static binary (or use $$GOTOOLS_BIN).
test:
	@u=$$(gofmt -l .); \
	if [ -n "$$u" ]; then echo "gofmt: these files need gofmt -w:" >&2; echo "$$u" >&2; exit 1; fi
	$(GO) vet ./...
	@sc=$$(command -v staticcheck || echo "$$($(GO) env GOPATH)/bin/staticcheck"); \
	if [ -x "$$sc" ]; then echo "$$sc ./..."; "$$sc" ./...; \
	else echo "note: staticcheck not installed, skipped (go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)"; fi
	@if command -v "$$($(GO) env CC)" >/dev/null 2>&1; then \
		echo "CGO_ENABLED=1 $(GO) test -race ./lib/... ./applets/..."; \
		CGO_ENABLED=1 $(GO) test -race ./lib/... ./applets/...; \
	else \
		echo "note: no C compiler ($$($(GO) env CC)), unit tests run without -race"; \
		echo "$(GO) test ./lib/... ./applets/..."; \
		$(GO) test ./lib/... ./applets/...; \
	fi
	@if [ -n "$$(find tests -name '*.go' 2>/dev/null)" ]; then \
		echo "$(GO) test -count=1 ./tests/... (end-to-end: a few minutes; one line per test as it ends)"; \
		$(GO) test -count=1 -json ./tests/... | $(GO) run ./tests/progress; \
	else \
		echo "note: no end-to-end tests in tests/ yet, skipped"; \
	fi

# The slow soak, load and storm tests (files with //go:build soak, tests
# named TestSoak...): minutes, not part of "make test" or CI.
soak:
	$(GO) test -tags soak -count=1 -run Soak -timeout 60m ./tests/...

# Every benchmark; "make footprint" prints issue 16's footprint table
# (gotools beside s6, medians of 3, ratios).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@echo "make footprint: the footprint table, gotools beside s6 (memory, CPU, page faults)"

# The footprint table of issue 16: every row, gotools beside Debian's s6 in
# the same run, medians of 3, with the ratio. Measurements, never
# assertions. FOOTPRINT_BIG=N sizes the large tree (default 500 services).
footprint:
	$(GO) test -tags footprint -count=1 -v -run '^TestFootprint$$' -timeout 60m ./tests/

# lib/shm beside podman's own lock manager (cgo, glibc): an optional module
# of its own that the main module never builds (spec/shmlock.md).
bench-podman:
	cd tests/podmanbench && CGO_ENABLED=1 $(GO) test -bench . -benchmem
	tests/podmanbench/run-podman-tests.sh

# The stripped size, then the 20 packages whose symbols weigh most (from an
# unstripped build: go tool nm -size, grouped by package; "func" is the
# runtime's func tables). The binary must stay under 6.5 MiB (issue 16).
size: build
	@n=$$(wc -c < $(BIN)); \
	awk -v n="$$n" -v f=$(BIN) 'BEGIN { printf "%s: %d bytes (%.2f MiB; limit 6.5 MiB)\n", f, n, n / 1048576 }'
	@CGO_ENABLED=0 $(GO) build -trimpath -o bin/gotools.syms . && \
	$(GO) tool nm -size bin/gotools.syms | awk '{ sz = $$2; name = $$4; sub(/^go:/, "", name); \
		n = split(name, parts, "/"); last = parts[n]; dot = index(last, "."); \
		if (dot > 0) last = substr(last, 1, dot - 1); pkg = ""; \
		for (i = 1; i < n; i++) pkg = pkg parts[i] "/"; tot[pkg last] += sz } \
		END { for (k in tot) printf "%10d  %s\n", tot[k], k }' | sort -rn | head -20; \
	rm -f bin/gotools.syms

# The main job: svscan on a copy of examples/services, status every second,
# events and log lines as they happen; Ctrl-C brings it all down and removes
# the copy. DEMO_FLAGS=-for=10s stops by itself (the test suite does that).
DEMO_FLAGS ?=
demo: build
	$(GO) build -o bin/demo ./examples/demo
	bin/demo -bin $(BIN) -services examples/services $(DEMO_FLAGS)

# One man page per applet (and gotools.1) in man/man1, generated by the
# binary from the same text as its --help ("gotools help --man APPLET").
man: build
	@rm -rf man && mkdir -p man/man1
	@$(BIN) help --man > man/man1/gotools.1
	@for n in $$($(BIN) --list); do $(BIN) help --man $$n > man/man1/$$n.1 || exit 1; done
	@echo "man/man1: $$(ls man/man1 | wc -l) pages (man -l man/man1/svc.1)"

install: build
	sh install.sh -d '$(DESTDIR)' -p '$(PREFIX)' $(INSTALLFLAGS) $(BIN)

clean:
	rm -rf bin man
