// Package datadir gives a data directory to one meshka process at a time,
// so two `meshka dev` runs cannot both write the embedded upstream's files.
package datadir

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the lock file inside a locked directory. It holds the pid of
// the process that locked the directory, for the message another process
// gets.
const FileName = "meshka.lock"

// HeldError is returned by Acquire when another process holds the directory.
type HeldError struct {
	Dir string
	PID int // 0 when the holder had not written its pid yet
}

func (e *HeldError) Error() string {
	pid := "pid unknown"
	if e.PID > 0 {
		pid = "pid " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("data dir %s is in use by another meshka (%s)", e.Dir, pid)
}

// A Lock holds a data directory until Release or until the process exits;
// the lock is the kernel's, so a process that crashes leaves nothing that
// blocks the next one.
type Lock struct {
	f *os.File
}

// Acquire creates dir if needed and takes it for this process, or returns a
// *HeldError naming the process that has it. It does not block.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	// Never truncated on open: until the lock is ours, the pid in the
	// file is the holder's.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s: lock %s: %w", dir, path, err)
	}
	if held {
		pid := readPID(f)
		f.Close()
		return nil, &HeldError{Dir: dir, PID: pid}
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s: write %s: %w", dir, path, err)
	}
	return &Lock{f: f}, nil
}

// Release gives the directory up. The lock file stays: removing it would
// let a process that opened it just before take a lock on a file no
// longer in the directory while a third takes one on a new file.
func (l *Lock) Release() error {
	// Emptied first, so the file never names a process that has let go.
	_ = l.f.Truncate(0)
	return l.f.Close()
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
