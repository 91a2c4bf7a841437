package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeURL GETs a node's /metrics and parses it.
func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// sample is the value of name's sample with label l=v ("" for any).
func sample(fams map[string]*dto.MetricFamily, name, l, v string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		ok := l == ""
		for _, lp := range m.Label {
			ok = ok || (lp.GetName() == l && lp.GetValue() == v)
		}
		if !ok {
			continue
		}
		if m.Counter != nil {
			return m.Counter.GetValue(), true
		}
		return m.Gauge.GetValue(), true
	}
	return 0, false
}

// Two member processes with the HTTP API: `shoal healthcheck` fails where
// nothing answers and passes on each member's /readyz once it has joined;
// /metrics shows the membership, the forwards of a submission split by
// owner, and the tasks done across the two.
func TestClusterMetricsAndReadiness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if out, err := runShoalCombined(t, ctx, "healthcheck", "--url", "http://"+freeAddr(t)+"/readyz", "--timeout", "1s"); err == nil {
		t.Fatalf("healthcheck of nothing passed: %s", out)
	}

	c := &testCluster{tmp: t.TempDir()}
	var https []string
	var seed string
	for i := range 2 {
		name, g, r, h := fmt.Sprintf("n%d", i+1), freeAddr(t), freeAddr(t), freeAddr(t)
		args := []string{"node", "--name", name, "--data", filepath.Join(c.tmp, name), "--listen", r,
			"--gossip", g, "--gossip-fast", "--http", h, "--log-level", "info"}
		if seed != "" {
			args = append(args, "--join", seed)
		} else {
			seed = g
		}
		c.procs = append(c.procs, startProc(t, filepath.Join(c.tmp, name+".log"), "listening on", args...))
		c.remotes, c.names, https = append(c.remotes, r), append(c.names, name), append(https, h)
	}
	for _, r := range c.remotes {
		for {
			if st := c.status(t, ctx, r); st != nil && len(st.Members) == 2 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %s never saw 2 members; logs in %s", r, c.tmp)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond) // routing follows membership
	for _, h := range https {
		out, err := runShoalCombined(t, ctx, "healthcheck", "--url", "http://"+h+"/readyz")
		if err != nil || !strings.HasPrefix(out, "200 ") {
			t.Fatalf("healthcheck %s: %v %s", h, err, out)
		}
	}
	for i := range c.remotes {
		c.worker(t, i, c.names[i], 8)
	}
	const n = 200
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "m-%d\n", i)
	}
	if _, err := runShoal(t, ctx, strings.NewReader(in.String()), "submit", "--node", c.remotes[0], "--type", "echo",
		"--stdin", "--batch", "200", "--wait", "--timeout", "60s"); err != nil {
		t.Fatalf("submit: %v; logs in %s", err, c.tmp)
	}
	var done float64
	for i, h := range https {
		fams := scrapeURL(t, "http://"+h+"/metrics")
		if v, _ := sample(fams, "shoal_cluster_members", "", ""); v != 2 {
			t.Errorf("%s: shoal_cluster_members %v, want 2", c.names[i], v)
		}
		if v, _ := sample(fams, "shoal_node_ready", "", ""); v != 1 {
			t.Errorf("%s: shoal_node_ready %v, want 1", c.names[i], v)
		}
		if v, _ := sample(fams, "shoal_cluster_partitions", "member", c.names[i]); v == 0 {
			t.Errorf("%s owns no partition in its metrics", c.names[i])
		}
		d, _ := sample(fams, "shoal_tasks_done_total", "", "")
		done += d
		if i == 0 {
			if v, _ := sample(fams, "shoal_cluster_forwarded_requests_total", "router", "intake"); v < 1 {
				t.Errorf("n1 forwarded %v submissions, want >= 1 (the part n2 owns)", v)
			}
		}
	}
	if done != n {
		t.Errorf("shoal_tasks_done_total over the members: %v, want %d", done, n)
	}
}
