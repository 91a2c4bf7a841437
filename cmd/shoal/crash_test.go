package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// TestCrashRecovery kills a real node with SIGKILL while another process
// submits to it and a worker process runs its tasks, restarts it on the same
// directory, and proves that every acknowledged task completes with its
// result, and that no digest whose result was durable before the crash ran
// again after it.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	testCrashRecovery(t, pebbleChoice{})
}

// storeChoice is the store a crash test's node uses.
type storeChoice interface {
	// args are the node's store flags, tmp the test's directory.
	args(tmp string) []string
	// open opens the store for inspection while no node runs.
	open(t *testing.T, tmp string) store.Store
}

type pebbleChoice struct{}

func (pebbleChoice) args(tmp string) []string { return []string{"--data", filepath.Join(tmp, "data")} }

func (pebbleChoice) open(t *testing.T, tmp string) store.Store {
	st, err := store.OpenPebble(store.DefaultPebbleConfig(filepath.Join(tmp, "data")))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func testCrashRecovery(t *testing.T, sc storeChoice) {
	tmp := t.TempDir()
	addr := freeAddr(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d, node %s, logs in %s", seed, addr, tmp)

	// 30,000 submissions, 20 % repeating an earlier payload.
	var payloads []string
	for i := range 30_000 {
		if i > 0 && rng.IntN(100) < 20 {
			payloads = append(payloads, payloads[rng.IntN(len(payloads))])
		} else {
			payloads = append(payloads, fmt.Sprintf("payload-%d", i))
		}
	}
	input := filepath.Join(tmp, "input")
	if err := os.WriteFile(input, []byte(strings.Join(payloads, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nodeArgs := append([]string{"node"}, sc.args(tmp)...)
	nodeArgs = append(nodeArgs, "--listen", addr, "--lease-ttl", "3s", "--log-level", "info")
	workerArgs := func(j string) []string {
		return []string{"worker", "--node", addr, "--types", "echo", "--slots", "16", "--journal", filepath.Join(tmp, j), "--log-level", "info"}
	}

	node := startProc(t, filepath.Join(tmp, "node1.log"), "listening on", nodeArgs...)
	worker := startProc(t, filepath.Join(tmp, "worker1.log"), "shoal worker", workerArgs("journal1")...)

	in, _ := os.Open(input)
	defer in.Close()
	acked, _ := os.Create(filepath.Join(tmp, "acked"))
	sub := exec.Command(shoalBinary(t), "submit", "--node", addr, "--type", "echo", "--stdin", "--batch", "200")
	sub.Stdin, sub.Stdout = in, acked
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	delay := time.Duration(300+rng.IntN(1200)) * time.Millisecond
	time.Sleep(delay)
	// On a loaded machine the first acknowledgement can come later than the
	// delay: the crash is only interesting once something was acknowledged.
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if fi, err := acked.Stat(); err == nil && fi.Size() > 0 {
			break
		}
	}
	node.kill() // SIGKILL: no shutdown of any kind
	_ = sub.Process.Signal(syscall.SIGKILL)
	_ = sub.Wait()
	acked.Close()
	worker.stop()
	t.Logf("node killed after %v", delay)

	// What was durably finished at the moment of the crash.
	finished := durableDone(t, sc.open(t, tmp))
	ackedIDs := readIDs(t, filepath.Join(tmp, "acked"))
	if len(ackedIDs) == 0 {
		t.Fatalf("nothing was acknowledged before the kill after %v; see %s", delay, tmp)
	}
	t.Logf("%d tasks acknowledged, %d payloads durably done before the crash", len(ackedIDs), len(finished))

	node = startProc(t, filepath.Join(tmp, "node2.log"), "listening on", nodeArgs...)
	worker = startProc(t, filepath.Join(tmp, "worker2.log"), "shoal worker", workerArgs("journal2")...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var idList strings.Builder
	for _, id := range ackedIDs {
		fmt.Fprintln(&idList, id)
	}
	out, err := runShoal(t, ctx, strings.NewReader(idList.String()), "wait", "--node", addr, "--timeout", "90s")
	if err != nil {
		t.Fatalf("wait for acknowledged tasks: %v", err)
	}
	worker.stop()
	node.stop()

	// Every acknowledged task is done and its result is its payload (the
	// k-th acknowledged id is the k-th line of input).
	states := map[uint64][2]string{}
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 5 {
			id, _ := strconv.ParseUint(f[0], 10, 64)
			states[id] = [2]string{f[1], f[4]}
		}
	}
	for k, id := range ackedIDs {
		got := states[id]
		if got[0] != messages.StateDone.String() || got[1] != payloads[k] {
			t.Fatalf("acknowledged task %d (payload %q): state %q output %q", id, payloads[k], got[0], got[1])
		}
	}
	// No digest durably finished before the crash ran after it, and no
	// payload ran twice within one life of the node.
	for _, j := range []string{"journal1", "journal2"} {
		runs := journalRuns(t, filepath.Join(tmp, j))
		for p, n := range runs {
			if n > 1 {
				t.Errorf("%s: payload %q ran %d times in one node life", j, p, n)
			}
			if j == "journal2" && finished[p] {
				t.Errorf("payload %q was durably done before the crash and ran again after it", p)
			}
		}
		t.Logf("%s: %d payloads executed", j, len(runs))
	}
}

// durableDone reads the crashed node's store, closes it and returns the payloads whose
// result was durable.
func durableDone(t *testing.T, st store.Store) map[string]bool {
	t.Helper()
	defer st.Close()
	ctx := context.Background()
	out := map[string]bool{}
	err := st.Results(ctx, time.Time{}, func(r task.Result) error {
		if r.State != messages.StateDone {
			return nil
		}
		task, ok, err := st.Task(ctx, r.ID)
		if err != nil || !ok {
			return fmt.Errorf("result %d without its task: %v", r.ID, err)
		}
		out[string(task.Payload)] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readIDs(t *testing.T, path string) []uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, err := strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 64)
		if err != nil {
			t.Fatalf("acked output line %q: %v", sc.Text(), err)
		}
		ids = append(ids, id)
	}
	return ids
}

// journalRuns counts successful executions per payload.
func journalRuns(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 5 || f[4] != "true" {
			continue
		}
		p, err := strconv.Unquote(f[3])
		if err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		runs[p]++
	}
	return runs
}
