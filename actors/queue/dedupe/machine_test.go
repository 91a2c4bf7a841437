package dedupe

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

var t0 = time.Unix(1_700_000_000, 0)

const window = 10 * time.Minute

func dg(b byte) task.Digest { return task.Digest{b} }

func mkRecord(id uint64, d byte, c messages.Class) task.Record {
	return task.Record{ID: id, Digest: dg(d), Class: c, Type: "t", MaxAttempts: 3}
}

func done(id uint64, d byte, out string, at time.Time) task.Result {
	return task.Result{ID: id, Digest: dg(d), Class: messages.ClassNormal, State: messages.StateDone,
		Output: []byte(out), Attempts: 2, FinishedAt: at.UnixNano()}
}

func dead(id uint64, d byte, at time.Time) task.Result {
	return task.Result{ID: id, Digest: dg(d), Class: messages.ClassNormal, State: messages.StateDead,
		Error: "boom", Attempts: 3, FinishedAt: at.UnixNano()}
}

func cancelled(id uint64, d byte, at time.Time) task.Result {
	return task.Result{ID: id, Digest: dg(d), Class: messages.ClassNormal, State: messages.StateCancelled, FinishedAt: at.UnixNano()}
}

func newM() *Machine { return New(Config{Window: window, MaxFinished: 100}) }

func dispatched(fx Effects) []uint64 {
	var out []uint64
	for _, t := range fx.Dispatch {
		out = append(out, t.ID)
	}
	return out
}

func records(fx Effects) map[uint64]task.Result {
	out := map[uint64]task.Result{}
	for _, r := range fx.Persist {
		out[r.ID] = r
	}
	return out
}

func credits(h, n, l int) [messages.NumClasses]int { return [messages.NumClasses]int{h, n, l} }

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if (Config{Window: -1, MaxFinished: 1}).Validate() == nil {
		t.Error("negative window accepted")
	}
	if (Config{Window: 0, MaxFinished: 0}).Validate() == nil {
		t.Error("MaxFinished 0 accepted")
	}
}

func TestOriginalsAndDuplicates(t *testing.T) {
	m := newM()
	fx := m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassHigh), mkRecord(2, 'b', messages.ClassNormal)})
	if got := dispatched(fx); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("dispatched %v, want [1 2]", got)
	}
	if fx.Credit != credits(0, 0, 0) || len(fx.Persist) != 0 {
		t.Fatalf("originals: %+v", fx)
	}
	// Duplicates of a live original attach, in any class, and return their places.
	fx = m.Tasks(t0, []task.Record{mkRecord(3, 'a', messages.ClassLow), mkRecord(4, 'a', messages.ClassNormal), mkRecord(5, 'c', messages.ClassLow)})
	if got := dispatched(fx); !slices.Equal(got, []uint64{5}) {
		t.Fatalf("dispatched %v, want [5]", got)
	}
	if fx.Credit != credits(0, 1, 1) {
		t.Fatalf("credit %v, want one normal and one low", fx.Credit)
	}
	if len(fx.Persist) != 0 {
		t.Fatalf("persisted %v for live duplicates", fx.Persist)
	}
	for _, c := range []struct {
		id               uint64
		attached, isLive bool
	}{{1, false, true}, {3, true, true}, {4, true, true}, {5, false, true}, {99, false, false}} {
		if a, l := m.State(c.id); a != c.attached || l != c.isLive {
			t.Errorf("State(%d) = %v, %v; want %v, %v", c.id, a, l, c.attached, c.isLive)
		}
	}
	if m.Originals != 3 || m.Absorbed != 2 {
		t.Errorf("counters: originals %d absorbed %d", m.Originals, m.Absorbed)
	}
	// The same task delivered again is not queued twice.
	if fx = m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassHigh)}); len(fx.Dispatch) != 0 || len(fx.Persist) != 0 {
		t.Errorf("redelivered original: %+v", fx)
	}
	if fx = m.Tasks(t0, []task.Record{mkRecord(3, 'a', messages.ClassLow)}); len(fx.Dispatch) != 0 || len(fx.Persist) != 0 {
		t.Errorf("redelivered member: %+v", fx)
	}
}

