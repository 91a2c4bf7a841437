package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

func submitCmd() *cobra.Command {
	var (
		addr, typ, payload string
		sec                cluster.Security
		priority           int32
		count, batch       int
		stdin, wait        bool
		owners             bool
		timeout            time.Duration
		runTimeout         time.Duration
		attempts           int32
		reqList            []string
	)
	cmd := &cobra.Command{
		Use:   "submit",
		Short: "Submit tasks to a node and print their ids (and outcomes with --wait)",
		Long: `Submit tasks. Each is acknowledged only once it is durable on the node.
The payload is --payload (or @file), repeated --count times, or one task per
line of standard input with --stdin. Batches are atomic: a bad task refuses
its whole batch with a typed error and nothing of it is written.

With --wait it prints the outcomes and exits 2 if a task ended dead or
cancelled, 3 if --timeout passed before every task finished.`,
		Example: `  shoal submit --type echo --payload hello --wait
  seq 1 1000 | shoal submit --type hash --stdin --priority 80`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reqs := map[string]string{}
			for _, r := range reqList {
				k, v, ok := strings.Cut(r, "=")
				if !ok {
					return fmt.Errorf("--require %q: want key=constraint, e.g. os==linux or 'xcode=>= 15.0, < 16'", r)
				}
				reqs[k] = v
			}
			if batch <= 0 || count <= 0 {
				return fmt.Errorf("--batch and --count must be > 0")
			}
			body := []byte(payload)
			if strings.HasPrefix(payload, "@") {
				b, err := os.ReadFile(payload[1:])
				if err != nil {
					return fmt.Errorf("--payload: %w", err)
				}
				body = b
			}
			var tasks []sdk.Task
			mk := func(p []byte) sdk.Task {
				return sdk.Task{Type: typ, Payload: p, Priority: priority, MaxAttempts: attempts, Requirements: reqs,
					TimeoutMillis: runTimeout.Milliseconds()}
			}
			if stdin {
				sc := bufio.NewScanner(cmd.InOrStdin())
				sc.Buffer(make([]byte, 0, 1<<20), messages.MaxMessageBytes)
				for sc.Scan() {
					tasks = append(tasks, mk([]byte(sc.Text())))
				}
				if err := sc.Err(); err != nil {
					return fmt.Errorf("reading standard input: %w", err)
				}
			} else {
				for range count {
					tasks = append(tasks, mk(body))
				}
			}
			conn, err := sdk.Dial(addr, sdk.DialConfig{Logger: actorLogger(logger()), Security: sec, RouteToOwners: owners})
			if err != nil {
				return err
			}
			defer conn.Close()
			c := sdk.NewClient(conn)
			ctx := cmd.Context()
			// Without --wait each batch's ids are printed as soon as it is
			// acknowledged: a caller that loses the node mid-way knows exactly
			// which tasks are durable (the first len(ids) lines of input).
			out := cmd.OutOrStdout()
			var ids []uint64
			for i := 0; i < len(tasks); i += batch {
				got, err := c.SubmitBatch(ctx, tasks[i:min(i+batch, len(tasks))])
				if err != nil {
					return fmt.Errorf("after %d acknowledged tasks: %w", len(ids), err)
				}
				ids = append(ids, got...)
				if !wait {
					for _, id := range got {
						fmt.Fprintln(out, id)
					}
				}
			}
			if !wait {
				return nil
			}
			wctx := ctx
			if timeout > 0 {
				var cancel func()
				wctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			outcomes, err := c.Wait(wctx, ids...)
			printOutcomes(out, outcomes)
			return waitResult("task", outcomes, err, timeout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "node", "127.0.0.1:7070", "address of the node (host:port)")
	addSecurityFlags(f, &sec, clientTokenHelp)
	f.StringVar(&typ, "type", "echo", "task type")
	f.StringVar(&payload, "payload", "", "payload, or @file to read it from a file")
	f.Int32Var(&priority, "priority", messages.DefaultPriority, fmt.Sprintf("priority %d..%d (higher runs first)", messages.MinPriority, messages.MaxPriority))
	f.IntVar(&count, "count", 1, "how many copies of the task to submit (copies are duplicates and run once)")
	f.IntVar(&batch, "batch", 1000, "tasks per submit request")
	f.BoolVar(&stdin, "stdin", false, "one task per line of standard input (the line is the payload)")
	f.BoolVar(&wait, "wait", false, "wait for the outcomes and print them")
	f.BoolVar(&owners, "route-to-owners", false, "in a cluster, send each task straight to its partition's owner (and --wait to each task's holder) instead of through --node's router: saves a hop; a batch with several owners is then atomic per owner only")
	f.DurationVar(&timeout, "timeout", 0, "give up waiting after this long (0: no limit)")
	f.Int32Var(&attempts, "max-attempts", 0, "attempts before the task is dead (0: node default)")
	f.DurationVar(&runTimeout, "run-timeout", 0, "fail an attempt still running after this long, and retry it (0: the type's default on the node)")
	f.StringArrayVar(&reqList, "require", nil, "requirement key=constraint: label equality (os==linux) or a version constraint ('xcode=>= 15.0, < 16')")
	return cmd
}

func waitCmd() *cobra.Command {
	var (
		addr    string
		sec     cluster.Security
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "wait [ID...]",
		Short: "Wait for tasks (ids as arguments or one per line on standard input) and print their outcomes",
		Long: `Wait until every task given is finished (done, dead or cancelled) and print
a table of their outcomes: state, attempts, the task a duplicate is an alias
of, and the output or error. Ids are the arguments, or one per line of
standard input (what submit prints).

With --timeout, tasks still unfinished when it passes are printed with the
state they wait in (standby, queued, leased, failed, ...) and the command
says so and exits 3. A task that ended dead or cancelled exits 2.`,
		Example: `  shoal submit --type hash --count 3 | shoal wait
  shoal wait 17 18 --timeout 30s`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := taskIDs(args, cmd.InOrStdin())
			if err != nil {
				return err
			}
			conn, err := dialNode(addr, sec)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			outcomes, err := sdk.NewClient(conn).Wait(ctx, ids...)
			printOutcomes(cmd.OutOrStdout(), outcomes)
			return waitResult("task", outcomes, err, timeout)
		},
	}
	cmd.Flags().StringVar(&addr, "node", "127.0.0.1:7070", "address of the node (host:port)")
	addSecurityFlags(cmd.Flags(), &sec, clientTokenHelp)
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: no limit)")
	return cmd
}

