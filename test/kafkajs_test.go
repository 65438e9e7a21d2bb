//go:build unix

package test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshka/meshka/internal/testenv"
)

// TestKafkajs runs the client matrix's scenario with kafkajs 2.2.4 (the
// Node.js package in test/kafkajs) through a meshka node: kafkajs speaks
// old protocol versions (AddPartitionsToTxn v1, EndTxn v1, TxnOffsetCommit
// v1) and is the JavaScript client most deployments meet.
func TestKafkajs(t *testing.T) { runKafkajs(t, false) }

// TestKafkajsDirect is the control: the same script straight against the
// upstream brokers.
func TestKafkajsDirect(t *testing.T) { runKafkajs(t, true) }

func runKafkajs(t *testing.T, direct bool) {
	dir, err := filepath.Abs("kafkajs")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missingTool(t, "node is not on PATH: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs", "package.json")); err != nil {
		missingTool(t, "kafkajs is not installed (npm ci --prefix test/kafkajs): %v", err)
	}

	env := testenv.Start(t)
	ctx := timeout(t, 90*time.Second)
	brokers, prefix := env.Addr(), "kafkajs-meshka"
	if direct {
		brokers, prefix = strings.Join(env.Upstream.ListenAddrs(), ","), "kafkajs-direct"
	}
	cmd := exec.CommandContext(ctx, node, "matrix.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"KAFKA_BROKERS="+brokers,
		"MATRIX_PREFIX="+prefix,
		"MATRIX_TIMEOUT_MS=60000",
		"KAFKAJS_NO_PARTITIONER_WARNING=1",
	)
	cmd.WaitDelay = 10 * time.Second
	out := &lineLogger{t: t}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	out.flush()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("matrix.js failed with exit status %d (ctx: %v)", exit.ExitCode(), ctx.Err())
		}
		t.Fatalf("matrix.js: %v", err)
	}

	// What the script checked through its own client, checked again
	// straight from upstream with another client: the script's checks
	// cannot be what passes it.
	n := newMatrixNames(prefix)
	up := env.DirectClient(t)
	checkGroupAtEnd(t, ctx, up, n.group, n.plain, matrixPlain)
	checkGroupSettles(t, ctx, up, n.etl, n.in, matrixTxnRecs)
	want := byPartition(matrixRecs("A", matrixTxnRecs))
	for _, r := range matrixRecs("in", matrixTxnRecs) {
		want[r.p] = append(want[r.p], transform(r).v)
	}
	got := franzMatrix{}.readCommitted(t, ctx, env.Upstream.ListenAddrs(), n.out)
	checkPartitions(t, "read_committed of "+n.out+" straight from upstream", got, want)
}

// missingTool skips the test when a tool it runs is not installed, and
// fails it in CI, which is expected to install every tool (.ci/run).
func missingTool(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is expected to install it (.ci/run)", msg)
	}
	t.Skip(msg)
}
