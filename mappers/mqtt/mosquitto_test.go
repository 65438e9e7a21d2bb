package mqtt_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// toolOr skips the test when a program it runs is not on PATH, except in
// CI, which is to install it (.ci/run).
func toolOr(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not on PATH, and CI is expected to install it: %v", name, err)
			}
			t.Skipf("%s is not on PATH: %v", name, err)
		}
	}
}

// mosquittoSub is a mosquitto_sub process and the lines it prints.
type mosquittoSub struct {
	cmd       *exec.Cmd
	mu        sync.Mutex
	lines     []string
	suback    chan struct{}
	done      chan struct{}
	waitErr   error
	sawSuback bool
}

// msgFormat is how the subscribers print a message: MSG, then topic,
// QoS, retain flag, user properties, content type and payload.
const msgFormat = "MSG|%t|%q|%r|%P|%C|%p"

// startSub runs mosquitto_sub with args (in debug mode, to see its
// SUBACK, and its output line buffered) and returns once it is
// subscribed.
func startSub(t *testing.T, ctx context.Context, host, port string, args ...string) *mosquittoSub {
	t.Helper()
	args = append([]string{"-h", host, "-p", port, "-d", "-F", msgFormat}, args...)
	// stdbuf: mosquitto_sub's stdout to a pipe is line buffered only so
	s := &mosquittoSub{cmd: exec.CommandContext(ctx, "stdbuf", append([]string{"-oL", "mosquitto_sub"}, args...)...),
		suback: make(chan struct{}), done: make(chan struct{})}
	s.cmd.WaitDelay = 5 * time.Second
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("mosquitto_sub %v: %v", args, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.lines = append(s.lines, line)
			if !s.sawSuback && strings.Contains(line, "received SUBACK") {
				s.sawSuback = true
				close(s.suback)
			}
			s.mu.Unlock()
		}
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	select {
	case <-s.suback:
	case <-s.done:
		t.Fatalf("mosquitto_sub %v ended before subscribing: %v\n%s", args, s.waitErr, s.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("mosquitto_sub %v did not subscribe within 20s:\n%s", args, s.output())
	}
	return s
}

func (s *mosquittoSub) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// messages waits for mosquitto_sub to end (it exits after -C messages)
// and returns the messages it printed, by topic, each as its fields
// after the topic.
func (s *mosquittoSub) messages(t *testing.T) map[string][]string {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("mosquitto_sub did not end within 30s:\n%s", s.output())
	}
	if s.waitErr != nil {
		t.Fatalf("mosquitto_sub: %v\n%s", s.waitErr, s.output())
	}
	out := map[string][]string{}
	for _, line := range strings.Split(s.output(), "\n") {
		if f, ok := strings.CutPrefix(line, "MSG|"); ok {
			parts := strings.Split(f, "|")
			out[parts[0]] = parts[1:]
		}
	}
	return out
}

// mosquittoPub runs mosquitto_pub to its end.
func mosquittoPub(t *testing.T, ctx context.Context, host, port string, args ...string) {
	t.Helper()
	args = append([]string{"-h", host, "-p", port}, args...)
	out, err := exec.CommandContext(ctx, "mosquitto_pub", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %v: %v\n%s", args, err, out)
	}
}

