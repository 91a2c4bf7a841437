# shoal developer targets. `make` alone lists them.
.DEFAULT_GOAL := help

GO        ?= go
FUZZTIME  ?= 30s
FUZZ_PKGS ?= ./messages ./cluster ./actors/flow ./api

.PHONY: help build image test test-cluster bench lint demo fuzz clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the static binary bin/shoal
	CGO_ENABLED=0 $(GO) build -o bin/shoal ./cmd/shoal

image: build ## build the FROM-scratch image shoal:dev around bin/shoal
	docker build -f deploy/Dockerfile -t shoal:dev bin/

test: lint ## lint, then run every test with the race detector
	$(GO) test -race -timeout 15m ./...

test-cluster: ## three nodes in Docker: node kill, partition, rolling restart (deploy/test-cluster.sh)
	./deploy/test-cluster.sh

bench: ## run every benchmark once (a smoke run; measure with bench/ and benchstat)
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

lint: ## vet, and fail on files gofmt would change or a go.mod that `go mod tidy` would change
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -w these files:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff

demo: ## run the demo
	$(GO) run ./cmd/shoal demo

fuzz: ## run each Fuzz target in FUZZ_PKGS for FUZZTIME (default 30s)
	@set -e; for pkg in $(FUZZ_PKGS); do \
	  if ! ls $$pkg/*_test.go >/dev/null 2>&1; then echo "fuzz: $$pkg has no tests, skipped"; continue; fi; \
	  list=$$($(GO) test -list '^Fuzz' $$pkg); \
	  for t in $$(printf '%s\n' "$$list" | grep '^Fuzz' || true); do \
	    echo "fuzz: $$pkg $$t for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean: ## remove build and profiling artifacts (not the fuzz corpus)
	rm -rf bin cpu.prof mem.prof *.test
