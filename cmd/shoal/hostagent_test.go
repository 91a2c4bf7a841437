package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/node"
)

// --run and --types make one handler per type; mistakes name the flag.
func TestHostHandlers(t *testing.T) {
	h, err := hostHandlers("", []string{"report=cat", "extract = wc -c"})
	if err != nil || len(h) != 2 || h["report"] == nil || h["extract"] == nil {
		t.Fatalf("types from --run: %v, %v", h, err)
	}
	if h, err = hostHandlers("echo,report", []string{"report=cat"}); err != nil || len(h) != 2 {
		t.Fatalf("a built-in beside a command: %v, %v", h, err)
	}
	for _, c := range []struct {
		types string
		runs  []string
		want  string
	}{
		{"", nil, "no task types"},
		{"mystery", nil, `"mystery" has no --run`},
		{"echo", []string{"b=cat"}, `--run names type "b"`},
		{"", []string{"nocommand"}, "TYPE=COMMAND"},
		{"", []string{"a=cat", "a=wc"}, "given twice"},
	} {
		if _, err := hostHandlers(c.types, c.runs); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("hostHandlers(%q, %q) = %v, want %q", c.types, c.runs, err, c.want)
		}
	}
}

// The node's host flags reach node.Config.Hosts, also through SHOAL_*.
func TestHostsFlags(t *testing.T) {
	parse := func(args ...string) (node.Config, error) {
		var h hostsFlags
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		h.add(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := applyEnv(fs); err != nil {
			t.Fatal(err)
		}
		cfg := node.DefaultConfig("d")
		return cfg, h.apply(&cfg)
	}
	if cfg, err := parse(); err != nil || cfg.Hosts.DSN != "" {
		t.Fatalf("no flags: %+v, %v; want off", cfg.Hosts, err)
	}
	cfg, err := parse("--hosts-db", "h.db", "--host-types", "a, b", "--host-target", "lpar1")
	if err != nil || cfg.Hosts.DSN != "h.db" || strings.Join(cfg.Hosts.Types, ",") != "a,b" || cfg.Hosts.Host != "lpar1" || cfg.Validate() != nil {
		t.Fatalf("flags: %+v, %v", cfg.Hosts, err)
	}
	if _, err := parse("--host-types", "a"); err == nil {
		t.Fatal("--host-types without --hosts-db was accepted")
	}
	t.Setenv("SHOAL_HOSTS_DB", "postgres://db/x")
	t.Setenv("SHOAL_HOST_TYPES", "c")
	if cfg, err = parse(); err != nil || cfg.Hosts.DSN != "postgres://db/x" || strings.Join(cfg.Hosts.Types, ",") != "c" {
		t.Fatalf("SHOAL_HOSTS_DB, SHOAL_HOST_TYPES: %+v, %v", cfg.Hosts, err)
	}
	cfg.Hosts.Types = nil
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Hosts.Types") {
		t.Fatalf("a DSN without types: %v, want an error naming Hosts.Types", err)
	}
}
