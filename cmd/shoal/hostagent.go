package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/hosts/agent"
	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
)

func hostAgentCmd() *cobra.Command {
	var (
		db, host, id, types, disk string
		runs                      []string
		slots                     int
		poll, lease, renew, every time.Duration
		connect                   time.Duration
	)
	d := agent.DefaultConfig("")
	cmd := &cobra.Command{
		Use:   "host-agent",
		Short: "Run a host agent: take instructions from the host instruction table and run them on this host",
		Long: `Run the host side of the instruction table (docs/hosts.md). A node started with
--hosts-db and --host-types writes one instruction per host task it is given;
this agent takes the instructions for --host (or for any host) of --types,
atomically (two agents never take the same one), runs each with the command
given by --run TYPE=COMMAND (sh -c: the payload on stdin, the result from
stdout; a non-zero exit fails the task with stderr as its error) or a built-in
handler, renews its lease while it runs, and writes the result. If the agent
dies, its lease expires and the node retries the task. Every --status-every it
writes this host's CPU, memory, disk use, process count and address into the
node-status table.

On PostgreSQL the agent hears new instructions at once (LISTEN/NOTIFY); on
SQLite it looks every --poll.

Every flag can also be set as SHOAL_<FLAG> (e.g. SHOAL_DB, SHOAL_HOST, SHOAL_TYPES).
Built-in task types:
` + builtinHelp(),
		Example: `  shoal host-agent --db /srv/shoal/hosts.db --host lpar1 --types report --run 'report=/opt/batch/report.sh'
  shoal host-agent --db postgres://shoal@db:5432/shoal --host lpar2 --types hash,sleep`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logger()
			cfg := agent.DefaultConfig(host)
			cfg.ID, cfg.Slots, cfg.Poll, cfg.Lease, cfg.StatusEvery, cfg.DiskPath = id, slots, poll, lease, every, disk
			cfg.RenewEvery = renew
			if renew == 0 {
				cfg.RenewEvery = lease / 3
			}
			handlers, err := hostHandlers(types, runs)
			if err != nil {
				return err
			}
			cfg.Handlers = handlers
			if err := cfg.Validate(); err != nil {
				return err
			}
			tcfg := table.DefaultConfig(db)
			tcfg.ConnectTimeout = connect
			tbl, err := table.Open(cmd.Context(), tcfg)
			if err != nil {
				return err
			}
			defer tbl.Close()
			a, err := agent.New(tbl, cfg, log)
			if err != nil {
				return err
			}
			// The line scripts and tests wait for (the backend, not the DSN: it may hold a password).
			fmt.Fprintf(cmd.OutOrStdout(), "shoal host-agent %s: host %s, types %s, %d slots, table %s\n",
				a.ID(), host, strings.Join(a.Types(), ","), slots, tbl.Backend())
			return a.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "", "the instruction table: a postgres:// URL or a SQLite file path (required; the node's --hosts-db)")
	f.StringVar(&host, "host", "", "this host's name: the agent takes instructions for it or for any host, and reports status under it (required)")
	f.StringVar(&id, "id", "", "this agent's taker id (default: host/pid-random)")
	f.StringVar(&types, "types", "", "comma-separated task types to run (default: the types given by --run)")
	f.StringArrayVar(&runs, "run", nil, "TYPE=COMMAND: run tasks of TYPE with sh -c COMMAND (payload on stdin, result from stdout, non-zero exit fails with stderr); repeat per type")
	f.IntVar(&slots, "slots", d.Slots, "instructions run at once")
	f.DurationVar(&poll, "poll", d.Poll, "how often to look for new instructions when no notification arrives")
	f.DurationVar(&lease, "lease", d.Lease, "how long a taken instruction stays this agent's without a renewal; after it the node retries the task elsewhere")
	f.DurationVar(&renew, "renew", 0, "how often to renew the lease of a running instruction (0: --lease/3)")
	f.DurationVar(&every, "status-every", d.StatusEvery, "how often to write this host's resources into the node-status table")
	f.StringVar(&disk, "disk", d.DiskPath, "the file system whose use is reported")
	f.DurationVar(&connect, "connect-timeout", table.DefaultConfig("").ConnectTimeout, "give up opening the database after this long")
	_ = cmd.MarkFlagRequired("db")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

// hostHandlers builds the handler of every type: its --run command, or
// the built-in handler of that name.
func hostHandlers(types string, runs []string) (map[string]agent.Handler, error) {
	cmds := map[string]string{}
	var order []string
	for _, r := range runs {
		typ, command, ok := strings.Cut(r, "=")
		typ = strings.TrimSpace(typ)
		if !ok || typ == "" || strings.TrimSpace(command) == "" {
			return nil, fmt.Errorf("--run %q: want TYPE=COMMAND", r)
		}
		if _, dup := cmds[typ]; dup {
			return nil, fmt.Errorf("--run: type %q given twice", typ)
		}
		cmds[typ] = command
		order = append(order, typ)
	}
	var list []string
	if types == "" {
		list = order
	} else {
		for _, t := range strings.Split(types, ",") {
			if t = strings.TrimSpace(t); t != "" {
				list = append(list, t)
			}
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("no task types: pass --types and --run TYPE=COMMAND (built-in types: %s)", builtinNames())
	}
	out := map[string]agent.Handler{}
	for _, t := range list {
		if c, ok := cmds[t]; ok {
			out[t] = agent.Command(c)
			continue
		}
		b, ok := builtin[t]
		if !ok {
			return nil, fmt.Errorf("--types: type %q has no --run %s=COMMAND and is not built in (built-in types: %s)", t, t, builtinNames())
		}
		out[t] = func(ctx context.Context, in table.Instruction) ([]byte, error) {
			return b.h(ctx, messages.Task{ID: in.TaskID, Type: in.Type, Payload: in.Payload, Attempt: in.Attempt})
		}
	}
	for _, t := range order {
		if !slices.Contains(list, t) {
			return nil, fmt.Errorf("--run names type %q, which is not in --types %s", t, types)
		}
	}
	return out, nil
}

// hostsFlags are the node's flags for its host bridge (node.HostsConfig).
type hostsFlags struct {
	dsn, types, target string
}

func (h *hostsFlags) add(f *pflag.FlagSet) {
	f.StringVar(&h.dsn, "hosts-db", "", "host instruction table (docs/hosts.md): a postgres:// URL or a SQLite file path; with --host-types, tasks of those types become instructions run by \"shoal host-agent\" (empty: off)")
	f.StringVar(&h.types, "host-types", "", "comma-separated task types run by host agents through --hosts-db")
	f.StringVar(&h.target, "host-target", "", "target every host instruction at this host name (empty: any host agent serving the type)")
}

func (h *hostsFlags) apply(cfg *node.Config) error {
	if h.dsn == "" {
		if h.types != "" {
			return fmt.Errorf("--host-types needs --hosts-db")
		}
		return nil
	}
	cfg.Hosts = node.HostsConfig{DSN: h.dsn, Host: h.target}
	for _, t := range strings.Split(h.types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.Hosts.Types = append(cfg.Hosts.Types, t)
		}
	}
	return nil
}
