package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/metrics"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

const token = "t0ken"

// served is a node's HTTP API on a real loopback socket, built before the
// node starts (as a readiness probe sees it): /readyz answers from the node
// once it is set, /metrics from its collector.
type served struct {
	url  string
	node atomic.Pointer[node.Node]
	h    atomic.Pointer[http.Handler]
}

func serve(t *testing.T, system *actor.ActorSystem) *served {
	t.Helper()
	s := &served{}
	cfg := api.DefaultConfig()
	cfg.Token = token
	cfg.Ready = func(ctx context.Context) error {
		n := s.node.Load()
		if n == nil {
			return errors.New("node starting")
		}
		return n.Ready(ctx)
	}
	cfg.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := s.h.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "node starting", http.StatusServiceUnavailable)
	})
	srv, err := api.New(cfg, sdk.Local(system))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	s.url = "http://" + ln.Addr().String()
	return s
}

func (s *served) set(n *node.Node) {
	h := metrics.Handler(n, metrics.Config{})
	s.h.Store(&h)
	s.node.Store(n)
}

func get(t *testing.T, url, tok string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape reads /metrics over the socket and parses the exposition.
func (s *served) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, s.url+"/metrics", token)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the family's sample whose labels include want
// (name=value pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func want(t *testing.T, fams map[string]*dto.MetricFamily, v float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(fams, name, labels...)
	if !ok {
		t.Errorf("%s%v: missing", name, labels)
	} else if got != v {
		t.Errorf("%s%v = %v, want %v", name, labels, got, v)
	}
}

func startNode(t *testing.T, dir string, system *actor.ActorSystem) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig(dir)
	cfg.Name = "m1"
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := node.Start(context.Background(), cfg, system, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// runTasks runs ok tasks that succeed and bad ones that fail for good.
func runTasks(t *testing.T, system *actor.ActorSystem, prefix string, ok, bad int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := sdk.Local(system)
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "w1", Slots: 4, NoLoad: true})
	w.Handle("ok", func(context.Context, messages.Task) ([]byte, error) { return []byte("fine"), nil })
	w.Handle("bad", func(context.Context, messages.Task) ([]byte, error) {
		return nil, sdk.Permanent(errors.New("broken"))
	})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	t.Cleanup(func() { stop(); <-done })
	var tasks []sdk.Task
	for i := range ok + bad {
		typ := "ok"
		if i >= ok {
			typ = "bad"
		}
		tasks = append(tasks, sdk.Task{Type: typ, Payload: fmt.Appendf(nil, "%s%d", prefix, i), MaxAttempts: 1})
	}
	c := sdk.NewClient(conn)
	ids, err := c.SubmitBatch(ctx, tasks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, ids...); err != nil {
		t.Fatal(err)
	}
}

