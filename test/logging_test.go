package test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/internal/testenv"
)

// At debug level an operator sees produce and consume happen (connections
// and requests); deleting a topic that is being read ends every
// partition's stream, and that is one line at info level for the topic,
// not one per partition.
func TestLogging(t *testing.T) {
	logs := &syncBuffer{}
	env := testenv.StartLogged(t, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := timeout(t, 60*time.Second)
	const topic, parts = "logged", 6
	admin := env.Client(t)
	createTopic(t, ctx, admin, topic, parts, nil)
	p := manualProducer(t, env)
	for i := int32(0); i < parts; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: i, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumeN(t, ctx, env.Client(t, kgo.ConsumeTopics(topic), fromStart()), parts)

	for _, want := range []string{"Kafka connection opened", "api=Produce", "api=Fetch", "partition stream started"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("debug log has no %q line after producing and consuming", want)
		}
	}

	resp, err := kadm.NewClient(admin).DeleteTopics(ctx, topic)
	if err != nil || resp.Error() != nil {
		t.Fatalf("delete %s: %v %v", topic, err, resp.Error())
	}
	for strings.Count(logs.String(), `level=DEBUG msg="partition stream stopped by upstream"`) < parts {
		if ctx.Err() != nil {
			t.Fatalf("streams of the deleted topic did not all end:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), `level=INFO msg="partition streams stopped by upstream"`); n != 1 {
		t.Errorf("deleting a %d-partition topic logged %d info lines, want 1", parts, n)
	}
}
