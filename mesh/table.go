package mesh

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"google.golang.org/protobuf/proto"

	"github.com/meshka/meshka/actors/table"
	"github.com/meshka/meshka/cluster"
)

// ErrTableMemory is the error (errors.Is) of every call on a table whose
// entries outgrew tables.max_bytes on the node that holds it.
var ErrTableMemory = table.ErrMemory

// Entry is a key's latest record in a table. Its slices must not be
// modified.
type Entry struct {
	Key       []byte
	Value     []byte // never nil: a tombstone deletes the key
	Headers   []Header
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// ScanOptions select a page of a table's entries.
type ScanOptions struct {
	Prefix []byte // only keys starting with it (all keys when empty)
	After  []byte // only keys after it (from the first when nil): the last key of the previous page
	// Limit bounds the page's entries (100 when 0, at most 10000); a
	// page also stops once it holds 1 MiB of keys, values and headers.
	Limit int
}

// ScanPage is one page of a scan, in key order.
type ScanPage struct {
	Entries []Entry
	More    bool // further entries match: scan again with After the last key
	// Positions are, per partition, the offsets this page reflects every
	// record below: Watch from them sees every change after the page.
	Positions map[int32]int64
}

// Table is a topic seen as the latest value of each key, as a compacted
// topic keeps it: a record with a null value (a tombstone) deletes its
// key. One table actor per topic holds it in memory, on the node that
// owns it, built from upstream and kept current as records come; every
// node's calls reach it through the mesh. Safe for concurrent use; make
// one per topic and keep it (its writes share a producer).
type Table struct {
	m     *Mesh
	topic string
	id    string

	once     sync.Once
	producer *Producer
}

// Table is the table over topic. It starts nothing: the table actor is
// activated by the first call.
func (m *Mesh) Table(topic string) *Table {
	return &Table{m: m, topic: topic, id: table.Identity(m.upstreamName, topic)}
}

// Topic is the table's topic.
func (t *Table) Topic() string { return t.topic }

// Get is key's entry, and false when the table has no such key. It waits
// while the table loads (after its first use, or a move to another node)
// and while its owner moves, until ctx ends.
func (t *Table) Get(ctx context.Context, key []byte) (Entry, bool, error) {
	if key == nil {
		return Entry{}, false, fmt.Errorf("mesh: table %q: a nil key (Kafka's null key) is never an entry", t.topic)
	}
	v, err := t.ask(ctx, func(wait int32) proto.Message { return &table.GetRequest{Key: key, TimeoutMillis: wait} })
	if err != nil {
		return Entry{}, false, err
	}
	resp := v.(*table.GetResponse)
	if !resp.Found {
		return Entry{}, false, nil
	}
	return t.entry(resp.Entry), true, nil
}

// Scan is one page of the entries whose keys start with o.Prefix, after
// o.After, in key order. Pages are taken one at a time: a scan of many
// pages is not one snapshot, and Watch from the first page's Positions
// sees every change made since (some perhaps reflected by later pages
// already). It waits as Get does.
func (t *Table) Scan(ctx context.Context, o ScanOptions) (ScanPage, error) {
	if o.Limit < 0 {
		return ScanPage{}, fmt.Errorf("mesh: table %q: scan limit %d", t.topic, o.Limit)
	}
	v, err := t.ask(ctx, func(wait int32) proto.Message {
		return &table.ScanRequest{Prefix: o.Prefix, After: o.After, HasAfter: o.After != nil, Limit: int32(min(o.Limit, table.MaxScanLimit)),
			TimeoutMillis: wait}
	})
	if err != nil {
		return ScanPage{}, err
	}
	resp := v.(*table.ScanResponse)
	page := ScanPage{Entries: make([]Entry, len(resp.Entries)), More: resp.More, Positions: resp.Positions}
	for i, it := range resp.Entries {
		page.Entries[i] = t.entry(it)
	}
	if page.Positions == nil {
		page.Positions = map[int32]int64{}
	}
	return page, nil
}

// Watch delivers the changes of the keys starting with prefix (every key
// when empty): each record written from the offsets in from on (a
// ScanPage's Positions: the snapshot, then every change after it, none
// missed), or, for partitions from does not name, from now on. A delete
// comes as a record with a nil Value. It is a Subscription (see
// Subscribe), with its flow control.
func (t *Table) Watch(ctx context.Context, prefix []byte, from map[int32]int64) (*Subscription, error) {
	if prefix == nil {
		prefix = []byte{}
	}
	return t.m.Subscribe(ctx, SubscribeOptions{Topic: t.topic, Start: AtOffsets(from), Filter: Filter{Key: KeyPrefix(prefix)}})
}

// Put writes value (an empty one when nil: Put never deletes) as key's
// latest, waits for upstream to acknowledge it (acks=all) and then for
// the table to reflect it, so a Get that follows, on any node, sees it
// or a later write. An error after upstream's acknowledgement (the
// table over its memory bound, ctx ending) leaves the record written.
func (t *Table) Put(ctx context.Context, key, value []byte, headers ...Header) (Entry, error) {
	if value == nil {
		value = []byte{}
	}
	w, err := t.write(ctx, key, value, headers)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Key: w.Key, Value: w.Value, Headers: w.Headers, Partition: w.Partition, Offset: w.Offset, Timestamp: w.Timestamp}, nil
}

