// Package cloud spills work to executors started on demand (S4.1–S4.3).
//
// The cloud actor watches the dispatcher (a snapshot every Config.Every).
// Two triggers ask a Provider for an executor:
//
//   - unplaceable: tasks set aside because no registered executor satisfies
//     their requirements (dispatch's set-aside list) for longer than Grace,
//     when the capabilities cloud executors offer (Config.Capabilities)
//     satisfy them;
//   - saturated: queued tasks per free slot above Saturation for longer than
//     Grace (one executor per Grace while it lasts).
//
// Each executor is tracked: provisioning (asked for, not registered yet),
// ready (registered with the dispatcher), releasing. A ready executor with
// no leases for Idle is released; one that does not register within
// ProvisionTimeout, or vanishes, is released and counted as failed. Limits:
// MaxExecutors at once, MaxPerHour provisions in any hour (the spend rate).
// Each provision and release is logged and counted.
//
// Machine is pure: the shell (actor.go) feeds it snapshots and provider
// outcomes and carries out its effects.
package cloud

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Config tunes the cloud actor.
type Config struct {
	// Provider names the provider: "process", "docker", "exec", or "" (off).
	// Default "" (cloud spill off); "process" is the reference provider.
	Provider string
	// MaxExecutors bounds the cloud executors at once. Default 4.
	MaxExecutors int
	// MaxPerHour bounds provisions in any 60-minute window (spend rate).
	// Default 20.
	MaxPerHour int
	// Grace is how long a trigger must hold before an executor is asked
	// for. Default 3 s.
	Grace time.Duration
	// Idle is how long a cloud executor may hold no lease before it is
	// released. Default 30 s.
	Idle time.Duration
	// Saturation is the queued tasks per free slot (all slots busy counts
	// as one free slot) above which executors count as saturated. Default 8.
	Saturation float64
	// ProvisionTimeout is how long a provisioned executor has to register.
	// Default 60 s.
	ProvisionTimeout time.Duration
	// Every is how often the dispatcher is observed. Default 500 ms.
	Every time.Duration
	// Slots is each cloud executor's slots. Default 4.
	Slots int
	// Capabilities are what cloud executors offer (labels and tool
	// versions); unplaceable tasks they do not satisfy are not spilled.
	// The executor also gets shoal.cloud=true. Default none.
	Capabilities map[string]string
}

// DefaultConfig returns the documented defaults (spill off).
func DefaultConfig() Config {
	return Config{MaxExecutors: 4, MaxPerHour: 20, Grace: 3 * time.Second, Idle: 30 * time.Second,
		Saturation: 8, ProvisionTimeout: time.Minute, Every: 500 * time.Millisecond, Slots: 4}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Provider != "" && c.Provider != "process" && c.Provider != "docker" && c.Provider != "exec":
		return fmt.Errorf("cloud: Provider must be process, docker, exec or empty (off), got %q", c.Provider)
	case c.MaxExecutors <= 0:
		return fmt.Errorf("cloud: MaxExecutors must be > 0, got %d", c.MaxExecutors)
	case c.MaxPerHour <= 0:
		return fmt.Errorf("cloud: MaxPerHour must be > 0, got %d", c.MaxPerHour)
	case c.Grace < 0 || c.Idle <= 0 || c.ProvisionTimeout <= 0 || c.Every <= 0:
		return fmt.Errorf("cloud: need Grace >= 0 and Idle, ProvisionTimeout, Every > 0; got %v, %v, %v, %v", c.Grace, c.Idle, c.ProvisionTimeout, c.Every)
	case c.Saturation <= 0:
		return fmt.Errorf("cloud: Saturation must be > 0, got %v", c.Saturation)
	case c.Slots <= 0:
		return fmt.Errorf("cloud: Slots must be > 0, got %d", c.Slots)
	}
	return nil
}

// Observation is what the machine sees of the dispatcher.
type Observation struct {
	Unplaceable []task.Unplaceable
	Queued      int
	FreeSlots   int
	Executors   []messages.ExecutorStatus
}

