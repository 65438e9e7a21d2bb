package mesh

import (
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A keyed record goes to the partition franz-go's default partitioner
// (murmur2, as the Java client's) picks, for keys of every length.
func TestKeyPartitionAsFranzGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int32{1, 2, 3, 7, 12, 64, 1000} {
		kp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
		for i := range 2000 {
			key := make([]byte, i%40)
			for j := range key {
				key[j] = byte(rng.Uint32())
			}
			want := int32(kp.Partition(&kgo.Record{Key: key}, int(n)))
			if got := KeyPartition(key, n); got != want {
				t.Fatalf("key %x over %d partitions: %d, franz-go %d", key, n, got, want)
			}
		}
	}
}
