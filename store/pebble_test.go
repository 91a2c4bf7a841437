package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// base is an arbitrary fixed instant; records carry times relative to it.
var base = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func openAt(t *testing.T, cfg PebbleConfig) *Pebble {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	p, err := OpenPebble(cfg)
	if err != nil {
		t.Fatalf("OpenPebble: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func openTest(t *testing.T) (*Pebble, string) {
	t.Helper()
	dir := t.TempDir()
	return openAt(t, DefaultPebbleConfig(dir)), dir
}

func mkTask(id uint64, c messages.Class) task.Record {
	return task.Record{
		ID:           id,
		Type:         "resize",
		Payload:      []byte(fmt.Sprintf("payload-%d", id)),
		Priority:     50,
		Class:        c,
		Digest:       task.Digest{byte(id), 0xab},
		Requirements: map[string]string{"gpu": "=1"},
		MaxAttempts:  3,
		SubmittedAt:  base.Add(time.Duration(id) * time.Second).UnixNano(),
	}
}

func mkResult(id uint64, c messages.Class, finished time.Time) task.Result {
	return task.Result{
		ID:         id,
		Class:      c,
		Digest:     task.Digest{byte(id), 0xab},
		State:      messages.StateDone,
		Output:     []byte(fmt.Sprintf("out-%d", id)),
		Attempts:   1,
		FinishedAt: finished.UnixNano(),
	}
}

func commit(t *testing.T, p *Pebble, b Batch) {
	t.Helper()
	if err := p.Commit(t.Context(), &b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func mustTask(t *testing.T, p Store, id uint64) (task.Record, bool) {
	t.Helper()
	rec, ok, err := p.Task(t.Context(), id)
	if err != nil {
		t.Fatalf("Task(%d): %v", id, err)
	}
	return rec, ok
}

func pendingIDs(t *testing.T, p Store, c messages.Class, after uint64, limit int) []uint64 {
	t.Helper()
	recs, err := p.Pending(t.Context(), c, after, limit)
	if err != nil {
		t.Fatalf("Pending(%v): %v", c, err)
	}
	ids := []uint64{}
	for _, r := range recs {
		if r.Class != c {
			t.Errorf("Pending(%v) returned task %d of class %v", c, r.ID, r.Class)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// holdCommitter makes the committer stop before writing each group until
// release is called. It must be called before the store's first write.
// entered receives once the committer holds its first group.
func holdCommitter(p *Pebble) (entered <-chan struct{}, release func()) {
	return holdHook(&p.testHookBeforeGroup)
}

// holdHook sets *hook (a store's testHookBeforeGroup) to hold the committer
// as holdCommitter describes.
func holdHook(hook *func()) (entered <-chan struct{}, release func()) {
	in := make(chan struct{}, 1)
	gate := make(chan struct{})
	*hook = func() {
		select {
		case in <- struct{}{}:
		default:
		}
		<-gate
	}
	var once sync.Once
	return in, func() { once.Do(func() { close(gate) }) }
}

// waitQueued waits until at least n requests wait in the commit queue.
func waitQueued(p *Pebble, n int) {
	for {
		p.mu.Lock()
		l := len(p.queue)
		p.mu.Unlock()
		if l >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPebbleFIFO queues writes behind a held committer so that they share a
// group, and checks they are applied in queue order, including attempt
// updates of a task written earlier in the same group.
func TestPebbleFIFO(t *testing.T) {
	p, _ := openTest(t)
	entered, release := holdCommitter(p)
	defer release()
	ctx := t.Context()

	first := p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(1, messages.ClassNormal)}})
	<-entered // the committer holds the group of task 1 alone
	var chans []<-chan error
	chans = append(chans, p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(2, messages.ClassNormal)}}))
	for i := int32(1); i <= 10; i++ {
		chans = append(chans, p.CommitAsync(ctx, &Batch{Attempts: []AttemptUpdate{{ID: 1, Attempts: i}, {ID: 2, Attempts: 10 * i}}}))
	}
	chans = append(chans, p.CommitAsync(ctx, &Batch{Results: []task.Result{mkResult(2, messages.ClassNormal, base)}}))
	release()
	if err := <-first; err != nil {
		t.Fatalf("commit of task 1: %v", err)
	}
	for i, ch := range chans {
		if err := <-ch; err != nil {
			t.Fatalf("queued commit %d: %v", i, err)
		}
	}
	if got, _ := mustTask(t, p, 1); got.Attempts != 10 || string(got.Payload) != "payload-1" {
		t.Errorf("task 1 = %+v; want attempts 10 and its payload", got)
	}
	if got, _ := mustTask(t, p, 2); got.Attempts != 100 || string(got.Payload) != "payload-2" {
		t.Errorf("task 2 = %+v; want attempts 100 and its payload", got)
	}
	if ids := pendingIDs(t, p, messages.ClassNormal, 0, 10); !reflect.DeepEqual(ids, []uint64{1}) {
		t.Errorf("pending = %v, want [1]", ids)
	}
	if s := p.Stats(); s.Syncs != 2 || s.Commits != 13 {
		t.Errorf("stats = %+v; want 2 syncs of 13 commits", s)
	}
}

// TestPebbleGroupFailureIsolated checks that an attempt update that cannot be
// applied (corrupt record) fails its own Commit only.
func TestPebbleGroupFailureIsolated(t *testing.T) {
	p, _ := openTest(t)
	entered, release := holdCommitter(p)
	defer release()
	if err := p.db.Set(taskKey(99), []byte{0xc1}, nil); err != nil { // 0xc1: never used in msgpack
		t.Fatal(err)
	}
	ctx := t.Context()
	first := p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(1, messages.ClassNormal)}})
	<-entered
	a := p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(2, messages.ClassNormal)}})
	bad := p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(3, messages.ClassNormal)}, Attempts: []AttemptUpdate{{ID: 99, Attempts: 1}}})
	c := p.CommitAsync(ctx, &Batch{Attempts: []AttemptUpdate{{ID: 2, Attempts: 5}}})
	release()
	for _, ch := range []<-chan error{first, a, c} {
		if err := <-ch; err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	err := <-bad
	if err == nil || !strings.Contains(err.Error(), "t/99") {
		t.Fatalf("commit with corrupt attempt target = %v; want an error naming t/99", err)
	}
	if _, ok := mustTask(t, p, 3); ok {
		t.Errorf("task 3 of the failed commit was written")
	}
	if got, ok := mustTask(t, p, 2); !ok || got.Attempts != 5 {
		t.Errorf("task 2 = %+v, %v; want attempts 5", got, ok)
	}
}