func TestFinishedCopiesResultToMembers(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal), mkRecord(2, 'a', messages.ClassLow), mkRecord(3, 'a', messages.ClassHigh)})
	at := t0.Add(time.Second)
	r := done(1, 'a', "out", at)
	fx := m.Finished(at, []task.Result{r})
	p := records(fx)
	if len(p) != 3 {
		t.Fatalf("persisted %v, want 3 records", fx.Persist)
	}
	if got := p[1]; got.State != messages.StateDone || string(got.Output) != "out" || got.AliasOf != 0 {
		t.Errorf("original's record %+v", got)
	}
	for id, class := range map[uint64]messages.Class{2: messages.ClassLow, 3: messages.ClassHigh} {
		got := p[id]
		want := task.Result{ID: id, Class: class, Digest: dg('a'), State: messages.StateDone, Output: []byte("out"),
			Attempts: 2, AliasOf: 1, FinishedAt: at.UnixNano()}
		if got.ID != want.ID || got.Class != want.Class || got.Digest != want.Digest || got.State != want.State ||
			string(got.Output) != "out" || got.Attempts != want.Attempts || got.AliasOf != 1 || got.FinishedAt != want.FinishedAt {
			t.Errorf("member %d record %+v, want %+v", id, got, want)
		}
	}
	for _, id := range []uint64{1, 2, 3} {
		if _, live := m.State(id); live {
			t.Errorf("%d still live after task.Finished", id)
		}
	}
	if fx.Credit != credits(0, 0, 0) || len(fx.Dispatch) != 0 || len(fx.Cancel) != 0 {
		t.Errorf("finished effects %+v", fx)
	}
}

func TestWindow(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal)})
	fin := t0.Add(time.Second)
	m.Finished(fin, []task.Result{done(1, 'a', "out", fin)})

	// Within the window (its last instant included): an immediate done record.
	for i, at := range []time.Time{fin, fin.Add(window / 2), fin.Add(window)} {
		id := uint64(10 + i)
		fx := m.Tasks(at, []task.Record{mkRecord(id, 'a', messages.ClassLow)})
		if len(fx.Dispatch) != 0 {
			t.Fatalf("duplicate at +%v dispatched", at.Sub(fin))
		}
		if fx.Credit != credits(0, 0, 1) {
			t.Errorf("credit %v, want one low", fx.Credit)
		}
		r := records(fx)[id]
		if r.State != messages.StateDone || string(r.Output) != "out" || r.AliasOf != 1 || r.Attempts != 2 ||
			r.Class != messages.ClassLow || r.FinishedAt != at.UnixNano() {
			t.Errorf("absorbed record %+v", r)
		}
		if _, live := m.State(id); live {
			t.Errorf("absorbed duplicate %d left live", id)
		}
	}
	// Past the window it runs again, as a new original.
	late := fin.Add(window + 1)
	fx := m.Tasks(late, []task.Record{mkRecord(20, 'a', messages.ClassNormal)})
	if !slices.Equal(dispatched(fx), []uint64{20}) || len(fx.Persist) != 0 || fx.Credit != credits(0, 0, 0) {
		t.Fatalf("after the window: %+v", fx)
	}
	// And the old group's eviction does not forget the new one.
	m.Tick(late.Add(window))
	if fx = m.Tasks(late, []task.Record{mkRecord(21, 'a', messages.ClassNormal)}); len(fx.Dispatch) != 0 {
		t.Fatalf("duplicate of the rerun dispatched: eviction forgot the live group")
	}
	if a, live := m.State(21); !a || !live {
		t.Errorf("21 not attached to 20")
	}
}

func TestTickEvicts(t *testing.T) {
	m := newM()
	for i := range uint64(5) {
		m.Tasks(t0, []task.Record{mkRecord(i+1, byte(i), messages.ClassNormal)})
		at := t0.Add(time.Duration(i) * time.Minute)
		m.Finished(at, []task.Result{done(i+1, byte(i), "", at)})
	}
	if m.Len() != 5 {
		t.Fatalf("Len = %d", m.Len())
	}
	m.Tick(t0.Add(window + 2*time.Minute + 1)) // groups finished at +0, +1, +2 min are past the window
	if m.Len() != 2 {
		t.Fatalf("Len after eviction = %d, want 2", m.Len())
	}
	m.Tick(t0.Add(24 * time.Hour))
	if m.Len() != 0 {
		t.Fatalf("Len = %d, want 0", m.Len())
	}
}

