package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/store/pgtest"
)

// Go benchmarks: small sizes, so that
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/
//
// finishes in well under two minutes. Full sizes: `shoal bench <workload>`.
// Every metric of the run is reported; compare runs with benchstat.

func benchWorkload(b *testing.B, workload string, opt Options) {
	b.Helper()
	opt.Dir = b.TempDir()
	var res *Result
	for b.Loop() {
		var err error
		res, err = Run(context.Background(), workload, opt)
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, name := range res.MetricNames() {
		b.ReportMetric(res.Metrics[name], metricUnit(name))
	}
}

// metricUnit turns a metric name into a benchmark unit: "tasks_per_s"
// becomes "tasks/s".
func metricUnit(name string) string {
	if s, ok := strings.CutSuffix(name, "_per_s"); ok {
		return s + "/s"
	}
	return name
}

func BenchmarkW1(b *testing.B) {
	for _, mode := range []string{"drain", "concurrent"} {
		b.Run(fmt.Sprintf("mode=%s/tasks=20000", mode), func(b *testing.B) {
			benchWorkload(b, "W1", Options{Mode: mode, Tasks: 20_000})
		})
	}
}

func BenchmarkW2(b *testing.B) {
	b.Run("tasks=20000/dup=0.2", func(b *testing.B) {
		benchWorkload(b, "W2", Options{Tasks: 20_000})
	})
}

func BenchmarkW3(b *testing.B) {
	for _, rate := range []int{2000, 5000} {
		b.Run(fmt.Sprintf("rate=%d/duration=2s", rate), func(b *testing.B) {
			benchWorkload(b, "W3", Options{Rate: rate, Duration: 2 * time.Second})
		})
	}
}

func BenchmarkW4(b *testing.B) {
	b.Run("tasks=2000/spin=1ms/slots=2", func(b *testing.B) {
		benchWorkload(b, "W4", Options{Tasks: 2000})
	})
}

func BenchmarkW5(b *testing.B) {
	b.Run("flows=10000/steps=5/shared=0.5", func(b *testing.B) {
		benchWorkload(b, "W5", Options{Tasks: 10_000})
	})
}

func BenchmarkW6(b *testing.B) {
	b.Run("duration=3s/overload=10", func(b *testing.B) {
		benchWorkload(b, "W6", Options{Tasks: 20_000, Duration: 3 * time.Second})
	})
}

func BenchmarkW8(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchWorkload(b, "W8", Options{Tasks: 20_000, Duration: 2 * time.Second}) })
}

func BenchmarkW7(b *testing.B) {
	b.Run("local=1000000/remote=200000", func(b *testing.B) {
		benchWorkload(b, "W7", Options{Messages: 1_000_000, RemoteMessages: 200_000})
	})
}

// TestWorkloadsSmall runs every workload at a tiny size and checks only
// correctness: never timing (STYLE.md).
func TestWorkloadsSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real nodes for a few seconds each")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cases := []struct {
		name, workload string
		opt            Options
		check          func(t *testing.T, r *Result)
	}{
		{"W1/mode=drain", "W1", Options{Mode: "drain", Tasks: 2000, Batch: 100, Workers: 2, Slots: 16}, checkW1(2000)},
		{"W1/mode=concurrent", "W1", Options{Mode: "concurrent", Tasks: 2000, Batch: 100, Workers: 2, Slots: 16}, checkW1(2000)},
		{"W1/cluster=3/mode=drain", "W1", Options{Nodes: 3, Mode: "drain", Tasks: 3000, Batch: 100, Workers: 3, Slots: 16}, checkAll("node_done", 3000)},
		{"W1/cluster=3/mode=concurrent", "W1", Options{Nodes: 3, Mode: "concurrent", Tasks: 3000, Batch: 100, Workers: 3, Slots: 16}, checkAll("node_done", 3000)},
		{"W3/cluster=3", "W3", Options{Nodes: 3, Rate: 300, Duration: time.Second}, func(t *testing.T, r *Result) {
			if r.Metrics["acknowledged"] != 300 || r.Metrics["latency_samples"] != 300 {
				t.Errorf("acknowledged %v, latency samples %v: want 300", r.Metrics["acknowledged"], r.Metrics["latency_samples"])
			}
		}},
		{"W2", "W2", Options{Tasks: 2000, Batch: 100, Workers: 2, Slots: 16}, func(t *testing.T, r *Result) {
			if r.Metrics["executions"] != r.Metrics["unique"] || r.Metrics["unique"] != 1600 {
				t.Errorf("executions %v, unique %v: want both 1600", r.Metrics["executions"], r.Metrics["unique"])
			}
			if r.Metrics["node_deduplicated"] != 400 {
				t.Errorf("node deduplicated %v, want 400", r.Metrics["node_deduplicated"])
			}
		}},
		{"W3", "W3", Options{Rate: 500, Duration: time.Second}, func(t *testing.T, r *Result) {
			if r.Metrics["acknowledged"] != 500 || r.Metrics["latency_samples"] != 500 {
				t.Errorf("acknowledged %v, latency samples %v: want 500", r.Metrics["acknowledged"], r.Metrics["latency_samples"])
			}
		}},
		{"W4", "W4", Options{Tasks: 200}, checkAll("executions", 200)},
		{"W5", "W5", Options{Tasks: 200, Batch: 50, Workers: 2, Slots: 16}, func(t *testing.T, r *Result) {
			if r.Metrics["step_executions"] != 560 || r.Metrics["flows_failed"] != 0 {
				t.Errorf("step executions %v (want 560: every distinct step once), flows failed %v", r.Metrics["step_executions"], r.Metrics["flows_failed"])
			}
		}},
		{"W6", "W6", Options{Tasks: 2000, Batch: 100, Rate: 20_000, Duration: 2 * time.Second, StandbyLimit: 500}, func(t *testing.T, r *Result) {
			if r.Metrics["lost"] != 0 || r.Metrics["rejected_other"] != 0 || r.Metrics["unaccounted"] != 0 {
				t.Errorf("lost %v, other errors %v, unaccounted %v: want 0", r.Metrics["lost"], r.Metrics["rejected_other"], r.Metrics["unaccounted"])
			}
			if r.Metrics["acknowledged"] == 0 {
				t.Error("nothing acknowledged")
			}
		}},
		{"W8", "W8", Options{Tasks: 2000, Batch: 100, Rate: 300, Duration: time.Second, Slots: 64}, checkW8(2300)},
		{"W7", "W7", Options{Messages: 20_000, RemoteMessages: 5000}, func(t *testing.T, r *Result) {
			if r.Metrics["local_msgs_per_s"] <= 0 || r.Metrics["remote_msgs_per_s"] <= 0 {
				t.Errorf("missing rates: %v", r.Metrics)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opt.Dir = t.TempDir()
			if testing.Verbose() {
				c.opt.Progress = os.Stderr
			}
			r, err := Run(ctx, c.workload, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Metrics) == 0 || r.Machine.CPUs == 0 {
				t.Fatalf("empty result: %+v", r)
			}
			c.check(t, r)
			var sb strings.Builder
			Table(&sb, r)
			if err := WriteJSON(&sb, r); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + sb.String())
		})
	}
}

