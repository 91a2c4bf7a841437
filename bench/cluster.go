package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/node/member"
	"github.com/shoalrt/shoal/sdk"
)

// Cluster runs (Options.Nodes > 1): each node is a child process of this
// executable in peer mode "node" (two protoactor remotes in one process
// race), joined by gossip on loopback (memberlist's LAN defaults, as
// `shoal node` without --gossip-fast), with its
// share of the workers in its own process. This process dials the nodes
// with one SDK connection; the clients send each task straight to its
// partition's owner (sdk RouteToOwners) unless Options.NoOwnerRouting, when
// submissions are spread over the nodes and each node's router forwards
// every task to its owner.
//
// Child protocol (lines): prints "READY remote gossip"; "START" starts its
// workers and prints "STARTED"; "LAT" prints "L index unix_ns" per handler
// start recorded, then "END". It stops when stdin closes.
const nodeSpecEnv = "SHOAL_BENCH_NODE"

// NodeProfileEnv, when set to a directory, makes each child node of a
// cluster run write a CPU profile of its whole life to <dir>/<node>.prof
// its allocations to <dir>/<node>.allocs (go tool pprof
// -sample_index=alloc_space) and its GC figures to <dir>/<node>.gc; shoal bench --cpuprofile profiles only the
// bench process itself.
const NodeProfileEnv = "SHOAL_BENCH_NODE_PROFILE"

// nodeSpec is a child node's configuration.
type nodeSpec struct {
	Name, Dir, Seed string
	Workers, Slots  int
	Prefetch        float64
	Record          bool // record handler start times (W3)
	StartWorkers    bool // start the workers at once (else on START)
}

func runNodePeer() error {
	var sp nodeSpec
	if err := json.Unmarshal([]byte(os.Getenv(nodeSpecEnv)), &sp); err != nil {
		return fmt.Errorf("%s: %w", nodeSpecEnv, err)
	}
	if dir := os.Getenv(NodeProfileEnv); dir != "" {
		f, err := os.Create(filepath.Join(dir, sp.Name+".prof"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
		defer func() {
			if f, err := os.Create(filepath.Join(dir, sp.Name+".allocs")); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			_ = os.WriteFile(filepath.Join(dir, sp.Name+".gc"), fmt.Appendf(nil,
				"gc_cycles %d\ntotal_alloc_mb %.1f\nheap_sys_mb %.1f\ngc_cpu_fraction %.3f\ngoroutines %d\n",
				ms.NumGC, float64(ms.TotalAlloc)/(1<<20), float64(ms.HeapSys)/(1<<20), ms.GCCPUFraction, runtime.NumGoroutine()), 0o644)
		}()
	}
	system, logger := peerSystem()
	r, err := cluster.StartRemote(system, "127.0.0.1", 0, logger)
	if err != nil {
		return err
	}
	defer r.Shutdown(false)
	var seeds []string
	if sp.Seed != "" {
		seeds = []string{sp.Seed}
	}
	m, err := member.Join(member.Config{Name: sp.Name, Gossip: "127.0.0.1:0", Seeds: seeds, Logger: logger}, system.Address())
	if err != nil {
		return err
	}
	defer func() { _ = m.Leave() }()
	cfg := node.DefaultConfig(sp.Dir)
	cfg.Name, cfg.Logger = sp.Name, logger
	if sp.Prefetch > 0 {
		cfg.Dispatch.Prefetch, cfg.Dispatch.MinPrefetch = sp.Prefetch, sp.Prefetch
	}
	m.Configure(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := node.Start(ctx, cfg, system, cluster.NewCodec(messages.Default()))
	if err != nil {
		return err
	}
	defer n.Stop()
	go m.Run(ctx, n)

	var (
		mu      sync.Mutex
		started = map[uint64]int64{}
		wg      sync.WaitGroup
	)
	handler := func(_ context.Context, t messages.Task) ([]byte, error) {
		if sp.Record {
			now := time.Now().UnixNano()
			mu.Lock()
			if _, ok := started[payloadIndex(t.Payload)]; !ok {
				started[payloadIndex(t.Payload)] = now
			}
			mu.Unlock()
		}
		return nil, nil
	}
	conn := sdk.Local(system)
	startWorkers := func() {
		for i := range sp.Workers {
			w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: fmt.Sprintf("%s-w%d", sp.Name, i), Slots: sp.Slots, NoLoad: true, Logger: logger})
			w.Handle(typeNoop, handler)
			wg.Add(1)
			go func() { defer wg.Done(); _ = w.Run(ctx) }()
		}
	}
	defer wg.Wait()
	defer cancel()
	if sp.StartWorkers {
		startWorkers()
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "READY %s %s\n", system.Address(), m.Addr())
	out.Flush()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "START":
			startWorkers()
			fmt.Fprintln(out, "STARTED")
		case "LAT":
			mu.Lock()
			for i, ns := range started {
				fmt.Fprintf(out, "L %d %d\n", i, ns)
			}
			mu.Unlock()
			fmt.Fprintln(out, "END")
		}
		out.Flush()
	}
	return nil
}

// clusterEnv is a cluster of child node processes and a client per node.
type clusterEnv struct {
	base    string
	keep    bool
	procs   []*peerProc
	clients []*sdk.Client
	workers []int
}

// The SDK dials once per process (one protoactor remote per process); the
// connection serves every cluster run of this process.
var (
	dialOnce sync.Once
	dialConn *sdk.Conn
	dialErr  error
)

