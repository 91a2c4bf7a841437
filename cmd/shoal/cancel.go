package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/sdk"
)

func cancelCmd() *cobra.Command {
	var (
		addr string
		sec  cluster.Security
	)
	cmd := &cobra.Command{
		Use:   "cancel [ID...]",
		Short: "Cancel tasks (ids as arguments or one per line on standard input) and print their outcomes",
		Long: `Cancel tasks and print what became of each: cancelled, or the state it had
already finished in (done, dead, cancelled), or unknown for an id the node
never accepted. A task waiting in standby is cancelled durably before the
answer; a queued or running task is cancelled at once (a running handler's
context is cancelled; shoal wait shows the final state). Cancelling one
submission of duplicated work leaves the work running for the others.
Ids are the arguments, or one per line of standard input (what submit prints).`,
		Example: `  shoal cancel 17 18
  shoal submit --type hash --count 3 | shoal cancel`,
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
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			outcomes, err := sdk.NewClient(conn).Cancel(ctx, ids...)
			printOutcomes(cmd.OutOrStdout(), outcomes)
			if err != nil {
				return fmt.Errorf("cancel: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "node", "127.0.0.1:7070", "address of the node (host:port)")
	addSecurityFlags(cmd.Flags(), &sec, clientTokenHelp)
	return cmd
}
