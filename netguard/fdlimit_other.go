//go:build !unix

package netguard

func openFileLimit() uint64 { return 0 }
