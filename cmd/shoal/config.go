package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/task"
)

// limitFlags are `shoal node`'s intake and retry settings that were
// reachable only from Go (task.Policy, dispatch.Config).
type limitFlags struct {
	maxPayload, maxBatch int
	retryBase, retryMax  time.Duration
	digest               []string // type=field,field
}

func (l *limitFlags) add(f *pflag.FlagSet) {
	p, d := task.DefaultPolicy(), node.DefaultConfig("")
	f.IntVar(&l.maxPayload, "max-payload-bytes", p.MaxPayloadBytes, "largest task payload in bytes; a bigger one refuses its batch")
	f.IntVar(&l.maxBatch, "max-batch", p.MaxBatch, "most tasks in one submit request")
	f.DurationVar(&l.retryBase, "retry-base", d.Dispatch.RetryBase, "delay before a failed task's first retry; it doubles with each attempt up to --retry-max")
	f.DurationVar(&l.retryMax, "retry-max", d.Dispatch.RetryMax, "longest delay between retries")
	f.StringArrayVar(&l.digest, "digest-fields", nil, "type=field,field: the top-level JSON payload fields that identify a duplicate of that type (repeat per type; others: the whole payload)")
}

// apply sets cfg from the flags; a malformed --digest-fields is an error.
func (l *limitFlags) apply(cfg *node.Config) error {
	cfg.Intake.MaxPayloadBytes, cfg.Intake.MaxBatch = l.maxPayload, l.maxBatch
	cfg.Dispatch.RetryBase, cfg.Dispatch.RetryMax = l.retryBase, l.retryMax
	for _, d := range l.digest {
		typ, fields, ok := strings.Cut(d, "=")
		typ = strings.TrimSpace(typ)
		if !ok || typ == "" || strings.TrimSpace(fields) == "" {
			return fmt.Errorf("--digest-fields %q: want type=field,field (e.g. resize=url,size)", d)
		}
		if cfg.Intake.DigestFields == nil {
			cfg.Intake.DigestFields = map[string][]string{}
		}
		var fs []string
		for _, f := range strings.Split(fields, ",") {
			if f = strings.TrimSpace(f); f != "" {
				fs = append(fs, f)
			}
		}
		cfg.Intake.DigestFields[typ] = fs
	}
	return nil
}

// Config files (--config): YAML, one key per flag of the command, named as
// the flag (listen, data, retry-base, ...), a list for a flag that repeats.
// A flag on the command line wins, then SHOAL_<FLAG>, then the file, then the
// default.

// notConfig are flags a config file cannot set.
var notConfig = map[string]bool{"config": true, "print-config": true, "help": true}

// secret flags are not printed by --print-config.
var secret = map[string]bool{"token": true, "api-token": true, "gossip-key": true, "store": true}

// applyConfigFile sets every flag of fs not set on the command line or in
// the environment from the YAML file at path.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("--config %s: not YAML: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("--config %s: want a mapping of flag names to values (e.g. listen: 127.0.0.1:7070)", path)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		f := fs.Lookup(k.Value)
		if f == nil || notConfig[k.Value] {
			return fmt.Errorf("--config %s line %d: unknown key %q: keys are this command's flag names without dashes (see --help)", path, k.Line, k.Value)
		}
		if f.Changed {
			continue // the command line or the environment set it
		}
		var vals []string
		switch v.Kind {
		case yaml.ScalarNode:
			vals = []string{v.Value}
		case yaml.SequenceNode:
			if _, ok := f.Value.(pflag.SliceValue); !ok && !isMap(f) {
				return fmt.Errorf("--config %s line %d: %s takes one value, not a list", path, v.Line, k.Value)
			}
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					return fmt.Errorf("--config %s line %d: %s: want a list of values", path, e.Line, k.Value)
				}
				vals = append(vals, e.Value)
			}
		default:
			return fmt.Errorf("--config %s line %d: %s: want a value or a list of values", path, v.Line, k.Value)
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			if err := sv.Replace(vals); err != nil {
				return fmt.Errorf("--config %s line %d: %s: %w", path, v.Line, k.Value, err)
			}
			f.Changed = true
			continue
		}
		if isMap(f) { // key=value pairs, comma-separated
			if len(vals) == 0 {
				continue
			}
			vals = []string{strings.Join(vals, ",")}
		}
		if len(vals) == 0 {
			continue
		}
		if err := fs.Set(k.Value, vals[0]); err != nil {
			return fmt.Errorf("--config %s line %d: %s: %w", path, v.Line, k.Value, err)
		}
	}
	return nil
}

// isMap reports a key=value map flag (pflag's stringToInt, stringToString).
func isMap(f *pflag.Flag) bool { return strings.HasPrefix(f.Value.Type(), "stringTo") }

// printConfig writes the flags in force as a config file (secrets set are
// named, not shown).
func printConfig(w io.Writer, fs *pflag.FlagSet) error {
	var b bytes.Buffer
	b.WriteString("# shoal node settings in force (command line, then SHOAL_* environment, then --config, then defaults)\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if notConfig[f.Name] {
			return
		}
		if secret[f.Name] {
			if f.Value.String() != "" {
				fmt.Fprintf(&b, "# %s: set, not shown\n", f.Name)
			} else {
				fmt.Fprintf(&b, "%s: \"\"\n", f.Name)
			}
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			q := make([]string, 0, len(sv.GetSlice()))
			for _, s := range sv.GetSlice() {
				q = append(q, strconv.Quote(s))
			}
			fmt.Fprintf(&b, "%s: [%s]\n", f.Name, strings.Join(q, ", "))
			return
		}
		if isMap(f) {
			var q []string
			if s := strings.Trim(f.Value.String(), "[]"); s != "" {
				for _, kv := range strings.Split(s, ",") {
					q = append(q, strconv.Quote(kv))
				}
			}
			fmt.Fprintf(&b, "%s: [%s]\n", f.Name, strings.Join(q, ", "))
			return
		}
		switch f.Value.Type() {
		case "bool", "int", "int32", "int64", "uint", "uint32", "uint64", "float64", "float32":
			fmt.Fprintf(&b, "%s: %s\n", f.Name, f.Value.String())
		default:
			fmt.Fprintf(&b, "%s: %s\n", f.Name, strconv.Quote(f.Value.String()))
		}
	})
	_, err := w.Write(b.Bytes())
	return err
}
