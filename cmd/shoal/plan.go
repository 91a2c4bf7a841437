package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/planner"
	"github.com/shoalrt/shoal/sdk"
)

// planInput is what `shoal plan` reads.
type planInput struct {
	Tasks []struct {
		planner.Task
		Type    string `json:"type,omitempty"`
		Payload string `json:"payload,omitempty"`
	} `json:"tasks"`
	Executors []planner.Executor `json:"executors,omitempty"`
}

func planCmd() *cobra.Command {
	var (
		addr, file, typ string
		submit, asJSON  bool
		sec             cluster.Security
	)
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Plan a batch of sized tasks onto executors, minimising the makespan; optionally submit it pinned",
		Long: `Read a JSON batch {"tasks": [{"id", "size", "type", "payload"}], "executors":
[{"id", "backlog"}]} and print the assignment that minimises the makespan (the
latest finish): longest-processing-time first, then local moves and swaps
(docs/supervision.md). Sizes and backlogs share one unit. Without "executors",
the node's registered executors are used, with their estimated backlog per
slot in seconds. --submit then submits every task pinned to its executor
(TaskSpec.Pin) with its size, and prints the task ids.`,
		Example: `  echo '{"tasks":[{"id":"a","size":20},{"id":"b","size":40},{"id":"c","size":40},{"id":"d","size":60}],
         "executors":[{"id":"s1","backlog":10},{"id":"s2","backlog":40},{"id":"s3","backlog":60}]}' | shoal plan`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r io.Reader = cmd.InOrStdin()
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			var in planInput
			dec := json.NewDecoder(r)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				return fmt.Errorf("reading the batch: %w", err)
			}
			tasks := make([]planner.Task, len(in.Tasks))
			for i, t := range in.Tasks {
				tasks[i] = t.Task
				if tasks[i].ID == "" {
					tasks[i].ID = fmt.Sprint(i)
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			var client *sdk.Client
			if submit || len(in.Executors) == 0 {
				conn, err := dialNode(addr, sec)
				if err != nil {
					return err
				}
				defer conn.Close()
				client = sdk.NewClient(conn)
			}
			if len(in.Executors) == 0 {
				st, err := client.Status(ctx)
				if err != nil {
					return err
				}
				in.Executors = planner.FromStatus(st.Executors)
			}
			p, err := planner.Solve(tasks, in.Executors)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var ids []uint64
			if submit {
				specs := make([]messages.TaskSpec, len(in.Tasks))
				for i, t := range in.Tasks {
					if t.Type == "" {
						t.Type = typ
					}
					specs[i] = messages.TaskSpec{Type: t.Type, Payload: []byte(t.Payload), Priority: messages.DefaultPriority,
						Size: t.Size, Pin: p.Assignments[i].Executor}
				}
				if ids, err = client.SubmitBatch(ctx, specs); err != nil {
					return fmt.Errorf("submitting the plan: %w", err)
				}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					planner.Plan
					IDs []uint64 `json:"ids,omitempty"`
				}{p, ids})
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TASK\tEXECUTOR\tSTART\tFINISH\tID")
			for i, a := range p.Assignments {
				id := "-"
				if ids != nil {
					id = fmt.Sprint(ids[i])
				}
				fmt.Fprintf(tw, "%s\t%s\t%g\t%g\t%s\n", a.Task, a.Executor, a.Start, a.Finish, id)
			}
			tw.Flush()
			fmt.Fprintf(out, "makespan %g (longest-processing-time first alone: %g)\n", p.Makespan, p.LPTMakespan)
			return nil
		},
	}
	f := cmd.Flags()
	addSecurityFlags(f, &sec, clientTokenHelp)
	f.StringVar(&addr, "node", "127.0.0.1:7070", "address of the node (for --submit, and for executors when the batch names none)")
	f.StringVarP(&file, "file", "f", "-", "JSON batch to read (- for standard input)")
	f.BoolVar(&submit, "submit", false, "submit the tasks pinned to their planned executors")
	f.StringVar(&typ, "type", "sleep", "task type for --submit when a task names none")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