// Request asks a provider for one executor.
type Request struct {
	ID           string            `json:"id"`           // the executor id it must register with
	Slots        int               `json:"slots"`        // slots it should run
	Capabilities map[string]string `json:"capabilities"` // what it must offer (shoal.cloud=true included)
	Requirements map[string]string `json:"requirements,omitempty"`
	Type         string            `json:"type,omitempty"` // the unplaceable tasks' type
	Reason       string            `json:"reason"`
}

// Provision is an effect: ask the provider for an executor.
type Provision struct{ Req Request }

// Release is an effect: give an executor back.
type Release struct {
	ID, Handle, Reason string
}

// Effects are what the shell must do after a step.
type Effects struct {
	Provisions []Provision
	// Drains are cloud executors to drain (task.SetState) before their
	// release, so no task is granted to one that is about to go.
	Drains   []string
	Releases []Release
	// Notes are log lines (refusals, failures) with their key values.
	Notes []Note
}

// Note is one log line.
type Note struct {
	Msg  string
	Args []any
	Info bool // routine (logged at info); otherwise a warning
}

// Counters are cumulative.
type Counters struct {
	Provisioned, Released, Failed, Refused int64
	// ForUnplaceable and ForSaturation split Provisioned by trigger.
	ForUnplaceable, ForSaturation int64
}

type state uint8

const (
	provisioning state = iota
	ready
	releasing
)

var stateNames = [...]string{"provisioning", "ready", "releasing"}

type instance struct {
	id, handle, reason string
	key                string // the demand it answers: type NUL shape, "" for saturation
	state              state
	since, idleSince   int64
	goneSince          int64 // first snapshot it was missing from (0: present)
	drainSince         int64 // when it was told to drain before release (0: not)
	answered           bool  // the provider answered the provision
}

// absentGrace is how long a ready cloud executor may be missing from the
// dispatcher before it counts as vanished: an evicted executor (a
// connection blip, a failed health check) registers again within a
// heartbeat or two.
const absentGrace = 15 * time.Second

// Machine is the cloud actor's state.
type Machine struct {
	cfg       Config
	seq       int
	prefix    string
	insts     map[string]*instance
	starts    []int64 // provision times within the last hour
	satSince  int64   // 0: not saturated
	refused   map[string]bool
	Counters  Counters
	offerCaps map[string]string
}

// New returns a machine; prefix starts executor ids ("<prefix>-cloud-<n>").
func New(cfg Config, prefix string) *Machine {
	caps := maps.Clone(cfg.Capabilities)
	if caps == nil {
		caps = map[string]string{}
	}
	caps[messages.CapCloud] = "true"
	return &Machine{cfg: cfg, prefix: prefix, insts: map[string]*instance{}, refused: map[string]bool{}, offerCaps: caps}
}

// Offers reports whether cloud executors would satisfy req. A pinned task
// (messages.ReqPin) names one executor, never a new one. The pin is read
// from the requirements: the cloud actor sees set-aside shapes
// (task.Unplaceable), not records, so it has no typed Record.Pin.
func (m *Machine) Offers(req map[string]string) bool {
	for k, want := range req {
		if k == messages.ReqPin || !task.Satisfies(m.offerCaps[k], want) {
			return false
		}
	}
	return true
}

