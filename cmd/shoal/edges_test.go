package main

// Rough edges found by trying shoal as a new user would (issue 14, item 10):
// each test here failed before its fix.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/actors/flow"
	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/messages"
)

// runCLI runs a short command as a process and returns its stdout, stderr
// and exit code (-1: it did not exit by itself).
func runCLI(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, shoalBinary(t), args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("shoal %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// execute runs the CLI in process (for commands that do not dial).
func execute(args ...string) (string, error) {
	cmd := root()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestWaitTimeoutSaysNotFinished: `shoal wait --timeout` on a task no
// executor takes answers, every time, that the task did not finish within
// the timeout and where it waits, with exit status exitNotFinished (it
// answered a raw "context deadline exceeded", or 3 times in 10 "shoal-results
// did not answer: unavailable"). The node logs no error about the client
// that left (its late answers went to the closed client's port).
func TestWaitTimeoutSaysNotFinished(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	addr := freeAddr(t)
	nodeLog := filepath.Join(tmp, "node.log")
	startProc(t, nodeLog, "listening on", "node", "--data", filepath.Join(tmp, "data"), "--listen", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, errOut, code := runCLI(t, ctx, "submit", "--node", addr, "--type", "nobody-runs-this", "--payload", "x")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	for i := range 6 {
		timeout := []string{"300ms", "1s", "700ms"}[i%3]
		_, errOut, code := runCLI(t, ctx, "wait", "--node", addr, "--timeout", timeout, id)
		want := "not finished within " + timeout + "; state: queued"
		if code != exitNotFinished || !strings.Contains(errOut, want) {
			t.Fatalf("wait --timeout %s (try %d): exit %d, stderr %q; want exit %d and %q", timeout, i, code, errOut, exitNotFinished, want)
		}
	}
	// A client interrupted mid-wait: the node answers its Wait after it left.
	cmd := exec.CommandContext(ctx, shoalBinary(t), "wait", "--node", addr, "--timeout", "2s", id)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	time.Sleep(3500 * time.Millisecond) // past the node's answer and one connect retry
	b, err := os.ReadFile(nodeLog)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("level=ERROR")) {
		t.Fatalf("the node logged errors about clients that left:\n%s", b)
	}
}

// TestSubmitWaitDeadExitsNonZero: `shoal submit --wait` whose task ends dead
// exits exitTaskFailed (it exited 0), as `flow run --wait` does.
func TestSubmitWaitDeadExitsNonZero(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	addr := freeAddr(t)
	startProc(t, filepath.Join(tmp, "node.log"), "listening on", "node", "--data", filepath.Join(tmp, "data"), "--listen", addr)
	startProc(t, filepath.Join(tmp, "worker.log"), "shoal worker", "worker", "--node", addr, "--types", "fail,echo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, errOut, code := runCLI(t, ctx, "submit", "--node", addr, "--type", "fail", "--max-attempts", "1", "--wait", "--timeout", "30s")
	if code != exitTaskFailed || !strings.Contains(out, "dead") || !strings.Contains(errOut, "dead") {
		t.Fatalf("submit --wait of a dead task: exit %d, stdout %q, stderr %q; want exit %d naming the dead task", code, out, errOut, exitTaskFailed)
	}
	if _, errOut, code := runCLI(t, ctx, "submit", "--node", addr, "--type", "echo", "--payload", "hi", "--wait", "--timeout", "30s"); code != 0 {
		t.Fatalf("submit --wait of a done task: exit %d: %s", code, errOut)
	}
}

// TestStatusJSONIsTheAPIShape: `status --json` prints what /v1/status
// answers (snake_case), not the Go field names.
func TestStatusJSONIsTheAPIShape(t *testing.T) {
	st := &messages.Status{Node: "n1", Counters: map[string]int64{"done": 1},
		Classes:   []messages.ClassStatus{{Class: "normal", Queued: 2}},
		Executors: []messages.ExecutorStatus{{ID: "w1", Slots: 4, LastSeen: 1700000000000}}}
	var cli bytes.Buffer
	if err := printStatusJSON(&cli, st); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(api.StatusJSON(st))
	var a, b any
	if err := json.Unmarshal(cli.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(want, &b)
	ga, _ := json.Marshal(a)
	gb, _ := json.Marshal(b)
	if !bytes.Equal(ga, gb) {
		t.Fatalf("status --json:\n%s\nGET /v1/status:\n%s", ga, gb)
	}
	if strings.Contains(cli.String(), "LastSeen") || !strings.Contains(cli.String(), "last_seen") {
		t.Fatalf("status --json has Go field names:\n%s", cli.String())
	}
	// Nothing of the status is lost on the way (the API's shape lacked the
	// supervisor's and the members' fields).
	full := &messages.Status{Node: "n1", Counters: map[string]int64{"done": 1},
		Classes: []messages.ClassStatus{{Class: "high", Queued: 1, Standby: 2}},
		Executors: []messages.ExecutorStatus{{ID: "w1", Slots: 4, Leases: 1, Load: messages.LoadReport{CPU: 0.5, Mem: 0.25, IO: 0.125, InFlight: 3},
			LastSeen: 5, State: "failed", IdleSince: 6, Unhealthy: "disk", Launched: true, Restarts: 3, BacklogMillis: 7, Cloud: true}},
		Members:      []messages.MemberStatus{{Name: "n2", Gossip: "g", Remote: "r", Queued: [messages.NumClasses]int64{1, 2, 3}, Standby: 4, LoadAt: 5, Partitions: 6, Executors: 7, FreeSlots: 8, DrainRate: 9.5}},
		Alerts:       []messages.Alert{{At: 1, Node: "n1", Executor: "w1", Kind: "restart_limit", Message: "m", Failures: 4}},
		Unplaceable:  []messages.UnplaceableStatus{{Type: "t", Requirements: "os==plan9", Tasks: 2, SinceUnixMs: 3, Refused: "type refused 1 (w1)"}},
		Cloud:        []messages.CloudExecutorStatus{{ID: "c1", State: "ready", Reason: "r", Since: 4}},
		DigestFields: map[string][]string{"resize": {"url"}},
	}
	cli.Reset()
	if err := printStatusJSON(&cli, full); err != nil {
		t.Fatal(err)
	}
	var back messages.Status
	if err := unmarshalStatus(cli.Bytes(), &back); err != nil || !reflect.DeepEqual(&back, full) {
		t.Fatalf("status --json lost fields: %v\n%+v\nwant\n%+v", err, back, *full)
	}
}

// TestLogLevelRefusesUnknown: --log-level loud is an error naming the flag
// and the allowed values (it was taken as warn).
func TestLogLevelRefusesUnknown(t *testing.T) {
	_, err := execute("--log-level", "loud", "dev-certs", "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--log-level") || !strings.Contains(err.Error(), "debug, info, warn, error") {
		t.Fatalf("--log-level loud: %v", err)
	}
	t.Setenv("SHOAL_LOG_LEVEL", "chatty")
	if _, err := execute("dev-certs", "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "SHOAL_LOG_LEVEL") {
		t.Fatalf("SHOAL_LOG_LEVEL=chatty: %v", err)
	}
	t.Setenv("SHOAL_LOG_LEVEL", "DEBUG")
	if _, err := execute("dev-certs", "--out", t.TempDir()); err != nil {
		t.Fatalf("SHOAL_LOG_LEVEL=DEBUG: %v", err)
	}
}

// TestDefaultDataDirIsAbsolute: the node's default --data is a per-user
// absolute directory, named in the help (it was ./shoal-data, wherever the
// node was started).
func TestDefaultDataDirIsAbsolute(t *testing.T) {
	f := nodeCmd().Flags().Lookup("data")
	if !filepath.IsAbs(f.DefValue) {
		t.Fatalf("default --data %q is relative", f.DefValue)
	}
	t.Setenv("XDG_DATA_HOME", "/xdg/data")
	if d := defaultDataDir(); d != "/xdg/data/shoal" {
		t.Fatalf("with XDG_DATA_HOME: %q", d)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d := defaultDataDir(); d != "/home/u/.local/share/shoal" {
		t.Fatalf("with HOME: %q", d)
	}
}

// TestStoreLockedNamesTheLock: a store in use by another process says so
// and names the lock file (it said "resource temporarily unavailable").
func TestStoreLockedNamesTheLock(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	startProc(t, filepath.Join(tmp, "node.log"), "listening on", "node", "--data", data, "--listen", freeAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, errOut, code := runCLI(t, ctx, "node", "--data", data, "--listen", freeAddr(t))
	want := "store " + data + " is in use by another shoal process (lock file " + filepath.Join(data, "LOCK") + ")"
	if code == 0 || !strings.Contains(errOut, want) {
		t.Fatalf("second node on one store: exit %d, %q; want %q", code, errOut, want)
	}
}

// allCommands walks the command tree.
func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, s := range c.Commands() {
		out = append(out, allCommands(s)...)
	}
	return out
}

// TestHelpFlagUsage: no flag's usage has backticks (pflag shows backticked
// text as the value name: "--executors shoal worker") or a default of its
// own next to pflag's "(default 50)".
func TestHelpFlagUsage(t *testing.T) {
	double := regexp.MustCompile(`\(default[: ][^)]*\) \(default `)
	for _, c := range allCommands(root()) {
		fs := []*pflag.FlagSet{c.LocalFlags(), c.InheritedFlags()}
		for _, f := range fs {
			f.VisitAll(func(fl *pflag.Flag) {
				if strings.Contains(fl.Usage, "`") {
					t.Errorf("%s --%s: backticks in usage %q", c.CommandPath(), fl.Name, fl.Usage)
				}
			})
			if u := f.FlagUsages(); double.MatchString(u) {
				t.Errorf("%s: two defaults: %s", c.CommandPath(), double.FindString(u))
			}
		}
	}
}

// TestHelpNamesExistingDocs: every *.md a command's help mentions is in the
// repository (bench pointed to a BENCH.md that is not).
func TestHelpNamesExistingDocs(t *testing.T) {
	md := regexp.MustCompile(`[A-Za-z0-9_./-]+\.md`)
	for _, c := range allCommands(root()) {
		text := c.Short + "\n" + c.Long + "\n" + c.Example + "\n" + c.LocalFlags().FlagUsages()
		for _, m := range md.FindAllString(text, -1) {
			if _, err := os.Stat(filepath.Join("..", "..", m)); err != nil {
				t.Errorf("%s mentions %s: %v", c.CommandPath(), m, err)
			}
		}
	}
}

// TestLongHelp: wait, status, demo and the flow commands have long help
// and examples.
func TestLongHelp(t *testing.T) {
	want := []string{"shoal wait", "shoal status", "shoal demo", "shoal flow", "shoal flow run", "shoal flow get", "shoal flow cancel", "shoal flow templates", "shoal flow register"}
	for _, c := range allCommands(root()) {
		if !slices.Contains(want, c.CommandPath()) {
			continue
		}
		if c.Long == "" || c.Example == "" {
			t.Errorf("%s: no Long (%v) or Example (%v)", c.CommandPath(), c.Long != "", c.Example != "")
		}
	}
}

// TestExampleFlowsLoad: the templates the docs use ship in examples/flows
// and a node registers them all (--flows examples/flows).
func TestExampleFlowsLoad(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "flows")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		t.Fatalf("examples/flows: %v (%d files)", err, len(ents))
	}
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "flows.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(docs, []byte("examples/flows")) {
		t.Fatal("docs/flows.md does not point to examples/flows")
	}
	if bytes.Contains(docs, []byte("shout.yaml")) && !fileExists(filepath.Join(dir, "shout.yaml")) {
		t.Fatal("docs/flows.md uses shout.yaml, which examples/flows lacks")
	}
	known := func(typ string) bool { _, ok := builtin[typ]; return ok }
	plans, err := flow.NewRegistry(flow.CompileOptions{KnownType: known}).LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != len(ents) {
		t.Fatalf("%d templates loaded of %d files", len(plans), len(ents))
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestExampleFlowsRun: the shipped templates run to done on a node started
// with --flows examples/flows and a plain worker, with the inputs the docs
// give.
func TestExampleFlowsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	addr := freeAddr(t)
	startProc(t, filepath.Join(tmp, "node.log"), "listening on", "node", "--data", filepath.Join(tmp, "data"), "--listen", addr,
		"--flows", filepath.Join("..", "..", "examples", "flows"), "--flow-types", "echo,hash,sleep")
	startProc(t, filepath.Join(tmp, "worker.log"), "shoal worker", "worker", "--node", addr, "--types", "echo,hash,sleep")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for tpl, in := range map[string]string{
		"report":    `{"region": "eu", "customer": "acme"}`,
		"shout":     `{"text": "hi"}`,
		"thumbnail": `{"url": "https://example.com/a.png"}`,
	} {
		out, errOut, code := runCLI(t, ctx, "flow", "run", tpl, "--node", addr, "--input", in, "--wait", "--timeout", "30s")
		if code != 0 || !strings.Contains(out, " done") {
			t.Errorf("flow run %s: exit %d\n%s%s", tpl, code, out, errOut)
		}
	}
	// An input the template refuses is an error at once (exit 1).
	_, errOut, code := runCLI(t, ctx, "flow", "run", "report", "--node", addr, "--input", `{"rounds": 3}`)
	if code != exitError || !strings.Contains(errOut, `input field "region" is required`) {
		t.Errorf("report without region: exit %d, %s", code, errOut)
	}
}

// unmarshalStatus reads `shoal status --json` (the /v1/status shape) back
// into a messages.Status, for tests that inspect status.
func unmarshalStatus(b []byte, st *messages.Status) error {
	var o api.StatusOut
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	*st = messages.Status{Node: o.Node, Counters: o.Counters, Alerts: o.Alerts, DigestFields: o.DigestFields}
	for _, c := range o.Classes {
		st.Classes = append(st.Classes, messages.ClassStatus(c))
	}
	for _, e := range o.Executors {
		st.Executors = append(st.Executors, messages.ExecutorStatus{ID: e.ID, Slots: e.Slots, Leases: e.Leases, Load: messages.LoadReport(e.Load),
			LastSeen: e.LastSeenMS, State: e.State, IdleSince: e.IdleSinceMS, Unhealthy: e.Unhealthy, Launched: e.Launched, Restarts: e.Restarts,
			BacklogMillis: e.BacklogMS, Cloud: e.Cloud})
	}
	for _, u := range o.Unplaceable {
		st.Unplaceable = append(st.Unplaceable, messages.UnplaceableStatus{Type: u.Type, Requirements: u.Requirements, Tasks: u.Tasks, SinceUnixMs: u.SinceMS, Refused: u.Refused})
	}
	for _, c := range o.Cloud {
		st.Cloud = append(st.Cloud, messages.CloudExecutorStatus{ID: c.ID, State: c.State, Reason: c.Reason, Since: c.SinceMS})
	}
	for _, m := range o.Members {
		ms := messages.MemberStatus{Name: m.Name, Gossip: m.Gossip, Remote: m.Remote, Standby: m.Standby, LoadAt: m.LoadAt,
			Partitions: m.Partitions, Executors: m.Executors, FreeSlots: m.FreeSlots, DrainRate: m.DrainRate}
		copy(ms.Queued[:], m.Queued)
		st.Members = append(st.Members, ms)
	}
	return nil
}
