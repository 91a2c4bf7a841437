package deptest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// impureImports are the packages a machine may not import: a machine is the
// pure half of an actor (STYLE.md), so it neither talks to the world (os,
// net, io) nor to the actor runtime (protoactor); its shell does.
var impureImports = []string{"os", "net", "io", "github.com/asynkron/protoactor-go"}

// impurities returns one line per construct in a machine's source that
// makes it impure: an impure import, a read of the wall clock (time.Now,
// time.Since, time.Until), a go statement, or a channel.
func impurities(fset *token.FileSet, f *ast.File) []string {
	var out []string
	at := func(n ast.Node, what string) {
		out = append(out, fmt.Sprintf("%s: %s", fset.Position(n.Pos()), what))
	}
	timeName := ""
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if slices.ContainsFunc(impureImports, func(p string) bool { return path == p || strings.HasPrefix(path, p+"/") }) {
			at(imp, "imports "+path)
		}
		if path == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			at(n, "go statement")
		case *ast.ChanType:
			at(n, "channel type")
		case *ast.SendStmt:
			at(n, "channel send")
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				at(n, "channel receive")
			}
		case *ast.SelectStmt:
			at(n, "select statement")
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName {
				switch n.Sel.Name {
				case "Now", "Since", "Until", "Sleep", "After", "Tick", "NewTimer", "NewTicker", "AfterFunc":
					at(n, "reads the clock or sleeps: "+timeName+"."+n.Sel.Name+" (take the time as an argument)")
				}
			}
		}
		return true
	})
	return out
}

// moduleRoot returns the module's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestMachinesArePure parses every actors/**/machine.go and sdk/**/machine.go
// (the pure halves of the actors) and fails on anything impure in them.
func TestMachinesArePure(t *testing.T) {
	root := moduleRoot(t)
	var machines []string
	for _, dir := range []string{"actors", "sdk", "cluster"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && d.Name() == "machine.go" {
				machines = append(machines, path)
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	// Guard against a vacuous pass: the actors have machines from the start.
	if len(machines) < 5 {
		t.Fatalf("found %d machine.go files under %s; is the test running inside the module?", len(machines), root)
	}
	fset := token.NewFileSet()
	for _, path := range machines {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		for _, v := range impurities(fset, f) {
			t.Error(v)
		}
	}
}

// TestImpurities checks the purity checker on made-up sources, so a check
// that silently stops firing is caught without a broken tree.
func TestImpurities(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want int
	}{
		{"pure", "package m\nimport \"time\"\nfunc f(now time.Time) time.Duration { return now.Sub(now) + time.Second }", 0},
		{"clock", "package m\nimport \"time\"\nfunc f() time.Time { return time.Now() }", 1},
		{"renamed clock", "package m\nimport t \"time\"\nfunc f() { t.Sleep(1) }", 1},
		{"go statement", "package m\nfunc f() { go f() }", 1},
		{"channel", "package m\nfunc f(c chan int) { c <- 1; <-c }", 3},
		{"select", "package m\nfunc f() { select {} }", 1},
		{"os", "package m\nimport \"os\"\nvar _ = os.Args", 1},
		{"io/fs", "package m\nimport \"io/fs\"\nvar _ fs.FS", 1},
		{"net/http", "package m\nimport \"net/http\"\nvar _ http.Handler", 1},
		{"protoactor", "package m\nimport \"github.com/asynkron/protoactor-go/actor\"\nvar _ actor.PID", 1},
		{"prefix is not a package", "package m\nimport \"iox\"\nvar _ = iox.X", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "machine.go", tt.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := impurities(fset, f); len(got) != tt.want {
				t.Errorf("impurities = %d %q, want %d", len(got), got, tt.want)
			}
		})
	}
}

// TestSDKIsSlim checks the whole dependency closure of the SDK: a program
// that only submits tasks or serves handlers links no storage engine and no
// server-side actor.
func TestSDKIsSlim(t *testing.T) {
	cmd := exec.Command("go", "list", "-e", "-deps", module+"/sdk/...")
	cmd.Env = append(os.Environ(), "GOPROXY=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./sdk/...: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"/sdk") {
		t.Fatalf("go list -deps listed %d packages without sdk itself", len(deps))
	}
	banned := []string{"github.com/cockroachdb/pebble", "github.com/jackc/pgx", module + "/actors", module + "/store", module + "/node", module + "/api"}
	for _, d := range deps {
		for _, b := range banned {
			if d == b || strings.HasPrefix(d, b+"/") {
				t.Errorf("the SDK depends on %s (banned: %s)", d, b)
			}
		}
	}
	t.Logf("the SDK's dependency closure: %d packages", len(deps))
}
