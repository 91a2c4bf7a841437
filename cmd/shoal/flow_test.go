package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/api"
)

const crashTemplate = `
name: crashy
input: {k: string, d: string}
steps:
  - {name: a, type: echo, args: "a-${input.k}"}
  - {name: b, type: sleep, args: $input.d}
  - {name: c, type: echo, args: "c-${steps.a}-${steps.b}"}
output: $steps.c
`

// TestFlowCrashResume starts flows on a real node process (templates from
// --flows), kills the node with SIGKILL while the flows' long steps run,
// restarts it on the same directory, and proves that every flow completes
// with the right result and that no step whose result was durable before
// the crash ran again after it.
func TestFlowCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	data, addr, tpl := filepath.Join(tmp, "data"), freeAddr(t), filepath.Join(tmp, "templates")
	if err := os.MkdirAll(tpl, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tpl, "crashy.yaml"), []byte(crashTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("node %s, logs in %s", addr, tmp)
	nodeArgs := []string{"node", "--data", data, "--listen", addr, "--flows", tpl, "--flow-types", "echo,sleep", "--lease-ttl", "3s", "--log-level", "info"}
	workerArgs := func(j string) []string {
		return []string{"worker", "--node", addr, "--types", "echo,sleep", "--slots", "32", "--journal", filepath.Join(tmp, j), "--log-level", "info"}
	}
	node := startProc(t, filepath.Join(tmp, "node1.log"), "listening on", nodeArgs...)
	worker := startProc(t, filepath.Join(tmp, "worker1.log"), "shoal worker", workerArgs("journal1")...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const flows = 6
	var ids []uint64
	for i := range flows {
		out, err := runShoal(t, ctx, nil, "flow", "run", "crashy", "--node", addr,
			"--input", fmt.Sprintf(`{"k": "k%d", "d": "%dms"}`, i, 2500+i))
		if err != nil {
			t.Fatal(err)
		}
		id, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
		if err != nil {
			t.Fatalf("flow run printed %q", out)
		}
		ids = append(ids, id)
	}
	// Wait until every flow's quick step a is done (the runner learns of a
	// step's result only once it is durable), then kill the node while the
	// b steps sleep.
	for _, id := range ids {
		for {
			out, err := runShoal(t, ctx, nil, "flow", "get", strconv.FormatUint(id, 10), "--node", addr, "--json")
			if err != nil {
				t.Fatal(err)
			}
			var st api.FlowOut
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("flow get --json: %v\n%s", err, out)
			}
			if len(st.Steps) == 3 && st.Steps[0].State == "done" {
				break
			}
			if terminal(st.Outcome.State) {
				t.Logf("flow %d finished before the kill (a slow machine): %+v", id, st.Outcome)
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("flow %d: step a not done before the kill: %+v", id, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	node.kill()
	worker.stop()
	finished := durableDone(t, pebbleChoice{}.open(t, tmp))
	if len(finished) == 0 {
		t.Fatalf("no step result was durable before the kill; see %s", tmp)
	}
	t.Logf("%d step payloads durably done before the crash", len(finished))

	node = startProc(t, filepath.Join(tmp, "node2.log"), "listening on", nodeArgs...)
	worker = startProc(t, filepath.Join(tmp, "worker2.log"), "shoal worker", workerArgs("journal2")...)
	for i, id := range ids {
		for {
			out, err := runShoal(t, ctx, nil, "flow", "get", strconv.FormatUint(id, 10), "--node", addr, "--json")
			if err != nil {
				t.Fatal(err)
			}
			var st api.FlowOut
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("flow get --json: %v\n%s", err, out)
			}
			if terminal(st.Outcome.State) {
				want := fmt.Sprintf(`"c-a-k%d-slept %v"`, i, time.Duration(2500+i)*time.Millisecond)
				if st.Outcome.State != "done" || string(st.Result) != want {
					t.Fatalf("flow %d: %v %s %s; want done %s", id, st.Outcome.State, st.Result, st.Outcome.Error, want)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("flow %d not finished after the restart: %+v", id, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	worker.stop()
	node.stop()
	runs := journalRuns(t, filepath.Join(tmp, "journal2"))
	for p := range runs {
		if finished[p] {
			t.Errorf("step payload %q was durably done before the crash and ran again after it", p)
		}
	}
	for i := range flows {
		if a := fmt.Sprintf("a-k%d", i); !finished[a] {
			t.Errorf("step a of flow %d (%q) was not durable before the crash", i, a)
		}
	}
	t.Logf("after the restart %d step payloads ran: %v", len(runs), runs)
}

// terminal reports whether a state, as the JSON API spells it, is final.
func terminal(state string) bool { return state == "done" || state == "dead" || state == "cancelled" }
