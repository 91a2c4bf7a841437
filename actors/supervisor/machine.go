// Package supervisor is the server supervisor (S2.7–S2.10): one per node,
// it watches the executors attached to the node's dispatcher, evicts the
// unhealthy ones (their leases are requeued at once, S2.8), restarts the
// executor processes the node launched with exponential backoff, raises an
// alert and marks an executor failed after MaxRestarts failures within
// RestartWindow, and puts idle executors to sleep (the dispatcher wakes
// them when work they can run is waiting).
//
// Machine is the pure decision logic (no clock, no I/O); actor.go is its
// protoactor shell (timers, processes, alert sinks). docs/supervision.md
// describes the policies and their defaults.
package supervisor

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// stealPrefix names the pseudo-executors of peers' work stealers.
const stealPrefix = "steal/"

// Sleep policies.
const (
	SleepTime = "time" // sleep after SleepAfter without a lease
	SleepLoad = "load" // sleep after SleepAfter under LoadThreshold
	SleepOff  = "off"
)

// Config tunes the supervisor. Every duration is wall time.
type Config struct {
	// Interval is how often every executor is checked. Default 1 s.
	Interval time.Duration
	// HeartbeatTimeout evicts an awake executor silent this long, or a
	// launched process not registered this long after it started. 0 (the
	// default): four heartbeat intervals, 4 × LeaseTTL / 5 (12 s at the
	// default 15 s lease TTL), set by the node; 12 s if nobody sets it.
	HeartbeatTimeout time.Duration
	// RestartBase and RestartMax bound the restart backoff of a launched
	// executor process: base × 2^(failures in the window − 1). Defaults
	// 500 ms and 30 s.
	RestartBase, RestartMax time.Duration
	// MaxRestarts is how many failures within RestartWindow are restarted;
	// the next one raises an alert and marks the executor failed. Default 5.
	MaxRestarts int
	// RestartWindow is the window failures are counted in. Default 10 min.
	RestartWindow time.Duration
	// SleepPolicy is "time", "load" or "off". Default "time".
	SleepPolicy string
	// SleepAfter is how long an executor must be idle (time) or under
	// LoadThreshold (load) before it sleeps. Default 2 min.
	SleepAfter time.Duration
	// LoadThreshold is the load (the max of CPU, memory, IO and leases /
	// slots, 0..1) under which the load policy counts an executor idle.
	// Default 0.1.
	LoadThreshold float64
	// MinActive executors are kept awake whatever the policy. Default 1.
	MinActive int
	// MaxAlerts is how many recent alerts status shows. Default 32.
	MaxAlerts int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Interval:    time.Second,
		RestartBase: 500 * time.Millisecond, RestartMax: 30 * time.Second,
		MaxRestarts: 5, RestartWindow: 10 * time.Minute,
		SleepPolicy: SleepTime, SleepAfter: 2 * time.Minute, LoadThreshold: 0.1, MinActive: 1,
		MaxAlerts: 32,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("supervisor: Interval must be > 0, got %v", c.Interval)
	case c.HeartbeatTimeout < 0:
		return fmt.Errorf("supervisor: HeartbeatTimeout must be >= 0 (0: derived from the lease TTL), got %v", c.HeartbeatTimeout)
	case c.RestartBase <= 0 || c.RestartMax < c.RestartBase:
		return fmt.Errorf("supervisor: need 0 < RestartBase <= RestartMax, got %v and %v", c.RestartBase, c.RestartMax)
	case c.MaxRestarts < 0:
		return fmt.Errorf("supervisor: MaxRestarts must be >= 0, got %d", c.MaxRestarts)
	case c.RestartWindow <= 0:
		return fmt.Errorf("supervisor: RestartWindow must be > 0, got %v", c.RestartWindow)
	case c.SleepPolicy != SleepTime && c.SleepPolicy != SleepLoad && c.SleepPolicy != SleepOff:
		return fmt.Errorf("supervisor: SleepPolicy must be time, load or off, got %q", c.SleepPolicy)
	case c.SleepPolicy != SleepOff && c.SleepAfter <= 0:
		return fmt.Errorf("supervisor: SleepAfter must be > 0, got %v", c.SleepAfter)
	case c.LoadThreshold < 0 || c.LoadThreshold > 1:
		return fmt.Errorf("supervisor: LoadThreshold must be in [0, 1], got %v", c.LoadThreshold)
	case c.MinActive < 0:
		return fmt.Errorf("supervisor: MinActive must be >= 0, got %d", c.MinActive)
	case c.MaxAlerts <= 0:
		return fmt.Errorf("supervisor: MaxAlerts must be > 0, got %d", c.MaxAlerts)
	}
	return nil
}

