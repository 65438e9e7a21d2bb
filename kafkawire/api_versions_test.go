package kafkawire

import "testing"

// Against an upstream whose ranges start at v0 (Kafka 3.x), meshka keeps
// every minimum: a raised Produce minimum makes librdkafka stop compressing.
func TestAdvertisedNeverRaisesMinimum(t *testing.T) {
	upstream := map[int16][2]int16{0: {0, 9}, 1: {0, 11}, 2: {0, 7}, 3: {0, 12}, 18: {0, 3}, 11: {0, 9}, 68: {0, 1}}
	got := advertised(func(key int16) (int16, int16, bool) {
		r, ok := upstream[key]
		return r[0], r[1], ok
	})
	seen := map[int16]bool{}
	for _, k := range got {
		seen[k.ApiKey] = true
		r := upstream[k.ApiKey]
		if k.MinVersion != r[0] {
			t.Errorf("key %d: min %d, upstream's is %d", k.ApiKey, k.MinVersion, r[0])
		}
		if k.MaxVersion > r[1] || k.MaxVersion > apis[k.ApiKey].max {
			t.Errorf("key %d: max %d beyond upstream %d or meshka %d", k.ApiKey, k.MaxVersion, r[1], apis[k.ApiKey].max)
		}
	}
	if seen[68] {
		// KIP-848 groups are not implemented: not advertising them makes
		// clients use the classic protocol.
		t.Error("ConsumerGroupHeartbeat advertised, but meshka does not handle it")
	}
	for _, key := range []int16{0, 1, 2, 3, 11, 18} {
		if !seen[key] {
			t.Errorf("key %d not advertised", key)
		}
	}
}
