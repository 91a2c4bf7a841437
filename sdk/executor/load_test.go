package executor

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// fakeProc is a directory standing in for /proc, with a clock the test moves.
type fakeProc struct {
	t   *testing.T
	dir string
	now time.Time
}

func newFakeProc(t *testing.T) *fakeProc {
	return &fakeProc{t: t, dir: t.TempDir(), now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (p *fakeProc) write(name, content string) {
	p.t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, name), []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *fakeProc) sampler() *LoadSampler {
	s := NewLoadSampler(p.dir)
	s.Now = func() time.Time { return p.now }
	return s
}

const (
	// 16 GiB total, 4 GiB available → Mem 0.75.
	meminfo = `MemTotal:       16777216 kB
MemFree:         1048576 kB
MemAvailable:    4194304 kB
Buffers:            3992 kB
`
	stat1 = `cpu  1000 0 500 8000 500 0 0 0 0 0
cpu0 500 0 250 4000 250 0 0 0 0 0
cpu1 500 0 250 4000 250 0 0 0 0 0
intr 1 2 3
ctxt 42
`
	// +300 user, +100 nice, +100 system, +400 idle, +100 iowait, +50 guest
	// (already inside user): busy 500 of 1000 → CPU 0.5.
	stat2 = `cpu  1300 100 600 8400 600 0 0 0 50 0
cpu0 650 50 300 4200 300 0 0 0 25 0
cpu1 650 50 300 4200 300 0 0 0 25 0
intr 1 2 3
`
	disk1 = `   7       0 loop0 10 0 0 0 0 0 0 0 0 100 0 0 0 0 0 0 0
 254       0 vda 31844 5719 1236130 9721 6404 18772 1939360 3561 0 7000 14115 593 0 213960 232 727 600
 254       1 vda1 31000 5719 1236130 9721 6404 18772 1939360 3561 0 6900 14115 593 0 213960 232 727 600
 259       0 nvme0n1 1 0 0 0 0 0 0 0 0 2000 0
 259       1 nvme0n1p1 1 0 0 0 0 0 0 0 0 1900 0
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
`
	// Over 2 s: loop0 +2000 (skipped), vda +500, vda1 +1900 (a partition,
	// skipped), nvme0n1 +300 → IO = 500/2000 = 0.25.
	disk2 = `   7       0 loop0 10 0 0 0 0 0 0 0 0 2100 0 0 0 0 0 0 0
 254       0 vda 31844 5719 1236130 9721 6404 18772 1939360 3561 0 7500 14115 593 0 213960 232 727 600
 254       1 vda1 31000 5719 1236130 9721 6404 18772 1939360 3561 0 8800 14115 593 0 213960 232 727 600
 259       0 nvme0n1 1 0 0 0 0 0 0 0 0 2300 0
 259       1 nvme0n1p1 1 0 0 0 0 0 0 0 0 2200 0
 253       0 zram0 0 0 0 0 0 0 0 0 0 9999 0 0 0 0 0 0 0
`
)

func TestLoadSamplerFakeProc(t *testing.T) {
	p := newFakeProc(t)
	p.write("stat", stat1)
	p.write("meminfo", meminfo)
	p.write("diskstats", disk1)
	s := p.sampler()

	r, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if r.CPU != 0 || r.IO != 0 || r.Mem != 0.75 || r.InFlight != 0 {
		t.Fatalf("first sample = %+v, want CPU 0, IO 0 (no previous sample), Mem 0.75", r)
	}

	p.write("stat", stat2)
	p.write("diskstats", disk2)
	p.now = p.now.Add(2 * time.Second)
	r, err = s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if r.CPU != 0.5 || r.IO != 0.25 || r.Mem != 0.75 || r.InFlight != 0 {
		t.Fatalf("second sample = %+v, want CPU 0.5, IO 0.25, Mem 0.75", r)
	}

	// Nothing changed for 1 s: idle on both counts.
	p.now = p.now.Add(time.Second)
	r, err = s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if r.CPU != 0 || r.IO != 0 {
		t.Fatalf("unchanged counters gave %+v, want CPU 0, IO 0", r)
	}
}

func TestLoadSamplerClamps(t *testing.T) {
	p := newFakeProc(t)
	p.write("stat", "cpu 100 0 0 100 0\n")
	p.write("meminfo", "MemTotal: 100 kB\nMemAvailable: 200 kB\n") // avail > total
	p.write("diskstats", " 8 0 sda 0 0 0 0 0 0 0 0 0 1000 0\n")
	s := p.sampler()
	if _, err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	// Disk busy 5000 ms within 1 s of wall time (accounting granularity can
	// overshoot); the CPU idle counter went backwards, as iowait can.
	p.write("stat", "cpu 200 0 0 100 0\n")
	p.write("diskstats", " 8 0 sda 0 0 0 0 0 0 0 0 0 6000 0\n")
	p.now = p.now.Add(time.Second)
	r, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if r.CPU != 1 || r.IO != 1 || r.Mem != 0 {
		t.Fatalf("got %+v, want CPU 1, IO 1, Mem 0 (clamped)", r)
	}

	// Counters reset (device replaced, wrap) and the clock did not move.
	p.write("stat", "cpu 10 0 0 10 0\n")
	p.write("diskstats", " 8 0 sda 0 0 0 0 0 0 0 0 0 10 0\n")
	r, err = s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if r.CPU != 0 || r.IO != 0 {
		t.Fatalf("after counter reset got %+v, want CPU 0, IO 0", r)
	}
}

func TestLoadSamplerErrors(t *testing.T) {
	good := map[string]string{"stat": stat1, "meminfo": meminfo, "diskstats": disk1}
	tests := []struct {
		name, file, content string
		missing             bool
	}{
		{name: "stat missing", file: "stat", missing: true},
		{name: "meminfo missing", file: "meminfo", missing: true},
		{name: "diskstats missing", file: "diskstats", missing: true},
		{name: "stat no cpu line", file: "stat", content: "cpu0 1 2 3 4\nintr 1\n"},
		{name: "stat short cpu line", file: "stat", content: "cpu 1 2 3\n"},
		{name: "stat not a number", file: "stat", content: "cpu 1 2 x 4 5\n"},
		{name: "stat negative", file: "stat", content: "cpu 1 2 -3 4 5\n"},
		{name: "stat empty", file: "stat", content: ""},
		{name: "meminfo no total", file: "meminfo", content: "MemAvailable: 10 kB\n"},
		{name: "meminfo no available", file: "meminfo", content: "MemTotal: 10 kB\nMemFree: 5 kB\n"},
		{name: "meminfo zero total", file: "meminfo", content: "MemTotal: 0 kB\nMemAvailable: 0 kB\n"},
		{name: "meminfo not a number", file: "meminfo", content: "MemTotal: lots kB\nMemAvailable: 0 kB\n"},
		{name: "meminfo no value", file: "meminfo", content: "MemTotal:\nMemAvailable: 0 kB\n"},
		{name: "diskstats short line", file: "diskstats", content: " 8 0 sda 1 2 3\n"},
		{name: "diskstats not a number", file: "diskstats", content: " 8 0 sda 0 0 0 0 0 0 0 0 0 busy 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProc(t)
			for f, c := range good {
				if f != tt.file {
					p.write(f, c)
				}
			}
			if !tt.missing {
				p.write(tt.file, tt.content)
			}
			r, err := p.sampler().Sample()
			if err == nil {
				t.Fatalf("Sample() = %+v, nil; want an error", r)
			}
			want := ErrMalformedProc
			if tt.missing {
				want = fs.ErrNotExist
			}
			if !errors.Is(err, want) {
				t.Fatalf("Sample() error = %v; want errors.Is %v", err, want)
			}
			if r != (messages.LoadReport{}) || !strings.Contains(err.Error(), filepath.Join(p.dir, tt.file)) {
				t.Fatalf("Sample() = %+v, %v; want a zero report and an error naming %s", r, err, tt.file)
			}
		})
	}
}

