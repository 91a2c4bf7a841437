package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Machine describes where a result was measured.
type Machine struct {
	CPUs       int     `json:"cpus"`       // runtime.NumCPU (nproc)
	GOMAXPROCS int     `json:"gomaxprocs"` // what the Go scheduler used
	MemGB      float64 `json:"mem_gb"`     // MemTotal of /proc/meminfo
	GoVersion  string  `json:"go_version"`
	OS         string  `json:"os"` // GOOS/GOARCH and kernel release
}

// ThisMachine describes the running machine.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if kb, ok := procField("/proc/meminfo", "MemTotal:"); ok {
		m.MemGB = math.Round(float64(kb)/(1<<20)*10) / 10
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS += " " + strings.TrimSpace(string(b))
	}
	return m
}

func (m Machine) String() string {
	return fmt.Sprintf("%d CPUs (GOMAXPROCS %d), %.1f GB, %s, %s", m.CPUs, m.GOMAXPROCS, m.MemGB, m.GoVersion, m.OS)
}

// Table prints results as an aligned table: the machine once, then per
// result its parameters and one row per metric.
func Table(w io.Writer, results ...*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	machines := map[Machine]bool{}
	for _, r := range results {
		if r != nil && !machines[r.Machine] {
			machines[r.Machine] = true
			fmt.Fprintf(tw, "machine: %s\n", r.Machine)
		}
	}
	fmt.Fprintf(tw, "workload\tmetric\tvalue\t\n")
	for _, r := range results {
		if r == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t\t\t\n", r.label())
		for _, name := range r.MetricNames() {
			fmt.Fprintf(tw, "\t%s\t%s\t\n", name, formatValue(r.Metrics[name]))
		}
	}
	tw.Flush()
	// Parameters and notes are long: below the table, not in its columns.
	for _, r := range results {
		if r == nil {
			continue
		}
		fmt.Fprintf(w, "%s params: %s\n", r.label(), paramString(r.Params))
		for _, n := range r.Notes {
			fmt.Fprintf(w, "%s note: %s\n", r.label(), n)
		}
	}
}

// label is the workload and the parameter that tells its runs apart.
func (r *Result) label() string {
	l := r.Workload
	for _, k := range []string{"mode", "rate"} {
		if v, ok := r.Params[k]; ok && !(r.Workload == "W2" || r.Workload == "W4") {
			l += fmt.Sprintf(" %s=%v", k, v)
		}
	}
	return l
}

func paramString(p map[string]any) string {
	parts := make([]string, 0, len(p))
	for _, k := range slices.Sorted(maps.Keys(p)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, p[k]))
	}
	return strings.Join(parts, " ")
}

func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// WriteJSON writes results as one indented JSON array.
func WriteJSON(w io.Writer, results ...*Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

// sanitize drops values JSON cannot carry.
func sanitize(m map[string]float64) {
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(m, k)
		}
	}
}

// procField reads a "Key: value kB" line of a /proc file (value in kB).
func procField(path, key string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				return 0, false
			}
			v, err := strconv.ParseInt(fields[0], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// rssMB is the process's resident set (VmRSS) in MiB, or NaN.
func rssMB() float64 {
	if kb, ok := procField("/proc/self/status", "VmRSS:"); ok {
		return float64(kb) / 1024
	}
	return math.NaN()
}

// peakRSSMB is the process's peak resident set (VmHWM) in MiB, or NaN.
func peakRSSMB() float64 {
	if kb, ok := procField("/proc/self/status", "VmHWM:"); ok {
		return float64(kb) / 1024
	}
	return math.NaN()
}

// resetPeakRSS resets VmHWM to the current RSS (Linux clear_refs "5"), so
// that the peak of one workload is not an earlier one's. It reports whether
// the reset worked.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// percentile returns the p-quantile (0..1) of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func round(v float64, digits int) float64 {
	s := math.Pow(10, float64(digits))
	return math.Round(v*s) / s
}

// cpuMeter measures the CPU the whole machine and this process used over an
// interval, to tell how much other processes took (a shared machine).
type cpuMeter struct {
	at          time.Time
	machineBusy float64 // seconds of busy CPU, all cores (/proc/stat)
	self        time.Duration
	gcCPU       float64 // seconds of GC CPU (runtime/metrics)
	gcCycles    uint64
}

func readGC() (cpuSeconds float64, cycles uint64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindFloat64 {
		cpuSeconds = s[0].Value.Float64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		cycles = s[1].Value.Uint64()
	}
	return cpuSeconds, cycles
}

func readCPUMeter() cpuMeter {
	m := cpuMeter{at: time.Now(), self: processTreeCPU(), machineBusy: -1}
	m.gcCPU, m.gcCycles = readGC()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return m
	}
	// user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
	var busy float64
	for i, s := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		v, _ := strconv.ParseFloat(s, 64)
		busy += v
	}
	m.machineBusy = busy / 100 // USER_HZ is 100 on Linux
	return m
}

// record adds, since m: this process's CPU use (with its reaped children)
// and other processes' (in % of all cores).
func (m cpuMeter) record(res *Result) {
	now := readCPUMeter()
	wall := now.at.Sub(m.at).Seconds()
	if wall <= 0 {
		return
	}
	cores := float64(runtime.NumCPU())
	self := (now.self - m.self).Seconds()
	res.Metrics["cpu_self_pct"] = round(100*self/wall/cores, 1)
	// GC's share of this process's CPU (the runtime's estimate), and cycles.
	if self > 0 {
		res.Metrics["gc_cpu_pct_of_self"] = round(100*(now.gcCPU-m.gcCPU)/self, 1)
	}
	res.Metrics["gc_cycles"] = float64(now.gcCycles - m.gcCycles)
	if m.machineBusy >= 0 && now.machineBusy >= 0 {
		other := now.machineBusy - m.machineBusy - self
		res.Metrics["cpu_other_procs_pct"] = round(max(0, 100*other/wall/cores), 1)
	}
}
