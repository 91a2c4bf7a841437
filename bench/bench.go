// Package bench runs shoal's benchmark workloads (shared/BENCH.md) against a
// real node: an embedded Pebble store with fsync on, the node's actors, and
// SDK clients and workers in the same process.
//
// Run is the one entry point, used by `shoal bench <workload>` and by the Go
// benchmarks of this package; Table and WriteJSON print what it returns.
//
//	res, err := bench.Run(ctx, "W1", bench.Options{Mode: "concurrent", Progress: os.Stderr})
//	bench.Table(os.Stdout, res)
//
// Every count has a default per workload (Defaults); a zero field of Options
// takes it. Figures are in Result.Metrics, named with their unit
// ("tasks_per_s", "p99_ms", "peak_rss_mb").
//
// W7's cross-node part runs two child processes of the running binary (two
// protoactor remotes in one process race); a binary that imports this
// package serves as that child when SHOAL_BENCH_PEER is set (see peer.go).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/store"
)

// Workloads are the ids Run accepts, in order.
var workloads = []string{"W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"}

// Workloads lists the workload ids.
func Workloads() []string { return slices.Clone(workloads) }

// ErrNotBuilt is returned for workloads and modes whose shoal feature does
// not exist yet.
var ErrNotBuilt = errors.New("bench: not built yet")

// Options are a run's parameters. A zero field takes the workload's default
// (see Defaults); fields a workload does not use are ignored.
type Options struct {
	// Dir is where the run's Pebble store is created: a fresh subdirectory,
	// removed afterwards unless KeepData. Default: os.TempDir(). Put it on the
	// disk you want to measure (fsync is on).
	Dir string
	// KeepData keeps the store directory after the run.
	KeepData bool
	// Tasks is the task count: W1 200,000; W2 100,000 submissions; W4 20,000;
	// W5 10,000 flows; W8 100,000 (its throughput phase);
	// W6 the size of the drain-rate probe, 50,000.
	Tasks int
	// Rate is W3's and W8's latency phase's submissions per second (default
	// 5,000; W8 2,000) and W6's offered
	// tasks per second (default Overload × the drain rate measured first).
	Rate int
	// Duration is how long W3 (default 20 s), W6 (default 30 s) and W8's
	// latency phase (10 s) submit.
	Duration time.Duration
	// Producers is the number of concurrent submitting goroutines for batch
	// workloads (W1, W2, W4, W6 probe), each with one batch in flight.
	// Default 8 for W1, 4 for the others. W1 takes 8 because a cluster run
	// needs them: each of its submissions crosses a remote hop, about 10 ms
	// each way when the machine's CPU is saturated, and with 4 batches in
	// flight three nodes wait on the round trips (0.64× the single node's
	// rate, 0.75× with 8; docs/benchmarks.md "Cluster"). A single node's
	// rate is the same with 4, 8 or 16.
	Producers int
	// Batch is the tasks per SubmitBatch (W1, W2, W4, W6). Default 1,000.
	Batch int
	// Workers is the number of in-process SDK workers (executors).
	// Default 4 (W1, W2, W6), 2 (W3), 1 (W4); W8: host agents, 2.
	Workers int
	// Slots is each worker's slot count. Default 256 (W1, W2, W6), 64 (W3),
	// 2 (W4); W8: each host agent's, 1,024.
	Slots int
	// Scrape, when > 0, serves the node's Prometheus /metrics on loopback
	// and scrapes it at this interval during the run (docs/metrics.md:
	// the metrics' cost). Default 0: no scraper.
	Scrape time.Duration
	// Mode is W1's mode: "drain" (submit everything, then start the
	// executors; default) or "concurrent" (producers and executors at once).
	Mode string
	// PayloadBytes is each task's payload size. Default 256 (W4: 64).
	// Payloads are unique per run except W2's intended duplicates.
	PayloadBytes int
	// DupFraction is W2's share of submissions that repeat an earlier
	// payload exactly. Default 0.2.
	DupFraction float64
	// LoadSampling is "on" or "off": whether workers sample /proc load and
	// report it (the dispatcher prefetches beyond free slots only within load
	// headroom). Default "on" for W4, "off" for the no-op workloads.
	LoadSampling string
	// Prefetch sets the dispatcher's Prefetch and MinPrefetch (waiting tasks
	// per slot, whatever the load). Default: the node's (1, raised for short
	// tasks by its BufferTime).
	Prefetch float64
	// Spin is W4's CPU time per task (a calibrated busy loop). Default 1 ms.
	Spin time.Duration
	// StandbyLimit overrides the node's intake StandbyLimit (tasks waiting in
	// the store before intake answers CodeOverloaded). Default: the node's
	// default (1,000,000), except W6: 20,000.
	StandbyLimit int64
	// Overload is W6's offered rate as a multiple of the drain rate.
	// Default 10.
	Overload float64
	// Messages is W7's in-process tell count. Default 5,000,000.
	Messages int
	// RemoteMessages is W7's cross-node tell count (two child processes over
	// loopback). Default 1,000,000; negative skips the cross-node part.
	RemoteMessages int
	// RemoteBatch is W7's batched cross-node part: results per remote
	// message (10 × RemoteMessages results in all). Default 1,000; 1 skips it.
	RemoteBatch int
	// Nodes is the cluster size. Default 1; more runs that many node
	// processes on loopback (cluster.go): W1 and W3 so far, other workloads
	// return ErrNotBuilt.
	Nodes int
	// NoOwnerRouting makes cluster runs submit through any node's router
	// (round-robin) instead of straight to each task's owner
	// (sdk.DialConfig.RouteToOwners, the default of cluster runs).
	NoOwnerRouting bool
	// HostsDB is W8's instruction table: a postgres:// URL (the run makes
	// its own schema in that database), or empty for a fresh SQLite file in
	// the run's directory.
	HostsDB string
	// Pebble, when set, replaces the node's store options (memtable size, L0
	// thresholds, ...; store.PebbleOptions); W1's storage-only run uses the
	// same. Nil: the node's default, store.DefaultPebbleOptions(). Cluster
	// runs ignore it (their nodes take the default).
	Pebble *store.PebbleOptions
	// Tune, when set, adjusts the node's configuration after the workload's
	// own settings (experiments: dispatch prefetch, pump batch, store...).
	// Its effect is not recorded in Result.Params: say what it did in Notes.
	Tune func(*node.Config)
	// Logger receives the node's and the benchmark's logs. Default: discard.
	Logger *slog.Logger
	// Progress, when set, receives a progress line about every second.
	Progress io.Writer
}