// TestPebbleDurableWhenAcked crashes the store, losing every write not
// synced, after a group of commits, and checks that every acknowledged
// commit survived and nothing of a failed one did: once with a group that
// ends in a successful commit, once with one whose last commit fails (so
// the group's synced write is not that commit's).
func TestPebbleDurableWhenAcked(t *testing.T) {
	for _, lastFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("lastFails=%v", lastFails), func(t *testing.T) {
			testDurableWhenAcked(t, lastFails)
		})
	}
}

func testDurableWhenAcked(t *testing.T, lastFails bool) {
	fs := vfs.NewStrictMem()
	if err := fs.MkdirAll("db", 0o755); err != nil {
		t.Fatal(err)
	}
	if root, err := fs.OpenDir(""); err != nil || root.Sync() != nil || root.Close() != nil {
		t.Fatalf("sync the root of the memory file system: %v", err)
	}
	cfg := DefaultPebbleConfig("db")
	cfg.fs = fs
	p := openAt(t, cfg)
	if err := p.db.Set(taskKey(99), []byte{0xc1}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	entered, release := holdCommitter(p)
	defer release()
	ctx := t.Context()
	first := p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(1, messages.ClassNormal)}})
	<-entered // the rest queue behind task 1 and form one group
	var acked []<-chan error
	for id := uint64(2); id <= 20; id++ {
		acked = append(acked, p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(id, messages.ClassNormal)}}))
	}
	acked = append(acked,
		p.CommitAsync(ctx, &Batch{Attempts: []AttemptUpdate{{ID: 1, Attempts: 2}}}),
		p.CommitAsync(ctx, &Batch{Results: []task.Result{mkResult(2, messages.ClassNormal, base)}}))
	var bad <-chan error
	if lastFails {
		bad = p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(21, messages.ClassNormal)}, Attempts: []AttemptUpdate{{ID: 99, Attempts: 1}}})
		waitQueued(p, len(acked)+1)
	} else {
		waitQueued(p, len(acked))
	}
	release()
	for i, ch := range append([]<-chan error{first}, acked...) {
		if err := <-ch; err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	if bad != nil {
		if err := <-bad; err == nil {
			t.Fatalf("commit with a corrupt attempt target succeeded")
		}
	}
	if s := p.Stats(); s.Syncs != 2 {
		t.Fatalf("stats = %+v; want the queued commits in one group", s)
	}

	// Crash: whatever was not synced is gone.
	fs.SetIgnoreSyncs(true)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)

	p = openAt(t, cfg)
	for id := uint64(1); id <= 20; id++ {
		if _, ok := mustTask(t, p, id); !ok {
			t.Errorf("acknowledged task %d lost in the crash", id)
		}
	}
	if got, _ := mustTask(t, p, 1); got.Attempts != 2 {
		t.Errorf("task 1 attempts = %d after the crash, want 2", got.Attempts)
	}
	if _, ok, err := p.Result(ctx, 2); !ok || err != nil {
		t.Errorf("acknowledged result 2 lost in the crash: %v", err)
	}
	if _, ok := mustTask(t, p, 21); ok {
		t.Errorf("task 21 of the failed commit is stored")
	}
	if ids := pendingIDs(t, p, messages.ClassNormal, 0, 100); len(ids) != 19 || ids[0] != 1 || ids[1] != 3 {
		t.Errorf("pending after the crash = %v; want 1 and 3..20", ids)
	}
	if id, err := p.MaxID(ctx); err != nil || id != 20 {
		t.Errorf("MaxID after the crash = %d, %v; want 20", id, err)
	}
}

