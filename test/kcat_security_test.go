//go:build unix

package test

import (
	"context"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// kcatOr skips the test when kcat is missing, except in CI.
func kcatOr(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("kcat is not on PATH, and CI is expected to install it: %v", err)
		}
		t.Skipf("kcat is not on PATH: %v", err)
	}
}

func kcat(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kcat", args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// librdkafka (kcat) over every security protocol and mechanism: each
// writes a record through its listener and reads back what it wrote; a
// wrong password, an unknown user and plaintext on the TLS port are
// refused.
func TestKcatSecured(t *testing.T) {
	kcatOr(t)
	s := startSecured(t)
	ctx := timeout(t, 3*time.Minute)
	createTopic(t, ctx, s.env.DirectClient(t), "kcat-secured", 1, nil)
	client, err := s.ca.Client("kcat", pkix.Name{CommonName: "kcat"})
	if err != nil {
		t.Fatal(err)
	}
	sasl := func(mech, password string) []string {
		return []string{"-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=alice", "-X", "sasl.password=" + password}
	}
	ssl := []string{"-X", "ssl.ca.location=" + s.ca.CAFile}
	cases := []struct {
		name, listener string
		args           []string
	}{
		{"SSL", "ssl", append([]string{"-X", "security.protocol=SSL"}, ssl...)},
		{"mTLS", "mtls", append([]string{"-X", "security.protocol=SSL", "-X", "ssl.certificate.location=" + client.CertFile,
			"-X", "ssl.key.location=" + client.KeyFile}, ssl...)},
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		cases = append(cases,
			struct {
				name, listener string
				args           []string
			}{"SASL_PLAINTEXT " + mech, "sasl",
				append([]string{"-X", "security.protocol=SASL_PLAINTEXT"}, sasl(mech, s.password)...)},
			struct {
				name, listener string
				args           []string
			}{"SASL_SSL " + mech, "sasl_ssl",
				append(append([]string{"-X", "security.protocol=SASL_SSL"}, sasl(mech, s.password)...), ssl...)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := append([]string{"-b", s.addr(t, tc.listener), "-m", "10"}, tc.args...)
			value := fmt.Sprintf("kcat over %s", tc.name)
			if out, err := kcat(ctx, value+"\n", append(base, "-P", "-t", "kcat-secured", "-p", "0")...); err != nil {
				t.Fatalf("produce: %v\n%s", err, out)
			}
			out, err := kcat(ctx, "", append(base, "-C", "-t", "kcat-secured", "-p", "0", "-o", "beginning", "-e", "-q")...)
			if err != nil || !strings.Contains(out, value) {
				t.Fatalf("consume: %v\n%s", err, out)
			}
		})
	}
	for _, tc := range []struct {
		name, listener string
		args           []string
		want           string
	}{
		{"wrong password", "sasl", append([]string{"-X", "security.protocol=SASL_PLAINTEXT"}, sasl("SCRAM-SHA-512", "guess")...), "Authentication failed"},
		{"unknown user", "sasl", []string{"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=mallory", "-X", "sasl.password=x"}, "Authentication failed"},
		{"plaintext on the TLS port", "ssl", nil, "Disconnected"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			out, err := kcat(rctx, "", append(append([]string{"-b", s.addr(t, tc.listener), "-m", "3"}, tc.args...), "-L")...)
			if err == nil {
				t.Fatalf("listed the cluster:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("kcat said, without %q:\n%s", tc.want, out)
			}
		})
	}
}