// taskIDs reads task ids from args, or one per line of stdin when there are
// no args (what submit prints).
func taskIDs(args []string, stdin io.Reader) ([]uint64, error) {
	var ids []uint64
	parse := func(s string) error {
		var id uint64
		if _, err := fmt.Sscan(s, &id); err != nil || id == 0 {
			return fmt.Errorf("%q is not a task id", s)
		}
		ids = append(ids, id)
		return nil
	}
	for _, a := range args {
		if err := parse(a); err != nil {
			return nil, err
		}
	}
	if len(args) == 0 {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if t := strings.TrimSpace(sc.Text()); t != "" {
				if err := parse(t); err != nil {
					return nil, err
				}
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no task ids given")
	}
	return ids, nil
}

func printOutcomes(w io.Writer, outcomes []messages.Outcome) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tATTEMPTS\tALIAS OF\tOUTPUT / ERROR")
	for _, o := range outcomes {
		res := string(o.Output)
		if o.Error != "" {
			res = "error: " + o.Error
		}
		if o.Reason != "" {
			res = o.Reason
		}
		if len(res) > 80 && o.Reason == "" {
			res = res[:77] + "..."
		}
		alias := "-"
		if o.AliasOf != 0 {
			alias = fmt.Sprint(o.AliasOf)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", o.TaskID, o.State, o.Attempts, alias, res)
	}
	tw.Flush()
}

func statusCmd() *cobra.Command {
	var (
		addr   string
		sec    cluster.Security
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a node's queues, executors and counters",
		Long: `Show what a node holds: per priority class the queued and standby tasks;
each executor with its state, slots, leases, load and when it was last heard
from; tasks no executor can take (unplaceable); supervisor alerts; cluster
members; the node's counters; and every server of the cluster (native
workers, HTTP agents, host agents, cloud executors joined per address, with
CPU, memory, disk, processes, queue and when each last reported). --json prints the same as the HTTP API's
GET /v1/status (snake_case fields).`,
		Example: `  shoal status
  shoal status --node node1:7070 --json | jq .executors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := dialNode(addr, sec)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			client := sdk.NewClient(conn)
			st, err := client.Status(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printStatusJSON(out, st)
			}
			printStatus(out, st)
			printServers(out, client, ctx) // status_servers.go
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "node", "127.0.0.1:7070", "address of the node (host:port)")
	addSecurityFlags(cmd.Flags(), &sec, clientTokenHelp)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printStatus(w io.Writer, st *messages.Status) {
	fmt.Fprintf(w, "node %s\n\n", st.Node)
	printStatusPaused(w, st) // pause.go
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tQUEUED\tSTANDBY")
	for _, c := range st.Classes {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", c.Class, c.Queued, c.Standby)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "EXECUTOR\tSTATE\tSLOTS\tLEASES\tCPU\tMEM\tIO\tLAST SEEN")
	for _, e := range st.Executors {
		seen := "-"
		if e.LastSeen > 0 {
			seen = time.Since(time.UnixMilli(e.LastSeen)).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f%%\t%.0f%%\t%.0f%%\t%s\n", e.ID, executorState(e), e.Slots, e.Leases, e.Load.CPU*100, e.Load.Mem*100, e.Load.IO*100, seen)
	}
	printPlacement(tw, st)
	printAlerts(tw, st.Alerts)
	if len(st.Members) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "MEMBER\tGOSSIP\tREMOTE\tPARTITIONS\tQUEUED H/N/L\tSTANDBY\tEXECUTORS\tFREE SLOTS\tDRAIN/S")
		for _, m := range st.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d/%d/%d\t%d\t%d\t%d\t%.0f\n", m.Name, m.Gossip, m.Remote, m.Partitions,
				m.Queued[0], m.Queued[1], m.Queued[2], m.Standby, m.Executors, m.FreeSlots, m.DrainRate)
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "COUNTER\tVALUE")
	for _, k := range []string{"accepted", "done", "deduplicated", "retried", "dead", "cancelled", "expired", "stale", "granted", "leased", "evicted", "restarts", "alerts", "slept", "woken"} {
		fmt.Fprintf(tw, "%s\t%d\n", k, st.Counters[k])
	}
	printFlowCounters(tw, st.Counters)
	printCloudCounters(tw, st.Counters)
	tw.Flush()
}

// printStatusJSON prints status as GET /v1/status answers it: one JSON
// shape (snake_case) for the CLI and the API.
func printStatusJSON(w io.Writer, st *messages.Status) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(api.StatusJSON(st))
}
