package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/hosts/agent"
	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

// demoBothSides is seed 003's S3.3: one request fanned out into an
// open-side part (an HTTP agent) and a host part (a host agent through the
// instruction table), then a host step that needs both, and one merged
// result.
const demoBothSides = `
name: settle-account
input:
  account: {type: string, required: true}
steps:
  - {name: risk, type: open.risk, args: $input.account}
  - {name: ledger, type: host.ledger, args: $input.account}
  - {name: post, type: host.post, args: {account: $input.account, risk: $steps.risk, balance: $steps.ledger}}
output: {account: $input.account, risk: $steps.risk, balance: $steps.ledger, posted: $steps.post}
`

// demoHosts runs its own node with every kind of executor side by side: a
// native worker, an HTTP agent speaking the JSON API over loopback, and a
// host agent that reaches the node only through the instruction table (a
// SQLite file here; `shoal host-agent` on a real host). A mix of tasks
// runs on all three, then flows whose steps run on both sides.
func demoHosts(ctx context.Context, out io.Writer) error {
	dir, err := os.MkdirTemp("", "shoal-demo-hosts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := logger()
	alog := actorLogger(log)
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return alog }))
	defer system.Shutdown()
	dsn := filepath.Join(dir, "hosts.db")
	cfg := node.DefaultConfig(filepath.Join(dir, "data"))
	cfg.Name, cfg.Logger = "demo-hosts", log
	cfg.Dispatch.RetryBase = 20 * time.Millisecond
	cfg.Hosts = node.HostsConfig{DSN: dsn, Types: []string{"host.report", "host.ledger", "host.post"}, Poll: 50 * time.Millisecond}
	n, err := node.Start(ctx, cfg, system, nil)
	if err != nil {
		return err
	}
	defer n.Stop()
	conn := sdk.Local(system)
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()

	// The HTTP API, and an HTTP agent using it.
	srv, err := api.New(api.DefaultConfig(), conn)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	wg.Go(func() { _ = srv.Serve(sctx, ln) })
	var openRuns atomic.Int64
	ha := &demoHTTPAgent{base: "http://" + ln.Addr().String(), id: "demo-http-agent", types: []string{"open.score", "open.risk"}, runs: &openRuns}
	if err := ha.register(sctx); err != nil {
		return fmt.Errorf("demo hosts: HTTP agent: %w", err)
	}
	wg.Go(func() { ha.run(sctx) })

	// The host agent: its own handle on the table, nothing else.
	tbl, err := table.OpenDSN(ctx, dsn)
	if err != nil {
		return err
	}
	defer tbl.Close()
	var hostRuns atomic.Int64
	acfg := agent.DefaultConfig("lpar1")
	acfg.Slots, acfg.StatusEvery, acfg.Poll = 16, time.Second, 200*time.Millisecond
	hostHandler := func(f func(p []byte) []byte) agent.Handler {
		return func(ctx context.Context, in table.Instruction) ([]byte, error) {
			hostRuns.Add(1)
			select { // a batch job on a host: a few milliseconds
			case <-time.After(3 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return f(in.Payload), nil
		}
	}
	acfg.Handlers = map[string]agent.Handler{
		"host.report": hostHandler(func(p []byte) []byte { return append([]byte("report "), p...) }),
		"host.ledger": hostHandler(func(p []byte) []byte { return fmt.Appendf(nil, "%d.00 EUR", 100+len(p)*7) }),
		"host.post": hostHandler(func(p []byte) []byte {
			var in struct{ Account, Risk, Balance any }
			_ = json.Unmarshal(p, &in)
			return fmt.Appendf(nil, "posted %v (risk %v, balance %v)", in.Account, in.Risk, in.Balance)
		}),
	}
	ag, err := agent.New(tbl, acfg, log)
	if err != nil {
		return err
	}
	wg.Go(func() { _ = ag.Run(sctx) })

	// A native worker.
	var nativeRuns atomic.Int64
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "demo-native", Slots: 8, NoLoad: true})
	w.Handle("native.thumb", func(_ context.Context, t messages.Task) ([]byte, error) {
		nativeRuns.Add(1)
		sum := sha256.Sum256(t.Payload)
		return []byte(hex.EncodeToString(sum[:4])), nil
	})
	wg.Go(func() { _ = w.Run(sctx) })

	const each = 300
	fmt.Fprintf(out, "\nexecutors side by side: a native worker, an HTTP agent (JSON API on %s), a host agent through the instruction table (SQLite %s)\n", ln.Addr(), filepath.Base(dsn))
	var tasks []sdk.Task
	for i := range each {
		tasks = append(tasks,
			sdk.Task{Type: "native.thumb", Payload: fmt.Appendf(nil, "image-%d", i), Priority: messages.DefaultPriority},
			sdk.Task{Type: "open.score", Payload: fmt.Appendf(nil, "customer-%d", i), Priority: messages.DefaultPriority},
			sdk.Task{Type: "host.report", Payload: fmt.Appendf(nil, "batch-%d", i), Priority: messages.DefaultPriority})
	}
	c := sdk.NewClient(conn)
	start := time.Now()
	ids, err := c.SubmitBatch(ctx, tasks)
	if err != nil {
		return fmt.Errorf("demo hosts: submit: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	outcomes, err := c.Wait(wctx, ids...)
	if err != nil {
		return fmt.Errorf("demo hosts: wait: %w", err)
	}
	elapsed := time.Since(start)
	done := map[string]int{}
	for i, o := range outcomes {
		if o.State == messages.StateDone {
			done[tasks[i].Type]++
		}
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\t\n", k, v) }
	row("native worker (native.thumb)", fmt.Sprintf("%d done, %d runs", done["native.thumb"], nativeRuns.Load()))
	row("HTTP agent (open.score)", fmt.Sprintf("%d done, %d runs", done["open.score"], openRuns.Load()))
	row("host agent via the table (host.report)", fmt.Sprintf("%d done, %d runs", done["host.report"], hostRuns.Load()))
	row("wall time", elapsed.Round(time.Millisecond))
	tw.Flush()

	// Flows with both sides.
	tpl, err := c.RegisterTemplate(ctx, []byte(demoBothSides))
	if err != nil {
		return fmt.Errorf("demo hosts: %w", err)
	}
	const flows = 200
	specs := make([]sdk.Flow, flows)
	for i := range specs {
		specs[i] = sdk.Flow{Template: tpl.Name, Input: fmt.Appendf(nil, `{"account": "acct-%03d"}`, i)}
	}
	openBefore, hostBefore := openRuns.Load(), hostRuns.Load()
	start = time.Now()
	fids, err := c.RunFlows(ctx, specs)
	if err != nil {
		return fmt.Errorf("demo hosts: run flows: %w", err)
	}
	fouts, err := c.WaitFlow(wctx, fids...)
	if err != nil {
		return fmt.Errorf("demo hosts: wait flows: %w", err)
	}
	elapsed = time.Since(start)
	ok, example := 0, ""
	var problems []string
	for _, o := range fouts {
		if o.State == messages.StateDone {
			ok++
			if example == "" {
				example = string(o.Output)
			}
		} else if len(problems) < 3 {
			problems = append(problems, fmt.Sprintf("flow %d: %s %s", o.TaskID, o.State, o.Error))
		}
	}
	fmt.Fprintf(out, "\nboth sides in one flow (%s): risk on the HTTP agent, ledger on the host, then post on the host with both; one merged result\n", tpl.Name)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	row("flows done", fmt.Sprintf("%d of %d in %v", ok, flows, elapsed.Round(time.Millisecond)))
	row("steps on the HTTP agent", openRuns.Load()-openBefore)
	row("steps on the host agent", hostRuns.Load()-hostBefore)
	tw.Flush()
	fmt.Fprintf(out, "example merged result: %s\n", example)
	if sts, err := tbl.Statuses(ctx); err == nil {
		for _, s := range sts {
			fmt.Fprintf(out, "host %s in the node-status table: cpu %.0f%%, mem %.0f%%, %d processes, ip %s, serving %s\n",
				s.Host, 100*s.CPU, 100*s.Mem, s.Procs, s.IP, strings.Join(s.Types, ", "))
		}
	}
	switch {
	case len(problems) > 0:
		return fmt.Errorf("demo hosts: %d flows ended wrong, e.g. %s", flows-ok, strings.Join(problems, "; "))
	case done["native.thumb"] != each || done["open.score"] != each || done["host.report"] != each:
		return fmt.Errorf("demo hosts: done per type %v, want %d each", done, each)
	}
	return nil
}

// demoHTTPAgent is a small HTTP agent speaking the node's JSON API
// (docs/api.md): what deploy/agents/agent.py does, in Go, so the demo
// needs no Python.
type demoHTTPAgent struct {
	base, id string
	types    []string
	runs     *atomic.Int64
}

func (a *demoHTTPAgent) post(ctx context.Context, path string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, "POST", a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (a *demoHTTPAgent) register(ctx context.Context) error {
	var out map[string]any
	return a.post(ctx, "/v1/agents", map[string]any{"id": a.id, "types": a.types, "slots": 16}, &out)
}

// run leases tasks with a long poll, runs them, and reports the results
// with the next lease call, until ctx ends.
func (a *demoHTTPAgent) run(ctx context.Context) {
	var results []api.ResultIn
	for ctx.Err() == nil {
		var got struct {
			Tasks []api.TaskOut `json:"tasks"`
		}
		err := a.post(ctx, "/v1/agents/"+a.id+"/lease", map[string]any{"max": 16, "timeout_ms": 1000, "results": results}, &got)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				time.Sleep(50 * time.Millisecond)
			}
			continue // results are reported again with the next call
		}
		results = results[:0]
		for _, t := range got.Tasks {
			a.runs.Add(1)
			p := ""
			if t.Payload != nil {
				p = *t.Payload
			}
			var v string
			switch t.Type {
			case "open.risk": // an open-side service: a risk score per account
				sum := sha256.Sum256([]byte(p))
				v = []string{"low", "medium", "high"}[int(sum[0])%3]
			default:
				v = fmt.Sprintf("score %d", len(p)*13%100)
			}
			results = append(results, api.ResultIn{ID: t.ID, Attempt: t.Attempt, OK: true, Output: &v})
		}
		results = slices.Clip(results)
	}
}
