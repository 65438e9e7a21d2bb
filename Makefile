# meshka: `make run` starts a node with an embedded upstream; `make test`
# runs every test (installing test/kafkajs's packages first when npm is there).
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
FUZZTIME ?= 30s
PKGS     := ./...

.PHONY: build run test lint bench fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/meshka ./cmd/meshka

run: build
	./bin/meshka dev

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

test: lint test/kafkajs/node_modules
	$(GO) test -race -timeout 20m -count=1 $(PKGS)

# kafkajs for TestKafkajs, installed from the lock file. Without npm the
# test skips (outside CI), so make test still runs everything else.
test/kafkajs/node_modules: test/kafkajs/package.json test/kafkajs/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "npm ci --prefix test/kafkajs"; \
	  npm ci --prefix test/kafkajs --no-audit --no-fund && touch $@; \
	else \
	  echo "npm is not installed: TestKafkajs will skip (install Node.js and npm to run it)"; \
	fi

bench:
	$(GO) run ./cmd/meshka-bench -out BENCHMARKS.md

# Runs every fuzz target for FUZZTIME each, all of them even when one
# fails, then lists the ones that failed and exits 1 if any did.
fuzz:
	@failed=""; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || failed="$$failed $$pkg.$$t"; \
	  done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz targets that failed:$$failed"; exit 1; fi; \
	echo "every fuzz target passed"

clean:
	rm -rf bin .meshka-dev