// Delete writes a tombstone for key and waits as Put does, so a Get that
// follows finds no entry.
func (t *Table) Delete(ctx context.Context, key []byte) error {
	_, err := t.write(ctx, key, nil, nil)
	return err
}

func (t *Table) write(ctx context.Context, key, value []byte, headers []Header) (Record, error) {
	if key == nil {
		return Record{}, fmt.Errorf("mesh: table %q: a nil key (Kafka's null key) is never an entry", t.topic)
	}
	t.once.Do(func() { t.producer = t.m.NewProducer(ProducerOptions{Acks: AcksAll}) })
	written, err := t.producer.ProduceSync(ctx, Record{Topic: t.topic, Partition: -1, Key: key, Value: value, Headers: headers})
	if err != nil {
		return Record{}, err
	}
	w := written[0]
	_, err = t.ask(ctx, func(wait int32) proto.Message {
		return &table.WaitRequest{Partition: w.Partition, Offset: w.Offset + 1, TimeoutMillis: wait}
	})
	return w, err
}

func (t *Table) entry(it *table.Item) Entry {
	e := it.Entry()
	return Entry{Key: e.Key, Value: e.Value, Headers: e.Headers, Partition: e.Partition, Offset: e.Offset, Timestamp: time.UnixMilli(e.Timestamp)}
}

const (
	// tableWait is how long one ask lets the table park it (loading, or
	// not at the offset yet) before it answers TIMEOUT and is asked again.
	tableWait = 10 * time.Second
	// tableSilence is how much longer than that an ask waits for any
	// answer: past it, the owner is taken for lost and asked again.
	tableSilence = 5 * time.Second
)

// tableAnswer is what every table response has.
type tableAnswer interface {
	GetCode() table.Code
	GetError() string
}

// ask sends the request build makes (given how long the actor may park
// it) to the table's actor, wherever it is, until an answer comes that is
// not a moment's trouble or ctx ends: while the table moves (its owner
// refuses, stops before answering, cannot be reached or is lost) or
// loads, it asks again after a pause, and the table is rebuilt by its new
// owner. After the Mesh's Close it answers ErrClosed.
func (t *Table) ask(ctx context.Context, build func(waitMillis int32) proto.Message) (any, error) {
	var last error
	for {
		if t.m.ctx.Err() != nil {
			return nil, ErrClosed
		}
		wait := tableWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, max(time.Until(dl), time.Millisecond))
		}
		actx, cancel := context.WithTimeout(ctx, wait+tableSilence)
		v, err := t.m.cluster.Request(actx, table.Kind, t.id, build(int32(wait/time.Millisecond)))
		cancel()
		if err == nil {
			a, ok := v.(tableAnswer)
			if !ok {
				return nil, fmt.Errorf("mesh: table %q: answered %T", t.topic, v)
			}
			err = table.ErrorOf(a.GetCode(), a.GetError())
			var te *table.Error
			switch {
			case err == nil:
				return v, nil
			case errors.As(err, &te) && te.Code == table.Code_UNKNOWN_TOPIC:
				return nil, fmt.Errorf("mesh: table %q: %w", t.topic, kerr.UnknownTopicOrPartition)
			case !errors.As(err, &te) || !te.Retriable():
				return nil, fmt.Errorf("mesh: table %q: %w", t.topic, err)
			}
		} else if !errors.Is(err, cluster.ErrNotOwner) && !errors.Is(err, cluster.ErrGone) &&
			!errors.Is(err, cluster.ErrUnreachable) && (ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded)) {
			return nil, fmt.Errorf("mesh: table %q: %w", t.topic, err)
		}
		last = err
		pause(ctx, retryWait)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mesh: table %q: %w (last: %v)", t.topic, ctx.Err(), last)
		}
	}
}
