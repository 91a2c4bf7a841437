package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shoalrt/shoal/messages"
)

// Two remotes in one process race (see shared/PROTOACTOR.md), so the peer
// node of these tests is this test binary run again as a child process.
const (
	helperEnv   = "SHOAL_CLUSTER_TEST_HELPER"
	helperActor = "submit"
	// requestTimeout bounds each request; it is a failure bound, not a
	// measurement.
	requestTimeout = 20 * time.Second
)

// TestHelperProcess is the child node: it starts a remote on a free loopback
// port, spawns the echo actor (see echoProps) under the name helperActor,
// prints "ADDR host:port" on stdout and serves until its stdin closes.
//
// With the variable set to "inuse" it checks instead that StartRemote on a
// port already taken returns an error rather than panicking, and exits 0 if
// so (a process of its own: Remote.Start touches grpc's global logger).
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("the peer node of TestRemote, started by it")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	if mode == "inuse" {
		os.Exit(checkAddressInUse(system, logger))
	}
	if _, err := StartRemote(system, "127.0.0.1", 0, logger); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	c := NewCodec(messages.Default())
	if _, err := system.Root.SpawnNamed(echoProps(c, nil), helperActor); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	fmt.Printf("ADDR %s\n", system.Address())
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

func checkAddressInUse(system *actor.ActorSystem, logger *slog.Logger) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	r, err := StartRemote(system, "127.0.0.1", port, logger)
	if err == nil || r != nil {
		fmt.Fprintf(os.Stderr, "helper: StartRemote on a taken port: %v, %v\n", r, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "helper: got", err)
	return 0
}

func TestStartRemoteErrors(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("inside the helper")
	}
	system := quietSystem()
	for _, port := range []int{-1, 65536} {
		if _, err := StartRemote(system, "127.0.0.1", port, nil); err == nil {
			t.Errorf("port %d accepted", port)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=inuse")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("StartRemote on a taken port: %v\n%s", err, out)
	}
}

// startPeer runs TestHelperProcess in a child process and returns its remote
// address. The child is killed when the test ends; a data race it reported
// fails the test.
func startPeer(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if out := stderr.String(); strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:") {
			t.Errorf("peer process failed:\n%s", out)
		}
	})

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("peer exited without an address; stderr:\n%s", stderr.String())
		}
		return a
	case <-time.After(requestTimeout):
		t.Fatalf("peer printed no address; stderr:\n%s", stderr.String())
	}
	return ""
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func submitOf(n int) *messages.Submit {
	tasks := make([]messages.TaskSpec, n)
	for i := range tasks {
		tasks[i] = messages.TaskSpec{Type: "t", Payload: []byte{byte(i)}, Priority: messages.DefaultPriority}
	}
	return &messages.Submit{Version: messages.ProtocolVersion, Tasks: tasks}
}

func wantAck(t *testing.T, what string, msg any, err error, n int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	ack, ok := msg.(*messages.SubmitAck)
	if !ok {
		t.Fatalf("%s: answer is %T, want *messages.SubmitAck", what, msg)
	}
	if len(ack.IDs) != n || (n > 0 && ack.IDs[n-1] != uint64(n)) {
		t.Fatalf("%s: ack ids %v, want 1..%d", what, ack.IDs, n)
	}
}

