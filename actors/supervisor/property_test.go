package supervisor

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// TestSupervisorSimulation drives the machine with random process exits,
// health reports and idle executors, and checks that
//   - every exit of a live process evicts it exactly once;
//   - a process is restarted only after at least RestartBase, never once it
//     is failed, and is failed exactly when more than MaxRestarts of its
//     failures fall within RestartWindow, with one alert;
//   - the sleep policy never leaves fewer than MinActive executors awake
//     and only puts to sleep executors idle for SleepAfter.
func TestSupervisorSimulation(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 5))
		cfg := DefaultConfig()
		cfg.MaxRestarts = rng.IntN(4)
		cfg.RestartWindow = time.Duration(1+rng.IntN(20)) * time.Second
		cfg.SleepAfter = time.Duration(1+rng.IntN(5)) * time.Second
		cfg.MinActive = rng.IntN(3)
		cfg.HeartbeatTimeout = time.Hour
		m := New(cfg, "n")
		now := t0

		type sim struct {
			alive    bool // running: may exit
			failed   bool
			exitAt   time.Time
			failures []time.Time
			alerts   int
		}
		procs := map[string]*sim{}
		for i := range 3 {
			id := fmt.Sprintf("w%d", i)
			procs[id] = &sim{alive: true}
			m.Launch(now, id)
		}
		idleSince := map[string]time.Time{"e0": now, "e1": now, "e2": now, "e3": now}
		asleep := map[string]bool{}

		check := func(fx Effects) {
			for _, id := range fx.Start {
				p := procs[id]
				if p.failed {
					t.Fatalf("seed %d: failed %s restarted", seed, id)
				}
				if p.alive {
					t.Fatalf("seed %d: running %s started again", seed, id)
				}
				if now.Sub(p.exitAt) < cfg.RestartBase {
					t.Fatalf("seed %d: %s restarted %v after its exit", seed, id, now.Sub(p.exitAt))
				}
				p.alive = true
			}
			for _, a := range fx.Alerts {
				procs[a.Executor].alerts++
			}
			for _, id := range fx.Sleep {
				if now.Sub(idleSince[id]) < cfg.SleepAfter || asleep[id] {
					t.Fatalf("seed %d: %s put to sleep after %v idle (asleep %v)", seed, id, now.Sub(idleSince[id]), asleep[id])
				}
				asleep[id] = true
			}
			awake := 0
			for id := range idleSince {
				if !asleep[id] {
					awake++
				}
			}
			if awake < min(cfg.MinActive, len(idleSince)) {
				t.Fatalf("seed %d: %d awake, MinActive %d", seed, awake, cfg.MinActive)
			}
		}
		for range 200 {
			now = now.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
			switch rng.IntN(4) {
			case 0: // a live process exits
				id := fmt.Sprintf("w%d", rng.IntN(3))
				p := procs[id]
				if !p.alive {
					continue
				}
				fx := m.Exited(now, id, "crash")
				if len(fx.Evict) != 1 || fx.Evict[0].Executor != id {
					t.Fatalf("seed %d: exit of %s evicted %+v", seed, id, fx.Evict)
				}
				p.alive, p.exitAt = false, now
				p.failures = append(p.failures, now)
				recent := 0
				for _, f := range p.failures {
					if now.Sub(f) < cfg.RestartWindow {
						recent++
					}
				}
				check(fx)
				if want := recent > cfg.MaxRestarts; want != (len(fx.Alerts) == 1) {
					t.Fatalf("seed %d: %s failures in window %d, MaxRestarts %d, alerts %d", seed, id, recent, cfg.MaxRestarts, len(fx.Alerts))
				}
				if len(fx.Alerts) == 1 {
					p.failed = true
					p.failures = nil
				}
			case 1: // an executor gets work and wakes
				id := fmt.Sprintf("e%d", rng.IntN(4))
				idleSince[id] = now
				delete(asleep, id)
			default:
				var execs []messages.ExecutorStatus
				for id, since := range idleSince {
					e := idleExec(id, now, since)
					if asleep[id] {
						e.State = messages.ExecSleeping
					}
					execs = append(execs, e)
				}
				check(m.Observe(now, execs))
			}
		}
		for id, p := range procs {
			if p.alerts > 1 {
				t.Fatalf("seed %d: %s alerted %d times", seed, id, p.alerts)
			}
		}
	}
}
