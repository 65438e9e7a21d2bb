//go:build unix

package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// flock locks belong to an open file, not to a process, so a second Acquire
// in the same process contends exactly as a second process would.
func TestLockExcludes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, filepath.Join(dir, FileName)), strconv.Itoa(os.Getpid())+"\n"; got != want {
		t.Errorf("lock file holds %q, want %q", got, want)
	}

	_, err = Acquire(dir)
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("second Acquire: got %v, want a *HeldError", err)
	}
	if held.PID != os.Getpid() || held.Dir != dir {
		t.Errorf("HeldError = %+v, want pid %d and dir %s", held, os.Getpid(), dir)
	}
	want := "data dir " + dir + " is in use by another meshka (pid " + strconv.Itoa(os.Getpid()) + ")"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	// The refused attempt must not have disturbed the holder's pid.
	if got := readFile(t, filepath.Join(dir, FileName)); got != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("after a refused Acquire the file holds %q", got)
	}

	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l, err = Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// A lock file left by a process that died names that process, but the
// kernel released its lock, so it must not stop the next one.
func TestStaleLockFileDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte("2147483646\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire over a stale file: %v", err)
	}
	defer l.Release()
	if got := readFile(t, path); got != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("lock file holds %q, want this process's pid", got)
	}
}

func TestHeldErrorWithoutPID(t *testing.T) {
	err := &HeldError{Dir: "d"}
	if !strings.HasSuffix(err.Error(), "(pid unknown)") {
		t.Errorf("got %q", err)
	}
}

func TestLockOnAFileFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(file)
	var held *HeldError
	if err == nil || errors.As(err, &held) || !strings.Contains(err.Error(), "data dir "+file) {
		t.Errorf("Acquire on a regular file: got %v, want an error naming it", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
