package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// W7 in process: a sender actor tells a receiver actor that counts.

type w7msg struct{ seq int }

type w7expect struct {
	n    int
	done chan struct{}
}

type w7send struct {
	n  int
	to *actor.PID
}

type w7receiver struct {
	count, want int
	done        chan struct{}
}

func (r *w7receiver) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *w7msg:
		r.count++
		if r.count == r.want {
			close(r.done)
		}
	case w7expect:
		r.count, r.want, r.done = 0, m.n, m.done
	}
}

func w7sender(ctx actor.Context) {
	if m, ok := ctx.Message().(w7send); ok {
		msg := &w7msg{}
		for range m.n {
			ctx.Send(m.to, msg)
		}
	}
}

// localTell times n tells from one actor to another.
func localTell(ctx context.Context, logger *slog.Logger, n int) (time.Duration, error) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	defer system.Shutdown()
	root := system.Root
	recv := root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &w7receiver{} }))
	send := root.Spawn(actor.PropsFromFunc(w7sender))
	defer func() {
		_ = root.StopFuture(send).Wait()
		_ = root.StopFuture(recv).Wait()
	}()
	run := func(k int) (time.Duration, error) {
		done := make(chan struct{})
		root.Send(recv, w7expect{n: k, done: done})
		t0 := time.Now()
		root.Send(send, w7send{n: k, to: recv})
		select {
		case <-done:
			return time.Since(t0), nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if _, err := run(min(n, 100_000)); err != nil { // warm-up
		return 0, err
	}
	return run(n)
}

// runW7 measures the tell rate in process and, unless opt.RemoteMessages is
// negative, across two processes over protoactor remote on loopback with
// shoal's msgpack codec (see peer.go).
func runW7(ctx context.Context, opt Options, res *Result) error {
	res.Params = map[string]any{"messages": opt.Messages, "remote_messages": opt.RemoteMessages, "senders": 1}
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "W7: %d tells in process\n", opt.Messages)
	}
	d, err := localTell(ctx, opt.Logger, opt.Messages)
	if err != nil {
		return err
	}
	res.Metrics["local_msgs_per_s"] = rate(int64(opt.Messages), d)
	if opt.RemoteMessages < 0 {
		res.notef("cross-node part skipped (RemoteMessages < 0)")
		return nil
	}
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "W7: %d tells across two processes (remote, loopback, msgpack)\n", opt.RemoteMessages)
	}
	r, err := remoteTell(ctx, opt.Logger, opt.RemoteMessages, 1)
	if err != nil {
		return fmt.Errorf("cross-node: %w", err)
	}
	if opt.RemoteBatch > 1 {
		if err := remoteBatched(ctx, opt, res); err != nil {
			return err
		}
	}
	res.Params["remote_msg_bytes"] = r.msgBytes
	res.Metrics["remote_msgs_per_s"] = rate(int64(opt.RemoteMessages), r.delivered)
	res.Metrics["remote_send_loop_msgs_per_s"] = rate(int64(opt.RemoteMessages), r.sendLoop)
	if r.received != opt.RemoteMessages {
		res.Metrics["remote_lost"] = float64(opt.RemoteMessages - r.received)
		return fmt.Errorf("the receiver counted %d of %d messages", r.received, opt.RemoteMessages)
	}
	res.notef("cross-node: one sender actor in one child process tells a counting actor in another, both on protoactor remote over loopback with the cluster codec (msgpack in anypb.Any); rate = messages / (send command → receiver saw the end marker)")
	return nil
}

type remoteResult struct {
	delivered, sendLoop time.Duration
	received            int
	msgBytes            int
}

// peerProc is a child process speaking the line protocol of peer.go.
type peerProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	errb  *strings.Builder
}

