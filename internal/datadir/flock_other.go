//go:build !unix

package datadir

import "os"

// tryLock does not lock where flock(2) does not exist: the pid is still
// written, but two processes can hold the directory at once.
func tryLock(*os.File) (held bool, err error) { return false, nil }
