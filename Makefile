# kickmon — build, test and generate. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BUF_VERSION         := v1.75.0
STATICCHECK_VERSION := v0.8.2
NFPM_VERSION        := v2.48.0
# The real Centrifugo server the realtime tests run against (keep in step
# with collector/internal/centrifugo/centrifugotest.Version).
CENTRIFUGO_VERSION  := v6.9.1
TOOLS   := $(CURDIR)/.tools/bin
BUF     := $(TOOLS)/buf
STATICCHECK := $(TOOLS)/staticcheck
NFPM    := $(TOOLS)/nfpm
CENTRIFUGO_STAMP := $(TOOLS)/.centrifugo-$(CENTRIFUGO_VERSION)
BINARIES := kickcollector kicksim kickwriter kickview kickctl kicknotify
PUSHERJS := collector/kicksim/pusherjs
GOTESTFLAGS ?= -count=1 -timeout 15m
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
M := github.com/kickmon/kickmon
LDFLAGS := -X $(M)/collector/internal/app.Version=$(VERSION) -X $(M)/writer/internal/app.Version=$(VERSION) -X $(M)/notify/internal/app.Version=$(VERSION) -X $(M)/ctl/internal/cli.version=$(VERSION)

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build every binary into bin/
	@mkdir -p bin
	go build -ldflags "$(LDFLAGS)" -o bin/ ./collector/cmd/kickcollector ./collector/cmd/kicksim ./writer/cmd/kickwriter ./viewer/cmd/kickview ./ctl/cmd/kickctl ./notify/cmd/kicknotify

.PHONY: deps
deps: centrifugo ## fetch Go modules, the pinned pusher-js (kicksim's conformance test) and Centrifugo
	go mod download
	@if [ -f $(PUSHERJS)/package-lock.json ]; then cd $(PUSHERJS) && npm ci --no-audit --no-fund --loglevel=error; fi

.PHONY: test
test: deps ## run every module's tests with the race detector (the README's test command)
	go test -race $(GOTESTFLAGS) work

.PHONY: test-short
test-short: ## quick tests without the race detector, skipping slow ones
	go test -short -count=1 work

.PHONY: test-race
test-race: test ## alias of test (tests always run with -race)

.PHONY: bench
bench: ## run the benchmarks (figures go into issue notes, not assertions)
	go test -run '^$$' -bench . -benchmem work

$(BUF):
	GOBIN=$(TOOLS) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(CENTRIFUGO_STAMP):
	GOBIN=$(TOOLS) go install github.com/centrifugal/centrifugo/v6@$(CENTRIFUGO_VERSION)
	@rm -f $(TOOLS)/.centrifugo-v* && touch $@

.PHONY: centrifugo
centrifugo: $(CENTRIFUGO_STAMP) ## install the pinned Centrifugo server (.tools/bin/centrifugo) the realtime tests run against

$(STATICCHECK):
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(NFPM):
	GOBIN=$(TOOLS) go install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

.PHONY: tools
tools: $(BUF) $(STATICCHECK) ## install pinned buf and staticcheck into .tools/bin

.PHONY: lint
lint: tools ## go vet, gofmt, staticcheck, buf lint and buf format
	go vet work
	go vet -tags systemd ./deploy/systemdtest/
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '/gen/')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(STATICCHECK) work
	$(STATICCHECK) -tags systemd ./deploy/systemdtest/
	$(BUF) lint
	$(BUF) format -d --exit-code

# The API baseline: the newest release tag (v*), else the commit named in proto/BREAKING_BASELINE
# (until the first release). Its proto files are compared with the working tree's.
BREAKING_AGAINST = $(shell git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null || cat proto/BREAKING_BASELINE)

.PHONY: breaking
breaking: $(BUF) ## buf breaking against the last release tag (or proto/BREAKING_BASELINE before one)
	@base='$(BREAKING_AGAINST)'; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "buf breaking against $$base"; \
	git archive "$$base" buf.yaml proto/kickmon | tar -x -C "$$tmp" && \
	$(BUF) breaking --against "$$tmp"