// Alert kinds.
const (
	KindRestartLimit = "restart_limit" // a launched process kept failing
	KindHealthLimit  = "health_limit"  // an executor the node did not launch kept failing health checks
	KindActorLimit   = "actor_limit"   // an in-process executor actor kept panicking
)

// Eviction asks the dispatcher to requeue an executor's leases at once.
type Eviction struct{ Executor, Reason string }

// Effects are what the shell must do after a step.
type Effects struct {
	Evict  []Eviction
	Start  []string // launched executors to (re)start now
	Kill   []string // launched processes to kill (failed health)
	Sleep  []string // executors to put to sleep
	Alerts []messages.Alert
}

// procState is where a launched executor process is.
type procState uint8

const (
	procStarting   procState = iota // started, not yet seen registered
	procRunning                     // registered with the dispatcher
	procRestarting                  // exited; restart due at restartAt
	procFailed                      // gave up: alert raised
	procStopped                     // the node is stopping
)

type proc struct {
	state     procState
	since     int64 // unix ns of the last start
	restartAt int64
	restarts  int32
	killed    string // why the supervisor killed it, if it did
}

// record is one executor's failure history.
type record struct {
	failures []int64 // unix ns, within the window
	failed   bool    // alert raised; shown failed until it is healthy again
	reason   string
}

// Counters are cumulative.
type Counters struct {
	Evicted, Restarts, Alerts, Slept int64
}

// Machine is the supervisor's state. It does no I/O.
type Machine struct {
	cfg      Config
	node     string
	procs    map[string]*proc
	recs     map[string]*record
	lowSince map[string]int64 // load policy: under the threshold since
	alerts   []messages.Alert
	Counters Counters
}

// New returns a supervisor for the node named node.
func New(cfg Config, node string) *Machine {
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = 12 * time.Second
	}
	return &Machine{cfg: cfg, node: node, procs: map[string]*proc{}, recs: map[string]*record{}, lowSince: map[string]int64{}}
}

// Launch adds an executor process the node runs under id and starts it.
func (m *Machine) Launch(now time.Time, id string) Effects {
	m.procs[id] = &proc{state: procStarting, since: now.UnixNano()}
	return Effects{Start: []string{id}}
}

// Exited records that a launched process ended (or could not start): its
// leases are requeued at once and it is restarted after a backoff, or
// marked failed past MaxRestarts failures in the window.
func (m *Machine) Exited(now time.Time, id, reason string) Effects {
	var fx Effects
	p := m.procs[id]
	if p == nil || p.state == procStopped || p.state == procFailed || p.state == procRestarting {
		return fx
	}
	if p.killed != "" {
		reason, p.killed = p.killed, ""
	}
	fx.Evict = append(fx.Evict, Eviction{id, "process exited: " + reason})
	m.Counters.Evicted++
	n, give := m.fail(now, id, reason)
	if give {
		p.state = procFailed
		m.alert(now, id, KindRestartLimit, fmt.Sprintf("executor process %s failed %d times within %v (last: %s); not restarted again", id, n, m.cfg.RestartWindow, reason), n, &fx)
		return fx
	}
	p.state = procRestarting
	p.restartAt = now.Add(m.Backoff(n)).UnixNano()
	return fx
}

// ActorFailed records a panic of an in-process executor actor and reports
// whether protoactor should restart it; past MaxRestarts in the window it
// raises an alert and the actor is stopped.
func (m *Machine) ActorFailed(now time.Time, id, reason string) (bool, Effects) {
	var fx Effects
	n, give := m.fail(now, id, reason)
	if give {
		m.alert(now, id, KindActorLimit, fmt.Sprintf("executor actor %s panicked %d times within %v (last: %s); stopped", id, n, m.cfg.RestartWindow, reason), n, &fx)
		return false, fx
	}
	m.Counters.Restarts++
	return true, fx
}

// Stop marks every launched process as stopping: exits are expected now.
func (m *Machine) Stop() {
	for _, p := range m.procs {
		p.state = procStopped
	}
}

