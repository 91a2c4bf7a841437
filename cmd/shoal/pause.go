package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// shoal pause TYPE... | --class CLASS, shoal resume: hold task types and
// priority classes back from dispatch (docs/operations.md).

func pauseCmd() *cobra.Command {
	return pauseOrResumeCmd(false)
}

func resumeCmd() *cobra.Command {
	return pauseOrResumeCmd(true)
}

func pauseOrResumeCmd(resume bool) *cobra.Command {
	var (
		addr    string
		sec     cluster.Security
		classes []string
	)
	use, short, long := "pause [TYPE...]", "Hold task types or priority classes back from dispatch (their tasks stay queued)",
		`Nothing of the named task types and priority classes is granted until they are
resumed: their tasks stay durable and queued (standby once their class's queue
places are full), and leases already granted run on. The paused set is kept in
the node's store and survives a restart. Prints the paused set after the change.

  shoal pause thumbnail
  shoal pause --class low
  shoal resume thumbnail --class low`
	if resume {
		use, short, long = "resume [TYPE...]", "Let paused task types or priority classes be granted again",
			`Lets paused task types and priority classes be granted again and prints the
paused set after the change (see shoal pause).`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(classes) == 0 {
				return fmt.Errorf("name a task type or give --class high|normal|low")
			}
			conn, err := dialNode(addr, sec)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			c := sdk.NewClient(conn)
			call := c.Pause
			if resume {
				call = c.Resume
			}
			ack, err := call(ctx, args, classes)
			if err != nil {
				return err
			}
			printPaused(cmd.OutOrStdout(), ack.Types, ack.Classes, true)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "node", "127.0.0.1:7070", "address of the node (host:port)")
	cmd.Flags().StringSliceVar(&classes, "class", nil, "priority class: high, normal or low (repeat or comma-separate)")
	addSecurityFlags(cmd.Flags(), &sec, clientTokenHelp)
	return cmd
}

// printPaused prints the paused set (nothing when empty unless always).
func printPaused(w io.Writer, types, classes []string, always bool) {
	if len(types)+len(classes) == 0 {
		if always {
			fmt.Fprintln(w, "nothing paused")
		}
		return
	}
	if len(types) > 0 {
		fmt.Fprintf(w, "paused types: %s\n", strings.Join(types, ", "))
	}
	if len(classes) > 0 {
		fmt.Fprintf(w, "paused classes: %s\n", strings.Join(classes, ", "))
	}
}

// printStatusPaused adds the paused set to shoal status.
func printStatusPaused(w io.Writer, st *messages.Status) {
	if len(st.PausedTypes)+len(st.PausedClasses) > 0 {
		printPaused(w, st.PausedTypes, st.PausedClasses, false)
		fmt.Fprintln(w)
	}
}
