package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

func workerCmd() *cobra.Command {
	var (
		addr, id, types string
		sec             cluster.Security
		journal         string
		slots           int
		caps            map[string]string
		faults          workerFaults
		cloudW          bool
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run an executor that pulls tasks from a node and runs built-in handlers",
		Long: `Run an executor in its own process. It registers with the node, pulls work
with its live load (/proc), runs it in --slots at once and reports results.
Built-in task types:
` + builtinHelp(),
		Example: `  shoal worker --node 127.0.0.1:7070 --types noop,hash,sleep --slots 8`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logger()
			if faults.failOnStart {
				fmt.Fprintln(cmd.ErrOrStderr(), "shoal worker: --fail-on-start: exiting with status 3 (fault injection)")
				os.Exit(3)
			}
			conn, err := dialNode(addr, sec)
			if err != nil {
				return err
			}
			defer conn.Close()
			if cloudW {
				if caps == nil {
					caps = map[string]string{}
				}
				caps[messages.CapCloud] = "true"
			}
			w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: id, Slots: slots, Token: sec.Token, Capabilities: caps, Logger: log, Health: faults.health()})
			var jw *journalWriter
			if journal != "" {
				if jw, err = openJournal(journal); err != nil {
					return err
				}
				defer jw.Close()
			}
			for _, t := range strings.Split(types, ",") {
				t = strings.TrimSpace(t)
				b, ok := builtin[t]
				if !ok {
					return fmt.Errorf("--types: unknown task type %q; built-in types are %s", t, builtinNames())
				}
				w.Handle(t, jw.wrap(b.h))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "shoal worker %s: %d slots, types %s, node %s\n", w.ID(), slots, types, addr)
			return w.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "node", "127.0.0.1:7070", "address of the node (host:port)")
	f.StringVar(&id, "id", "", "executor id (default: host-pid-random)")
	addSecurityFlags(f, &sec, clientTokenHelp)
	f.StringVar(&types, "types", builtinNames(), "comma-separated built-in task types to run")
	f.IntVar(&slots, "slots", 8, "tasks run at once")
	f.StringVar(&journal, "journal", "", "append one line per finished execution (id, attempt, type, payload) to this file (for tests and audits)")
	faults.add(f)
	f.BoolVar(&cloudW, "cloud", false, "mark this worker as a cloud executor (capability shoal.cloud=true; the cloud actor starts workers with it)")
	f.StringToStringVar(&caps, "cap", nil, "capability label or tool version, e.g. --cap os=linux --cap xcode=15.2.0")
	return cmd
}