// TestRemote sends shoal messages to an actor in another process, every way
// a node or SDK will, and checks the answers arrive decoded.
func TestRemote(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("inside the helper")
	}
	peer := startPeer(t)

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	r, err := StartRemote(system, "127.0.0.1", 0, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(false) })
	if addr := system.Address(); !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("system address %q, want 127.0.0.1 and the port the OS chose", addr)
	}

	c := NewCodec(messages.Default())
	pid := actor.NewPID(peer, helperActor)
	if !IsRemote(system, pid) {
		t.Fatalf("peer PID %v is not remote", pid)
	}

	t.Run("future", func(t *testing.T) {
		start := time.Now()
		f, err := c.RequestFuture(system.Root, pid, submitOf(3), requestTimeout)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := c.Result(f)
		wantAck(t, "RequestFuture", msg, err, 3)
		t.Logf("first remote round trip, connection set-up included: %v", time.Since(start))
	})

	t.Run("reply-actor", func(t *testing.T) {
		replies := make(chan any, 1)
		reply := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case actor.SystemMessage, actor.AutoReceiveMessage:
			default:
				replies <- m
			}
		}, actor.WithReceiverMiddleware(c.ReceiverMiddleware(logger))))
		defer system.Root.Stop(reply)
		c.RequestWithSender(system.Root, pid, submitOf(5), reply)
		select {
		case msg := <-replies:
			wantAck(t, "Request with a reply actor", msg, nil, 5)
		case <-time.After(requestTimeout):
			t.Fatal("no reply")
		}
	})

	// How actor shells talk (wire.Transport): Request from inside an actor,
	// the answer comes back to the actor itself.
	t.Run("transport-request-from-actor", func(t *testing.T) {
		replies := make(chan any, 1)
		props := actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actor.Started:
				c.Request(ctx, pid, submitOf(4))
			case actor.SystemMessage, actor.AutoReceiveMessage:
			default:
				replies <- m
			}
		}, actor.WithReceiverMiddleware(c.ReceiverMiddleware(logger)))
		a := system.Root.Spawn(props)
		defer system.Root.Stop(a)
		select {
		case msg := <-replies:
			wantAck(t, "Transport.Request from an actor", msg, nil, 4)
		case <-time.After(requestTimeout):
			t.Fatal("no reply")
		}
	})

	t.Run("sender-middleware-root", func(t *testing.T) {
		root := actor.NewRootContext(system, nil, c.SenderMiddleware())
		msg, err := c.Result(root.RequestFuture(pid, submitOf(7), requestTimeout))
		wantAck(t, "root context with SenderMiddleware", msg, err, 7)
	})

	t.Run("error-answer", func(t *testing.T) {
		f, err := c.RequestFuture(system.Root, pid, &messages.Wait{IDs: []uint64{42}}, requestTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Result(f); !errors.Is(err, messages.ErrNotFound) {
			t.Fatalf("err = %v, want the peer's CodeNotFound", err)
		}
	})

	t.Run("garbage-envelope", func(t *testing.T) {
		bad := &anypb.Any{TypeUrl: "shoal/shoal.Submit", Value: []byte{0x81, 0xa5, 't', 'a', 's', 'k', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}}
		_, err := c.Result(system.Root.RequestFuture(pid, bad, requestTimeout))
		if !errors.Is(err, messages.ErrInvalid) {
			t.Fatalf("err = %v, want CodeInvalid from the peer", err)
		}
	})

	t.Run("batch-of-1000", func(t *testing.T) {
		msg, err := c.Result(mustFuture(t, c, system, pid, submitOf(1000)))
		wantAck(t, "1000 tasks in one Submit", msg, err, 1000)
	})

	// Over gRPC's default 4 MiB: without StartRemote's MaxRecvBytes the
	// peer drops the connection and the request times out.
	t.Run("5MiB-message", func(t *testing.T) {
		big := submitOf(2)
		big.Tasks[1].Payload = make([]byte, 5<<20)
		msg, err := c.Result(mustFuture(t, c, system, pid, big))
		wantAck(t, "a 5 MiB Submit", msg, err, 2)
	})

	t.Run("many-in-flight", func(t *testing.T) {
		futures := make([]*actor.Future, 200)
		for i := range futures {
			futures[i] = mustFuture(t, c, system, pid, submitOf(1+i%4))
		}
		for i, f := range futures {
			msg, err := c.Result(f)
			wantAck(t, fmt.Sprintf("request %d", i), msg, err, 1+i%4)
		}
	})

	// A peer that speaks remote's gRPC protocol badly must not crash the
	// node (see StartRemote's interceptors): a batch naming an unknown
	// message type, and a call of an unimplemented method.
	t.Run("hostile-peer", func(t *testing.T) {
		conn, err := grpc.Dial(peer, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := remote.NewRemotingClient(conn)
		stream, err := client.Receive(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		connect := &remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{ConnectRequest: &remote.ConnectRequest{
			ConnectionType: &remote.ConnectRequest_ServerConnection{ServerConnection: &remote.ServerConnection{SystemId: "hostile", Address: "127.0.0.1:1"}}}}}
		if err := stream.Send(connect); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		batch := &remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: &remote.MessageBatch{
			TypeNames: []string{"no.such.Type"},
			Targets:   []*actor.PID{actor.NewPID(peer, helperActor)},
			Envelopes: []*remote.MessageEnvelope{{Target: 0, TypeId: 0}},
		}}}
		if err := stream.Send(batch); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err == nil {
			t.Error("the peer kept a stream that sent an unknown type")
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		if _, err := client.ListProcesses(ctx, &remote.ListProcessesRequest{}); err == nil {
			t.Error("ListProcesses answered")
		}
		// Still alive and serving.
		msg, err := c.Result(mustFuture(t, c, system, pid, submitOf(2)))
		wantAck(t, "a request after the hostile peer", msg, err, 2)
	})

	// The reason for the codec: a plain struct sent to a remote PID is
	// dropped by remote (logged, no dead letter), so the request times out.
	// If a protoactor upgrade makes this pass, the codec can be revisited.
	t.Run("plain-struct-is-dropped", func(t *testing.T) {
		_, err := system.Root.RequestFuture(pid, submitOf(1), 2*time.Second).Result()
		if !errors.Is(err, actor.ErrTimeout) {
			t.Fatalf("a plain struct to a remote PID: err = %v, want a timeout (it is dropped)", err)
		}
	})
}

func mustFuture(t *testing.T, c *Codec, system *actor.ActorSystem, pid *actor.PID, msg any) *actor.Future {
	t.Helper()
	f, err := c.RequestFuture(system.Root, pid, msg, requestTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