// Observe steps the machine with a dispatcher snapshot.
func (m *Machine) Observe(now time.Time, o Observation) Effects {
	var fx Effects
	ts := now.UnixNano()
	seen := make(map[string]messages.ExecutorStatus, len(o.Executors))
	for _, e := range o.Executors {
		seen[e.ID] = e
	}
	for _, id := range slices.Sorted(maps.Keys(m.insts)) {
		in := m.insts[id]
		e, registered := seen[id]
		switch in.state {
		case provisioning:
			if registered {
				in.state, in.idleSince = ready, ts
				fx.Notes = append(fx.Notes, Note{Msg: "cloud executor ready", Args: []any{"executor", id, "after", time.Duration(ts - in.since)}, Info: true})
			} else if ts-in.since > int64(m.cfg.ProvisionTimeout) {
				m.Counters.Failed++
				m.release(in, "did not register within the provision timeout", &fx)
			}
		case ready:
			if registered {
				in.goneSince = 0
			}
			switch {
			case !registered && in.goneSince == 0:
				in.goneSince = ts
			case !registered && ts-in.goneSince >= int64(absentGrace):
				m.Counters.Failed++
				m.release(in, fmt.Sprintf("missing from the dispatcher for %v", absentGrace), &fx)
			case !registered:
			case in.drainSince != 0:
				// Released once drained with nothing left (a task granted
				// just before the drain finishes first), or after Idle.
				if e.State == messages.ExecDraining && e.Leases == 0 || ts-in.drainSince >= int64(m.cfg.Idle) {
					m.release(in, fmt.Sprintf("idle for %v, drained", m.cfg.Idle), &fx)
				}
			case e.Leases > 0:
				in.idleSince = 0
			case in.idleSince == 0:
				in.idleSince = ts
			case ts-in.idleSince >= int64(m.cfg.Idle):
				in.drainSince = ts
				fx.Drains = append(fx.Drains, in.id)
			}
		}
	}
	// Unplaceable demand, by task type and requirement shape.
	present := make(map[string]bool, len(o.Unplaceable))
	for _, u := range o.Unplaceable {
		key := u.Type + "\x00" + u.Shape
		present[key] = true
		if ts-u.Since < int64(m.cfg.Grace) || m.refused[key] || m.answering(key) {
			continue
		}
		refuse := ""
		switch {
		case !m.Offers(u.Requirements):
			refuse = "cloud spill refused: cloud executors do not offer the requirements"
		case m.registeredFor(key, seen):
			// One registered and the tasks are still unplaceable: it does
			// not run their type. Asking again would only churn.
			refuse = "cloud spill refused: a cloud executor registered but cannot run the tasks (their type?)"
		}
		if refuse != "" {
			m.refused[key] = true
			m.Counters.Refused++
			fx.Notes = append(fx.Notes, Note{Msg: refuse, Args: []any{"type", u.Type, "requirements", u.Shape, "tasks", u.Tasks}})
			continue
		}
		m.provision(ts, "unplaceable: "+u.Shape, key, u.Type, u.Requirements, &fx)
	}
	// A refusal lasts while its tasks stay unplaceable; new demand later
	// gets a fresh try.
	for k := range m.refused {
		if !strings.HasPrefix(k, "limit:") && !present[k] {
			delete(m.refused, k)
		}
	}
	// Saturation.
	saturated := o.Queued > 0 && float64(o.Queued) > m.cfg.Saturation*float64(max(o.FreeSlots, 1))
	switch {
	case !saturated:
		m.satSince = 0
	case m.satSince == 0:
		m.satSince = ts
	case ts-m.satSince >= int64(m.cfg.Grace) && !m.answering(""):
		m.satSince = ts // one executor per grace period while it lasts
		m.provision(ts, fmt.Sprintf("saturated: %d queued, %d free slots", o.Queued, o.FreeSlots), "", "", nil, &fx)
	}
	return fx
}

// answering reports whether an executor for the demand key ("" for
// saturation) is still provisioning.
func (m *Machine) answering(key string) bool {
	for _, in := range m.insts {
		if in.key == key && in.state == provisioning {
			return true
		}
	}
	return false
}

// registeredFor reports whether an executor provisioned for key is
// registered with the dispatcher and takes work (a draining one does not
// count: its tasks are set aside for that reason, not for their type).
func (m *Machine) registeredFor(key string, seen map[string]messages.ExecutorStatus) bool {
	for _, in := range m.insts {
		e, ok := seen[in.id]
		if ok && in.key == key && in.state != releasing && e.State != messages.ExecDraining {
			return true
		}
	}
	return false
}