// pebble returns the store options the run's node uses.
func (o Options) pebble() store.PebbleOptions {
	if o.Pebble != nil {
		return *o.Pebble
	}
	return store.DefaultPebbleOptions()
}

// Defaults returns the options a workload runs with when every field is zero.
func Defaults(workload string) (Options, error) {
	w, err := canonical(workload)
	if err != nil {
		return Options{}, err
	}
	return Options{}.withDefaults(w), nil
}

func canonical(workload string) (string, error) {
	w := strings.ToUpper(strings.TrimSpace(workload))
	if !slices.Contains(workloads, w) {
		return "", fmt.Errorf("bench: unknown workload %q; want one of %s", workload, strings.Join(workloads, ", "))
	}
	return w, nil
}

func (o Options) withDefaults(w string) Options {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.Batch, 1000)
	def(&o.Nodes, 1)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if w == "W1" {
		def(&o.Producers, 8)
	}
	def(&o.Producers, 4)
	switch w {
	case "W1":
		def(&o.Tasks, 200_000)
		def(&o.Workers, 4)
		def(&o.Slots, 256)
		if o.Mode == "" {
			o.Mode = "drain"
		}
	case "W2":
		def(&o.Tasks, 100_000)
		def(&o.Workers, 4)
		def(&o.Slots, 256)
		if o.DupFraction == 0 {
			o.DupFraction = 0.2
		}
	case "W3":
		def(&o.Rate, 5000)
		def(&o.Workers, 2)
		def(&o.Slots, 64)
		if o.Duration == 0 {
			o.Duration = 20 * time.Second
		}
	case "W4":
		def(&o.Tasks, 20_000)
		def(&o.Workers, 1)
		def(&o.Slots, 2)
		def(&o.PayloadBytes, 64)
		if o.Spin == 0 {
			o.Spin = time.Millisecond
		}
		if o.LoadSampling == "" {
			o.LoadSampling = "on"
		}
	case "W5":
		def(&o.Tasks, 10_000)
		def(&o.Workers, 4)
		def(&o.Slots, 256)
	case "W6":
		def(&o.Tasks, 50_000)
		def(&o.Workers, 4)
		def(&o.Slots, 256)
		if o.Duration == 0 {
			o.Duration = 30 * time.Second
		}
		if o.StandbyLimit == 0 {
			o.StandbyLimit = 20_000
		}
		if o.Overload == 0 {
			o.Overload = 10
		}
	case "W8":
		def(&o.Tasks, 100_000)
		def(&o.Workers, 2)
		def(&o.Slots, 1024)
		def(&o.Rate, 2000)
		if o.Duration == 0 {
			o.Duration = 10 * time.Second
		}
	case "W7":
		def(&o.Messages, 5_000_000)
		def(&o.RemoteMessages, 1_000_000)
		def(&o.RemoteBatch, 1000)
	}
	def(&o.PayloadBytes, 256)
	if o.LoadSampling == "" {
		o.LoadSampling = "off"
	}
	return o
}