// syncGateFS is a file system whose WAL syncs wait while the gate is shut.
type syncGateFS struct {
	vfs.FS
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func (g *syncGateFS) shut() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *syncGateFS) open() {
	g.mu.Lock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
	g.mu.Unlock()
}

func (g *syncGateFS) wait() {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
}

func (g *syncGateFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return gatedFile{File: f, g: g}, nil
}

func (g *syncGateFS) Create(name string) (vfs.File, error) {
	f, err := g.FS.Create(name)
	return g.wrap(name, f, err)
}

func (g *syncGateFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := g.FS.ReuseForWrite(oldname, newname)
	return g.wrap(newname, f, err)
}

type gatedFile struct {
	vfs.File
	g *syncGateFS
}

func (f gatedFile) Sync() error {
	f.g.wait()
	return f.File.Sync()
}

func (f gatedFile) SyncData() error {
	f.g.wait()
	return f.File.SyncData()
}

func (f gatedFile) SyncTo(n int64) (bool, error) {
	f.g.wait()
	return f.File.SyncTo(n)
}

// TestPebbleAckAfterSync holds the WAL sync of a group of commits and
// checks that none of them is acknowledged before it completes, although
// each is committed to Pebble (and readable) by then.
func TestPebbleAckAfterSync(t *testing.T) {
	gfs := &syncGateFS{FS: vfs.NewMem()}
	defer gfs.open()
	cfg := DefaultPebbleConfig("db")
	cfg.fs = gfs
	p := openAt(t, cfg)
	entered, gate := make(chan struct{}), make(chan struct{})
	groups := 0
	p.testHookBeforeGroup = func() {
		switch groups++; groups {
		case 1:
			close(entered)
			<-gate
		case 2:
			gfs.shut() // the second group's sync waits
		}
	}
	ctx := t.Context()
	first := p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(1, messages.ClassNormal)}})
	<-entered
	var chans []<-chan error
	for id := uint64(2); id <= 10; id++ {
		chans = append(chans, p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(id, messages.ClassNormal)}}))
	}
	waitQueued(p, len(chans))
	close(gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// Wait until the group's last commit is applied (so the committer is
	// in its sync), then make sure no commit was acknowledged.
	for {
		if _, ok := mustTask(t, p, 10); ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	for i, ch := range chans {
		select {
		case err := <-ch:
			t.Fatalf("commit of task %d acknowledged (%v) before its group's sync", i+2, err)
		default:
		}
	}
	gfs.open()
	for i, ch := range chans {
		if err := <-ch; err != nil {
			t.Fatalf("commit of task %d: %v", i+2, err)
		}
	}
}

func TestPebbleCorruptRecordNamesKey(t *testing.T) {
	p, _ := openTest(t)
	commit(t, p, Batch{Tasks: []task.Record{mkTask(1, messages.ClassHigh)}})
	if err := p.db.Set(taskKey(1), []byte("\xc1garbage"), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.db.Set(resultKey(5), []byte("\xc1"), nil); err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error, key string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: err = %v; want one naming %s", what, err, key)
		}
	}
	_, _, err := p.Task(t.Context(), 1)
	check("Task", err, "t/1")
	_, err = p.Pending(t.Context(), messages.ClassHigh, 0, 10)
	check("Pending", err, "t/1")
	_, _, err = p.Result(t.Context(), 5)
	check("Result", err, "r/5")
	err = p.Results(t.Context(), time.Time{}, func(task.Result) error { return nil })
	check("Results", err, "r/5")
	_, err = p.Sweep(t.Context(), base, 10)
	check("Sweep", err, "r/5")
}

