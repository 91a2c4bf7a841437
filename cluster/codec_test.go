package cluster

import (
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
)

// Codec is the remote-capable actorio.Transport, and its Wrap and Decode fit
// sdk.Conn's Wrap and Unwrap fields.
var (
	_ actorio.Transport      = (*Codec)(nil)
	_ func(any) (any, error) = (*Codec)(nil).Wrap
	_ func(any) (any, error) = (*Codec)(nil).Decode
)

// sampleMessages holds one populated value of every registered message
// (messages' own tests check that their list covers the registry; this one
// is checked against the registry's count of names below).
func sampleMessages() []any {
	load := messages.LoadReport{CPU: 0.5, Mem: 0.25, IO: 0.125, InFlight: 3}
	return []any{
		&messages.Submit{Version: messages.ProtocolVersion, Tasks: []messages.TaskSpec{
			{Type: "resize", Payload: []byte("img"), Priority: 60, Requirements: map[string]string{"gpu": "=a100"}, MaxAttempts: 3},
			{Type: "noop", Priority: messages.MaxPriority}}},
		&messages.SubmitAck{IDs: []uint64{1, 2}},
		&messages.Register{Version: messages.ProtocolVersion, ExecutorID: "ex-1", Types: []string{"resize"}, Slots: 4,
			Capabilities: map[string]string{"os": "linux"}, Token: "t"},
		&messages.Registered{LeaseTTLMillis: 30000, HeartbeatMillis: 5000},
		&messages.Pull{ExecutorID: "ex-1", Load: load, Free: 2,
			Results: []messages.Result{{TaskID: 7, Attempt: 1, OK: true, Output: []byte("o"), RunNanos: 10}}, Held: []uint64{8}},
		&messages.Grant{Tasks: []messages.Task{{ID: 9, Type: "resize", Payload: []byte{1}, Priority: 1, Attempt: 1}},
			Cancel: []uint64{3}, LeaseTTLMillis: 30000},
		&messages.Heartbeat{ExecutorID: "ex-1", Load: load, Held: []uint64{8}},
		&messages.Wait{IDs: []uint64{1}, TimeoutMillis: 100},
		&messages.Outcomes{Outcomes: []messages.Outcome{{TaskID: 1, State: messages.StateDone, Output: []byte("x"), Attempts: 1}}},
		&messages.Cancel{IDs: []uint64{1, 2}},
		&messages.StatusRequest{},
		&messages.Status{Node: "n1", Classes: []messages.ClassStatus{{Class: "high", Queued: 1}},
			Executors: []messages.ExecutorStatus{{ID: "ex-1", Slots: 4, Load: load}}, Counters: map[string]int64{"done": 1}},
		messages.Errorf(messages.CodeOverloaded, "standby full"),
	}
}

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
}

