// Package deptest pins shoal's import graph (STYLE.md, "Dependencies point
// one way"): the wire vocabulary (messages) depends on nothing, the task
// domain on the vocabulary, the store on both, the actors on those and never
// on each other, cluster code and the SDK on no actor and no store; only
// node, api, metrics, bench and cmd wire things together. It also checks that every
// actor's machine.go stays pure and that the SDK links no storage engine.
package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/shoalrt/shoal"

// layer says which shoal packages the non-test code of a subtree may import.
// Subtrees are module-relative: "store" is store and store/....
type layer struct {
	subtree string
	allow   []string
}

// layers is the graph's rulebook. A package in none of these subtrees (cmd,
// node, api, metrics, bench) may import any shoal package but cmd.
var layers = []layer{
	{subtree: "messages", allow: []string{"messages"}},
	{subtree: "task", allow: []string{"messages", "task"}},
	{subtree: "store", allow: []string{"messages", "task", "store"}},
	{subtree: "planner", allow: []string{"messages", "task", "planner"}},
	{subtree: "servers", allow: []string{"messages", "servers"}},
	{subtree: "internal", allow: []string{"messages", "internal"}},
	// Actors meet through the task package's messages, never each other:
	// sameRoom below narrows "actors" to the importer's own actors/X.
	{subtree: "actors", allow: []string{"messages", "task", "store", "planner", "internal", "actors"}},
	{subtree: "cluster", allow: []string{"messages", "task", "internal", "cluster"}},
	{subtree: "sdk", allow: []string{"messages", "task", "internal", "cluster", "sdk"}},
	// The host side (docs/hosts.md): the instruction table is storage and
	// knows only the vocabulary; the bridge and the agent sit on the SDK's
	// executor, so they link no server code either.
	{subtree: "hosts/table", allow: []string{"messages", "task", "hosts/table"}},
	{subtree: "hosts", allow: []string{"messages", "task", "internal", "cluster", "sdk", "hosts"}},
}

// room returns the actor a package under actors/ belongs to (actors/queue
// for actors/queue/dispatch), or "" outside actors/.
func room(relPath string) string {
	parts := strings.SplitN(relPath, "/", 3)
	if len(parts) < 2 || parts[0] != "actors" {
		return ""
	}
	return parts[0] + "/" + parts[1]
}

// pkg is the part of `go list -json` this test reads.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// rel returns path relative to the module and whether it is a shoal package.
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func within(relPath, subtree string) bool {
	return relPath == subtree || strings.HasPrefix(relPath, subtree+"/")
}

// violations returns one line per import that breaks a rule. Layer rules
// cover non-test code only (tests may use real components from anywhere);
// the cmd rule covers test code too.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			to, ok := rel(imp)
			if !ok {
				continue
			}
			if r := room(from); r != "" && room(to) != "" && room(to) != r {
				out = append(out, fmt.Sprintf("%s imports %s: one actor never imports another; they meet through the task package's messages", from, to))
			}
			for _, l := range layers {
				if within(from, l.subtree) && !slices.ContainsFunc(l.allow, func(a string) bool { return within(to, a) }) {
					out = append(out, fmt.Sprintf("%s imports %s: %s/... may import only %s", from, to, l.subtree, strings.Join(l.allow, ", ")))
				}
			}
		}
		if within(from, "cmd") {
			continue
		}
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if to, ok := rel(imp); ok && within(to, "cmd") {
				out = append(out, fmt.Sprintf("%s imports %s: nothing outside cmd imports cmd; move the shared code out of cmd", from, to))
			}
		}
	}
	return out
}