func TestPebbleGroupCommitConcurrent(t *testing.T) {
	p, _ := openTest(t)
	const writers, perWriter = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := uint64(w*perWriter + i + 1)
				b := Batch{Tasks: []task.Record{mkTask(id, messages.Class(id%messages.NumClasses))}}
				if err := p.Commit(t.Context(), &b); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Commit: %v", err)
	}
	total := 0
	for c := range messages.Class(messages.NumClasses) {
		ids := pendingIDs(t, p, c, 0, 10*writers*perWriter)
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Fatalf("pending %v not ascending: %v", c, ids)
			}
		}
		total += len(ids)
	}
	if total != writers*perWriter {
		t.Errorf("pending tasks = %d, want %d", total, writers*perWriter)
	}
	if id, _ := p.MaxID(t.Context()); id != writers*perWriter {
		t.Errorf("MaxID = %d, want %d", id, writers*perWriter)
	}
	s := p.Stats()
	if s.Commits != writers*perWriter || s.Syncs < 1 || s.Syncs > s.Commits {
		t.Errorf("stats = %+v; want %d commits in 1..%d syncs", s, writers*perWriter, writers*perWriter)
	}
	t.Logf("%d commits in %d syncs (%.1f per sync, largest group %d)", s.Commits, s.Syncs, float64(s.Commits)/float64(s.Syncs), s.MaxGroup)
}

// TestPebbleGroupCommitHeld makes grouping certain: 63 commits queue while the
// committer holds the first one, then share one sync.
func TestPebbleGroupCommitHeld(t *testing.T) {
	for _, tc := range []struct {
		name          string
		maxGroupBytes int
		wantSyncs     uint64
	}{
		{"grouped", 8 << 20, 2},
		{"bounded", 1, 64}, // every batch exceeds the bound: one sync each
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultPebbleConfig(t.TempDir())
			cfg.MaxGroupBytes = tc.maxGroupBytes
			p := openAt(t, cfg)
			entered, release := holdCommitter(p)
			defer release()
			first := p.CommitAsync(t.Context(), &Batch{Tasks: []task.Record{mkTask(1, messages.ClassNormal)}})
			<-entered
			var wg sync.WaitGroup
			errs := make(chan error, 63)
			for i := range 63 {
				wg.Go(func() {
					b := Batch{Tasks: []task.Record{mkTask(uint64(i+2), messages.ClassNormal)}}
					if err := p.Commit(t.Context(), &b); err != nil {
						errs <- err
					}
				})
			}
			waitQueued(p, 63)
			release()
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("Commit: %v", err)
			}
			if err := <-first; err != nil {
				t.Fatalf("first Commit: %v", err)
			}
			if ids := pendingIDs(t, p, messages.ClassNormal, 0, 100); len(ids) != 64 {
				t.Errorf("pending = %d tasks, want 64", len(ids))
			}
			if s := p.Stats(); s.Commits != 64 || s.Syncs != tc.wantSyncs {
				t.Errorf("stats = %+v; want 64 commits in %d syncs", s, tc.wantSyncs)
			}
		})
	}
}