func TestWrapUnwrapEveryMessage(t *testing.T) {
	reg := messages.Default()
	c := NewCodec(reg)
	seen := map[string]bool{}
	for _, m := range sampleMessages() {
		out, err := c.Wrap(m)
		if err != nil {
			t.Fatalf("wrap %T: %v", m, err)
		}
		env, ok := out.(*anypb.Any)
		if !ok {
			t.Fatalf("Wrap(%T) gave %T, want *anypb.Any", m, out)
		}
		if want := TypeURLPrefix + reg.Name(m); env.TypeUrl != want {
			t.Errorf("%T: TypeUrl %q, want %q", m, env.TypeUrl, want)
		}
		seen[env.TypeUrl] = true

		// The exact path remote takes: serializer 0 on the way out, the
		// type name it reports on the way in.
		onWire, typeName, err := remote.Serialize(env, 0)
		if err != nil {
			t.Fatalf("%T: remote serialize: %v", m, err)
		}
		arrived, err := remote.Deserialize(onWire, typeName, 0)
		if err != nil {
			t.Fatalf("%T: remote deserialize %s: %v", m, typeName, err)
		}
		got, wrapped, err := c.Unwrap(arrived)
		if err != nil || !wrapped {
			t.Fatalf("%T: unwrap: wrapped=%v err=%v", m, wrapped, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip changed %T:\n got %#v\nwant %#v", m, got, m)
		}
	}
	if len(seen) != 13 {
		t.Errorf("samples cover %d message types; update sampleMessages when messages.Default changes", len(seen))
	}
}

func TestWrapRefusesUnregistered(t *testing.T) {
	c := NewCodec(messages.Default())
	for _, m := range []any{messages.Submit{}, "text", &actor.PoisonPill{}, nil} {
		if _, err := c.Wrap(m); err == nil {
			t.Errorf("Wrap(%T) succeeded", m)
		}
	}
}

func TestUnwrapPassesOtherMessagesThrough(t *testing.T) {
	c := NewCodec(messages.Default())
	submit := &messages.Submit{}
	other := &anypb.Any{TypeUrl: "type.googleapis.com/google.protobuf.Empty"}
	for _, m := range []any{submit, other, &actor.Started{}, nil, (*anypb.Any)(nil)} {
		got, wrapped, err := c.Unwrap(m)
		if wrapped || err != nil || got != m {
			t.Errorf("Unwrap(%T) = %v, %v, %v; want it unchanged", m, got, wrapped, err)
		}
	}
}

func TestUnwrapRefusesBadEnvelopes(t *testing.T) {
	c := NewCodec(messages.Default())
	for label, env := range map[string]*anypb.Any{
		"unknown name": {TypeUrl: "shoal/shoal.Nope", Value: []byte{0x80}},
		"no name":      {TypeUrl: "shoal/"},
		"garbage":      {TypeUrl: "shoal/shoal.Submit", Value: []byte{0xc1}},
		"bomb":         {TypeUrl: "shoal/shoal.SubmitAck", Value: []byte{0x81, 0xa3, 'i', 'd', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}},
	} {
		got, wrapped, err := c.Unwrap(env)
		if !wrapped || got != nil || !errors.Is(err, messages.ErrInvalid) {
			t.Errorf("%s: Unwrap = %v, %v, %v; want nil, true, CodeInvalid", label, got, wrapped, err)
		}
	}
}

func TestIsRemote(t *testing.T) {
	system := quietSystem()
	if IsRemote(system, system.NewLocalPID("a")) {
		t.Error("a PID of this system is remote")
	}
	if IsRemote(system, nil) {
		t.Error("nil PID is remote")
	}
	if !IsRemote(system, actor.NewPID("127.0.0.1:1", "a")) {
		t.Error("a PID of another address is local")
	}
}

func TestOutboundWrapsOnlyShoalMessagesForRemotePIDs(t *testing.T) {
	c := NewCodec(messages.Default())
	system := quietSystem()
	local, far := system.NewLocalPID("a"), actor.NewPID("127.0.0.1:1", "a")
	submit := &messages.Submit{Version: 1}
	for _, tc := range []struct {
		pid     *actor.PID
		msg     any
		wrapped bool
	}{
		{local, submit, false},
		{far, submit, true},
		{far, &actor.PoisonPill{}, false},
		{far, "not a shoal message", false},
	} {
		out, wrapped, err := c.outbound(system, tc.pid, tc.msg)
		if err != nil || wrapped != tc.wrapped {
			t.Errorf("outbound(%s, %T) wrapped=%v err=%v, want wrapped=%v", tc.pid.Address, tc.msg, wrapped, err, tc.wrapped)
			continue
		}
		if !wrapped && out != tc.msg {
			t.Errorf("outbound(%s, %T) changed a message it did not wrap", tc.pid.Address, tc.msg)
		}
		if wrapped {
			if env, ok := out.(*anypb.Any); !ok || env.TypeUrl != "shoal/shoal.Submit" {
				t.Errorf("outbound to a remote PID gave %#v", out)
			}
		}
	}
}

// echoProps answers Submit with a SubmitAck of one id per task, Wait with a
// NotFound error, and reports every user message it sees on seen.
func echoProps(c *Codec, seen chan<- any) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *messages.Submit:
			if seen != nil {
				seen <- m
			}
			ids := make([]uint64, len(m.Tasks))
			for i := range ids {
				ids[i] = uint64(i + 1)
			}
			ctx.Respond(&messages.SubmitAck{IDs: ids})
		case *messages.Wait:
			ctx.Respond(messages.Errorf(messages.CodeNotFound, "no task %v", m.IDs))
		case actor.SystemMessage, actor.AutoReceiveMessage:
		default:
			if seen != nil {
				seen <- m
			}
		}
	}, c.PropsOptions(nil)...)
}

