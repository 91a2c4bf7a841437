package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

func flowCmd() *cobra.Command {
	var (
		addr string
		sec  cluster.Security
	)
	cmd := &cobra.Command{
		Use:   "flow",
		Short: "Run multi-step flows from templates: run, get, cancel, templates, register",
		Long: `A flow is an instance of a named template: steps (task types with argument
mappings) and their dependencies. The node submits each step when its inputs
are ready; identical steps of concurrent flows run once; the flow's result is
assembled from its steps' results by the template's output mapping.
See docs/flows.md for the template format.`,
		Example: `  shoal flow register examples/flows/thumbnail.yaml
  shoal flow run thumbnail --input '{"url": "https://example.com/a.png"}' --wait
  shoal flow get 42
  shoal flow templates`,
	}
	cmd.PersistentFlags().StringVar(&addr, "node", "127.0.0.1:7070", "address of the node (host:port)")
	addSecurityFlags(cmd.PersistentFlags(), &sec, clientTokenHelp)
	client := func(cmd *cobra.Command) (*sdk.Client, func(), error) {
		conn, err := dialNode(addr, sec)
		if err != nil {
			return nil, nil, err
		}
		return sdk.NewClient(conn), func() { _ = conn.Close() }, nil
	}
	cmd.AddCommand(flowRunCmd(client), flowGetCmd(client), flowCancelCmd(client), flowTemplatesCmd(client), flowRegisterCmd(client))
	return cmd
}

type clientFunc func(*cobra.Command) (*sdk.Client, func(), error)

func flowRunCmd(client clientFunc) *cobra.Command {
	var (
		input    string
		version  int32
		priority int32
		wait     bool
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run TEMPLATE",
		Short: "Start a flow of a template and print its id (and its result with --wait)",
		Long: `Start a flow. --input is its JSON input (or @file), normalised against the
template's declared inputs (defaults filled in, "3" read as 3 for a number).
The flow is acknowledged once it is durable; it survives a node restart.
With --wait it exits 2 if the flow ended failed or cancelled, 3 if --timeout
passed first.`,
		Example: `  shoal flow run diamond --input '{"text": "hello"}' --wait
  shoal flow run report --input @in.json --priority 90`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := []byte(input)
			if strings.HasPrefix(input, "@") {
				b, err := os.ReadFile(input[1:])
				if err != nil {
					return fmt.Errorf("--input: %w", err)
				}
				body = b
			}
			c, done, err := client(cmd)
			if err != nil {
				return err
			}
			defer done()
			f := sdk.Flow{Template: args[0], TemplateVersion: version, Input: body}
			if cmd.Flags().Changed("priority") {
				f.Priority, f.HasPriority = priority, true
			}
			id, err := c.RunFlow(cmd.Context(), f)
			if err != nil {
				return err
			}
			if !wait {
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			}
			ctx, cancel := withTimeout(cmd.Context(), timeout)
			defer cancel()
			out, err := c.WaitFlow(ctx, id)
			if len(out) == 1 {
				printFlowOutcome(cmd.OutOrStdout(), out[0])
			}
			return waitResult("flow", out, err, timeout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&input, "input", "", "the flow's JSON input, or @file")
	f.Int32Var(&version, "version", 0, "template version (0: the latest)")
	f.Int32Var(&priority, "priority", 0, "flow priority 0..100; its steps queue in its class. Unset: the template's priority, else 50")
	f.BoolVar(&wait, "wait", false, "wait for the flow and print its result")
	f.DurationVar(&timeout, "timeout", 0, "give up waiting after this long (0: no limit)")
	return cmd
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

func printFlowOutcome(w io.Writer, o messages.Outcome) {
	fmt.Fprintf(w, "flow %d %s", o.TaskID, o.State)
	if o.AliasOf != 0 {
		fmt.Fprintf(w, " (same flow as %d)", o.AliasOf)
	}
	fmt.Fprintln(w)
	if o.Error != "" {
		fmt.Fprintln(w, "error:", o.Error)
	}
	if len(o.Output) > 0 {
		fmt.Fprintln(w, string(o.Output))
	}
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("flow id %q: want a number", s)
	}
	return id, nil
}

func flowGetCmd(client clientFunc) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a flow: its state and result, or its steps while it runs",
		Long: `Show a flow: its template and version, its state and result (or error), and
while it runs each step's state, task id and whether the step's task is
shared with other flows (identical steps run once). --json prints the whole
record.`,
		Example: `  shoal flow get 42
  shoal flow get 42 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			c, done, err := client(cmd)
			if err != nil {
				return err
			}
			defer done()
			st, err := c.GetFlow(cmd.Context(), id)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(api.FlowJSON(st)) // the /v1/flows/{id} shape
			}
			fmt.Fprintf(w, "template %s v%d\n", st.Template, st.TemplateVersion)
			printFlowOutcome(w, st.Outcome)
			if len(st.Steps) > 0 {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "STEP\tTYPE\tSTATE\tTASK\tSHARED")
				for _, s := range st.Steps {
					state := s.State.String()
					if s.State == messages.StateUnknown {
						state = "waiting"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%v\n", s.Name, s.Type, state, s.TaskID, s.Shared)
				}
				tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func flowCancelCmd(client clientFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID...",
		Short: "Cancel flows and their unfinished steps (a step shared with other flows goes on for them)",
		Long: `Cancel flows. Each flow's unfinished steps are cancelled, except a step
whose task other running flows share: it goes on for them. Prints each
flow's outcome; a flow that already finished keeps its outcome.`,
		Example: `  shoal flow cancel 42
  shoal flow cancel 42 43 44`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ids []uint64
			for _, a := range args {
				id, err := parseID(a)
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			c, done, err := client(cmd)
			if err != nil {
				return err
			}
			defer done()
			out, err := c.CancelFlow(cmd.Context(), ids...)
			if err != nil {
				return err
			}
			printOutcomes(cmd.OutOrStdout(), out)
			return nil
		},
	}
}