func TestZeroWindowKeepsNothing(t *testing.T) {
	m := New(Config{Window: 0, MaxFinished: 10})
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal)})
	m.Finished(t0, []task.Result{done(1, 'a', "x", t0)})
	if m.Len() != 0 {
		t.Fatalf("Len = %d", m.Len())
	}
	if fx := m.Tasks(t0, []task.Record{mkRecord(2, 'a', messages.ClassNormal)}); !slices.Equal(dispatched(fx), []uint64{2}) {
		t.Fatalf("window 0: duplicate of a finished task not run: %+v", fx)
	}
}

func TestMaxFinishedEvictsOldest(t *testing.T) {
	m := New(Config{Window: window, MaxFinished: 2})
	for i := range uint64(3) {
		m.Tasks(t0, []task.Record{mkRecord(i+1, byte('a'+i), messages.ClassNormal)})
		m.Finished(t0, []task.Result{done(i+1, byte('a'+i), "", t0)})
	}
	if m.Len() != 2 {
		t.Fatalf("Len = %d, want 2", m.Len())
	}
	if fx := m.Tasks(t0, []task.Record{mkRecord(10, 'a', messages.ClassNormal)}); !slices.Equal(dispatched(fx), []uint64{10}) {
		t.Errorf("the oldest group was not forgotten: %+v", fx)
	}
	for _, d := range []byte{'b', 'c'} {
		if fx := m.Tasks(t0, []task.Record{mkRecord(20+uint64(d), d, messages.ClassNormal)}); len(fx.Dispatch) != 0 || len(fx.Persist) != 1 {
			t.Errorf("group %c forgotten early: %+v", d, fx)
		}
	}
}

func TestEvictCompactsLongLists(t *testing.T) {
	m := New(Config{Window: time.Second, MaxFinished: 1_000_000})
	for i := range uint64(5000) {
		m.Tasks(t0, []task.Record{{ID: i + 1, Digest: task.Digest{byte(i), byte(i >> 8)}}})
		m.Finished(t0, []task.Result{{ID: i + 1, Digest: task.Digest{byte(i), byte(i >> 8)}, State: messages.StateDone, FinishedAt: t0.UnixNano()}})
	}
	m.Tick(t0.Add(time.Hour))
	if m.Len() != 0 || len(m.finished)-m.head != 0 {
		t.Fatalf("Len %d, finished %d (head %d)", m.Len(), len(m.finished), m.head)
	}
	if m.head > 1024 {
		t.Errorf("finished list not compacted: head %d", m.head)
	}
}

func TestDeadOriginalClosesGroup(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal), mkRecord(2, 'a', messages.ClassNormal)})
	fx := m.Finished(t0, []task.Result{dead(1, 'a', t0)})
	p := records(fx)
	if p[1].State != messages.StateDead || p[2].State != messages.StateDead || p[2].Error != "boom" || p[2].AliasOf != 1 || p[2].Attempts != 3 {
		t.Fatalf("dead records %+v", fx.Persist)
	}
	if m.Len() != 0 {
		t.Errorf("dead group remembered")
	}
	// Resubmitting is how a client retries failed work: it runs anew.
	if fx = m.Tasks(t0, []task.Record{mkRecord(3, 'a', messages.ClassNormal)}); !slices.Equal(dispatched(fx), []uint64{3}) {
		t.Fatalf("resubmission after a dead original: %+v", fx)
	}
}

func TestCancelledOriginalClosesGroup(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal)})
	m.Finished(t0, []task.Result{cancelled(1, 'a', t0)})
	if fx := m.Tasks(t0, []task.Record{mkRecord(2, 'a', messages.ClassNormal)}); !slices.Equal(dispatched(fx), []uint64{2}) {
		t.Fatalf("resubmission after a cancelled original: %+v", fx)
	}
}

func TestUntrackedFinishedPersistedAsIs(t *testing.T) {
	m := newM()
	r := done(7, 'z', "o", t0)
	fx := m.Finished(t0, []task.Result{r})
	if len(fx.Persist) != 1 || fx.Persist[0].ID != 7 {
		t.Fatalf("untracked result: %+v", fx)
	}
}

