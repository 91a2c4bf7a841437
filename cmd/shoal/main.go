// Command shoal is the single binary of the shoal task runtime: a node, a
// worker, a client (submit, status), the demo and the benchmarks.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "shoal:", err)
		os.Exit(1)
	}
}

var logLevel string

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "shoal",
		Short: "shoal is a distributed task runtime built as an actor system",
		Long: `shoal takes tasks in durably, removes duplicates, queues them by priority
and hands them to executors in amounts that fit each executor's live load.

Start with:  shoal demo`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags())
		},
	}
	cmd.PersistentFlags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error (env SHOAL_LOG_LEVEL)")
	cmd.AddCommand(nodeCmd(), workerCmd(), hostAgentCmd(), submitCmd(), waitCmd(), statusCmd(), drainCmd(), demoCmd(), benchCmd(), flowCmd(), devCertsCmd(), planCmd())
	return cmd
}

// applyEnv fills every flag the user did not set from SHOAL_<FLAG_NAME>
// (dashes become underscores): flags win over the environment.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "SHOAL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment %s=%q: %w", name, v, e)
			}
		}
	})
	return err
}

func logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
		lvl = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}
