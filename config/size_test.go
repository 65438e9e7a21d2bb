package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "17B", want: 17},
		{in: "64KiB", want: 64 * KiB},
		{in: "64MiB", want: 64 * MiB},
		{in: "64 MiB", want: 64 * MiB},
		{in: "  2  GiB ", want: 2 * GiB},
		{in: "1gib", want: GiB},
		{in: "1GIB", want: GiB},
		{in: "3TiB", want: 3 * TiB},
		{in: "1kb", want: 1000},
		{in: "5MB", want: 5_000_000},
		{in: "1gb", want: 1_000_000_000},
		{in: "2TB", want: 2_000_000_000_000},
		{in: "1.5GiB", want: 1536 * MiB},
		{in: "0.5KB", want: 500},
		{in: "8388607TiB", want: 8388607 * TiB},
		{in: "", wantErr: "invalid size"},
		{in: "MiB", wantErr: "invalid size"},
		{in: "12 parsecs", wantErr: `unknown unit "parsecs"`},
		{in: "12Mi", wantErr: `unknown unit "Mi"`},
		{in: "12M", wantErr: `unknown unit "M"`},
		{in: "1.2.3MiB", wantErr: `unknown unit ".3MiB"`},
		{in: "-1", wantErr: "must not be negative"},
		{in: "-64MiB", wantErr: "must not be negative"},
		{in: "0.1KiB", wantErr: "not a whole number of bytes"},
		{in: "1.", wantErr: "invalid size"},
		{in: ".5MiB", wantErr: "invalid size"},
		{in: "1e6", wantErr: `unknown unit "e6"`},
		{in: "8388608TiB", wantErr: "too large"},
		{in: "99999999999999999999", wantErr: "too large"},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseSize(%q): unexpected error %v", tc.in, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseSize(%q) = %d, %v; want error containing %q", tc.in, got, err, tc.wantErr)
		case tc.wantErr == "" && got != tc.want:
			t.Errorf("ParseSize(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestSizeYAML(t *testing.T) {
	tests := []struct {
		yaml    string
		want    Size
		wantErr string
	}{
		{yaml: "1048576", want: MiB},
		{yaml: "0x400", want: KiB},
		{yaml: "64MiB", want: 64 * MiB},
		{yaml: `"64 MiB"`, want: 64 * MiB},
		{yaml: "'1024'", want: KiB},
		{yaml: "-5", wantErr: "must not be negative"},
		{yaml: "1.5", wantErr: `with a unit such as "64MiB"`},
		{yaml: "true", wantErr: `with a unit such as "64MiB"`},
		{yaml: "[1]", wantErr: "got a list"},
		{yaml: "99999999999999999999", wantErr: `with a unit such as "64MiB"`},
		{yaml: "18446744073709551615", wantErr: "out of range"},
	}
	for _, tc := range tests {
		var s Size
		err := yaml.Unmarshal([]byte(tc.yaml), &s)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.yaml, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: got %d, %v; want error containing %q", tc.yaml, s, err, tc.wantErr)
		case tc.wantErr == "" && s != tc.want:
			t.Errorf("%s: got %d, want %d", tc.yaml, s, tc.want)
		}
	}
}

func TestSizeMarshal(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0\n"},
		{1000, "1000\n"},
		{KiB, "1KiB\n"},
		{1536 * KiB, "1536KiB\n"},
		{100 * MiB, "100MiB\n"},
		{GiB, "1GiB\n"},
		{5 * TiB, "5TiB\n"},
		{GiB + 1, "1073741825\n"},
	}
	for _, tc := range tests {
		out, err := yaml.Marshal(tc.in)
		if err != nil || string(out) != tc.want {
			t.Errorf("Marshal(%d) = %q, %v; want %q", int64(tc.in), out, err, tc.want)
			continue
		}
		var back Size
		if err := yaml.Unmarshal(out, &back); err != nil || back != tc.in {
			t.Errorf("round trip of %d gave %d, %v", int64(tc.in), back, err)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	tests := []struct {
		yaml    string
		want    time.Duration
		wantErr string
	}{
		{yaml: "10s", want: 10 * time.Second},
		{yaml: "250ms", want: 250 * time.Millisecond},
		{yaml: `"1h30m"`, want: 90 * time.Minute},
		{yaml: "0s", want: 0},
		{yaml: "-5s", want: -5 * time.Second},
		{yaml: "10", wantErr: `duration 10 has no unit: write e.g. "10s"`},
		{yaml: "0", wantErr: "has no unit"},
		{yaml: "1.5", wantErr: "has no unit"},
		{yaml: `"10"`, wantErr: `invalid duration "10"`},
		{yaml: "ten seconds", wantErr: `invalid duration "ten seconds"`},
		{yaml: "10 s", wantErr: "invalid duration"},
		{yaml: "{a: 1}", wantErr: "got a mapping"},
	}
	for _, tc := range tests {
		var d Duration
		err := yaml.Unmarshal([]byte(tc.yaml), &d)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.yaml, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: got %v, %v; want error containing %q", tc.yaml, d.D(), err, tc.wantErr)
		case tc.wantErr == "" && d.D() != tc.want:
			t.Errorf("%s: got %v, want %v", tc.yaml, d.D(), tc.want)
		}
	}
}

func TestDurationMarshal(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{250 * time.Millisecond, "250ms"},
		{10 * time.Second, "10s"},
		{10 * time.Minute, "10m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
	}
	for _, tc := range tests {
		out, err := yaml.Marshal(Duration(tc.in))
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("Marshal(%v) = %q, %v; want %q", tc.in, out, err, tc.want)
			continue
		}
		var back Duration
		if err := yaml.Unmarshal(out, &back); err != nil || back.D() != tc.in {
			t.Errorf("round trip of %v gave %v, %v", tc.in, back.D(), err)
		}
	}
}