// fail records a failure; it returns the failures within the window and
// whether that is past MaxRestarts.
func (m *Machine) fail(now time.Time, id, reason string) (int, bool) {
	r := m.recs[id]
	if r == nil {
		r = &record{}
		m.recs[id] = r
	}
	ts := now.UnixNano()
	cut := ts - int64(m.cfg.RestartWindow)
	r.failures = slices.DeleteFunc(r.failures, func(t int64) bool { return t <= cut })
	r.failures = append(r.failures, ts)
	r.reason = reason
	n := len(r.failures)
	if n > m.cfg.MaxRestarts {
		r.failed = true
		r.failures = nil // a new window starts if an operator brings it back
		return n, true
	}
	return n, false
}

func (m *Machine) alert(now time.Time, id, kind, msg string, n int, fx *Effects) {
	a := messages.Alert{At: now.UnixMilli(), Node: m.node, Executor: id, Kind: kind, Message: msg, Failures: int32(n)}
	m.Counters.Alerts++
	m.alerts = append(m.alerts, a)
	if over := len(m.alerts) - m.cfg.MaxAlerts; over > 0 {
		m.alerts = slices.Delete(m.alerts, 0, over)
	}
	fx.Alerts = append(fx.Alerts, a)
}

// Backoff is the restart delay after n failures within the window.
func (m *Machine) Backoff(n int) time.Duration {
	d := m.cfg.RestartBase
	for i := 1; i < n && d < m.cfg.RestartMax; i++ {
		d *= 2
	}
	return min(d, m.cfg.RestartMax)
}

// Observe checks the executors the dispatcher reports (every Interval):
// health (heartbeat age, the executor's own check), due restarts, launched
// processes that never registered, and the sleep policy.
func (m *Machine) Observe(now time.Time, execs []messages.ExecutorStatus) Effects {
	var fx Effects
	ts := now.UnixNano()
	seen := make(map[string]bool, len(execs))
	healthy := make([]messages.ExecutorStatus, 0, len(execs))
	for _, e := range execs {
		seen[e.ID] = true
		if why := m.unhealthy(ts, e); why != "" {
			m.evictUnhealthy(now, e.ID, why, &fx)
			continue
		}
		if p := m.procs[e.ID]; p != nil && p.state == procStarting {
			p.state = procRunning
		}
		if r := m.recs[e.ID]; r != nil && r.failed && m.procs[e.ID] == nil {
			r.failed = false // an external executor came back healthy
		}
		healthy = append(healthy, e)
	}
	for _, id := range slices.Sorted(maps.Keys(m.procs)) {
		p := m.procs[id]
		switch {
		case p.state == procRestarting && p.restartAt <= ts:
			p.state, p.since = procStarting, ts
			p.restarts++
			m.Counters.Restarts++
			fx.Start = append(fx.Start, id)
		case p.state == procStarting && !seen[id] && ts-p.since > int64(m.cfg.HeartbeatTimeout) && p.killed == "":
			p.killed = fmt.Sprintf("not registered %v after start", m.cfg.HeartbeatTimeout)
			fx.Kill = append(fx.Kill, id)
		case p.state == procRunning && !seen[id] && p.killed == "":
			// Registered before, gone now (expired or evicted): its exit, if
			// it died, restarts it; if it hangs, HeartbeatTimeout catches it.
			p.state, p.since = procStarting, ts
		}
	}
	m.sleep(ts, healthy, &fx)
	return fx
}

// unhealthy is why e fails its health check ("" if it passes).
func (m *Machine) unhealthy(ts int64, e messages.ExecutorStatus) string {
	if e.Unhealthy != "" {
		return "health check failed: " + e.Unhealthy
	}
	if e.State != messages.ExecSleeping { // sleepers heartbeat slowly; the lease TTL bounds them
		if age := time.Duration(ts - e.LastSeen*1e6); age > m.cfg.HeartbeatTimeout {
			return fmt.Sprintf("no heartbeat for %v", age.Round(time.Millisecond))
		}
	}
	return ""
}

