package api_test

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/sdk"
)

// specRoutes reads "METHOD /path" pairs from the paths section of an
// OpenAPI document (two-space indentation, as docs/openapi.yaml is written).
func specRoutes(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out     []string
		inPaths bool
		path    string
		pathRe  = regexp.MustCompile(`^  (/\S*):\s*$`)
		methRe  = regexp.MustCompile(`^    (get|put|post|delete|patch|head|options):\s*$`)
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && line != "" && !strings.HasPrefix(line, " "):
			inPaths = false // the next top-level key
		case !inPaths:
		case pathRe.MatchString(line):
			path = pathRe.FindStringSubmatch(line)[1]
		case methRe.MatchString(line):
			out = append(out, strings.ToUpper(methRe.FindStringSubmatch(line)[1])+" "+path)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// The router and docs/openapi.yaml list the same routes: neither can drift.
func TestRoutesMatchOpenAPISpec(t *testing.T) {
	api, err := api.New(api.DefaultConfig(), sdk.Local(actor.NewActorSystem()))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range api.Routes() {
		routes = append(routes, r.Method+" "+r.Path)
	}
	slices.Sort(routes)
	spec := specRoutes(t, "../docs/openapi.yaml")
	if len(spec) < 10 {
		t.Fatalf("found only %d routes in the spec (%v): is the parser reading docs/openapi.yaml?", len(spec), spec)
	}
	for _, r := range routes {
		if !slices.Contains(spec, r) {
			t.Errorf("route %s is served but not in docs/openapi.yaml", r)
		}
	}
	for _, r := range spec {
		if !slices.Contains(routes, r) {
			t.Errorf("docs/openapi.yaml lists %s, which the router does not serve", r)
		}
	}
}