// A failed sample leaves the baseline alone: the next one measures from the
// last good sample.
func TestLoadSamplerErrorKeepsBaseline(t *testing.T) {
	p := newFakeProc(t)
	p.write("stat", stat1)
	p.write("meminfo", meminfo)
	p.write("diskstats", disk1)
	s := p.sampler()
	if _, err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	p.write("stat", stat2)
	p.write("diskstats", "garbage\n")
	p.now = p.now.Add(time.Second)
	if _, err := s.Sample(); err == nil {
		t.Fatal("Sample() with malformed diskstats succeeded")
	}
	p.write("diskstats", disk2)
	p.now = p.now.Add(time.Second)
	r, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if r.CPU != 0.5 || r.IO != 0.25 {
		t.Fatalf("got %+v, want CPU 0.5, IO 0.25 measured from the first sample", r)
	}
}

func TestIsPartition(t *testing.T) {
	whole := []string{"sda", "nvme0n1", "mmcblk0", "dm-0"}
	for name, want := range map[string]bool{
		"sda1": true, "sda12": true, "sdaa": false, "sdb1": false, "sda": false,
		"nvme0n1p1": true, "nvme0n10": true, "nvme0n1p": false, "mmcblk0p2": true,
		"mmcblk0boot0": false, "dm-1": false,
	} {
		if got := isPartition([]byte(name), whole); got != want {
			t.Errorf("isPartition(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestLoadSamplerRealProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("load is read from Linux /proc")
	}
	s := NewLoadSampler("/proc")
	for i := range 3 {
		if i > 0 {
			// Burn a little CPU so the interval is not empty.
			x := 0.0
			for j := range 200000 {
				x += math.Sqrt(float64(j))
			}
			_ = x
		}
		r, err := s.Sample()
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		for name, v := range map[string]float64{"cpu": r.CPU, "mem": r.Mem, "io": r.IO} {
			if !(v >= 0 && v <= 1) {
				t.Errorf("sample %d: %s = %v, want in [0,1]", i, name, v)
			}
		}
		if r.Mem == 0 {
			t.Errorf("sample %d: mem = 0; a running machine uses some memory", i)
		}
		if r.InFlight != 0 {
			t.Errorf("sample %d: InFlight = %d, want 0 (the caller fills it)", i, r.InFlight)
		}
	}
}

func BenchmarkLoadSample(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("load is read from Linux /proc")
	}
	s := NewLoadSampler("/proc")
	for b.Loop() {
		if _, err := s.Sample(); err != nil {
			b.Fatal(err)
		}
	}
}