func (m *Machine) evictUnhealthy(now time.Time, id, why string, fx *Effects) {
	delete(m.lowSince, id)
	if p := m.procs[id]; p != nil {
		// A launched process is killed; its exit evicts it and counts the
		// failure, once.
		if p.killed == "" && (p.state == procRunning || p.state == procStarting) {
			p.killed = why
			fx.Kill = append(fx.Kill, id)
		}
		return
	}
	fx.Evict = append(fx.Evict, Eviction{id, why})
	m.Counters.Evicted++
	if n, give := m.fail(now, id, why); give {
		m.alert(now, id, KindHealthLimit, fmt.Sprintf("executor %s failed its health check %d times within %v (last: %s)", id, n, m.cfg.RestartWindow, why), n, fx)
	}
}

// sleep applies the sleep policy to healthy executors, keeping MinActive
// awake.
func (m *Machine) sleep(ts int64, execs []messages.ExecutorStatus, fx *Effects) {
	if m.cfg.SleepPolicy == SleepOff {
		return
	}
	active := 0
	var idle []string
	for _, e := range execs {
		if strings.HasPrefix(e.ID, stealPrefix) {
			continue // a peer's work stealer (cluster/steal) does not understand sleep
		}
		if e.State != messages.ExecActive && e.State != "" {
			delete(m.lowSince, e.ID)
			continue
		}
		active++
		if m.idle(ts, e) {
			idle = append(idle, e.ID)
		}
	}
	for id := range m.lowSince {
		if !slices.ContainsFunc(execs, func(e messages.ExecutorStatus) bool { return e.ID == id }) {
			delete(m.lowSince, id)
		}
	}
	slices.SortFunc(idle, cmp.Compare)
	for _, id := range idle {
		if active <= m.cfg.MinActive {
			return
		}
		active--
		delete(m.lowSince, id)
		m.Counters.Slept++
		fx.Sleep = append(fx.Sleep, id)
	}
}

func (m *Machine) idle(ts int64, e messages.ExecutorStatus) bool {
	after := int64(m.cfg.SleepAfter)
	if m.cfg.SleepPolicy == SleepTime {
		return e.Leases == 0 && e.IdleSince > 0 && ts-e.IdleSince*1e6 >= after
	}
	load := max(e.Load.CPU, e.Load.Mem, e.Load.IO, float64(e.Leases)/float64(max(e.Slots, 1)))
	if load >= m.cfg.LoadThreshold {
		delete(m.lowSince, e.ID)
		return false
	}
	since, ok := m.lowSince[e.ID]
	if !ok {
		m.lowSince[e.ID] = ts
		return after <= 0
	}
	return ts-since >= after
}

// View is what status shows of the supervisor.
type View struct {
	// Extra are executors the dispatcher does not list: launched processes
	// restarting or failed, and external executors marked failed.
	Extra []messages.ExecutorStatus
	// Launched maps launched executors to their restart counts.
	Launched map[string]int32
	Alerts   []messages.Alert
	Counters Counters
}

// View returns the supervisor's part of status.
func (m *Machine) View() View {
	v := View{Launched: map[string]int32{}, Alerts: slices.Clone(m.alerts), Counters: m.Counters}
	for _, id := range slices.Sorted(maps.Keys(m.procs)) {
		p := m.procs[id]
		v.Launched[id] = p.restarts
		switch p.state {
		case procRestarting:
			v.Extra = append(v.Extra, messages.ExecutorStatus{ID: id, State: messages.ExecRestarting, Launched: true, Restarts: p.restarts, Unhealthy: m.recs[id].reason})
		case procFailed:
			v.Extra = append(v.Extra, messages.ExecutorStatus{ID: id, State: messages.ExecFailed, Launched: true, Restarts: p.restarts, Unhealthy: m.recs[id].reason})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(m.recs)) {
		if r := m.recs[id]; r.failed && m.procs[id] == nil {
			v.Extra = append(v.Extra, messages.ExecutorStatus{ID: id, State: messages.ExecFailed, Unhealthy: r.reason})
		}
	}
	return v
}

// Merge completes the dispatcher's executor list with the supervisor's
// view: launched executors are marked, and those the dispatcher does not
// list (restarting, failed) are added.
func (v View) Merge(execs []messages.ExecutorStatus) []messages.ExecutorStatus {
	out := make([]messages.ExecutorStatus, 0, len(execs)+len(v.Extra))
	listed := map[string]bool{}
	for _, e := range execs {
		if n, ok := v.Launched[e.ID]; ok {
			e.Launched, e.Restarts = true, n
		}
		listed[e.ID] = true
		out = append(out, e)
	}
	for _, e := range v.Extra {
		if !listed[e.ID] {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b messages.ExecutorStatus) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
