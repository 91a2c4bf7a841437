package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// runW1Cluster is W1 on opt.Nodes node processes (see cluster.go): the
// producers spread their batches over the nodes' clients round-robin, each
// client sends each task to its partition's owner (or, NoOwnerRouting,
// that node's router does), and the workers are spread over the nodes. Completion is read from the nodes' status counters.
func runW1Cluster(ctx context.Context, opt Options, res *Result) error {
	n := int64(opt.Tasks)
	res.Params = map[string]any{"owner_routing": !opt.NoOwnerRouting, "mode": opt.Mode, "tasks": opt.Tasks, "producers": opt.Producers, "batch": opt.Batch,
		"workers": opt.Workers, "slots": opt.Slots, "payload_bytes": opt.PayloadBytes, "durable": "fsync"}
	c, err := startCluster(ctx, opt, "w1", false, opt.Mode == "concurrent")
	if err != nil {
		return err
	}
	defer c.close()
	pl := newPayloads(opt.PayloadBytes)
	build := func(i int) sdk.Task {
		return sdk.Task{Type: typeNoop, Payload: pl.make(uint64(i)), Priority: messages.DefaultPriority}
	}
	var acked atomic.Int64
	var seen int64
	var t0, tSubmitted, tWorkers, tDone time.Time
	stop := startProgress(opt.Progress, "W1 cluster "+opt.Mode+": submitted", n, acked.Load)
	cpu0, cpuErr := c.cpu()
	t0 = time.Now()
	err = submitBatches(ctx, c.clients, opt.Tasks, opt.Batch, opt.Producers, build, &acked, nil, nil)
	tSubmitted = time.Now()
	stop()
	if err != nil {
		return err
	}
	if opt.Mode == "drain" {
		tWorkers = time.Now()
		if err := c.start(ctx); err != nil {
			return err
		}
	}
	if err := c.waitFinished(ctx, n, &seen); err != nil {
		return err
	}
	tDone = time.Now()
	if cpu1, err := c.cpu(); err == nil && cpuErr == nil {
		cpuPerTask(res, cpu0, cpu1, n)
	}
	if opt.Mode == "drain" {
		res.Metrics["drain_tasks_per_s"] = rate(n, tDone.Sub(tWorkers))
		res.Metrics["drain_s"] = secs(tDone.Sub(tWorkers))
	}
	res.Metrics["submit_tasks_per_s"] = rate(n, tSubmitted.Sub(t0))
	res.Metrics["submit_s"] = secs(tSubmitted.Sub(t0))
	res.Metrics["tasks_per_s"] = rate(n, tDone.Sub(t0))
	res.Metrics["end_to_end_s"] = secs(tDone.Sub(t0))
	c.record(ctx, res)
	res.notef("%d node processes on loopback, workers spread over them; durable results counted from the nodes' status; peak RSS of the node processes not measured", opt.Nodes)
	if d := res.Metrics["node_dead"]; d > 0 {
		return fmt.Errorf("%v tasks ended dead", d)
	}
	if res.Metrics["node_done"] != float64(n) {
		return fmt.Errorf("%v tasks done, want %d (unique payloads: none may be a duplicate)", res.Metrics["node_done"], n)
	}
	return nil
}