func startCluster(ctx context.Context, opt Options, label string, record, startWorkers bool) (*clusterEnv, error) {
	base, err := os.MkdirTemp(opt.Dir, "shoal-bench-"+label+"-")
	if err != nil {
		return nil, fmt.Errorf("create the store directory: %w", err)
	}
	c := &clusterEnv{base: base, keep: opt.KeepData}
	seed := ""
	var remotes []string
	for i := range opt.Nodes {
		w := opt.Workers / opt.Nodes
		if i < opt.Workers%opt.Nodes {
			w++
		}
		w = max(w, 1)
		c.workers = append(c.workers, w)
		sp := nodeSpec{Name: fmt.Sprintf("bench-n%d", i+1), Dir: filepath.Join(base, fmt.Sprintf("n%d", i+1)), Seed: seed,
			Workers: w, Slots: opt.Slots, Prefetch: opt.Prefetch, Record: record, StartWorkers: startWorkers}
		b, _ := json.Marshal(sp)
		p, err := startPeer(ctx, "node", nodeSpecEnv+"="+string(b))
		if err != nil {
			c.close()
			return nil, err
		}
		c.procs = append(c.procs, p)
		f, err := p.expect(ctx, "READY")
		if err != nil || len(f) != 2 {
			c.close()
			return nil, errors.Join(err, fmt.Errorf("node %s did not start: %s", sp.Name, p.errb.String()))
		}
		remotes = append(remotes, f[0])
		if seed == "" {
			seed = f[1]
		}
	}
	dialOnce.Do(func() { dialConn, dialErr = sdk.Dial(remotes[0], sdk.DialConfig{Logger: opt.Logger}) })
	if dialErr != nil {
		c.close()
		return nil, dialErr
	}
	for _, r := range remotes {
		conn := *dialConn
		conn.Node = r
		conn.RouteToOwners = !opt.NoOwnerRouting
		c.clients = append(c.clients, sdk.NewClient(&conn))
	}
	// Every node sees every member (and its workers, if started).
	deadline := time.Now().Add(30 * time.Second)
	for i, cl := range c.clients {
		for {
			st, err := cl.Status(ctx)
			if err == nil && len(st.Members) == opt.Nodes && (!startWorkers || len(st.Executors) >= c.workers[i]) {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				c.close()
				return nil, fmt.Errorf("cluster did not form within 30 s (node %d: %v)", i+1, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond) // routing follows membership every 100 ms
	return c, nil
}

// cpu is the CPU time of this process and of every node process so far.
func (c *clusterEnv) cpu() (time.Duration, error) {
	sum := processCPU()
	for _, p := range c.procs {
		d, err := pidCPU(p.cmd.Process.Pid)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// start starts the workers of every node (drain mode) and waits for them.
func (c *clusterEnv) start(ctx context.Context) error {
	for _, p := range c.procs {
		if _, err := fmt.Fprintln(p.in, "START"); err != nil {
			return err
		}
	}
	for _, p := range c.procs {
		if _, err := p.expect(ctx, "STARTED"); err != nil {
			return err
		}
	}
	return nil
}

// counters sums the nodes' status counters.
func (c *clusterEnv) counters(ctx context.Context) (map[string]int64, error) {
	sum := map[string]int64{}
	for _, cl := range c.clients {
		st, err := cl.Status(ctx)
		if err != nil {
			return nil, err
		}
		for k, v := range st.Counters {
			sum[k] += v
		}
	}
	return sum, nil
}

func clusterFinished(cs map[string]int64) int64 {
	return cs["done"] + cs["deduplicated"] + cs["dead"] + cs["cancelled"]
}

// waitFinished polls the nodes until want tasks have durable results.
func (c *clusterEnv) waitFinished(ctx context.Context, want int64, seen *int64) error {
	for {
		cs, err := c.counters(ctx)
		if err == nil {
			*seen = clusterFinished(cs)
			if *seen >= want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d durable results (have %d): %w", want, *seen, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// record copies the summed counters into res.
func (c *clusterEnv) record(ctx context.Context, res *Result) {
	cs, err := c.counters(ctx)
	if err != nil {
		return
	}
	for _, k := range []string{"accepted", "done", "deduplicated", "dead", "stolen"} {
		res.Metrics["node_"+k] = float64(cs[k])
	}
	res.Params["nodes"] = len(c.procs)
	res.Params["workers_per_node"] = fmt.Sprint(c.workers)
}

// starts collects the handler start times (unix ns) the nodes recorded.
func (c *clusterEnv) starts(ctx context.Context) (map[uint64]int64, error) {
	out := map[uint64]int64{}
	for _, p := range c.procs {
		if _, err := fmt.Fprintln(p.in, "LAT"); err != nil {
			return nil, err
		}
		for {
			select {
			case l, ok := <-p.lines:
				if !ok {
					return nil, errors.New("node exited while reporting latencies")
				}
				if l == "END" {
					goto next
				}
				f := strings.Fields(l)
				if len(f) == 3 && f[0] == "L" {
					i, _ := strconv.ParseUint(f[1], 10, 64)
					ns, _ := strconv.ParseInt(f[2], 10, 64)
					if old, ok := out[i]; !ok || ns < old {
						out[i] = ns
					}
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	next:
	}
	return out, nil
}

func (c *clusterEnv) close() {
	for _, p := range c.procs {
		p.stop()
	}
	if !c.keep {
		_ = os.RemoveAll(c.base)
	}
}