func (o Options) validate(w string) error {
	switch {
	case o.Nodes > 1 && w != "W1" && w != "W3":
		return fmt.Errorf("bench: %s on a %d-node cluster is not built yet (W1 and W3 are): %w", w, o.Nodes, ErrNotBuilt)
	case o.Tasks < 0 || o.Rate < 0 || o.Duration < 0 || o.Producers < 0 || o.Batch < 0 || o.Workers < 0 || o.Slots < 0:
		return fmt.Errorf("bench: %s: counts, rates and durations must be >= 0", w)
	case o.PayloadBytes < minPayload:
		return fmt.Errorf("bench: %s: PayloadBytes must be >= %d (the payload carries a task index and a run nonce), got %d", w, minPayload, o.PayloadBytes)
	case w == "W1" && o.Mode != "drain" && o.Mode != "concurrent":
		return fmt.Errorf("bench: W1: Mode must be \"drain\" or \"concurrent\", got %q", o.Mode)
	case o.LoadSampling != "on" && o.LoadSampling != "off":
		return fmt.Errorf("bench: %s: LoadSampling must be \"on\" or \"off\", got %q", w, o.LoadSampling)
	case w == "W2" && (o.DupFraction < 0 || o.DupFraction >= 1):
		return fmt.Errorf("bench: W2: DupFraction must be in [0, 1), got %v", o.DupFraction)
	case w == "W6" && int64(o.Batch) > o.StandbyLimit:
		return fmt.Errorf("bench: W6: Batch (%d) must not exceed StandbyLimit (%d), or intake refuses every batch", o.Batch, o.StandbyLimit)
	case w == "W6" && o.Overload <= 0:
		return fmt.Errorf("bench: W6: Overload must be > 0, got %v", o.Overload)
	}
	return nil
}

// Result is one workload's figures.
type Result struct {
	Workload string `json:"workload"`
	// Params are the effective parameters (defaults filled in).
	Params map[string]any `json:"params"`
	// Metrics are named with their unit: tasks_per_s, p99_ms, peak_rss_mb...
	Metrics map[string]float64 `json:"metrics"`
	// Notes say what a reader needs to trust the figures (and what was not
	// measured).
	Notes   []string  `json:"notes,omitempty"`
	Machine Machine   `json:"machine"`
	Started time.Time `json:"started"`
	// WallSeconds is the whole run, set-up and checks included.
	WallSeconds float64 `json:"wall_s"`
}

func newResult(w string) *Result {
	return &Result{Workload: w, Params: map[string]any{}, Metrics: map[string]float64{}, Machine: ThisMachine(), Started: time.Now()}
}

func (r *Result) notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// MetricNames returns the result's metric names, sorted.
func (r *Result) MetricNames() []string { return slices.Sorted(maps.Keys(r.Metrics)) }

// Run runs one workload ("W1".."W8", case-insensitive) and returns its
// figures. A workload that finds shoal incorrect (a duplicate ran, an
// acknowledged task was lost) still returns its Result, with the error.
func Run(ctx context.Context, workload string, opt Options) (*Result, error) {
	w, err := canonical(workload)
	if err != nil {
		return nil, err
	}
	opt = opt.withDefaults(w)
	if err := opt.validate(w); err != nil {
		return nil, err
	}
	res := newResult(w)
	res.notef("load average at start: %s", loadAvg())
	start := time.Now()
	meter := readCPUMeter()
	switch w {
	case "W1":
		err = runW1(ctx, opt, res)
	case "W2":
		err = runW2(ctx, opt, res)
	case "W3":
		err = runW3(ctx, opt, res)
	case "W4":
		err = runW4(ctx, opt, res)
	case "W5":
		err = runW5(ctx, opt, res)
	case "W6":
		err = runW6(ctx, opt, res)
	case "W7":
		err = runW7(ctx, opt, res)
	case "W8":
		err = runW8(ctx, opt, res)
	}
	res.WallSeconds = time.Since(start).Seconds()
	meter.record(res)
	sanitize(res.Metrics)
	if err != nil {
		return res, fmt.Errorf("bench: %s: %w", w, err)
	}
	return res, nil
}