func (m *Machine) provision(ts int64, reason, key, typ string, req map[string]string, fx *Effects) {
	hour := ts - int64(time.Hour)
	m.starts = slices.DeleteFunc(m.starts, func(t int64) bool { return t <= hour })
	active := 0
	for _, in := range m.insts {
		if in.state != releasing {
			active++
		}
	}
	if active >= m.cfg.MaxExecutors || len(m.starts) >= m.cfg.MaxPerHour {
		if lk := "limit:" + key; !m.refused[lk] {
			m.refused[lk] = true
			m.Counters.Refused++
			fx.Notes = append(fx.Notes, Note{Msg: "cloud spill refused: limit reached", Args: []any{"reason", reason, "active", active,
				"max_executors", m.cfg.MaxExecutors, "provisions_last_hour", len(m.starts), "max_per_hour", m.cfg.MaxPerHour}})
		}
		return
	}
	delete(m.refused, "limit:"+key)
	m.seq++
	id := fmt.Sprintf("%s-cloud-%d", m.prefix, m.seq)
	m.starts = append(m.starts, ts)
	m.insts[id] = &instance{id: id, reason: reason, key: key, state: provisioning, since: ts}
	m.Counters.Provisioned++
	if key == "" {
		m.Counters.ForSaturation++
	} else {
		m.Counters.ForUnplaceable++
	}
	fx.Provisions = append(fx.Provisions, Provision{Request{ID: id, Slots: m.cfg.Slots, Capabilities: maps.Clone(m.offerCaps),
		Requirements: maps.Clone(req), Type: typ, Reason: reason}})
}

func (m *Machine) release(in *instance, reason string, fx *Effects) {
	in.state = releasing
	in.reason = reason
	if in.answered { // else Provisioned releases it when the answer comes
		fx.Releases = append(fx.Releases, Release{ID: in.id, Handle: in.handle, Reason: reason})
	}
}

// Provisioned records the provider's answer for id: its handle, or an
// error (the executor is forgotten and counted as failed).
func (m *Machine) Provisioned(id, handle string, err error) Effects {
	var fx Effects
	in := m.insts[id]
	if in == nil {
		return fx
	}
	if err != nil {
		m.Counters.Failed++
		delete(m.insts, id)
		fx.Notes = append(fx.Notes, Note{Msg: "cloud provision failed", Args: []any{"executor", id, "err", err}})
		return fx
	}
	in.handle, in.answered = handle, true
	if in.state == releasing { // timed out or released before the answer came
		fx.Releases = append(fx.Releases, Release{ID: id, Handle: handle, Reason: in.reason})
	}
	return fx
}

// Released records a finished release.
func (m *Machine) Released(id string, err error) Effects {
	var fx Effects
	if _, ok := m.insts[id]; !ok {
		return fx
	}
	delete(m.insts, id)
	m.Counters.Released++
	if err != nil {
		m.Counters.Failed++
		fx.Notes = append(fx.Notes, Note{Msg: "cloud release failed", Args: []any{"executor", id, "err", err}})
	}
	return fx
}

// ReleaseAll releases every executor (the node is stopping), those whose
// provision has not been answered too: providers release by id when the
// handle is unknown (the shell also releases provisions that complete
// while it stops).
func (m *Machine) ReleaseAll() Effects {
	var fx Effects
	for _, id := range slices.Sorted(maps.Keys(m.insts)) {
		if in := m.insts[id]; in.state != releasing || !in.answered {
			in.answered = true
			m.release(in, "node stopping", &fx)
		}
	}
	return fx
}

// Active is the number of executors not being released.
func (m *Machine) Active() int {
	n := 0
	for _, in := range m.insts {
		if in.state != releasing {
			n++
		}
	}
	return n
}

// Status lists the executors, by id.
func (m *Machine) Status() []messages.CloudExecutorStatus {
	out := make([]messages.CloudExecutorStatus, 0, len(m.insts))
	for _, id := range slices.Sorted(maps.Keys(m.insts)) {
		in := m.insts[id]
		out = append(out, messages.CloudExecutorStatus{ID: id, State: stateNames[in.state], Reason: in.reason, Since: in.since / 1e6})
	}
	return out
}