.PHONY: generate
generate: $(BUF) ## regenerate proto/gen with the local, pinned plugins
	rm -rf proto/gen
	$(BUF) generate

.PHONY: check-generate
check-generate: generate ## fail if generated code differs from what is checked in
	@if [ -n "$$(git status --porcelain -- proto/gen)" ]; then git status --porcelain -- proto/gen; git diff --stat -- proto/gen; echo "proto/gen is out of date: run make generate and commit"; exit 1; fi

.PHONY: check-modules
check-modules: ## build every module on its own (GOWORK=off), through its replace line
	@for m in proto collector writer viewer ctl deploy notify; do echo "GOWORK=off go build ./$$m/..."; (cd $$m && GOWORK=off go build ./... && GOWORK=off go vet ./...) || exit 1; done

.PHONY: check
check: lint check-generate check-modules breaking check-units test systemd-test ## everything CI runs

.PHONY: run
run: ## kickmon on real Kick: needs KICK_CLIENT_ID/KICK_CLIENT_SECRET (env or .env); data kept in .kickmon/
	@go run ./deploy/cmd/kickrun --check
	@$(MAKE) --no-print-directory build
	go run ./deploy/cmd/kickrun --bin bin

.PHONY: bench-system
bench-system: build ## measure the whole system (10k/100k streamers, 1k/10k changes/s; under 10 min) and print the table of BENCHMARKS.md
	go run ./deploy/cmd/kickbench --bin bin $(BENCHFLAGS)

.PHONY: demo
demo: build ## run the whole system against the simulator, then open kickview
	go run ./deploy/cmd/kickdemo --bin bin

# The Debian package: version from the newest v* tag (v0.1.0-3-gabc → 0.1.0+3.gabc), else 0.0.0+git<hash>.
DEB_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo "$${v\#v}" | sed 's/-/+/; s/-/./g' || echo "0.0.0+git$$(git rev-parse --short HEAD)")
DEB_ARCH    ?= $(shell go env GOARCH)
DEB         := bin/kickmon_$(DEB_VERSION)_$(DEB_ARCH).deb

.PHONY: deb
deb: build $(NFPM) ## build the Debian package bin/kickmon_<version>_<arch>.deb (nfpm)
	VERSION='$(DEB_VERSION)' ARCH='$(DEB_ARCH)' $(NFPM) package --config deploy/nfpm.yaml --packager deb --target $(DEB)

# Offline checks of the units as the package installs them: systemd-analyze verify (against the
# package's own files, so ExecStart= resolves) and the security exposure score, at most 1.5.
UNIT_SECURITY_MAX := 1.5
.PHONY: check-units
check-units: deb ## systemd-analyze verify and security (≤ 1.5) on both units (needs the systemd package)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; dpkg-deb -x $(DEB) "$$tmp" && \
	cp -rn /usr/lib/systemd/system/. "$$tmp"/usr/lib/systemd/system/ && \
	for u in "$$tmp"/usr/lib/systemd/system/kickmon-*.service; do \
	  out=$$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no --root="$$tmp" "$$u" 2>&1); \
	  if [ $$? -ne 0 ] || [ -n "$$out" ]; then echo "$$out"; echo "$$(basename $$u): systemd-analyze verify complained"; exit 1; fi; \
	  score=$$(systemd-analyze security --offline=yes --root="$$tmp" "$$u" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'); \
	  echo "$$(basename $$u): exposure $$score (max $(UNIT_SECURITY_MAX))"; \
	  awk -v s="$$score" -v m=$(UNIT_SECURITY_MAX) 'BEGIN { exit !(s != "" && s <= m) }' || { echo "$$(basename $$u): exposure $$score above $(UNIT_SECURITY_MAX)"; exit 1; }; \
	done

.PHONY: systemd-test
systemd-test: deb ## as root: install the package in a booted Debian 12 container and try the units (mmdebstrap, systemd-nspawn)
	KICKMON_DEB=$(CURDIR)/$(DEB) go test -tags systemd -count=1 -timeout 15m -v ./deploy/systemdtest/

.PHONY: clean
clean: ## remove build outputs
	rm -rf bin
