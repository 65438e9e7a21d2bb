# meshka: `make run` starts a node with an embedded upstream; `make test`
# runs every test (installing test/kafkajs's packages first when npm is there).
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
FUZZTIME ?= 30s
PKGS     := ./...

.PHONY: build run test lint cover bench fuzz generate clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/meshka ./cmd/meshka

run: build
	./bin/meshka dev

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# A test that cannot run here skips; the last lines of the run say which.
# The tests of actor remoting between nodes in one process (named
# TestRemoting…) skip under the race detector, where protoactor's remoting
# races with itself (see internal/race), and run in a second pass without.
REMOTING_PKGS := ./cluster/ ./actors/group/ ./mesh/ ./examples/linebinding/ ./mappers/mqtt/ ./mappers/http/ ./test/
test: lint test/kafkajs/node_modules mappers/mqtt/testdata/mqttjs/node_modules
	@echo "$(GO) test -race -timeout 20m -count=1 $(PKGS)"; status=0; \
	$(GO) test -race -timeout 20m -count=1 $(PKGS) || status=$$?; \
	echo "$(GO) test -timeout 10m -count=1 -run Remoting $(REMOTING_PKGS)"; \
	$(GO) test -timeout 10m -count=1 -run Remoting $(REMOTING_PKGS) || status=$$?; \
	command -v kcat >/dev/null 2>&1 || echo "kcat is not installed: TestKcatScript was skipped"; \
	{ command -v node && command -v npm; } >/dev/null 2>&1 || echo "node or npm is not installed: TestKafkajs and TestMQTTjs were skipped"; \
	command -v mosquitto_pub >/dev/null 2>&1 || echo "mosquitto-clients is not installed: TestMosquittoScript was skipped"; \
	{ command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 || echo "chromium is not installed: TestBrowserEventSourceResumes, TestBrowserWebSocket and TestStatusPageInBrowser were skipped"; \
	command -v curl >/dev/null 2>&1 || echo "curl is not installed: TestConfluentCurl was skipped"; \
	command -v promtool >/dev/null 2>&1 || echo "promtool is not installed: TestMetrics did not check /metrics with it"; \
	command -v prometheus >/dev/null 2>&1 || echo "prometheus is not installed: TestPrometheusScrapes was skipped"; \
	exit $$status

# Runs every test once with coverage of every package (without the race
# detector, which would make it much slower) and prints, per package, the
# statements and the share of them that some test runs, the meshka
# binaries the tests build and run included; cover.log keeps the output.
cover:
	@echo "$(GO) test -count=1 -timeout 30m -coverpkg=$(PKGS) -coverprofile=cover.out $(PKGS) >cover.log"
	@$(GO) test -count=1 -timeout 30m -coverpkg=$(PKGS) -coverprofile=cover.out $(PKGS) >cover.log 2>&1 || \
	  { grep -E '^(---|FAIL|panic)' cover.log; echo "tests failed: see cover.log"; exit 1; }
	@awk -f .ci/cover.awk cover.out

# kafkajs for TestKafkajs, installed from the lock file. Without npm the
# test skips (outside CI), so make test still runs everything else.
test/kafkajs/node_modules: test/kafkajs/package.json test/kafkajs/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "npm ci --prefix test/kafkajs"; \
	  npm ci --prefix test/kafkajs --no-audit --no-fund && touch $@; \
	else \
	  echo "npm is not installed: TestKafkajs will skip (install Node.js and npm to run it)"; \
	fi

# MQTT.js for TestMQTTjs, likewise.
mappers/mqtt/testdata/mqttjs/node_modules: mappers/mqtt/testdata/mqttjs/package.json mappers/mqtt/testdata/mqttjs/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "npm ci --prefix mappers/mqtt/testdata/mqttjs"; \
	  npm ci --prefix mappers/mqtt/testdata/mqttjs --no-audit --no-fund && touch $@; \
	else \
	  echo "npm is not installed: TestMQTTjs will skip (install Node.js and npm to run it)"; \
	fi

# Regenerates the protobuf code of the messages that cross nodes (the
# generated files are committed). Needs protoc (Debian: protobuf-compiler);
# protoc-gen-go is the go.mod tool of the version go.mod names.
PROTOS := $(shell find . -name '*.proto' -not -path '*/node_modules/*' -not -path './.git/*')
generate:
	protoc --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) --go_out=. --go_opt=module=github.com/meshka/meshka $(PROTOS)

# BENCH_ARGS runs a part: make bench BENCH_ARGS="-only S1,A1 -merge"
# measures S1-S3 and A1-A3 again and keeps the rest of BENCHMARKS.md.
# M1-M3 compare meshka's MQTT broker with mosquitto (apt-get install
# mosquitto) and are skipped, saying so, without it.
bench:
	$(GO) run ./cmd/meshka-bench -out BENCHMARKS.md $(BENCH_ARGS)

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
	rm -rf bin .meshka-dev cover.out cover.log