// The Mosquitto command-line clients, MQTT 3.1.1 and 5, through a node:
// what mosquitto_pub publishes at QoS 0, 1 and 2, retained, and with MQTT
// 5 properties reaches mosquitto_sub subscribers of both versions at the
// publish's QoS, and is read from Kafka by franz-go as records keyed by
// the topic name with the documented headers; a later subscriber gets
// the retained message, flagged retained.
func TestMosquittoScript(t *testing.T) {
	toolOr(t, "mosquitto_pub", "mosquitto_sub", "stdbuf")
	env, addr := start(t)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	sub311 := startSub(t, ctx, host, port, "-V", "mqttv311", "-i", "sub-311", "-q", "2", "-t", "script/#", "-C", "4")
	sub5 := startSub(t, ctx, host, port, "-V", "mqttv5", "-i", "sub-5", "-q", "2", "-t", "script/#", "-C", "4")

	mosquittoPub(t, ctx, host, port, "-V", "mqttv311", "-i", "pub-q0", "-q", "0", "-t", "script/q0", "-m", "zero")
	mosquittoPub(t, ctx, host, port, "-V", "mqttv311", "-i", "pub-q1", "-q", "1", "-t", "script/q1", "-m", "one")
	mosquittoPub(t, ctx, host, port, "-V", "mqttv5", "-i", "pub-q2", "-q", "2", "-t", "script/q2", "-m", "two",
		"-D", "publish", "user-property", "site", "north", "-D", "publish", "content-type", "text/plain")
	mosquittoPub(t, ctx, host, port, "-V", "mqttv311", "-i", "pub-kept", "-q", "1", "-r", "-t", "script/kept", "-m", "kept")

	// topic: QoS, retain flag, user properties, content type, payload; a
	// message forwarded to a live subscription is not flagged retained
	// [MQTT-3.3.1-9], and 3.1.1 has no properties
	want311 := map[string][]string{
		"script/q0":   {"0", "0", "", "", "zero"},
		"script/q1":   {"1", "0", "", "", "one"},
		"script/q2":   {"2", "0", "", "", "two"},
		"script/kept": {"1", "0", "", "", "kept"},
	}
	want5 := map[string][]string{
		"script/q0":   {"0", "0", "", "", "zero"},
		"script/q1":   {"1", "0", "", "", "one"},
		"script/q2":   {"2", "0", "site:north", "text/plain", "two"},
		"script/kept": {"1", "0", "", "", "kept"},
	}
	for name, c := range map[string]struct {
		s    *mosquittoSub
		want map[string][]string
	}{"3.1.1": {sub311, want311}, "5": {sub5, want5}} {
		got := c.s.messages(t)
		for topic, w := range c.want {
			if g := got[topic]; strings.Join(g, "|") != strings.Join(w, "|") {
				t.Errorf("the MQTT %s subscriber printed %s as %q, want %q", name, topic, g, w)
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("the MQTT %s subscriber printed %d topics: %q", name, len(got), got)
		}
	}

	later := startSub(t, ctx, host, port, "-V", "mqttv5", "-i", "sub-later", "-q", "1", "-t", "script/kept", "-C", "1")
	if g := strings.Join(later.messages(t)["script/kept"], "|"); g != "1|1|||kept" {
		t.Errorf("a later subscriber got the retained message as %q, want %q", g, "1|1|||kept")
	}

	// The records, as a Kafka consumer reads them.
	type rec struct{ value, qos, client, retain, site, contentType string }
	wantRecs := map[string]rec{
		"script/q0":   {"zero", "", "pub-q0", "", "", ""},
		"script/q1":   {"one", "1", "pub-q1", "", "", ""},
		"script/q2":   {"two", "2", "pub-q2", "", "north", "text/plain"},
		"script/kept": {"kept", "1", "pub-kept", "1", "", ""},
	}
	for _, r := range consume(t, env, "mqtt-messages", len(wantRecs)) {
		h := func(k string) string { v, _ := header(r, k); return v }
		got := rec{string(r.Value), h("mqtt:qos"), h("mqtt:client"), h("mqtt:retain"), h("site"), h("mqtt:content-type")}
		if w, ok := wantRecs[string(r.Key)]; !ok || got != w {
			t.Errorf("record %s: %+v, want %+v", r.Key, got, w)
		}
	}
	kept := consume(t, env, "mqtt-retained", 1)[0]
	if string(kept.Key) != "script/kept" || string(kept.Value) != "kept" {
		t.Errorf("the retained topic has %s = %q, want script/kept = kept", kept.Key, kept.Value)
	}
}
