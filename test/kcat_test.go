//go:build unix

package test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/internal/testenv"
)

// TestKcatScript runs test/kcat/kcat_test.sh against a freshly built meshka
// binary: librdkafka is the client most deployments meet, and the script
// also covers what only a real process has (signals, restart on a data dir).
func TestKcatScript(t *testing.T) {
	kcatOr(t)
	script, err := filepath.Abs(filepath.Join("kcat", "kcat_test.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	dir := t.TempDir()
	bin := filepath.Join(dir, "meshka")
	build := exec.CommandContext(ctx, "go", append(append([]string{"build", "-o", bin}, testenv.CoverFlags()...), "github.com/meshka/meshka/cmd/meshka")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}

	kafka4 := kafka4Upstream(t)
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(os.Environ(), "MESHKA_BIN="+bin, "MESHKA_ADDR="+freeAddr(t), "WORKDIR="+work,
		"KAFKA4_UPSTREAM="+strings.Join(kafka4.ListenAddrs(), ","), "KAFKA4_ADDR="+freeAddr(t))
	// The script starts meshka and kcat; on a hang the whole process
	// group goes, so nothing outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out := &lineLogger{t: t}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	out.flush()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("kcat_test.sh failed with exit status %d (ctx: %v)", exit.ExitCode(), ctx.Err())
		}
		t.Fatalf("kcat_test.sh: %v", err)
	}

	// The codec of every batch kcat wrote, as upstream stores it. meshka
	// passes batches through untouched, so it is librdkafka's choice:
	// librdkafka (#4956, in 2.0.2 and since) compresses with gzip, snappy
	// or lz4 only when the broker advertises Produce from v0, and sends
	// such batches plain otherwise; zstd needs v7 and is not affected.
	// meshka dev advertises kfake's Produce range, v3 up.
	dev := config.Default().Dev
	devUp, err := embedded.Start(embedded.Config{Brokers: dev.Brokers, Partitions: dev.Partitions, DataDir: filepath.Join(work, "data"), ClusterID: "meshka-dev"})
	if err != nil {
		t.Fatalf("reopening meshka dev's upstream: %v", err)
	}
	defer devUp.Close()
	for codec, want := range map[string]uint8{"none": 0, "gzip": 0, "snappy": 0, "lz4": 0, "zstd": 4} {
		checkBatchCodec(t, devUp, "kcat-"+codec, dev.Partitions, codec, want)
	}
	// In front of an upstream that advertises Produce from v0, as Apache
	// Kafka 4.0 does, librdkafka compresses with every codec.
	for codec, want := range map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4} {
		checkBatchCodec(t, kafka4, "kcat4-"+codec, 3, codec, want)
	}
}

// checkBatchCodec fails unless topic holds batches and every one of them
// carries want in its attributes' codec bits.
func checkBatchCodec(t *testing.T, up *kfake.Cluster, topic string, partitions int32, asked string, want uint8) {
	t.Helper()
	bs := upstreamBatches(t, up, topic, partitions)
	if len(bs) == 0 {
		t.Errorf("%s: upstream holds no batches", topic)
		return
	}
	for _, b := range bs {
		if got := uint8(b.Attrs & 0x7); got != want {
			t.Errorf("%s: kcat -z %s wrote a batch stored with codec %d at offset %d, want %d", topic, asked, got, b.Base, want)
			return
		}
	}
}

// kafka4Upstream is a kfake cluster that advertises Produce from v0, as
// Apache Kafka 4.0 does though it serves v3 and up (KAFKA-18659: so that
// librdkafka compresses); kfake itself advertises v3 up. Every other key
// and version is kfake's own.
func kafka4Upstream(t *testing.T) *kfake.Cluster {
	t.Helper()
	up, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(up.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "meshka-test", "1"
	own, err := av.RequestWith(ctx, cl)
	if err != nil || own.ErrorCode != 0 {
		t.Fatalf("kfake's ApiVersions: %v %+v", err, own)
	}
	keys := slices.Clone(own.ApiKeys)
	for i := range keys {
		if keys[i].ApiKey == int16(kmsg.Produce) {
			keys[i].MinVersion = 0
		}
	}
	up.ControlKey(int16(kmsg.ApiVersions), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		up.KeepControl()
		if kreq.GetVersion() > own.Version {
			return nil, nil, false // kfake's own v0 fallback answer
		}
		resp := kreq.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.ApiKeys = keys
		resp.SupportedFeatures, resp.FinalizedFeaturesEpoch, resp.FinalizedFeatures = own.SupportedFeatures, own.FinalizedFeaturesEpoch, own.FinalizedFeatures
		return resp, nil, true
	})
	return up
}

// freeAddr is a loopback address nothing listens on at the moment; the
// script's meshka takes it shortly after.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// lineLogger passes the script's output to t.Log a line at a time as it
// arrives, so -v shows progress live and a failure shows all of it.
type lineLogger struct {
	t   *testing.T
	mu  sync.Mutex
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.t.Log(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.t.Log(string(l.buf))
		l.buf = nil
	}
}