func TestPebbleContextCancelled(t *testing.T) {
	p, _ := openTest(t)
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.Commit(done, &Batch{Tasks: []task.Record{mkTask(1, messages.ClassNormal)}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with cancelled ctx = %v, want context.Canceled", err)
	}
	if _, _, err := p.Task(done, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Task with cancelled ctx = %v", err)
	}
	if _, err := p.Pending(done, messages.ClassNormal, 0, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Pending with cancelled ctx = %v", err)
	}

	entered, release := holdCommitter(p)
	defer release()
	first := p.CommitAsync(t.Context(), &Batch{Tasks: []task.Record{mkTask(2, messages.ClassNormal)}})
	<-entered

	// A waiting caller gives up while its batch is queued.
	ctx, cancelWait := context.WithCancel(t.Context())
	res := make(chan error, 1)
	go func() { res <- p.Commit(ctx, &Batch{Tasks: []task.Record{mkTask(3, messages.ClassNormal)}}) }()
	waitQueued(p, 1)
	cancelWait()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Errorf("Commit cancelled while queued = %v, want context.Canceled", err)
	}
	// An async batch whose ctx ends before the committer takes it.
	ctx2, cancelAsync := context.WithCancel(t.Context())
	async := p.CommitAsync(ctx2, &Batch{Tasks: []task.Record{mkTask(4, messages.ClassNormal)}})
	cancelAsync()
	release()
	if err := <-first; err != nil {
		t.Fatalf("held commit: %v", err)
	}
	if err := <-async; !errors.Is(err, context.Canceled) {
		t.Errorf("CommitAsync cancelled while queued = %v, want context.Canceled", err)
	}
	if ids := pendingIDs(t, p, messages.ClassNormal, 0, 10); !reflect.DeepEqual(ids, []uint64{2}) {
		t.Errorf("pending = %v; want [2] (cancelled batches not written)", ids)
	}
	if id, _ := p.MaxID(t.Context()); id != 2 {
		t.Errorf("MaxID = %d, want 2", id)
	}
}

func TestPebbleCloseDrainsQueue(t *testing.T) {
	dir := t.TempDir()
	p := openAt(t, DefaultPebbleConfig(dir))
	entered, release := holdCommitter(p)
	defer release()
	first := p.CommitAsync(t.Context(), &Batch{Tasks: []task.Record{mkTask(1, messages.ClassNormal)}})
	<-entered
	queued := p.CommitAsync(t.Context(), &Batch{Tasks: []task.Record{mkTask(2, messages.ClassNormal)}})
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	for {
		p.mu.Lock()
		c := p.closed
		p.mu.Unlock()
		if c {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.Commit(t.Context(), &Batch{Tasks: []task.Record{mkTask(3, messages.ClassNormal)}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit during Close = %v, want ErrClosed", err)
	}
	release()
	if err := <-first; err != nil {
		t.Errorf("held commit: %v", err)
	}
	if err := <-queued; err != nil {
		t.Errorf("queued commit: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	p = openAt(t, DefaultPebbleConfig(dir))
	if ids := pendingIDs(t, p, messages.ClassNormal, 0, 10); !reflect.DeepEqual(ids, []uint64{1, 2}) {
		t.Errorf("pending after reopen = %v, want [1 2]", ids)
	}
}

func TestPebbleConfigValidate(t *testing.T) {
	ok := DefaultPebbleConfig("/tmp/x")
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*PebbleConfig)
	}{
		{"Dir", func(c *PebbleConfig) { c.Dir = "" }},
		{"MaxGroupBytes", func(c *PebbleConfig) { c.MaxGroupBytes = 0 }},
		{"MemTableSize", func(c *PebbleConfig) { c.MemTableSize = 1 }},
		{"MemTableSize", func(c *PebbleConfig) { c.MemTableSize = 4 << 30 }},
		{"CacheSize", func(c *PebbleConfig) { c.CacheSize = -1 }},
		{"MemTableStopWritesThreshold", func(c *PebbleConfig) { c.MemTableStopWritesThreshold = 1 }},
		{"L0CompactionThreshold", func(c *PebbleConfig) { c.L0CompactionThreshold = 0 }},
		{"L0StopWritesThreshold", func(c *PebbleConfig) { c.L0StopWritesThreshold = c.L0CompactionThreshold - 1 }},
		{"MaxConcurrentCompactions", func(c *PebbleConfig) { c.MaxConcurrentCompactions = 0 }},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate with bad %s = %v; want an error naming it, wrapping ErrInvalidConfig", tc.field, err)
		}
		if _, err := OpenPebble(c); err == nil {
			t.Errorf("OpenPebble with bad %s succeeded", tc.field)
		}
	}
	// A nil Logger is allowed.
	c := DefaultPebbleConfig(t.TempDir())
	c.Logger = nil
	p, err := OpenPebble(c)
	if err != nil {
		t.Fatalf("OpenPebble with nil Logger: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
