# stoa — build, demo and test entry points. `make help` lists them.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
PKG   := github.com/stoa-gateway/stoa
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X $(PKG)/pkg/version.Version=$(VERSION) -X $(PKG)/pkg/version.Commit=$(COMMIT) -X $(PKG)/pkg/version.Date=$(DATE)
export CGO_ENABLED ?= 0
# make install puts stoa and stoad in $(DESTDIR)$(PREFIX)/bin.
PREFIX ?= /usr/local

.PHONY: help build install demo test test-short check tidy-check deadcode vet fmt bench-apply bench-controlplane bench-fleet bench-metrics bench-proxy bench-xdp check-drift clean generate generate-schemas generate-docs generate-bpf release-check

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/stoa and bin/stoad
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/stoa ./cmd/stoa
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/stoad ./cmd/stoad
	$(GO) build -trimpath -o $(BIN)/upstreams ./examples/upstreams

install: build ## install stoa and stoad into $(PREFIX)/bin (PREFIX=/usr/local; PREFIX=$HOME/.local needs no root)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN)/stoa $(BIN)/stoad $(DESTDIR)$(PREFIX)/bin/
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "note: $(PREFIX)/bin is not on PATH; add it: export PATH=$(PREFIX)/bin:\$$PATH" >&2;; esac

demo: build ## run stoad on embedded defaults with examples/quickstart (Ctrl-C stops)
	@BIN=$(BIN) bash scripts/demo.sh

check: tidy-check vet deadcode ## static checks CI runs before the tests: tidy go.mod, gofmt, go vet, dead code

tidy-check: ## fail if go.mod/go.sum are not what go mod tidy makes them
	@if ! out=$$($(GO) mod tidy -diff 2>&1); then \
	  echo "$$out"; \
	  case "$$out" in diff*) echo "go.mod/go.sum are not tidy: run go mod tidy" >&2;; esac; \
	  exit 1; \
	fi

deadcode: ## fail on functions no program or test reaches (allow-list: scripts/deadcode-allow.txt)
	bash scripts/check-deadcode.sh

vet: ## go vet and gofmt check
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '_bpfe[lb]\.go$$')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

test: vet ## all tests: unit tests with -race, then end-to-end with the real binaries (root-only tests skip when not root)
	CGO_ENABLED=1 $(GO) test -count=1 -race -timeout 20m ./pkg/... ./internal/... ./examples/...
	$(GO) test -count=1 -timeout 20m ./test/...

test-short: ## unit tests only (no end-to-end)
	$(GO) test -short -count=1 ./...

bench-apply: build ## validate/diff/apply 10,000 tools and report times and stoad RSS
	@BIN=$(BIN) bash scripts/bench-apply.sh

bench-controlplane: build ## apply 10,000 tools to a control plane on PostgreSQL over HTTPS vs its socket; ratio and RSS
	@BIN=$(BIN) bash scripts/bench-controlplane.sh

bench-fleet: build ## fleet: a one-tool change to 3 data planes (p99), first sync of 10,000 tools, bytes, proxy CPU with Redis vs local limits (root)
	@BIN=$(BIN) bash scripts/bench-fleet.sh

clean: ## remove build output
	rm -rf $(BIN)

bench-metrics: build ## stoad's CPU per /metrics scrape with 10,000 tools, traffic on 100 (N, BUSY, SCRAPES)
	@BIN=$(BIN) bash scripts/bench-metrics.sh

bench-proxy: build ## compare stoad with nginx/haproxy on loopback (MODE=plain|auth)
	@BIN=$(BIN) bash scripts/bench-proxy.sh

generate: generate-schemas generate-docs ## regenerate committed files (schemas, explain data, completions, CLI docs)

generate-schemas: ## JSON Schemas (specs/) and explain data (pkg/specdoc) from pkg/spec
	$(GO) run ./internal/gen/schemagen
	$(GO) test ./pkg/specdoc -run Golden -update

generate-docs: ## completions/ and docs/cli/ from the command tree
	$(GO) run ./internal/gen/clidocs

generate-bpf: ## rebuild the XDP objects and bindings with the pinned clang-14
	$(MAKE) -C bpf generate

release-check: ## goreleaser check + snapshot build (installs goreleaser v2.15.1)
	bash scripts/release-check.sh

check-drift: ## fail if pkg/xdp's generated files differ from what bpf/ builds (skips without clang-14)
	bash bpf/check-drift.sh

bench-xdp: ## XDP vs iptables vs userspace CPU per dropped packet; client throughput under flood (root, ~3.5 min)
	bash scripts/bench-xdp.sh