func startPeer(ctx context.Context, mode string, env ...string) (*peerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(append(os.Environ(), peerEnv+"="+mode), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &peerProc{cmd: cmd, in: in, lines: make(chan string, 16), errb: &strings.Builder{}}
	cmd.Stderr = &limitedWriter{b: p.errb, left: 8 << 10}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	return p, nil
}

// expect waits for the next line starting with prefix and returns its fields.
func (p *peerProc) expect(ctx context.Context, prefix string) ([]string, error) {
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return nil, fmt.Errorf("peer exited waiting for %q: %s", prefix, p.errb.String())
			}
			if f := strings.Fields(l); len(f) > 0 && f[0] == prefix {
				return f[1:], nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %q from the peer: %w", prefix, ctx.Err())
		}
	}
}

func (p *peerProc) stop() {
	_ = p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

type limitedWriter struct {
	b    *strings.Builder
	left int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.left > 0 {
		k := min(len(p), w.left)
		w.b.Write(p[:k])
		w.left -= k
	}
	return len(p), nil
}

func remoteTell(ctx context.Context, logger *slog.Logger, n, batch int) (remoteResult, error) {
	var r remoteResult
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	sink, err := startPeer(ctx, "sink")
	if err != nil {
		return r, err
	}
	defer sink.stop()
	f, err := sink.expect(ctx, "ADDR")
	if err != nil || len(f) != 1 {
		return r, errors.Join(err, fmt.Errorf("sink did not report its address"))
	}
	source, err := startPeer(ctx, "source", peerTargetEnv+"="+f[0])
	if err != nil {
		return r, err
	}
	defer source.stop()
	f, err = source.expect(ctx, "READY")
	if err != nil || len(f) != 1 {
		return r, errors.Join(err, fmt.Errorf("source did not start"))
	}
	r.msgBytes, _ = strconv.Atoi(f[0])
	total := 0
	round := func(k int) (time.Duration, time.Duration, int, error) {
		t0 := time.Now()
		if _, err := fmt.Fprintf(source.in, "send %d %d\n", k, batch); err != nil {
			return 0, 0, 0, err
		}
		f, err := sink.expect(ctx, "MARK")
		if err != nil || len(f) != 1 {
			return 0, 0, 0, errors.Join(err, fmt.Errorf("bad MARK line"))
		}
		took := time.Since(t0)
		got, _ := strconv.Atoi(f[0])
		s, err := source.expect(ctx, "SENT")
		if err != nil || len(s) != 2 {
			return 0, 0, 0, errors.Join(err, fmt.Errorf("bad SENT line"))
		}
		ns, _ := strconv.ParseInt(s[1], 10, 64)
		return took, time.Duration(ns), got, nil
	}
	n -= n % batch
	warm := min(n, 20_000)
	warm -= warm % batch
	if _, _, got, err := round(warm); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	} else {
		total = got
	}
	took, loop, got, err := round(n)
	if err != nil {
		return r, err
	}
	r.delivered, r.sendLoop, r.received = took, loop, got-total
	logger.Debug("w7 remote done", "messages", n, "received", r.received, "took", took)
	return r, nil
}

// remoteBatched is W7's batched cross-node figure: the same two processes,
// but each remote message is a heartbeat carrying opt.RemoteBatch results
// (how executors report finished tasks and nodes forward task batches);
// the rate counts results.
func remoteBatched(ctx context.Context, opt Options, res *Result) error {
	n := opt.RemoteMessages * 10
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "W7: %d results in batches of %d across two processes\n", n, opt.RemoteBatch)
	}
	r, err := remoteTell(ctx, opt.Logger, n, opt.RemoteBatch)
	if err != nil {
		return fmt.Errorf("cross-node batched: %w", err)
	}
	n -= n % opt.RemoteBatch
	res.Params["remote_batch"] = opt.RemoteBatch
	res.Metrics["remote_batched_msgs_per_s"] = rate(int64(n), r.delivered)
	if r.received != n {
		return fmt.Errorf("batched: the receiver counted %d of %d results", r.received, n)
	}
	res.notef("cross-node batched: %d results (task id, attempt, ok, run time) in heartbeats of %d, one sender actor to one counting actor in another process", n, opt.RemoteBatch)
	return nil
}