func TestSeed(t *testing.T) {
	m := newM()
	fin := t0.Add(-time.Minute)
	m.Seed(done(5, 'a', "seeded", fin))
	m.Seed(done(6, 'a', "second", fin)) // same digest: the first stays
	m.Seed(dead(7, 'b', fin))           // only done results absorb duplicates
	r := done(8, 'c', "alias", fin)
	r.AliasOf = 3
	m.Seed(r) // an attached duplicate's copy is not a group
	if m.Len() != 1 {
		t.Fatalf("Len = %d, want 1", m.Len())
	}
	fx := m.Tasks(t0, []task.Record{mkRecord(10, 'a', messages.ClassHigh), mkRecord(11, 'b', messages.ClassHigh), mkRecord(12, 'c', messages.ClassHigh)})
	if got := dispatched(fx); !slices.Equal(got, []uint64{11, 12}) {
		t.Fatalf("dispatched %v, want [11 12]", got)
	}
	p := records(fx)[10]
	if p.AliasOf != 5 || string(p.Output) != "seeded" || p.State != messages.StateDone {
		t.Fatalf("seeded absorption %+v", p)
	}
	// Seeded groups expire with the window like any other.
	m.Tick(fin.Add(window + 1))
	if fx = m.Tasks(fin.Add(window+1), []task.Record{mkRecord(13, 'a', messages.ClassHigh)}); !slices.Equal(dispatched(fx), []uint64{13}) {
		t.Fatalf("seeded group outlived its window: %+v", fx)
	}
}

func TestDrop(t *testing.T) {
	m := newM()
	m.Drop(4)
	fx := m.Tasks(t0, []task.Record{mkRecord(3, 'a', messages.ClassNormal), mkRecord(4, 'b', messages.ClassLow)})
	if got := dispatched(fx); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("dispatched %v, want [3]", got)
	}
	if fx.Credit != credits(0, 0, 1) || len(fx.Persist) != 0 {
		t.Fatalf("dropped task: %+v", fx)
	}
	if _, live := m.State(4); live {
		t.Errorf("dropped task live")
	}
	if len(m.dropped) != 0 {
		t.Errorf("drop mark kept after use")
	}
}

func TestCancelMember(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal), mkRecord(2, 'a', messages.ClassLow), mkRecord(3, 'a', messages.ClassHigh)})
	unknown, fx := m.Cancel(t0, []uint64{2, 42})
	if !slices.Equal(unknown, []uint64{42}) {
		t.Errorf("unknown %v, want [42]", unknown)
	}
	if len(fx.Cancel) != 0 || len(fx.Dispatch) != 0 {
		t.Fatalf("cancelling a member touched the original: %+v", fx)
	}
	if r := records(fx)[2]; len(fx.Persist) != 1 || r.State != messages.StateCancelled || r.Class != messages.ClassLow || r.FinishedAt != t0.UnixNano() {
		t.Fatalf("member cancel records %+v", fx.Persist)
	}
	if _, live := m.State(2); live {
		t.Errorf("cancelled member still live")
	}
	// The original's result no longer goes to the cancelled member.
	fx = m.Finished(t0, []task.Result{done(1, 'a', "o", t0)})
	p := records(fx)
	if _, ok := p[2]; ok || len(p) != 2 || p[3].AliasOf != 1 {
		t.Fatalf("finished after member cancel: %+v", fx.Persist)
	}
}

func TestCancelLoneOriginal(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal)})
	unknown, fx := m.Cancel(t0, []uint64{1})
	if len(unknown) != 0 || !slices.Equal(fx.Cancel, []uint64{1}) || len(fx.Persist) != 0 {
		t.Fatalf("lone original cancel: unknown %v, %+v", unknown, fx)
	}
	// The dispatcher answers with the cancelled result, which is persisted.
	fx = m.Finished(t0, []task.Result{cancelled(1, 'a', t0)})
	if r := records(fx)[1]; len(fx.Persist) != 1 || r.State != messages.StateCancelled {
		t.Fatalf("cancelled result: %+v", fx.Persist)
	}
	if m.Len() != 0 {
		t.Errorf("cancelled group kept")
	}
}

func TestCancelOriginalWithMembers(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassHigh), mkRecord(2, 'a', messages.ClassNormal), mkRecord(3, 'a', messages.ClassLow)})
	_, fx := m.Cancel(t0, []uint64{1})
	if len(fx.Cancel) != 0 {
		t.Fatalf("work cancelled although members want it: %+v", fx)
	}
	if r := records(fx)[1]; len(fx.Persist) != 1 || r.State != messages.StateCancelled || r.Class != messages.ClassHigh {
		t.Fatalf("original's own record: %+v", fx.Persist)
	}
	// Cancelling it again changes nothing.
	if _, fx = m.Cancel(t0, []uint64{1}); len(fx.Persist) != 0 || len(fx.Cancel) != 0 {
		t.Fatalf("second cancel of the original: %+v", fx)
	}
	// A new duplicate still attaches: the work goes on.
	if fx = m.Tasks(t0, []task.Record{mkRecord(4, 'a', messages.ClassNormal)}); len(fx.Dispatch) != 0 {
		t.Fatalf("duplicate of a group whose original was cancelled dispatched")
	}
	// The result reaches the members only: the original already has its record.
	fx = m.Finished(t0, []task.Result{done(1, 'a', "o", t0)})
	p := records(fx)
	if _, ok := p[1]; ok {
		t.Errorf("cancelled original's record overwritten: %+v", p[1])
	}
	for _, id := range []uint64{2, 3, 4} {
		if p[id].State != messages.StateDone || p[id].AliasOf != 1 {
			t.Errorf("member %d: %+v", id, p[id])
		}
	}
}

