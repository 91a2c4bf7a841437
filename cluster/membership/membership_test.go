package membership

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
)

var key = bytes.Repeat([]byte{7}, 32)

func start(t *testing.T, name string, k []byte, seeds ...string) *Membership {
	t.Helper()
	m, err := Start(Config{Name: name, Bind: "127.0.0.1:0", Remote: name + "-remote:1", Seeds: seeds, Key: k, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// eventually polls cond for up to 15 s (a bound on a wait, not a timing
// assertion: on a loaded machine it simply takes longer).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("not within 15 s: %s", what)
}

func names(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestJoinGossipAndFailure(t *testing.T) {
	a := start(t, "a", key)
	b := start(t, "b", key, a.Addr())
	c := start(t, "c", key, a.Addr())
	for _, m := range []*Membership{a, b, c} {
		eventually(t, "three members", func() bool { return len(m.Members()) == 3 })
	}
	if got := a.Members()[1]; got.Name != "b" || got.Remote != "b-remote:1" {
		t.Fatalf("member b as seen by a: %+v", got)
	}
	if err := b.Publish(messages.NodeLoad{Standby: 42, Queued: [messages.NumClasses]int64{1, 2, 3}, At: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b's load reaches c", func() bool {
		l := c.Members()[1].Load
		return l != nil && l.Standby == 42 && l.Queued[2] == 3
	})
	_ = c.Shutdown() // no Leave: the others must detect it
	eventually(t, "c declared dead by a and b", func() bool {
		return len(a.Members()) == 2 && len(b.Members()) == 2
	})
	if got := names(a.Members()); got[0] != "a" || got[1] != "b" {
		t.Fatalf("members after c died: %v", got)
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	a := start(t, "a", key)
	other := bytes.Repeat([]byte{9}, 32)
	if m, err := Start(Config{Name: "intruder", Bind: "127.0.0.1:0", Seeds: []string{a.Addr()}, Key: other, Fast: true}); err == nil {
		_ = m.Shutdown()
		t.Fatal("a member with the wrong key joined")
	}
	if m, err := Start(Config{Name: "plain", Bind: "127.0.0.1:0", Seeds: []string{a.Addr()}, Fast: true}); err == nil {
		_ = m.Shutdown()
		t.Fatal("a member without a key joined an encrypted cluster")
	}
	if n := len(a.Members()); n != 1 {
		t.Fatalf("a sees %d members", n)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"no name":  {Bind: "127.0.0.1:0"},
		"bad key":  {Name: "x", Bind: "127.0.0.1:0", Key: []byte("short")},
		"bad bind": {Name: "x", Bind: "nowhere"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
}

// With JoinRetry a member whose seed is not up yet keeps trying until it
// is; after a seed was lost and is back (a partition that outlived
// gossip-to-the-dead), the re-join brings the members together again.
// Without JoinRetry the join fails at once.
func TestJoinRetryAndRejoin(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seed := l.Addr().String()
	l.Close()
	if _, err := Start(Config{Name: "x", Bind: "127.0.0.1:0", Seeds: []string{seed}, Fast: true}); err == nil {
		t.Fatal("join of a seed that is down: no error without JoinRetry")
	}
	type res struct {
		m   *Membership
		err error
	}
	done := make(chan res, 1)
	go func() {
		m, err := Start(Config{Name: "b", Bind: "127.0.0.1:0", Seeds: []string{seed}, Fast: true, JoinRetry: time.Minute, RejoinEvery: 200 * time.Millisecond})
		done <- res{m, err}
	}()
	time.Sleep(1500 * time.Millisecond) // let b fail at least once (not a timing assertion)
	a, err := Start(Config{Name: "a", Bind: seed, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	b := r.m
	t.Cleanup(func() { _ = b.Shutdown() })
	eventually(t, "a sees b", func() bool { return len(a.Members()) == 2 })
	// a goes away and comes back on the same address as a new process
	// would: it knows nobody, so only b's re-join can reunite them.
	_ = a.Shutdown()
	eventually(t, "b sees a gone", func() bool { return len(b.Members()) == 1 })
	a2, err := Start(Config{Name: "a2", Bind: seed, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a2.Shutdown() })
	eventually(t, "b re-joined a2", func() bool { return len(a2.Members()) == 2 && len(b.Members()) == 2 })
}

// Members may be called at any time, also while memberlist reports a
// member gone: it must not hold its own lock while asking memberlist (which
// calls NotifyLeave holding its node lock). Readers hammer Members while
// peers join and die; the test fails (instead of hanging) if a reader
// blocks for 20 s.
func TestMembersDuringLeaveDoesNotDeadlock(t *testing.T) {
	a := start(t, "a", key)
	stop := make(chan struct{})
	progress := make(chan struct{}, 1)
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a.Members()
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	defer close(stop)
	alive := func(n int) func() bool {
		return func() bool {
			got := make(chan int, 1)
			go func() { got <- len(a.Members()) }()
			select {
			case k := <-got:
				return k == n
			case <-time.After(20 * time.Second):
				t.Fatal("Members blocked for 20 s: deadlock with memberlist's NotifyLeave")
				return false
			}
		}
	}
	for i := range 4 {
		b, err := Start(Config{Name: fmt.Sprintf("b%d", i), Bind: "127.0.0.1:0", Seeds: []string{a.Addr()}, Key: key, Fast: true})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "a sees b", alive(2))
		_ = b.Shutdown() // dies: a's memberlist declares it dead (NotifyLeave)
		eventually(t, "a sees b gone", alive(1))
	}
}
