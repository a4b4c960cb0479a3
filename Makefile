# Parallax — the Makefile is the CI contract. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
PKG := github.com/parallax-ipc/parallax
BIN := bin
# Fuzz budgets are execution counts, not durations: with a duration, Go 1.26's
# fuzz coordinator can report a spurious "context deadline exceeded" failure at
# the deadline (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 150000x
BENCHTIME ?= 1s
GOLANGCI_VERSION ?= v2.15.0
# The router core (roudi/internal/core) is a deterministic state machine:
# these are the only packages it may import directly.
CORE_IMPORTS := cmp|crypto/sha256|crypto/subtle|errors|fmt|io|log/slog|maps|math|math/bits|slices|sort|strconv|strings|$(PKG)

.PHONY: help build test unit root-test integration fuzz-short bench lint fmt vet check-deps check-unsafe clean

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build every package and the binaries into ./bin
	$(GO) build ./...
	@mkdir -p $(BIN)
	@if [ -d cmd ]; then $(GO) build -o $(BIN)/ ./cmd/...; fi

test: vet lint check-deps check-unsafe unit integration fuzz-short ## vet, golangci-lint, dependency rules, unit tests (-race), integration tests, short fuzzing

unit: ## unit tests with the race detector, the atomics count (its own build tag), the plain-store paths that race builds replace (without -race), and the external module that uses only the public API
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -tags parallax_countatomics ./ringbuf ./tests/bench -run 'TestAtomicsPerMessage|TestLayout'
	$(GO) test -count=1 ./internal/amutex ./internal/sys ./ringbuf ./internal/ownedpub ./internal/ownedsub
	cd tests/external && $(GO) mod tidy -diff && $(GO) vet ./... && $(GO) test -race -count=1 ./...

root-test: ## unit tests with privileged tests required (fail instead of skip)
	PARALLAX_TEST_ROOT=1 $(GO) test -race -count=1 ./...

integration: ## multi-process integration suite (real router binary, separate processes), with test hooks compiled in
	$(GO) test -race -count=1 -timeout 25m -tags integration,parallax_testhook ./tests/...
	$(GO) test -race -count=1 -tags parallax_testhook ./internal/testhook

fuzz-short: ## run every Fuzz target briefly ($(FUZZTIME) each)
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r dirname | sort -u); do \
		for t in $$(grep -h '^func Fuzz' $$f/*_test.go | sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/'); do \
			echo "fuzz $$f $$t"; $(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) $$f; \
		done; \
	done

bench: ## run the benchmarks and print them
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

vet: ## go vet and gofmt
	$(GO) vet ./...
	$(GO) vet -tags integration ./tests/...
	$(GO) vet -tags integration,parallax_testhook ./tests/... ./internal/testhook
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: ## golangci-lint with .golangci.yml (standard linters, depguard, gofmt, goimports) — installs it on first use
	@command -v golangci-lint >/dev/null || $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	golangci-lint run ./...
	golangci-lint run --build-tags integration ./tests/...
	golangci-lint run --build-tags parallax_testhook ./internal/testhook/...

check-deps: ## enforce the import graph: only internal/sys imports x/sys/unix; clients never import roudi; the router core stays pure
	@bad=$$($(GO) list -f '{{.ImportPath}}: {{join .Imports " "}}' ./... | grep 'golang.org/x/sys/unix' | grep -v '^$(PKG)/internal/sys:' || true); \
	if [ -n "$$bad" ]; then echo "only internal/sys may import golang.org/x/sys/unix:"; echo "$$bad"; exit 1; fi
	@bad=$$($(GO) list -f '{{.ImportPath}}: {{join .Imports " "}}' ./... | grep 'github.com/cilium/ebpf' | grep -v '^$(PKG)/roudi/procmon:' || true); \
	if [ -n "$$bad" ]; then echo "only roudi/procmon may import cilium/ebpf:"; echo "$$bad"; exit 1; fi
	@for p in publisher subscriber; do if [ -d $$p ]; then \
		if $(GO) list -deps ./$$p | grep -q '^$(PKG)/roudi'; then echo "$$p must not depend on roudi"; exit 1; fi; fi; done
	@if $(GO) list -f '{{join .Imports "\n"}}' . | grep -q '^$(PKG)/'; then echo "root package must import no subpackage"; exit 1; fi
	@bad=$$($(GO) list -f '{{join .Imports "\n"}}' ./roudi/internal/core | grep -vxE '$(CORE_IMPORTS)' || true); \
	if [ -n "$$bad" ]; then echo "the router core must stay pure (no I/O, clock, randomness, goroutines or shared memory); it imports:"; echo "$$bad"; exit 1; fi
	@echo "import graph ok"

check-unsafe: ## "unsafe" only in *_unsafe.go files of the memory-layout packages
	@bad=$$(grep -rlE '^\s*"unsafe"|^import "unsafe"' --include='*.go' . | grep -vE '_unsafe(_test)?\.go$$' || true); \
	if [ -n "$$bad" ]; then echo "unsafe imported outside *_unsafe.go:"; echo "$$bad"; exit 1; fi
	@bad=$$(grep -rlE '^\s*"unsafe"|^import "unsafe"' --include='*.go' . | grep -vE '^\./(internal/sys|segment|mempool|ringbuf|buffer)/' || true); \
	if [ -n "$$bad" ]; then echo "unsafe imported outside internal/sys, segment, mempool, ringbuf, buffer:"; echo "$$bad"; exit 1; fi
	@echo "unsafe confined"

clean: ## remove build outputs
	rm -rf $(BIN)

.PHONY: demo
demo: ## build the router and examples/multiproc, run the pipeline on a private router, print msg/s and latency
	GO=$(GO) BIN=$(BIN) ./scripts/demo.sh

.PHONY: bench-sweep
bench-sweep: ## the cross-process sweep behind README's "Current numbers" (scripts/bench-sweep.sh; idle machine), written to bench-sweep.txt
	./scripts/bench-sweep.sh bench-sweep.txt

IPC_BENCHTIME ?= 2000x
.PHONY: bench-ipc
bench-ipc: ## cross-process benchmarks (tests/bench): shared-memory round trip per wait mode, one-way msgs/s, Unix-socket baseline
	$(GO) test -run='^$$' -bench=. -benchtime=$(IPC_BENCHTIME) ./tests/bench