// listPackages runs `go list` over the module. -e keeps packages that others
// are midway through editing in the listing (with what imports still parse)
// instead of failing the whole run; GOPROXY=off keeps it off the network,
// since only import paths are needed.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error", module+"/...")
	cmd.Env = append(os.Environ(), "GOPROXY=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestImportGraph(t *testing.T) {
	pkgs := listPackages(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.Error != nil {
			t.Logf("%s does not load (%s); checking the imports that parse", p.ImportPath, p.Error.Err)
		}
		if r, ok := rel(p.ImportPath); ok {
			for _, l := range layers {
				if within(r, l.subtree) {
					seen[l.subtree] = true
				}
			}
		}
	}
	// Guard against a vacuous pass: messages exists from the first commit.
	if !seen["messages"] {
		t.Fatalf("go list found no messages package among %d packages; is the test running inside the module?", len(pkgs))
	}
	for _, l := range layers {
		if !seen[l.subtree] {
			t.Logf("no packages under %s/ yet; its rule is not exercised", l.subtree)
		}
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestViolations checks the rule checker itself on made-up graphs, so a rule
// that silently stops firing is caught without a broken tree.
func TestViolations(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	tests := []struct {
		name string
		pkg  pkg
		want int
	}{
		{"messages std and third-party only", pkg{ImportPath: m("messages"), Imports: []string{"fmt", "github.com/vmihailenco/msgpack/v5"}}, 0},
		{"messages imports store", pkg{ImportPath: m("messages"), Imports: []string{m("store")}}, 1},
		{"messages subpackage imports messages", pkg{ImportPath: m("messages/wire"), Imports: []string{m("messages")}}, 0},
		{"store imports messages", pkg{ImportPath: m("store"), Imports: []string{m("messages")}}, 0},
		{"store/pebble imports store", pkg{ImportPath: m("store/pebble"), Imports: []string{m("store"), m("messages")}}, 0},
		{"store imports actors", pkg{ImportPath: m("store"), Imports: []string{m("actors/pump")}}, 1},
		{"actor imports messages, task, store", pkg{ImportPath: m("actors/queue/dispatch"), Imports: []string{m("messages"), m("task"), m("store")}}, 0},
		{"actor imports its own room", pkg{ImportPath: m("actors/queue"), Imports: []string{m("actors/queue/dispatch"), m("actors/queue/pump")}}, 0},
		{"actor imports another actor", pkg{ImportPath: m("actors/flow"), Imports: []string{m("actors/results")}}, 1},
		{"actor subpackage imports another actor", pkg{ImportPath: m("actors/queue/dispatch"), Imports: []string{m("actors/cloud")}}, 1},
		{"actor imports node", pkg{ImportPath: m("actors/cloud"), Imports: []string{m("node")}}, 1},
		{"task imports store", pkg{ImportPath: m("task"), Imports: []string{m("store")}}, 1},
		{"store imports task", pkg{ImportPath: m("store"), Imports: []string{m("task"), m("messages")}}, 0},
		{"cluster imports actors", pkg{ImportPath: m("cluster/route"), Imports: []string{m("actors/request")}}, 1},
		{"cluster imports store", pkg{ImportPath: m("cluster/steal"), Imports: []string{m("store")}}, 1},
		{"sdk imports task, cluster, internal", pkg{ImportPath: m("sdk"), Imports: []string{m("task"), m("cluster/route"), m("internal/actorio"), m("sdk/executor")}}, 0},
		{"sdk imports store", pkg{ImportPath: m("sdk"), Imports: []string{m("store")}}, 1},
		{"sdk imports actors", pkg{ImportPath: m("sdk/executor"), Imports: []string{m("actors/request")}}, 1},
		{"sdk imports node and api", pkg{ImportPath: m("sdk"), Imports: []string{m("node"), m("api")}}, 2},
		{"actor imports sdk", pkg{ImportPath: m("actors/executor"), Imports: []string{m("sdk")}}, 1},
		{"actor imports cluster", pkg{ImportPath: m("actors/executor"), Imports: []string{m("cluster")}}, 1},
		{"actor imports bench", pkg{ImportPath: m("actors/executor"), Imports: []string{m("bench")}}, 1},
		{"actor imports cmd", pkg{ImportPath: m("actors/executor"), Imports: []string{m("cmd/shoal/flags")}}, 2},
		{"actor test imports cluster", pkg{ImportPath: m("actors/executor"), XTestImports: []string{m("cluster")}}, 0},
		{"sdk test imports cmd", pkg{ImportPath: m("sdk"), TestImports: []string{m("cmd/shoal")}}, 1},
		{"cluster imports cmd", pkg{ImportPath: m("cluster"), Imports: []string{m("cmd/shoal")}}, 2},
		{"node imports everything but cmd", pkg{ImportPath: m("node"), Imports: []string{m("actors/queue"), m("store"), m("cluster/route"), m("task")}}, 0},
		{"cmd imports everything", pkg{ImportPath: m("cmd/shoal"), Imports: []string{m("cmd/shoal/flags"), m("cluster"), m("actors/pump"), m("store")}}, 0},
		{"prefix is not a subtree", pkg{ImportPath: m("storefront"), Imports: []string{m("cmdline")}}, 0},
		{"other module", pkg{ImportPath: "example.com/x", Imports: []string{m("cmd/shoal")}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := violations([]pkg{tt.pkg}); len(got) != tt.want {
				t.Errorf("violations = %d %q, want %d", len(got), got, tt.want)
			}
		})
	}
}
