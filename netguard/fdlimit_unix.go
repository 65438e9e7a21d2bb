//go:build unix

package netguard

import "syscall"

// openFileLimit is the process's soft limit on open files, 0 if unknown.
// Go raises the soft limit to the hard one at start on Linux and macOS, so
// this is the most the process can open.
func openFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
