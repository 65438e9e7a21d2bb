package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshka/meshka/admin"
)

// statusTimeout bounds `meshka status`'s one request, the node's asking
// of its peers included.
const statusTimeout = 10 * time.Second

// maxStatusBytes bounds the answer read.
const maxStatusBytes = 64 << 20

// The credentials `meshka status` sends when admin.allow_anonymous is
// false: environment variables rather than flags, so the password stays
// out of the process list and the shell's history.
const (
	adminUserEnv     = "MESHKA_ADMIN_USER"
	adminPasswordEnv = "MESHKA_ADMIN_PASSWORD"
)

// statusCmd serves `meshka status`: it asks one node's admin listener for
// the cluster's status and prints a line per node, then one per peer that
// did not answer. It exits 0 when every node is ready and every peer
// answered, 1 otherwise or when the admin listener cannot be asked.
func statusCmd(args []string, stdout, stderr io.Writer) int {
	c := statusCommand()
	rest, code, ok := c.start(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		return c.fail(stderr, "unexpected argument %q", rest[0])
	}
	addr := c.flag("admin").def
	if f := c.flag("admin"); f.set {
		addr = f.value
	}
	if host, port, err := net.SplitHostPort(addr); err != nil || host == "" || port == "" {
		return c.fail(stderr, "--admin %q: want HOST:PORT, the admin.listen (or admin.advertise) of a node", addr)
	}
	st, err := fetchStatus(addr, os.Getenv(adminUserEnv), os.Getenv(adminPasswordEnv))
	if err != nil {
		fmt.Fprintln(stderr, "meshka status:", err)
		return 1
	}
	if !printStatus(stdout, st) {
		return 1
	}
	return 0
}

// fetchStatus GETs addr's /api/status, with Basic credentials when user
// is set.
func fetchStatus(addr, user, password string) (admin.ClusterStatus, error) {
	var st admin.ClusterStatus
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	target := "http://" + addr + "/api/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Accept", "application/json")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return st, fmt.Errorf("the admin listener at %s did not answer within %s", addr, statusTimeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the dial's error, without the request's URL again
		}
		return st, fmt.Errorf("cannot reach the admin listener at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes))
	if err != nil {
		return st, fmt.Errorf("reading %s: %w", target, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && user == "":
		return st, fmt.Errorf("%s answered %s: the admin listener asks for credentials (admin.allow_anonymous is false); set %s and %s to a user of security.users", addr, resp.Status, adminUserEnv, adminPasswordEnv)
	case resp.StatusCode == http.StatusUnauthorized:
		return st, fmt.Errorf("%s answered %s: user %q and the password in %s are not a user of security.users", addr, resp.Status, user, adminPasswordEnv)
	case resp.StatusCode != http.StatusOK:
		return st, fmt.Errorf("%s answered %s: %s", target, resp.Status, errorOf(body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("%s: not a meshka status answer: %w", target, err)
	}
	return st, nil
}

// errorOf is the "error" of a JSON error answer, else the body's start.
func errorOf(body []byte) string {
	var e struct{ Error string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// printStatus writes the table of nodes, then a line per unreachable
// peer; it reports whether every node is ready and every peer answered.
func printStatus(w io.Writer, st admin.ClusterStatus) bool {
	ok := len(st.Unreachable) == 0
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREADY\tUPSTREAM\tKAFKA\tCONNECTIONS\tPARTITIONS\tGROUPS\tCACHE\tHIT RATIO\tREASON")
	for _, n := range st.Nodes {
		// A reason can be long: it is the last column, so it pads none
		// of the others.
		ready, reason := "yes", ""
		if !n.Ready {
			ok = false
			ready = "no"
			if len(n.Reasons) > 0 {
				reason = n.Reasons[0]
			}
			if len(n.Reasons) > 1 {
				reason += fmt.Sprintf(" (and %d more)", len(n.Reasons)-1)
			}
		}
		upstream := "up"
		if !n.Upstream.Up {
			upstream = "down"
		}
		conns := 0
		for _, k := range n.Connections {
			conns += k
		}
		ratio := "-"
		if n.Cache.Hits+n.Cache.Misses > 0 {
			ratio = strconv.FormatFloat(100*n.Cache.HitRatio, 'f', 1, 64) + "%"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n",
			n.ID, ready, upstream, n.Kafka, conns, len(n.Partitions), len(n.Groups), humanBytes(n.Cache.Bytes), ratio, reason)
	}
	tw.Flush()
	// tabwriter pads the cell before an empty REASON too.
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
	for _, p := range st.Unreachable {
		where := p.Admin
		if where == "" {
			where = "no admin address"
		}
		fmt.Fprintf(w, "node %d unreachable (%s): %s\n", p.ID, where, p.Error)
	}
	return ok
}

// humanBytes is n in B, KiB, MiB, GiB or TiB, one decimal past B.
func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}