func flowTemplatesCmd(client clientFunc) *cobra.Command {
	var all, spec bool
	cmd := &cobra.Command{
		Use:   "templates",
		Short: "List the node's flow templates",
		Long: `List the node's flow templates: name, version, steps and declared inputs.
--all lists every kept version; --spec prints each template's canonical
JSON (what its flows carry).`,
		Example: `  shoal flow templates
  shoal flow templates --all --spec`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, done, err := client(cmd)
			if err != nil {
				return err
			}
			defer done()
			list, err := c.Templates(cmd.Context(), all)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if spec {
				for _, t := range list {
					fmt.Fprintf(w, "%s v%d: %s\n", t.Name, t.Version, t.Spec)
				}
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TEMPLATE\tVERSION\tSTEPS\tINPUTS")
			for _, t := range list {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Name, t.Version, strings.Join(t.Steps, ","), strings.Join(t.Inputs, ","))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every kept version, not only the latest")
	cmd.Flags().BoolVar(&spec, "spec", false, "print each template's canonical JSON")
	return cmd
}

func flowRegisterCmd(client clientFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "register FILE...",
		Short: "Register flow templates from YAML or JSON files (a changed template gets the next version)",
		Long: `Register flow templates (docs/flows.md for the format). Each is checked:
an error names the file and the step or field. The same text as the latest
version keeps that version; a changed one becomes the next. Templates
registered this way live in the node's memory: use shoal node --flows DIR
for ones that must be there after a restart. Examples ship in examples/flows.`,
		Example: `  shoal flow register examples/flows/thumbnail.yaml
  shoal flow register examples/flows/*.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, done, err := client(cmd)
			if err != nil {
				return err
			}
			defer done()
			for _, path := range args {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				info, err := c.RegisterTemplate(cmd.Context(), b)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s v%d (%d steps)\n", info.Name, info.Version, len(info.Steps))
			}
			return nil
		},
	}
}

// flowFlags are `shoal node`'s flow flags.
type flowFlags struct {
	dir   string
	types []string
}

func (ff *flowFlags) add(f *pflag.FlagSet) {
	f.StringVar(&ff.dir, "flows", "", "directory of flow templates (*.yaml, *.yml, *.json) registered at start; an invalid one stops the node")
	f.StringSliceVar(&ff.types, "flow-types", nil, "step types flow templates may use (empty: any); a template with another type is refused")
}

func (ff *flowFlags) apply(cfg *node.Config) {
	cfg.Flows.TemplateDir = ff.dir
	if len(ff.types) > 0 {
		known := map[string]bool{}
		for _, t := range ff.types {
			known[strings.TrimSpace(t)] = true
		}
		cfg.Flows.Compile.KnownType = func(t string) bool { return known[t] }
	}
}

// printFlowCounters adds the flow runner's counters to status, once any
// flow ran.
func printFlowCounters(w io.Writer, c map[string]int64) {
	if c["flows_running"]+c["flows_waiting"]+c["flows_done"]+c["flows_failed"]+c["flows_cancelled"] == 0 {
		return
	}
	for _, k := range []string{"flows_running", "flows_waiting", "flows_done", "flows_failed", "flows_cancelled", "flow_steps_submitted", "flow_steps_run", "flow_steps_shared"} {
		fmt.Fprintf(w, "%s\t%d\n", k, c[k])
	}
}