// A real node, its API on a socket: /readyz before and after start, the
// metrics against the node's own status after running tasks, and the
// durable totals after a restart.
func TestScrapeRealNode(t *testing.T) {
	dir := t.TempDir()
	system := actor.NewActorSystem()
	s := serve(t, system)
	if code, body := get(t, s.url+"/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "node starting") {
		t.Fatalf("/readyz before start: %d %s", code, body)
	}
	n := startNode(t, dir, system)
	s.set(n)
	if code, body := get(t, s.url+"/readyz", ""); code != http.StatusOK {
		t.Fatalf("/readyz after start: %d %s", code, body)
	}
	if code, _ := get(t, s.url+"/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d, want 401", code)
	}

	runTasks(t, system, "a", 5, 2)
	fams := s.scrape(t)
	st, err := n.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want(t, fams, 1, "shoal_node_info", "node", "m1")
	want(t, fams, 1, "shoal_node_ready")
	want(t, fams, 5, "shoal_tasks_done_total")
	want(t, fams, 2, "shoal_tasks_dead_total")
	want(t, fams, 7, "shoal_intake_accepted_tasks_total")
	want(t, fams, float64(st.Counters["granted"]), "shoal_dispatch_grants_total")
	want(t, fams, 0, "shoal_dispatch_leases")
	want(t, fams, 0, "shoal_pump_standby_tasks")
	want(t, fams, 0, "shoal_queue_depth_tasks", "class", "normal")
	want(t, fams, 1, "shoal_dispatch_executors", "state", "active")
	want(t, fams, 4, "shoal_dispatch_executor_slots", "executor", "w1")
	want(t, fams, 0, "shoal_flows_running")
	if g := st.Counters["granted"]; g < 7 {
		t.Errorf("status granted %d, want >= 7", g)
	}
	for _, h := range []string{"shoal_store_commit_duration_seconds", "shoal_store_fsync_duration_seconds"} {
		if c, ok := value(fams, h); !ok || c < 2 {
			t.Errorf("%s: %v observations (present %v), want >= 2", h, c, ok)
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("go_goroutines missing: the runtime collector is not registered")
	}
	if _, ok := fams["shoal_metrics_scrape_errors"]; ok {
		t.Errorf("scrape errors: %v", fams["shoal_metrics_scrape_errors"])
	}

	// A restart: the done and dead totals are the store's, and stay.
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, s.url+"/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "stopping") {
		t.Fatalf("/readyz after stop: %d %s", code, body)
	}
	system.Shutdown()
	system2 := actor.NewActorSystem()
	defer system2.Shutdown()
	s2 := serve(t, system2)
	n2 := startNode(t, dir, system2)
	defer n2.Stop()
	s2.set(n2)
	fams = s2.scrape(t)
	want(t, fams, 5, "shoal_tasks_done_total")
	want(t, fams, 2, "shoal_tasks_dead_total")
	want(t, fams, 0, "shoal_intake_accepted_tasks_total") // since start
	// A duplicate of the first task, then a new one.
	runTasks(t, system2, "a", 1, 0)
	runTasks(t, system2, "b", 1, 0)
	fams = s2.scrape(t)
	want(t, fams, 6, "shoal_tasks_done_total")
	want(t, fams, 1, "shoal_tasks_deduplicated_total")
}

// Every metric the collector describes is in docs/metrics.md, and the doc
// names none that does not exist.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	names := metrics.Names()
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(shoal_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	have := map[string]bool{}
	for _, name := range names {
		have[name] = true
		if !documented[name] {
			t.Errorf("%s is not in docs/metrics.md", name)
		}
		if !regexp.MustCompile(`^shoal_[a-z]+_[a-z_]+$`).MatchString(name) {
			t.Errorf("%s: not shoal_<subsystem>_<name>_<unit>", name)
		}
	}
	for name := range documented {
		if !have[name] && !strings.HasSuffix(name, "_bucket") {
			t.Errorf("docs/metrics.md names %s, which the collector does not describe", name)
		}
	}
}

// The Grafana dashboard in deploy/ queries only metrics that exist.
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana-shoal.json")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, n := range metrics.Names() {
		have[n] = true
	}
	used := regexp.MustCompile(`shoal_[a-z_]+`).FindAllString(string(raw), -1)
	if len(used) < 20 {
		t.Fatalf("the dashboard queries %d shoal metrics; expected its panels", len(used))
	}
	for _, n := range used {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !have[base] {
			t.Errorf("deploy/grafana-shoal.json queries %s, which the collector does not describe", n)
		}
	}
}

// BenchmarkScrape is one scrape of a node with an executor attached: the
// questions to the actors and the encoding (docs/metrics.md).
func BenchmarkScrape(b *testing.B) {
	system := actor.NewActorSystem()
	defer system.Shutdown()
	cfg := node.DefaultConfig(b.TempDir())
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := node.Start(context.Background(), cfg, system, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Stop()
	w := sdk.NewWorker(sdk.Local(system), sdk.WorkerConfig{ID: "w1", Slots: 4, NoLoad: true})
	w.Handle("ok", func(context.Context, messages.Task) ([]byte, error) { return nil, nil })
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = w.Run(ctx) }()
	h := metrics.Handler(n, metrics.Config{})
	req := httptestRequest()
	for b.Loop() {
		rec := &discardWriter{h: http.Header{}}
		h.ServeHTTP(rec, req)
		if rec.code != 0 && rec.code != http.StatusOK {
			b.Fatalf("scrape: %d", rec.code)
		}
	}
}

func httptestRequest() *http.Request {
	r, _ := http.NewRequest("GET", "/metrics", nil)
	return r
}

type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(c int)           { d.code = c }
