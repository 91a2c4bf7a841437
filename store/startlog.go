package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// StartLog records attempts as they start (leases granted) in a local
// append-only file, written to the operating system before the grant goes
// out but not fsync'd: a write survives the death of the process (SIGKILL,
// a crash, a task that kills its node) at the cost of a write(2), where a
// synced commit before every grant costs W1 about a third of its
// throughput (docs/architecture.md, Recovery). A machine crash may lose
// the latest starts: those attempts then run again under the same number.
//
// At start-up OpenStartLog returns what the file holds; the node makes it
// durable in the store (Batch.Starts), then Reset empties the log. The log
// keeps the starts of unfinished tasks in memory (Done forgets them) and
// rewrites the file from them when it has grown to several times their
// size, so the file stays small whatever the run's length.
//
// Format: frames of [len u32][crc32c u32][len bytes of 12-byte entries:
// id u64, attempts u32], big-endian. A torn or corrupt tail ends the read.
type StartLog struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	f       *os.File
	size    int64
	live    map[uint64]int32
	closed  bool
	scratch []byte
}

const (
	startEntryLen  = 12
	startFrameHead = 8
	// startLogCompactBytes is the least file size compaction considers.
	startLogCompactBytes = 4 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// OpenStartLog opens (or creates) the log at path and returns the starts it
// holds, the largest count per task. The caller makes them durable
// elsewhere, then calls Reset, before it records anything.
func OpenStartLog(path string, log *slog.Logger) (*StartLog, []AttemptUpdate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prev, err := readStartLog(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("store: start log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("store: start log: %w", err)
	}
	l := &StartLog{path: path, log: log, f: f, size: fi.Size(), live: map[uint64]int32{}}
	return l, prev, nil
}

// Reset forgets every start and empties the file: at start-up once the
// starts OpenStartLog returned are durable elsewhere; at a graceful stop,
// which does not count the attempts still running.
func (l *StartLog) Reset() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	clear(l.live)
	return l.rewrite()
}

// readStartLog reads every whole frame of the file at path.
func readStartLog(path string) ([]AttemptUpdate, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read start log: %w", err)
	}
	max := map[uint64]int32{}
	var order []uint64
	for len(raw) >= startFrameHead {
		n := int(binary.BigEndian.Uint32(raw))
		sum := binary.BigEndian.Uint32(raw[4:])
		if n%startEntryLen != 0 || len(raw)-startFrameHead < n {
			break // torn tail
		}
		body := raw[startFrameHead : startFrameHead+n]
		if crc32.Checksum(body, crcTable) != sum {
			break
		}
		for ; len(body) > 0; body = body[startEntryLen:] {
			id := binary.BigEndian.Uint64(body)
			a := int32(min(binary.BigEndian.Uint32(body[8:]), 1<<31-1))
			if old, ok := max[id]; !ok {
				order = append(order, id)
				max[id] = a
			} else if a > old {
				max[id] = a
			}
		}
		raw = raw[startFrameHead+n:]
	}
	out := make([]AttemptUpdate, len(order))
	for i, id := range order {
		out[i] = AttemptUpdate{ID: id, Attempts: max[id]}
	}
	return out, nil
}

// Record writes starts to the file (one frame, one write(2) into the page
// cache) and remembers them until Done. When it returns nil, the starts
// survive the process. It is safe for concurrent use.
func (l *StartLog) Record(starts []AttemptUpdate) error {
	if len(starts) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	for _, u := range starts {
		l.live[u.ID] = max(l.live[u.ID], u.Attempts)
	}
	l.scratch = appendStartFrame(l.scratch[:0], starts)
	if _, err := l.f.Write(l.scratch); err != nil {
		return fmt.Errorf("store: write start log: %w", err)
	}
	l.size += int64(len(l.scratch))
	if l.size >= startLogCompactBytes && l.size > 4*int64(len(l.live))*startEntryLen {
		return l.rewrite()
	}
	return nil
}

// Done forgets the starts of finished tasks (their results are durable).
func (l *StartLog) Done(ids []uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		delete(l.live, id)
	}
}

// Live is the number of starts remembered (of unfinished tasks).
func (l *StartLog) Live() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.live)
}

// rewrite replaces the file by one holding the live starts only: written
// beside it and renamed over it, so a death in between leaves one or the
// other whole. Called with mu held (or before l is shared).
func (l *StartLog) rewrite() error {
	tmp := l.path + ".new"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("store: start log: %w", err)
	}
	live := make([]AttemptUpdate, 0, len(l.live))
	for id, a := range l.live {
		live = append(live, AttemptUpdate{ID: id, Attempts: a})
	}
	var size int64
	if len(live) > 0 {
		b := appendStartFrame(nil, live)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("store: start log: %w", err)
		}
		size = int64(len(b))
	}
	if err := os.Rename(tmp, l.path); err != nil {
		f.Close()
		return fmt.Errorf("store: start log: %w", err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return fmt.Errorf("store: start log: %w", err)
	}
	if l.f != nil {
		_ = l.f.Close()
	}
	l.f, l.size = f, size
	syncDir(filepath.Dir(l.path))
	return nil
}

// syncDir makes a rename durable where the platform allows; best effort
// (the log's promise is against process death, which needs no sync).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

func appendStartFrame(b []byte, starts []AttemptUpdate) []byte {
	n := len(starts) * startEntryLen
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = binary.BigEndian.AppendUint32(b, 0) // crc, below
	head := len(b)
	for _, u := range starts {
		b = binary.BigEndian.AppendUint64(b, u.ID)
		b = binary.BigEndian.AppendUint32(b, uint32(max(u.Attempts, 0)))
	}
	binary.BigEndian.PutUint32(b[head-4:], crc32.Checksum(b[head:], crcTable))
	return b
}

// Close closes the file; the starts written stay in it for the next start.
func (l *StartLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.f.Close()
}
