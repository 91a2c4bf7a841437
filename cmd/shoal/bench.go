package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoalrt/shoal/bench"
)

func benchCmd() *cobra.Command {
	var (
		o        bench.Options
		jsonPath string
		quiet    bool
		cpuProf  string
		storeF   storeFlags
		memProf  string
	)
	cmd := &cobra.Command{
		Use:   "bench WORKLOAD...",
		Short: "Run benchmark workloads (W1 … W7 of docs/bench.md) against a real node and print a table",
		Long: `Run one or more workloads against a real node (embedded Pebble store, fsync
on, executors in-process unless a workload says otherwise) and print a table
with the machine it ran on. Zero-valued flags take each workload's default.
The workloads are defined in docs/bench.md; measured results are in
docs/benchmarks.md.

Workloads: ` + strings.Join(bench.Workloads(), ", ") + `
  W1 throughput (--mode drain|concurrent)   W2 dedupe   W3 latency (--rate)
  W4 CPU efficiency   W5 flows   W6 overload   W7 messaging
  W8 host path through the instruction table (SQLite; --hosts-db postgres://… for PostgreSQL)`,
		Example: `  shoal bench W1 --mode concurrent
  shoal bench W3 --rate 2000 --duration 10s --json w3.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !quiet {
				o.Progress = cmd.ErrOrStderr()
			}
			o.Logger = actorLogger(logger()) // nodes stopping at the end close their streams: routine
			po, err := storeF.options()
			if err != nil {
				return err
			}
			o.Pebble = &po
			if cpuProf != "" {
				f, err := os.Create(cpuProf)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			if memProf != "" {
				runtime.MemProfileRate = 64 << 10 // one sample per 64 KiB allocated: cheap enough to leave the figures honest
				defer func() {
					if err := writeAllocs(memProf); err != nil {
						fmt.Fprintln(os.Stderr, "memprofile:", err)
					}
				}()
			}
			var results []*bench.Result
			for _, w := range args {
				r, err := bench.Run(cmd.Context(), w, o)
				if err != nil {
					return fmt.Errorf("%s: %w", w, err)
				}
				results = append(results, r)
			}
			bench.Table(cmd.OutOrStdout(), results...)
			if jsonPath == "" {
				return nil
			}
			f, err := os.Create(jsonPath)
			if err != nil {
				return err
			}
			defer f.Close()
			return bench.WriteJSON(f, results...)
		},
	}
	f := cmd.Flags()
	f.StringVar(&jsonPath, "json", "", "also write the results as JSON to this file")
	f.BoolVar(&quiet, "quiet", false, "no progress lines")
	f.StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	f.StringVar(&memProf, "memprofile", "", "write an allocation profile of the whole run to this file (go tool pprof -sample_index=alloc_space)")
	f.StringVar(&o.Dir, "data", "", "parent directory of the run's store (default: the temp dir)")
	f.IntVar(&o.Tasks, "tasks", 0, "task count (W1 200000, W2 100000, W4 20000; W5: flows, 10000)")
	f.IntVar(&o.Rate, "rate", 0, "W3 submissions/s (5000); W6 offered tasks/s (10× drain)")
	f.DurationVar(&o.Duration, "duration", 0, "W3 (20s) and W6 (30s) submission time")
	f.IntVar(&o.Producers, "producers", 0, "concurrent submitters, each with one batch in flight (W1 8, others 4)")
	f.IntVar(&o.Batch, "batch", 0, "tasks per submit (1000)")
	f.IntVar(&o.Workers, "workers", 0, "in-process workers")
	f.IntVar(&o.Slots, "slots", 0, "slots per worker")
	f.StringVar(&o.Mode, "mode", "", "W1 mode: drain or concurrent")
	f.DurationVar(&o.Scrape, "scrape", 0, "scrape the node's Prometheus /metrics over loopback at this interval during the run (0: no scraper; docs/metrics.md)")
	f.Float64Var(&o.Prefetch, "prefetch", 0, "waiting tasks per slot the dispatcher always grants (node default 1; W4: 8)")
	f.Float64Var(&o.Overload, "overload", 0, "W6 offered rate as a multiple of the drain rate (10)")
	f.Int64Var(&o.StandbyLimit, "standby-limit", 0, "node standby limit (W6: 20000)")
	f.BoolVar(&o.NoOwnerRouting, "no-owner-routing", false, "cluster runs: submit through the nodes' routers round-robin instead of straight to each task's owner (the SDK's RouteToOwners)")
	f.IntVar(&o.Nodes, "cluster", 0, "cluster size: more than 1 runs that many node processes on loopback with the executors spread over them (W1, W3)")
	f.StringVar(&o.HostsDB, "hosts-db", "", "W8: the instruction table, a postgres:// URL (the run creates its own schema there); default a fresh SQLite file")
	f.IntVar(&o.RemoteBatch, "remote-batch", 0, "W7: results per remote message in the batched cross-node part (1000; 1 skips it)")
	storeF.add(f)
	return cmd
}

// writeAllocs writes the allocation profile so far to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
