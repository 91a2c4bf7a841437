// Command benchrun runs bench workloads with the profiles `shoal bench` does
// not take (heap, block, execution trace, a heap snapshot mid-run). It is a
// development tool for finding where time and memory go:
//
//	go run ./bench/internal/benchrun -w W1 -mode concurrent -cpuprofile cpu.prof
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/shoalrt/shoal/bench"
	"github.com/shoalrt/shoal/node"
)

func main() {
	var (
		workloads   = flag.String("w", "W1", "comma-separated workloads")
		mode        = flag.String("mode", "", "W1 mode: drain or concurrent")
		tasks       = flag.Int("tasks", 0, "tasks (0: default)")
		rate        = flag.Int("rate", 0, "W3 rate, W6 offered rate (0: default)")
		duration    = flag.Duration("duration", 0, "W3/W6 duration (0: default)")
		producers   = flag.Int("producers", 0, "producers")
		batch       = flag.Int("batch", 0, "batch size")
		workers     = flag.Int("workers", 0, "workers")
		slots       = flag.Int("slots", 0, "slots per worker")
		standby     = flag.Int64("standby-limit", 0, "intake StandbyLimit")
		messages    = flag.Int("messages", 0, "W7 in-process messages")
		remote      = flag.Int("remote-messages", 0, "W7 cross-node messages (<0 skips)")
		loadSample  = flag.String("load-sampling", "", "on or off")
		dir         = flag.String("dir", "", "store parent directory")
		jsonOut     = flag.String("json", "", "write results as JSON to this file")
		cpuProf     = flag.String("cpuprofile", "", "write a CPU profile")
		memProf     = flag.String("memprofile", "", "write a heap profile (alloc and inuse) at the end")
		mutexProf   = flag.String("blockprofile", "", "write a block profile")
		traceOut    = flag.String("trace", "", "write an execution trace")
		heapAt      = flag.Duration("heap-at", 0, "write an inuse heap profile to heap.prof this long after the start")
		quiet       = flag.Bool("q", false, "no progress lines")
		printJSON   = flag.String("print", "", "print the table of these comma-separated JSON result files and exit")
		prefetch    = flag.Float64("prefetch", -1, "dispatch Prefetch (experiment)")
		maxLoad     = flag.Float64("max-load", -1, "dispatch MaxLoad (experiment)")
		minPrefetch = flag.Float64("min-prefetch", -1, "dispatch MinPrefetch (experiment)")
		pumpBatch   = flag.Int("pump-batch", 0, "pump BatchSize (experiment)")
		verbose     = flag.Bool("v", false, "node logs at info on stderr")
	)
	flag.Parse()
	if *printJSON != "" {
		var all []*bench.Result
		for _, path := range strings.Split(*printJSON, ",") {
			b, err := os.ReadFile(path)
			check(err)
			var rs []*bench.Result
			check(json.Unmarshal(b, &rs))
			all = append(all, rs...)
		}
		bench.Table(os.Stdout, all...)
		return
	}
	opt := bench.Options{Mode: *mode, Tasks: *tasks, Rate: *rate, Duration: *duration, Producers: *producers, Batch: *batch,
		Workers: *workers, Slots: *slots, StandbyLimit: *standby, Messages: *messages, RemoteMessages: *remote,
		LoadSampling: *loadSample, Dir: *dir}
	opt.Tune = func(c *node.Config) {
		if *prefetch >= 0 {
			c.Dispatch.Prefetch = *prefetch
		}
		if *maxLoad > 0 {
			c.Dispatch.MaxLoad = *maxLoad
		}
		if *minPrefetch >= 0 {
			c.Dispatch.MinPrefetch = *minPrefetch
		}
		if *pumpBatch > 0 {
			c.Pump.BatchSize = *pumpBatch
		}
	}
	if !*quiet {
		opt.Progress = os.Stderr
	}
	if *verbose {
		opt.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	if *traceOut != "" {
		f, err := os.Create(*traceOut)
		check(err)
		check(trace.Start(f))
		defer trace.Stop()
	}
	if *mutexProf != "" {
		runtime.SetBlockProfileRate(10_000)
		defer writeProfile("block", *mutexProf)
	}
	if *heapAt > 0 {
		go func() {
			time.Sleep(*heapAt)
			runtime.GC()
			writeProfile("heap", "heap.prof")
			fmt.Fprintln(os.Stderr, "wrote heap.prof")
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var results []*bench.Result
	failed := false
	for _, w := range strings.Split(*workloads, ",") {
		r, err := bench.Run(ctx, w, opt)
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			failed = true
		}
		if r != nil {
			results = append(results, r)
		}
	}
	bench.Table(os.Stdout, results...)
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		check(err)
		check(bench.WriteJSON(f, results...))
		check(f.Close())
	}
	if *memProf != "" {
		writeProfile("allocs", *memProf)
	}
	if failed {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func writeProfile(name, path string) {
	f, err := os.Create(path)
	check(err)
	check(pprof.Lookup(name).WriteTo(f, 0))
	check(f.Close())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