// TestW8Postgres runs W8 through a real PostgreSQL (store/pgtest).
func TestW8Postgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node and a PostgreSQL server")
	}
	dsn := pgtest.Start(t).NewDatabase(t)
	r, err := Run(t.Context(), "W8", Options{Dir: t.TempDir(), HostsDB: dsn, Tasks: 2000, Batch: 100, Rate: 300, Duration: time.Second, Slots: 64})
	if err != nil {
		t.Fatal(err)
	}
	if r.Params["backend"] != "postgres" {
		t.Fatalf("backend %v", r.Params["backend"])
	}
	checkW8(2300)(t, r)
}

// checkW8: every host task ran once, and every latency task's start was
// recorded.
func checkW8(tasks float64) func(*testing.T, *Result) {
	return func(t *testing.T, r *Result) {
		checkAll("executions", tasks)(t, r)
		if r.Metrics["tasks_per_s"] <= 0 || r.Metrics["latency_samples"] != 300 {
			t.Errorf("throughput %v, latency samples %v (want 300)", r.Metrics["tasks_per_s"], r.Metrics["latency_samples"])
		}
	}
}

func checkAll(metric string, want float64) func(*testing.T, *Result) {
	return func(t *testing.T, r *Result) {
		if got := r.Metrics[metric]; got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
}

// checkW1 checks a single-node W1 run: every task executed once, and the
// storage limit measured beside it.
func checkW1(tasks float64) func(*testing.T, *Result) {
	return func(t *testing.T, r *Result) {
		checkAll("executions", tasks)(t, r)
		if r.Metrics["storage_limit_tasks_per_s"] <= 0 || r.Metrics["fraction_of_storage"] <= 0 || r.Metrics["storage_fsyncs"] <= 0 {
			t.Errorf("storage limit not measured: %v", r.Metrics)
		}
	}
}

func TestRunRefuses(t *testing.T) {
	ctx := context.Background()
	if _, err := Run(ctx, "W9", Options{}); err == nil {
		t.Error("W9 accepted")
	}
	if _, err := Run(ctx, "W2", Options{Nodes: 3}); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("cluster: %v", err)
	}
	if _, err := Run(ctx, "W1", Options{Mode: "both"}); err == nil {
		t.Error("bad mode accepted")
	}
}

func TestPlanDuplicates(t *testing.T) {
	p := planDuplicates(10_000, 0.2, 1000, 1)
	if p.unique != 8000 || p.near+p.recent+p.far != 2000 {
		t.Fatalf("unique %d, duplicates %d+%d+%d", p.unique, p.near, p.recent, p.far)
	}
	seen := make([]bool, p.unique)
	next := uint32(0)
	for i, u := range p.seq {
		if !seen[u] {
			if u != next {
				t.Fatalf("position %d: new unique %d, want %d (uniques in order)", i, u, next)
			}
			seen[u] = true
			next++
		}
	}
}
