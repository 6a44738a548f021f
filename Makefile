# kickmon — build, test and generate. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BUF_VERSION         := v1.75.0
STATICCHECK_VERSION := v0.8.2
# The real Centrifugo server the realtime tests run against (keep in step
# with collector/internal/centrifugo/centrifugotest.Version).
CENTRIFUGO_VERSION  := v6.9.1
TOOLS   := $(CURDIR)/.tools/bin
BUF     := $(TOOLS)/buf
STATICCHECK := $(TOOLS)/staticcheck
CENTRIFUGO_STAMP := $(TOOLS)/.centrifugo-$(CENTRIFUGO_VERSION)
BINARIES := kickcollector kicksim kickwriter kickview kickctl
PUSHERJS := collector/kicksim/pusherjs
GOTESTFLAGS ?= -count=1 -timeout 15m
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
M := github.com/kickmon/kickmon
LDFLAGS := -X $(M)/collector/internal/app.Version=$(VERSION) -X $(M)/writer/internal/app.Version=$(VERSION) -X $(M)/ctl/internal/cli.version=$(VERSION)

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build every binary into bin/
	@mkdir -p bin
	go build -ldflags "$(LDFLAGS)" -o bin/ ./collector/cmd/kickcollector ./collector/cmd/kicksim ./writer/cmd/kickwriter ./viewer/cmd/kickview ./ctl/cmd/kickctl

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

.PHONY: tools
tools: $(BUF) $(STATICCHECK) ## install pinned buf and staticcheck into .tools/bin

.PHONY: lint
lint: tools ## go vet, gofmt, staticcheck, buf lint and buf format
	go vet work
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '/gen/')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(STATICCHECK) work
	$(BUF) lint
	$(BUF) format -d --exit-code

.PHONY: generate
generate: $(BUF) ## regenerate proto/gen with the local, pinned plugins
	rm -rf proto/gen
	$(BUF) generate

.PHONY: check-generate
check-generate: generate ## fail if generated code differs from what is checked in
	@if [ -n "$$(git status --porcelain -- proto/gen)" ]; then git status --porcelain -- proto/gen; git diff --stat -- proto/gen; echo "proto/gen is out of date: run make generate and commit"; exit 1; fi

.PHONY: check-modules
check-modules: ## build every module on its own (GOWORK=off), through its replace line
	@for m in proto collector writer viewer ctl deploy; do echo "GOWORK=off go build ./$$m/..."; (cd $$m && GOWORK=off go build ./... && GOWORK=off go vet ./...) || exit 1; done

.PHONY: check
check: lint check-generate check-modules test ## everything CI runs

.PHONY: demo
demo: build ## run the whole system against the simulator, then open kickview
	go run ./deploy/cmd/kickdemo --bin bin

.PHONY: clean
clean: ## remove build outputs
	rm -rf bin
