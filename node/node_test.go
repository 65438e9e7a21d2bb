package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
)

var quiet = Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}

func testConfig() config.Config {
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Node.Listen = "127.0.0.1:0"
	cfg.Cluster.Bind = "127.0.0.1:0"
	// Never dialled by these tests that do not start an upstream: the
	// upstream is contacted lazily.
	cfg.Upstream.Brokers = []string{"127.0.0.1:9"}
	return cfg
}

func TestStartRefusesAnInvalidConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Node.ID = -1
	cfg.Node.Listen = "0.0.0.0:0"
	n, err := Start(cfg, quiet)
	if err == nil {
		n.Shutdown(context.Background())
	}
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("Start = %v; want the two config.Errors", err)
	}
}

func TestStartNeedsAnUpstream(t *testing.T) {
	cfg := testConfig()
	cfg.Upstream.Brokers = nil
	if _, err := Start(cfg, quiet); err == nil || !strings.Contains(err.Error(), "upstream.brokers") {
		t.Fatalf("Start without brokers = %v, want an upstream.brokers error", err)
	}
}

func TestStartOnAnAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Node.Listen = ln.Addr().String()
	n, err := Start(cfg, quiet)
	if err == nil {
		n.Shutdown(context.Background())
		t.Fatal("Start on an address in use succeeded")
	}
	if !strings.HasPrefix(err.Error(), "kafka listener: ") {
		t.Errorf("Start = %v, want a kafka listener error", err)
	}
}

// A node serves Kafka at its bound address, names itself there with the
// advertised host, and stops serving on Shutdown.
func TestStartServeShutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	up, err := embedded.Start(embedded.Config{Brokers: 1, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	cfg := testConfig()
	cfg.Node.ID = 7
	cfg.Node.Advertise = "meshka.invalid:0"
	cfg.Upstream.Brokers = up.ListenAddrs()
	n, err := Start(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	addr := n.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The first request goes to the seed, before the client would turn to
	// the advertised host, which does not resolve.
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata through the node: %v", err)
	}
	if len(resp.Brokers) != 1 {
		t.Errorf("metadata names %d brokers, want 1", len(resp.Brokers))
	} else if b := resp.Brokers[0]; b.NodeID != 7 || b.Host != "meshka.invalid" || strconv.Itoa(int(b.Port)) != port {
		t.Errorf("metadata names broker %d at %s:%d, want 7 at meshka.invalid:%s", b.NodeID, b.Host, b.Port, port)
	}

	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Shutdown", addr)
	}
}

func TestAdvertised(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40123}
	tests := []struct{ listen, advertise, want string }{
		{"127.0.0.1:9092", "", "127.0.0.1:9092"},
		{"127.0.0.1:0", "", "127.0.0.1:40123"},
		{"0.0.0.0:0", "proxy.example.com:0", "proxy.example.com:40123"},
		{"0.0.0.0:0", "proxy.example.com:19092", "proxy.example.com:19092"},
	}
	for _, tc := range tests {
		cfg := config.Default()
		cfg.Admin.Listen = "127.0.0.1:0"
		cfg.Node.Listen, cfg.Node.Advertise = tc.listen, tc.advertise
		if got := advertised(cfg, bound); got != tc.want {
			t.Errorf("advertised(listen %s, advertise %q) = %s, want %s", tc.listen, tc.advertise, got, tc.want)
		}
	}
}