func TestMiddlewareOnLocalActors(t *testing.T) {
	c := NewCodec(messages.Default())
	system := quietSystem()
	seen := make(chan any, 4)
	pid := system.Root.Spawn(echoProps(c, seen))
	defer system.Root.Stop(pid)

	// A local send passes the struct itself: no encoding.
	submit := &messages.Submit{Version: 1, Tasks: make([]messages.TaskSpec, 2)}
	ack, err := ResultAs[*messages.SubmitAck](c, system.Root.RequestFuture(pid, submit, 5*time.Second))
	if err != nil || len(ack.IDs) != 2 {
		t.Fatalf("local request: %v, %v", ack, err)
	}
	if got := <-seen; got != submit {
		t.Errorf("the actor got %p, want the very struct sent (%p)", got, submit)
	}

	// A wrapped message reaches the actor decoded.
	env, err := c.wrap(&messages.Submit{Version: 1, Tasks: make([]messages.TaskSpec, 3)})
	if err != nil {
		t.Fatal(err)
	}
	ack, err = ResultAs[*messages.SubmitAck](c, system.Root.RequestFuture(pid, env, 5*time.Second))
	if err != nil || len(ack.IDs) != 3 {
		t.Fatalf("wrapped request: %v, %v", ack, err)
	}
	if got, ok := (<-seen).(*messages.Submit); !ok || len(got.Tasks) != 3 {
		t.Errorf("the actor got %#v", got)
	}

	// An undecodable request is dropped and answered with CodeInvalid.
	bad := &anypb.Any{TypeUrl: "shoal/shoal.Submit", Value: []byte{0xc1}}
	if _, err := c.Result(system.Root.RequestFuture(pid, bad, 5*time.Second)); !errors.Is(err, messages.ErrInvalid) {
		t.Errorf("garbage request: err = %v, want CodeInvalid", err)
	}

	// An *messages.Error answer is the error.
	if _, err := c.Result(system.Root.RequestFuture(pid, &messages.Wait{IDs: []uint64{5}}, 5*time.Second)); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("wait: err = %v, want CodeNotFound", err)
	}

	// An answer of another type than asked for.
	if _, err := ResultAs[*messages.Outcomes](c, system.Root.RequestFuture(pid, submit, 5*time.Second)); !errors.Is(err, messages.ErrInternal) {
		t.Errorf("ResultAs with the wrong type: err = %v, want CodeInternal", err)
	}
	<-seen

	// Future errors come back wrapped.
	if _, err := c.Result(system.Root.RequestFuture(system.NewLocalPID("nobody"), submit, 5*time.Second)); !errors.Is(err, actor.ErrDeadLetter) {
		t.Errorf("request to nobody: err = %v, want ErrDeadLetter", err)
	}
}

// BenchmarkWrapUnwrap measures what a remote send adds per message on top of
// what protoactor does anyway: msgpack encode into the Any, proto marshal and
// unmarshal of the Any (remote's part), msgpack decode.
func BenchmarkWrapUnwrap(b *testing.B) {
	c := NewCodec(messages.Default())
	for _, tc := range []struct {
		name string
		msg  any
	}{
		{"msg=submit-1", &messages.Submit{Version: 1, Tasks: []messages.TaskSpec{{Type: "t", Payload: make([]byte, 64), Priority: 50}}}},
		{"msg=submit-1000", &messages.Submit{Version: 1, Tasks: func() []messages.TaskSpec {
			ts := make([]messages.TaskSpec, 1000)
			for i := range ts {
				ts[i] = messages.TaskSpec{Type: "t", Payload: make([]byte, 64), Priority: 50}
			}
			return ts
		}()}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				env, err := c.wrap(tc.msg)
				if err != nil {
					b.Fatal(err)
				}
				onWire, err := proto.Marshal(env)
				if err != nil {
					b.Fatal(err)
				}
				size = len(onWire)
				var in anypb.Any
				if err := proto.Unmarshal(onWire, &in); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.Unwrap(&in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size), "wire-bytes")
		})
	}
}