func TestCancelLastMemberAfterOriginal(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal), mkRecord(2, 'a', messages.ClassNormal), mkRecord(3, 'a', messages.ClassNormal)})
	m.Cancel(t0, []uint64{1})
	_, fx := m.Cancel(t0, []uint64{2})
	if len(fx.Cancel) != 0 {
		t.Fatalf("cancelled with a member left: %+v", fx)
	}
	_, fx = m.Cancel(t0, []uint64{3})
	if !slices.Equal(fx.Cancel, []uint64{1}) {
		t.Fatalf("last member gone: cancel %v, want [1]", fx.Cancel)
	}
	if r := records(fx)[3]; r.State != messages.StateCancelled {
		t.Fatalf("member record %+v", fx.Persist)
	}
	// The dispatcher's cancelled result: the original's record is already durable.
	fx = m.Finished(t0, []task.Result{cancelled(1, 'a', t0)})
	if len(fx.Persist) != 0 {
		t.Fatalf("persisted %+v, want nothing", fx.Persist)
	}
	if m.Len() != 0 {
		t.Errorf("group kept")
	}
	// Both in one Cancel call.
	m = newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal), mkRecord(2, 'a', messages.ClassNormal)})
	_, fx = m.Cancel(t0, []uint64{1, 2})
	if !slices.Equal(fx.Cancel, []uint64{1}) || len(fx.Persist) != 2 {
		t.Fatalf("cancel original and member together: %+v", fx)
	}
}

// A duplicate that arrives after its lone original was sent to the
// dispatcher for cancellation must not share the cancellation: nobody
// cancelled it. It runs anew, and the doomed original's result still
// lands on the original.
func TestDuplicateDuringCancelRunsAnew(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal)})
	_, fx := m.Cancel(t0, []uint64{1})
	if !slices.Equal(fx.Cancel, []uint64{1}) {
		t.Fatalf("cancel %v", fx.Cancel)
	}
	fx = m.Tasks(t0, []task.Record{mkRecord(2, 'a', messages.ClassNormal)})
	if !slices.Equal(dispatched(fx), []uint64{2}) || fx.Credit != credits(0, 0, 0) {
		t.Fatalf("duplicate of a cancelling original: %+v, want it dispatched", fx)
	}
	if a, live := m.State(1); a || !live {
		t.Errorf("State(1) = %v, %v while its cancel is out", a, live)
	}
	// Cancelling 1 again does not touch the new group.
	if unknown, fx := m.Cancel(t0, []uint64{1}); len(unknown) != 0 || len(fx.Cancel) != 0 || len(fx.Persist) != 0 {
		t.Fatalf("second cancel: %v %+v", unknown, fx)
	}
	fx = m.Finished(t0, []task.Result{cancelled(1, 'a', t0)})
	p := records(fx)
	if len(p) != 1 || p[1].State != messages.StateCancelled {
		t.Fatalf("cancelled original: %+v", fx.Persist)
	}
	if _, live := m.State(1); live {
		t.Errorf("1 live after its result")
	}
	// The new group is intact: duplicates attach and share its result.
	if fx = m.Tasks(t0, []task.Record{mkRecord(3, 'a', messages.ClassNormal)}); len(fx.Dispatch) != 0 {
		t.Fatalf("duplicate of the new original dispatched")
	}
	fx = m.Finished(t0, []task.Result{done(2, 'a', "o", t0)})
	p = records(fx)
	if p[2].State != messages.StateDone || p[3].State != messages.StateDone || p[3].AliasOf != 2 {
		t.Fatalf("new group's result %+v", fx.Persist)
	}
}

