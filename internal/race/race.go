//go:build race

// Package race says whether the race detector is on. Tests of actor
// remoting between nodes in one process skip under it: protoactor's
// remoting races with itself there (every remote.Start sets gRPC's
// process-wide logger; its endpoint manager's stop and endpoint events
// touch one map unguarded), so `make test` runs those tests once more
// without it.
package race

// Enabled is true in a binary built with -race.
const Enabled = true
