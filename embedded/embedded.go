// Package embedded runs an in-process Kafka-compatible cluster (franz-go's
// kfake) as the upstream of `meshka dev` and of meshka's tests.
package embedded

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config sizes the embedded cluster.
type Config struct {
	Brokers    int
	Partitions int32  // partitions of auto-created topics
	DataDir    string // persisted here when set; in memory otherwise
	ClusterID  string
}

// Start runs the cluster on free loopback ports. extra options come last,
// so tests can add hooks such as a counting listener.
func Start(cfg Config, extra ...kfake.Opt) (*kfake.Cluster, error) {
	if cfg.Brokers <= 0 {
		cfg.Brokers = 3
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 3
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = "meshka-embedded"
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(cfg.Brokers),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(cfg.Partitions)),
		kfake.ClusterID(cfg.ClusterID),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("embedded upstream: %w", err)
	}
	return c, nil
}
