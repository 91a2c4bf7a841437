package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

// demoFlowTemplate: every order report needs its region's price list and
// today's exchange rates (shared by many concurrent flows: each runs once)
// and the customer's own record, then prices and renders the report.
const demoFlowTemplate = `
name: order-report
input:
  region: {type: string, required: true}
  customer: {type: string, required: true}
steps:
  - {name: prices, type: demo.fetch-prices, args: $input.region}
  - {name: rates, type: demo.fx-rates, args: today}
  - {name: customer, type: demo.customer, args: {id: $input.customer, region: $input.region}}
  - {name: total, type: demo.price, args: {prices: $steps.prices, rates: $steps.rates, customer: $steps.customer}}
  - {name: render, type: demo.render, args: "report for ${steps.customer.name}: ${steps.total}"}
output: {customer: $input.customer, total: $steps.total, report: $steps.render}
`

var demoRegions = []string{"eu-west", "eu-north", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af-south", "atlantis"}

// demoFlows runs flows with shared steps on the demo's node and reports how
// many step executions coalescing saved. One region's price list cannot be
// fetched: every flow of that region fails with that step's error.
func demoFlows(ctx context.Context, out io.Writer, n *node.Node, conn *sdk.Conn) error {
	const flows = 2000
	var execs sync.Map // step type → *atomic.Int64
	count := func(typ string) {
		v, _ := execs.LoadOrStore(typ, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "demo-flow-worker", Slots: 32, NoLoad: true})
	w.Handle("demo.fetch-prices", func(ctx context.Context, t messages.Task) ([]byte, error) {
		count("demo.fetch-prices")
		if string(t.Payload) == "atlantis" {
			return nil, sdk.Permanent(errors.New("price service for atlantis is unreachable"))
		}
		select { // a slow upstream: worth sharing
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return fmt.Appendf(nil, `{"widget": %d}`, 10+len(t.Payload)), nil
	})
	w.Handle("demo.fx-rates", func(context.Context, messages.Task) ([]byte, error) {
		count("demo.fx-rates")
		time.Sleep(20 * time.Millisecond)
		return []byte(`{"EUR": 1.0, "USD": 1.1}`), nil
	})
	w.Handle("demo.customer", func(_ context.Context, t messages.Task) ([]byte, error) {
		count("demo.customer")
		var in struct{ ID string }
		_ = json.Unmarshal(t.Payload, &in)
		return fmt.Appendf(nil, `{"name": "customer %s", "qty": %d}`, in.ID, 1+len(in.ID)%5), nil
	})
	w.Handle("demo.price", func(_ context.Context, t messages.Task) ([]byte, error) {
		count("demo.price")
		var in struct {
			Prices   map[string]float64
			Rates    map[string]float64
			Customer struct{ Qty float64 }
		}
		if err := json.Unmarshal(t.Payload, &in); err != nil {
			return nil, sdk.Permanent(err)
		}
		return fmt.Appendf(nil, "%.2f", in.Prices["widget"]*in.Customer.Qty*in.Rates["USD"]), nil
	})
	w.Handle("demo.render", func(_ context.Context, t messages.Task) ([]byte, error) {
		count("demo.render")
		return []byte(strings.ToUpper(string(t.Payload))), nil
	})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	defer func() { stop(); <-done }()

	c := sdk.NewClient(conn)
	tpl, err := c.RegisterTemplate(ctx, []byte(demoFlowTemplate))
	if err != nil {
		return fmt.Errorf("demo flows: %w", err)
	}
	fmt.Fprintf(out, "\nflows: template %s v%d (%s), %d flows over %d regions\n", tpl.Name, tpl.Version, strings.Join(tpl.Steps, " → "), flows, len(demoRegions))
	specs := make([]sdk.Flow, flows)
	for i := range specs {
		specs[i] = sdk.Flow{Template: tpl.Name, Input: fmt.Appendf(nil, `{"region": %q, "customer": "c%d"}`, demoRegions[i%len(demoRegions)], i)}
		if i%10 == 0 {
			specs[i].Priority, specs[i].HasPriority = 90, true // rush orders
		}
	}
	before, err := n.FlowStats(ctx)
	if err != nil {
		return fmt.Errorf("demo flows: %w", err)
	}
	start := time.Now()
	var ids []uint64
	for i := 0; i < len(specs); i += 1000 {
		got, err := c.RunFlows(ctx, specs[i:min(i+1000, len(specs))])
		if err != nil {
			return fmt.Errorf("demo flows: run: %w", err)
		}
		ids = append(ids, got...)
	}
	outcomes, err := c.WaitFlow(ctx, ids...)
	if err != nil {
		return fmt.Errorf("demo flows: wait: %w", err)
	}
	elapsed := time.Since(start)
	after, err := n.FlowStats(ctx)
	if err != nil {
		return fmt.Errorf("demo flows: %w", err)
	}

	var ok, failed int
	var example, failure string
	var problems []string
	for i, o := range outcomes {
		atlantis := i%len(demoRegions) == len(demoRegions)-1
		switch {
		case o.State == messages.StateDone && !atlantis:
			ok++
			if example == "" {
				example = string(o.Output)
			}
		case o.State == messages.StateDead && atlantis && strings.Contains(o.Error, "step prices"):
			failed++
			failure = o.Error
		default:
			if len(problems) < 3 {
				problems = append(problems, fmt.Sprintf("flow %d: %s %s", o.TaskID, o.State, o.Error))
			}
		}
	}
	var runs int64
	execs.Range(func(_, v any) bool { runs += v.(*atomic.Int64).Load(); return true })
	submitted := after.StepsSubmitted - before.StepsSubmitted
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\t\n", k, v) }
	row("flows done", ok)
	row("flows failed (their shared step failed)", failed)
	row("step submissions", submitted)
	row("step executions", runs)
	row("executions saved by coalescing", fmt.Sprintf("%d (%.0f%%)", submitted-runs, 100*float64(submitted-runs)/max(float64(submitted), 1)))
	row(fmt.Sprintf("price-list fetches for %d regions", len(demoRegions)), load(&execs, "demo.fetch-prices"))
	row("exchange rates fetched", load(&execs, "demo.fx-rates"))
	row("wall time", elapsed.Round(time.Millisecond))
	row("flows/s", fmt.Sprintf("%.0f", float64(flows)/elapsed.Seconds()))
	tw.Flush()
	fmt.Fprintf(out, "example result: %s\n", example)
	if failure != "" {
		fmt.Fprintf(out, "example failure: %s\n", failure)
		fmt.Fprintln(out, "(flows waiting for a failed shared step fail with it; a flow that asks for it later tries it again)")
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo flows: %d flows ended wrong, e.g. %s", len(outcomes)-ok-failed, strings.Join(problems, "; "))
	}
	return nil
}

func load(m *sync.Map, k string) int64 {
	if v, ok := m.Load(k); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}
