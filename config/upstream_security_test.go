package config

import (
	"errors"
	"reflect"
	"testing"
)

// The upstream tls and sasl sections are on when present, even empty, and
// off when absent or null; what they hold is decoded strictly.
func TestUpstreamSecuritySections(t *testing.T) {
	tests := []struct {
		name    string
		content string
		tls     *TLS
		sasl    *SASL
	}{
		{"absent", "upstream:\n  brokers: [\"k:9092\"]\n", nil, nil},
		{"null", "upstream:\n  tls:\n  sasl:\n", nil, nil},
		{"empty tls is TLS with the system's roots", "upstream:\n  tls: {}\n", &TLS{}, nil},
		{"mTLS", "upstream:\n  tls:\n    ca_file: ca.pem\n    cert_file: c.pem\n    key_file: k.pem\n    server_name: kafka.internal\n",
			&TLS{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "kafka.internal"}, nil},
		{"scram", "upstream:\n  sasl:\n    mechanism: SCRAM-SHA-512\n    username: u\n    password_file: /run/pw\n",
			nil, &SASL{Mechanism: SASLScramSHA512, Username: "u", PasswordFile: "/run/pw"}},
		{"oauth client credentials", "upstream:\n  tls: {}\n  sasl:\n    mechanism: OAUTHBEARER\n    token_url: https://idp.example.com/token\n" +
			"    client_id: c\n    client_secret: s\n    scopes: [kafka, read]\n    extensions: {logicalCluster: lkc-1, identityPoolId: pool-2}\n",
			&TLS{}, &SASL{Mechanism: SASLOAuthBearer, TokenURL: "https://idp.example.com/token", ClientID: "c", ClientSecret: "s",
				Scopes: []string{"kafka", "read"}, Extensions: map[string]string{"logicalCluster": "lkc-1", "identityPoolId": "pool-2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("m.yaml", []byte(tc.content))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Upstream.TLS, tc.tls) {
				t.Errorf("tls: got %+v, want %+v", cfg.Upstream.TLS, tc.tls)
			}
			if !reflect.DeepEqual(cfg.Upstream.SASL, tc.sasl) {
				t.Errorf("sasl: got %+v, want %+v", cfg.Upstream.SASL, tc.sasl)
			}
		})
	}
}

// Every mistake in the sections is reported at its key, with its line.
func TestUpstreamSecurityErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []wantErr
	}{
		{
			name:    "unknown tls key",
			content: "upstream:\n  tls:\n    ca_fil: x\n",
			want:    []wantErr{{3, 5, "upstream.tls.ca_fil", `did you mean "ca_file"?`}},
		},
		{
			name:    "client_auth is for listeners",
			content: "upstream:\n  tls:\n    client_auth: required\n",
			want:    []wantErr{{3, 18, "upstream.tls.client_auth", "is for listeners"}},
		},
		{
			name:    "cert without key",
			content: "upstream:\n  tls:\n    cert_file: c.pem\n",
			want:    []wantErr{{3, 5, "upstream.tls", "cert_file and key_file go together"}},
		},
		{
			name:    "bad tls version",
			content: "upstream:\n  tls:\n    min_version: \"1.1\"\n",
			want:    []wantErr{{3, 18, "upstream.tls.min_version", "want 1.2 or 1.3"}},
		},
		{
			name:    "empty sasl",
			content: "upstream:\n  sasl: {}\n",
			want:    []wantErr{{0, 0, "upstream.sasl.mechanism", "must be set: one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"}},
		},
		{
			name:    "unknown mechanism",
			content: "upstream:\n  sasl:\n    mechanism: scram-sha-256\n",
			want:    []wantErr{{3, 16, "upstream.sasl.mechanism", `got "scram-sha-256"`}},
		},
		{
			name:    "plain without user or password",
			content: "upstream:\n  sasl:\n    mechanism: PLAIN\n",
			want: []wantErr{
				{3, 5, "upstream.sasl", "password or password_file is required"},
				{0, 0, "upstream.sasl.username", "must not be empty"},
			},
		},
		{
			name:    "password twice",
			content: "upstream:\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: p\n    password_file: f\n",
			want:    []wantErr{{3, 5, "upstream.sasl", "set password or password_file, not both"}},
		},
		{
			name:    "oauth keys on scram",
			content: "upstream:\n  sasl:\n    mechanism: SCRAM-SHA-256\n    username: u\n    password: p\n    token: t\n",
			want:    []wantErr{{6, 12, "upstream.sasl.token", "is for OAUTHBEARER, not SCRAM-SHA-256"}},
		},
		{
			name:    "oauth without a token source",
			content: "upstream:\n  sasl:\n    mechanism: OAUTHBEARER\n",
			want:    []wantErr{{3, 5, "upstream.sasl", "exactly one of token, token_file and token_url"}},
		},
		{
			name:    "oauth with two token sources",
			content: "upstream:\n  sasl:\n    mechanism: OAUTHBEARER\n    token: t\n    token_file: f\n",
			want:    []wantErr{{3, 5, "upstream.sasl", "exactly one of token, token_file and token_url"}},
		},
		{
			name: "client credentials over http, without a secret",
			content: "upstream:\n  sasl:\n    mechanism: OAUTHBEARER\n    token_url: http://idp/token\n    client_id: c\n" +
				"    username: u\n",
			want: []wantErr{
				{4, 16, "upstream.sasl.token_url", `must be an https:// URL, got "http://idp/token"`},
				{6, 15, "upstream.sasl.username", "is for PLAIN and SCRAM, not OAUTHBEARER"},
				{0, 0, "upstream.sasl.client_secret", "must not be empty"},
			},
		},
		{
			name:    "client id on a static token",
			content: "upstream:\n  sasl:\n    mechanism: OAUTHBEARER\n    token: t\n    client_id: c\n    scopes: [a]\n",
			want: []wantErr{
				{5, 16, "upstream.sasl.client_id", "is for the client-credentials flow (token_url)"},
				{6, 13, "upstream.sasl.scopes", "is for the client-credentials flow (token_url)"},
			},
		},
		{
			name: "bad scope and extensions",
			content: "upstream:\n  sasl:\n    mechanism: OAUTHBEARER\n    token_url: https://idp/token\n    client_id: c\n" +
				"    client_secret: s\n    scopes: [\"a b\"]\n    extensions: {auth: x, \"pool-id\": y, ok: \"a\\u0001\"}\n",
			want: []wantErr{
				{7, 14, "upstream.sasl.scopes[0]", "one non-empty word"},
				{8, 17, "upstream.sasl.extensions", `extension "auth"`},
				{8, 17, "upstream.sasl.extensions", `extension "ok": the value may not hold control characters`},
				{8, 17, "upstream.sasl.extensions", `extension "pool-id": a name is letters only`},
			},
		},
		{
			name:    "extensions of the wrong shape",
			content: "upstream:\n  sasl:\n    mechanism: OAUTHBEARER\n    token: t\n    extensions: [a]\n",
			want:    []wantErr{{5, 17, "upstream.sasl.extensions", "cannot unmarshal"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(tc.content))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want Errors, got %v", err)
			}
			checkErrors(t, errs, tc.want)
		})
	}
}
