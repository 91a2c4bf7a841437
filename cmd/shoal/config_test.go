package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/node"
)

// TestNodeConfigFile: settings once reachable only from Go have flags, and
// every node flag can come from --config FILE (YAML, keys are flag names);
// flags win over the environment, which wins over the file; an unknown key
// is an error naming it; --print-config prints what is in force, in the
// file's format (secrets not shown), and reads back the same.
func TestNodeConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "shoal.yaml")
	cfgText := `# a node
data: /srv/shoal
listen: 127.0.0.1:7171
max-payload-bytes: 2048
retry-base: 1s
retry-max: 1m
digest-fields: ["resize=url,size", "thumb=url"]
http-max-wait: 2m
http-max-ids: 50
token: s3cret
`
	if err := os.WriteFile(file, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOAL_RETRY_MAX", "90s")
	out, err := execute("node", "--config", file, "--listen", "127.0.0.1:7272", "--print-config")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"data: \"/srv/shoal\"\n", "listen: \"127.0.0.1:7272\"\n", "max-payload-bytes: 2048\n", "retry-base: \"1s\"\n",
		"retry-max: \"1m30s\"\n", "digest-fields: [\"resize=url,size\", \"thumb=url\"]\n", "http-max-ids: 50\n",
		"# token: set, not shown\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("--print-config shows the token:\n%s", out)
	}
	// What it prints is a config file giving the same (but the secret).
	again := filepath.Join(dir, "again.yaml")
	if err := os.WriteFile(again, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOAL_RETRY_MAX", "")
	os.Unsetenv("SHOAL_RETRY_MAX")
	out2, err := execute("node", "--config", again, "--print-config")
	if want := strings.Replace(out, "# token: set, not shown\n", "token: \"\"\n", 1); err != nil || out2 != want {
		t.Fatalf("printed config read back: %v\n%s\nvs\n%s", err, out2, out)
	}

	if err := os.WriteFile(file, []byte("retry-bsae: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := execute("node", "--config", file, "--print-config"); err == nil || !strings.Contains(err.Error(), `"retry-bsae"`) || !strings.Contains(err.Error(), file) {
		t.Fatalf("unknown key: %v", err)
	}
}

// TestLimitFlagsApply: the new flags reach the node's and the API's config.
func TestLimitFlagsApply(t *testing.T) {
	var (
		l limitFlags
		h httpFlags
	)
	fs := pflag.NewFlagSet("node", pflag.ContinueOnError)
	l.add(fs)
	h.add(fs)
	if err := fs.Parse([]string{"--max-payload-bytes", "4096", "--max-batch", "7", "--retry-base", "2s", "--retry-max", "20s",
		"--digest-fields", "resize=url,size", "--http-max-wait", "90s", "--http-default-wait", "5s", "--http-max-ids", "9", "--http-max-agents", "3", "--http-ask-timeout", "4s"}); err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig(t.TempDir())
	if err := l.apply(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Intake.MaxPayloadBytes != 4096 || cfg.Intake.MaxBatch != 7 || cfg.Dispatch.RetryBase != 2*time.Second || cfg.Dispatch.RetryMax != 20*time.Second ||
		strings.Join(cfg.Intake.DigestFields["resize"], ",") != "url,size" {
		t.Fatalf("node config: %+v %+v %v", cfg.Intake.Policy, cfg.Dispatch.RetryBase, cfg.Dispatch.RetryMax)
	}
	a, err := h.config()
	if err != nil {
		t.Fatal(err)
	}
	if a.MaxWait != 90*time.Second || a.DefaultWait != 5*time.Second || a.MaxIDs != 9 || a.MaxAgents != 3 || a.AskTimeout != 4*time.Second {
		t.Fatalf("api config: %+v", a)
	}
	bad := limitFlags{digest: []string{"resize"}}
	if err := bad.apply(&cfg); err == nil || !strings.Contains(err.Error(), "--digest-fields") {
		t.Fatalf("bad --digest-fields: %v", err)
	}
}