func TestDuplicateAfterLastMemberCancelRunsAnew(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal), mkRecord(2, 'a', messages.ClassNormal)})
	m.Cancel(t0, []uint64{1})
	_, fx := m.Cancel(t0, []uint64{2})
	if !slices.Equal(fx.Cancel, []uint64{1}) {
		t.Fatalf("cancel %v", fx.Cancel)
	}
	fx = m.Tasks(t0, []task.Record{mkRecord(3, 'a', messages.ClassNormal)})
	if !slices.Equal(dispatched(fx), []uint64{3}) {
		t.Fatalf("duplicate after the work was cancelled: %+v, want it dispatched", fx)
	}
	if fx = m.Finished(t0, []task.Result{cancelled(1, 'a', t0)}); len(fx.Persist) != 0 {
		t.Fatalf("persisted %+v", fx.Persist)
	}
	if a, live := m.State(3); a || !live {
		t.Errorf("3 is not a live original")
	}
}

// The dispatcher may finish an original before the cancel reaches it: the
// result stands, and the group absorbs duplicates as usual.
func TestCancelTooLate(t *testing.T) {
	m := newM()
	m.Tasks(t0, []task.Record{mkRecord(1, 'a', messages.ClassNormal)})
	m.Cancel(t0, []uint64{1})
	fx := m.Finished(t0, []task.Result{done(1, 'a', "o", t0)})
	if r := records(fx)[1]; r.State != messages.StateDone {
		t.Fatalf("result %+v", fx.Persist)
	}
	fx = m.Tasks(t0, []task.Record{mkRecord(2, 'a', messages.ClassNormal)})
	if len(fx.Dispatch) != 0 || records(fx)[2].AliasOf != 1 {
		t.Fatalf("duplicate after a finished original: %+v", fx)
	}
}

// TestOutputsLeaveWithTheirGroup: a done group's output is kept only while
// the group is in the window, and only for groups that have one.
func TestOutputsLeaveWithTheirGroup(t *testing.T) {
	m := newM()
	for i := range uint64(4) {
		m.Tasks(t0, []task.Record{mkRecord(i+1, byte(i), messages.ClassNormal)})
		out := ""
		if i%2 == 0 {
			out = "result"
		}
		m.Finished(t0, []task.Result{done(i+1, byte(i), out, t0)})
	}
	if len(m.outputs) != 2 {
		t.Fatalf("%d outputs kept, want the 2 non-empty ones", len(m.outputs))
	}
	m.Tick(t0.Add(window + time.Minute))
	if m.Len() != 0 || len(m.outputs) != 0 {
		t.Fatalf("after the window: %d groups, %d outputs; want none", m.Len(), len(m.outputs))
	}
}

// TestTypeWindows: a type's own window replaces Window for its tasks — a
// shorter one lets a later duplicate run anew, 0 absorbs nothing after the
// finish — while other types keep the default; eviction waits for the
// longest window.
func TestTypeWindows(t *testing.T) {
	m := New(Config{Window: window, MaxFinished: 100, TypeWindows: map[string]time.Duration{"short": time.Minute, "none": 0, "long": time.Hour}})
	typed := func(id uint64, d byte, typ string) task.Record {
		r := mkRecord(id, d, messages.ClassNormal)
		r.Type = typ
		return r
	}
	for i, typ := range []string{"t", "short", "none", "long"} {
		d := byte(i + 1)
		m.Tasks(t0, []task.Record{typed(uint64(d), d, typ)})
		m.Finished(t0, []task.Result{done(uint64(d), d, "", t0)})
	}
	later := t0.Add(2 * time.Minute)
	for i, c := range []struct {
		typ      string
		absorbed bool
	}{{"t", true}, {"short", false}, {"none", false}, {"long", true}} {
		d := byte(i + 1)
		fx := m.Tasks(later, []task.Record{typed(uint64(10+d), d, c.typ)})
		if got := len(fx.Persist) == 1; got != c.absorbed {
			t.Errorf("%s duplicate 2 min after the finish: absorbed %v, want %v (%+v)", c.typ, got, c.absorbed, fx)
		}
	}
	m.Tick(t0.Add(window + time.Minute)) // past the default window, within "long"'s
	if _, ok := m.done[dg(4)]; !ok {
		t.Fatal("the long-window group was evicted with the default window")
	}
	if err := (Config{Window: window, MaxFinished: 1, TypeWindows: map[string]time.Duration{"x": -time.Second}}).Validate(); err == nil || !strings.Contains(err.Error(), `TypeWindows["x"]`) {
		t.Fatalf("a negative type window: %v, want an error naming it", err)
	}
}
