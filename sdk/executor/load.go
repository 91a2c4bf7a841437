package executor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// ErrMalformedProc reports a /proc file whose content the sampler cannot read
// as the kernel documents it. It wraps into Sample's error with the file name;
// a missing file wraps fs.ErrNotExist instead.
var ErrMalformedProc = errors.New("malformed proc file")

// LoadSampler measures this machine's CPU, memory and disk IO load from Linux
// /proc (S0.4). CPU and IO are rates, so each Sample reports the load since
// the previous successful one; the first reports 0 for both.
//
// It does file I/O and so belongs to the executor's shell, not its Step
// logic. It is not safe for concurrent use: one goroutine (the heartbeat
// loop) owns it. A Sample reads three small files into a reused buffer.
type LoadSampler struct {
	// Now is the clock used to measure the wall time between samples for the
	// IO fraction. Nil means time.Now. Tests set it for exact results.
	Now func() time.Time

	statPath, meminfoPath, diskstatsPath string

	buf []byte // reused read buffer

	primed   bool // a previous sample exists
	prevAt   time.Time
	prevBusy uint64            // non-idle jiffies, all CPUs
	prevIdle uint64            // idle+iowait jiffies, all CPUs
	prevIO   map[string]uint64 // device → ms spent doing I/O
	curIO    map[string]uint64 // scratch, swapped with prevIO
}

// NewLoadSampler returns a sampler reading stat, meminfo and diskstats under
// procRoot, which is "/proc" except in tests.
func NewLoadSampler(procRoot string) *LoadSampler {
	return &LoadSampler{
		statPath:      filepath.Join(procRoot, "stat"),
		meminfoPath:   filepath.Join(procRoot, "meminfo"),
		diskstatsPath: filepath.Join(procRoot, "diskstats"),
		buf:           make([]byte, 0, 16<<10),
		prevIO:        make(map[string]uint64),
		curIO:         make(map[string]uint64),
	}
}

// Sample returns the load now. CPU is the fraction of non-idle CPU time
// across all CPUs since the previous sample; Mem is 1 − MemAvailable/MemTotal;
// IO is the fraction of wall time the busiest block device was doing I/O
// since the previous sample. All are clamped to [0,1]; InFlight is left 0
// for the caller to fill.
//
// On error the report is zero and the sampler's state is unchanged, so the
// next successful sample measures from the last successful one.
func (s *LoadSampler) Sample() (messages.LoadReport, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	at := now()

	data, err := s.read(s.statPath)
	if err != nil {
		return messages.LoadReport{}, err
	}
	busy, idle, err := parseStat(data)
	if err != nil {
		return messages.LoadReport{}, fmt.Errorf("%s: %w", s.statPath, err)
	}

	data, err = s.read(s.meminfoPath)
	if err != nil {
		return messages.LoadReport{}, err
	}
	mem, err := parseMeminfo(data)
	if err != nil {
		return messages.LoadReport{}, fmt.Errorf("%s: %w", s.meminfoPath, err)
	}

	data, err = s.read(s.diskstatsPath)
	if err != nil {
		return messages.LoadReport{}, err
	}
	clear(s.curIO)
	if err := parseDiskstats(data, s.curIO); err != nil {
		return messages.LoadReport{}, fmt.Errorf("%s: %w", s.diskstatsPath, err)
	}

	r := messages.LoadReport{Mem: clamp01(mem)}
	if s.primed {
		r.CPU = cpuFraction(s.prevBusy, s.prevIdle, busy, idle)
		r.IO = ioFraction(s.prevIO, s.curIO, at.Sub(s.prevAt))
	}
	s.primed = true
	s.prevAt, s.prevBusy, s.prevIdle = at, busy, idle
	s.prevIO, s.curIO = s.curIO, s.prevIO
	return r, nil
}

// read returns the whole file at path in s.buf. /proc files report size 0,
// so it reads to EOF rather than trusting Stat.
func (s *LoadSampler) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read load: %w (executors measure load from Linux /proc)", err)
	}
	defer f.Close()
	buf := s.buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read load: %s: %w", path, err)
		}
	}
	s.buf = buf
	return buf, nil
}

