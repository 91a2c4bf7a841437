package bench

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/messages"
)

// W7's cross-node peers. Two protoactor remotes in one process race
// (shared/PROTOACTOR.md), so W7 runs its sender and its receiver as two
// child processes of the running executable, selected by peerEnv. Any
// binary that links this package (the shoal CLI, this package's test binary)
// turns into the peer when the variable is set: init below runs it and
// exits before main. The protocol is lines on stdin and stdout:
//
//	sink:   prints "ADDR host:port"; counts *messages.Heartbeat; on each
//	        *messages.StatusRequest (the end marker) prints "MARK count".
//	source: prints "READY msgbytes"; on "send N" tells N heartbeats and a
//	        marker to the sink's actor, then prints "SENT N send_loop_ns";
//	        on "send N B" tells N/B heartbeats of B results each (the sink
//	        counts results).
//
// Both exit when stdin closes.
const (
	peerEnv       = "SHOAL_BENCH_PEER"
	peerTargetEnv = "SHOAL_BENCH_PEER_TARGET"
	sinkName      = "bench-sink"
)

func init() {
	mode := os.Getenv(peerEnv)
	if mode == "" {
		return
	}
	var err error
	switch mode {
	case "sink":
		err = runSink()
	case "source":
		err = runSource(os.Getenv(peerTargetEnv))
	case "node":
		err = runNodePeer()
	default:
		err = fmt.Errorf("unknown %s %q", peerEnv, mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench peer %s: %v\n", mode, err)
		os.Exit(2)
	}
	os.Exit(0)
}

func peerSystem() (*actor.ActorSystem, *slog.Logger) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger })), logger
}

type sink struct {
	count int
	out   *bufio.Writer
}

func (s *sink) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Heartbeat:
		s.count += max(1, len(m.Results)) // a batched heartbeat carries many results
	case *messages.StatusRequest:
		fmt.Fprintf(s.out, "MARK %d\n", s.count)
		s.out.Flush()
	}
}

func runSink() error {
	system, logger := peerSystem()
	r, err := cluster.StartRemote(system, "127.0.0.1", 0, logger)
	if err != nil {
		return err
	}
	defer r.Shutdown(false)
	codec := cluster.NewCodec(messages.Default())
	props := actor.PropsFromProducer(func() actor.Actor { return &sink{out: bufio.NewWriter(os.Stdout)} }, codec.PropsOptions(logger)...)
	if _, err := system.Root.SpawnNamed(props, sinkName); err != nil {
		return err
	}
	fmt.Printf("ADDR %s\n", system.Address())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// peerMessage is what the source tells: a heartbeat the size of a small
// control message.
func peerMessage() *messages.Heartbeat {
	return &messages.Heartbeat{ExecutorID: "bench-w7-source-0001", Load: messages.LoadReport{CPU: 0.5, Mem: 0.25, IO: 0.125, InFlight: 8},
		Held: []uint64{1 << 40, 1<<40 + 1, 1<<40 + 2, 1<<40 + 3, 1<<40 + 4, 1<<40 + 5, 1<<40 + 6, 1<<40 + 7}}
}

type sourceCmd struct {
	n, batch int
	done     chan time.Duration
}

// batchMessage is a heartbeat reporting batch results, as an executor
// reports finished tasks: W7's batched unit is one result.
func batchMessage(batch int) *messages.Heartbeat {
	h := &messages.Heartbeat{ExecutorID: "bench-w7-source-0001", Results: make([]messages.Result, batch)}
	for i := range h.Results {
		h.Results[i] = messages.Result{TaskID: 1<<48 + uint64(i), Attempt: 1, OK: true, RunNanos: 1500}
	}
	return h
}

func runSource(target string) error {
	if target == "" {
		return fmt.Errorf("%s is not set", peerTargetEnv)
	}
	system, logger := peerSystem()
	r, err := cluster.StartRemote(system, "127.0.0.1", 0, logger)
	if err != nil {
		return err
	}
	defer r.Shutdown(false)
	codec := cluster.NewCodec(messages.Default())
	to := actor.NewPID(target, sinkName)
	msg := peerMessage()
	_, b, err := messages.Default().Encode(msg)
	if err != nil {
		return err
	}
	sender := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if c, ok := ctx.Message().(sourceCmd); ok {
			t0 := time.Now()
			if c.batch > 1 {
				// Batched: each remote message carries batch results.
				b := batchMessage(c.batch)
				for range c.n / c.batch {
					codec.Send(ctx, to, b)
				}
			} else {
				for range c.n {
					codec.Send(ctx, to, msg)
				}
			}
			codec.Send(ctx, to, &messages.StatusRequest{})
			c.done <- time.Since(t0)
		}
	}))
	fmt.Printf("READY %d\n", len(b))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "send" {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return err
		}
		batch := 1
		if len(f) > 2 {
			if batch, err = strconv.Atoi(f[2]); err != nil {
				return err
			}
		}
		done := make(chan time.Duration, 1)
		system.Root.Send(sender, sourceCmd{n: n, batch: batch, done: done})
		d := <-done
		fmt.Printf("SENT %d %d\n", n, d.Nanoseconds())
	}
	return nil
}
