package agent

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shoalrt/shoal/messages"
)

// Over random interleavings of lease calls, grants, withdrawals, returns,
// cancels and heartbeats: every waiter is answered at most once, no task is
// handed to the agent twice without coming back, at most one Pull is out,
// and every granted task is accounted for (buffered, handed over, reported,
// revoked or failed as lost).
func TestRelayProperties(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		m := New("p")
		m.Register(&messages.Register{ExecutorID: "p"})
		m.RegisteredReply(&messages.Registered{})

		answered := map[*Waiter]bool{}
		var waiting []*Waiter
		outstanding := 0 // Pulls the dispatcher has not answered
		next := uint64(1)
		granted := map[uint64]bool{}   // live at the dispatcher's view
		withAgent := map[uint64]bool{} // handed over, not returned or reported
		gone := map[uint64]bool{}      // reported, revoked or failed as lost

		apply := func(fx Effects) {
			for _, msg := range fx.Send {
				switch x := msg.(type) {
				case *messages.Pull:
					outstanding++
					for _, r := range x.Results {
						gone[r.TaskID] = true
					}
				case *messages.Heartbeat:
					for _, r := range x.Results {
						gone[r.TaskID] = true
						delete(withAgent, r.TaskID)
					}
				}
			}
			if outstanding > 1 {
				t.Fatalf("seed %d: %d pulls out at once", seed, outstanding)
			}
			for _, a := range fx.Answers {
				if answered[a.Waiter] {
					t.Fatalf("seed %d: a waiter answered twice", seed)
				}
				answered[a.Waiter] = true
				waiting = slices.DeleteFunc(waiting, func(w *Waiter) bool { return w == a.Waiter })
				if len(a.Tasks) > a.Waiter.Max {
					t.Fatalf("seed %d: %d tasks for max %d", seed, len(a.Tasks), a.Waiter.Max)
				}
				for _, tk := range a.Tasks {
					if withAgent[tk.ID] {
						t.Fatalf("seed %d: task %d handed over twice", seed, tk.ID)
					}
					withAgent[tk.ID] = true
				}
			}
		}

		for range 60 {
			switch rng.IntN(7) {
			case 0, 1: // lease call, maybe with a result
				w := &Waiter{Max: 1 + rng.IntN(3)}
				waiting = append(waiting, w)
				var res []messages.Result
				for id := range withAgent {
					res = append(res, messages.Result{TaskID: id, Attempt: 1, OK: true})
					delete(withAgent, id)
					break
				}
				apply(m.Lease(w, messages.LoadReport{}, res))
			case 2: // the dispatcher answers the pull
				if outstanding == 0 {
					continue
				}
				outstanding--
				g := &messages.Grant{}
				for range rng.IntN(4) {
					g.Tasks = append(g.Tasks, messages.Task{ID: next, Attempt: 1})
					granted[next] = true
					next++
				}
				apply(m.Granted(g))
			case 3: // a waiting call gives up
				if len(waiting) == 0 {
					continue
				}
				w := waiting[rng.IntN(len(waiting))]
				if m.Withdraw(w) {
					waiting = slices.DeleteFunc(waiting, func(x *Waiter) bool { return x == w })
				}
			case 4: // a handed-over response is lost and returned
				for id := range withAgent {
					delete(withAgent, id)
					apply(m.Return([]messages.Task{{ID: id, Attempt: 1}}))
					break
				}
			case 5: // a revocation rides the next grant
				if outstanding == 0 || len(granted) == 0 {
					continue
				}
				for id := range granted {
					if !gone[id] {
						outstanding--
						gone[id] = true
						delete(withAgent, id)
						apply(m.Granted(&messages.Grant{Cancel: []uint64{id}}))
						break
					}
				}
			case 6: // heartbeat with what the agent holds
				held := []uint64{}
				for id := range withAgent {
					held = append(held, id)
				}
				_, fx := m.Heartbeat(messages.LoadReport{}, held, nil)
				apply(fx)
			}
		}
		// Accounting: every granted task is somewhere.
		for id := range granted {
			inBuffer := slices.ContainsFunc(m.buffer, func(tk messages.Task) bool { return tk.ID == id })
			_, handed := m.delivered[id]
			if !inBuffer && !handed && !gone[id] && !withAgent[id] {
				t.Fatalf("seed %d: task %d vanished", seed, id)
			}
		}
	}
}