// parseStat reads the aggregate "cpu" line of /proc/stat: user nice system
// idle iowait irq softirq steal guest guest_nice, in jiffies. guest and
// guest_nice are already counted in user and nice, so they are left out.
func parseStat(data []byte) (busy, idle uint64, err error) {
	for line := range bytes.Lines(data) {
		f := bytes.Fields(line)
		if len(f) == 0 || string(f[0]) != "cpu" {
			continue
		}
		f = f[1:]
		if len(f) < 4 {
			return 0, 0, fmt.Errorf("%w: cpu line has %d fields, want at least 4", ErrMalformedProc, len(f))
		}
		for i := 0; i < len(f) && i < 8; i++ {
			v, err := strconv.ParseUint(string(f[i]), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("%w: cpu field %d: %v", ErrMalformedProc, i+1, err)
			}
			if i == 3 || i == 4 { // idle, iowait
				idle += v
			} else {
				busy += v
			}
		}
		return busy, idle, nil
	}
	return 0, 0, fmt.Errorf("%w: no aggregate cpu line", ErrMalformedProc)
}

// parseMeminfo returns 1 − MemAvailable/MemTotal.
func parseMeminfo(data []byte) (float64, error) {
	var total, avail uint64
	var haveTotal, haveAvail bool
	for line := range bytes.Lines(data) {
		key, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(key) {
		case "MemTotal":
			dst, haveTotal = &total, true
		case "MemAvailable":
			dst, haveAvail = &avail, true
		default:
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("%w: %s has no value", ErrMalformedProc, key)
		}
		v, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %v", ErrMalformedProc, key, err)
		}
		*dst = v
		if haveTotal && haveAvail {
			break
		}
	}
	switch {
	case !haveTotal:
		return 0, fmt.Errorf("%w: no MemTotal", ErrMalformedProc)
	case !haveAvail:
		return 0, fmt.Errorf("%w: no MemAvailable (needs Linux 3.14 or later)", ErrMalformedProc)
	case total == 0:
		return 0, fmt.Errorf("%w: MemTotal is 0", ErrMalformedProc)
	}
	return 1 - float64(avail)/float64(total), nil
}

// parseDiskstats fills ticks with each whole block device's "time spent
// doing I/Os" in ms: field 10 after major, minor and name. Loop, ram and zram
// devices are skipped (they are memory, not disks), and so are partitions,
// recognised as an earlier device's name followed by digits or "p" and digits
// (sda1, nvme0n1p1, mmcblk0p2): the kernel lists a disk before its partitions.
// A missed partition is harmless since the caller takes the maximum.
func parseDiskstats(data []byte, ticks map[string]uint64) error {
	var whole []string // whole devices seen so far, for partition detection
	for line := range bytes.Lines(data) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 14 {
			return fmt.Errorf("%w: line %q has %d fields, want at least 14", ErrMalformedProc, bytes.TrimSpace(line), len(f))
		}
		name := f[2]
		if bytes.HasPrefix(name, []byte("loop")) || bytes.HasPrefix(name, []byte("ram")) || bytes.HasPrefix(name, []byte("zram")) {
			continue
		}
		if isPartition(name, whole) {
			continue
		}
		v, err := strconv.ParseUint(string(f[12]), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %s io time: %v", ErrMalformedProc, name, err)
		}
		dev := string(name)
		whole = append(whole, dev)
		ticks[dev] = v
	}
	return nil
}

func isPartition(name []byte, whole []string) bool {
	for _, w := range whole {
		rest, ok := bytes.CutPrefix(name, []byte(w))
		if !ok || len(rest) == 0 {
			continue
		}
		if rest[0] == 'p' {
			rest = rest[1:]
		}
		if len(rest) > 0 && allDigits(rest) {
			return true
		}
	}
	return false
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// cpuFraction is busy/(busy+idle) over the interval. A counter that went
// backwards (iowait can, on tickless kernels) counts as no time.
func cpuFraction(prevBusy, prevIdle, busy, idle uint64) float64 {
	db, di := delta(prevBusy, busy), delta(prevIdle, idle)
	if db+di == 0 {
		return 0
	}
	return clamp01(float64(db) / float64(db+di))
}

// ioFraction is the largest per-device I/O time over the elapsed wall time.
// A device new since the previous sample has no baseline and is skipped; a
// counter that went backwards (device replaced, 32-bit wrap) counts as idle.
func ioFraction(prev, cur map[string]uint64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	var busiest uint64
	for dev, v := range cur {
		p, ok := prev[dev]
		if !ok {
			continue
		}
		busiest = max(busiest, delta(p, v))
	}
	return clamp01(float64(busiest) / (float64(elapsed) / float64(time.Millisecond)))
}

func delta(prev, cur uint64) uint64 {
	if cur < prev {
		return 0
	}
	return cur - prev
}

func clamp01(x float64) float64 {
	switch {
	case x > 1:
		return 1
	case x >= 0:
		return x
	}
	return 0 // negative or NaN
}
