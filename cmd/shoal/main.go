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
	err := root().ExecuteContext(ctx)
	stop()
	exit(err)
}

// logLevel is --log-level, checked by levelValue: debug, info, warn or error.
var logLevel string

// levelValue is the --log-level flag: an unknown level is an error naming
// the allowed ones (it was taken as warn).
type levelValue struct{ s *string }

func (v levelValue) String() string { return *v.s }
func (v levelValue) Type() string   { return "level" }
func (v levelValue) Set(s string) error {
	switch l := strings.ToLower(strings.TrimSpace(s)); l {
	case "debug", "info", "warn", "error":
		*v.s = l
		return nil
	case "warning":
		*v.s = "warn"
		return nil
	}
	return fmt.Errorf("%q is not a log level: use one of debug, info, warn, error", s)
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "shoal",
		Short: "shoal is a distributed task runtime built as an actor system",
		Long: `shoal takes tasks in durably, removes duplicates, queues them by priority
and hands them to executors in amounts that fit each executor's live load.

Start with:  shoal demo

Exit status: 0 success; 1 an error (bad flags, node unreachable, request
refused); 2 a task or flow waited for (submit --wait, wait, flow run --wait)
ended dead, failed or cancelled; 3 --timeout passed before it finished.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			if f := cmd.Flags().Lookup("config"); f != nil && f.Value.String() != "" {
				return applyConfigFile(cmd.Flags(), f.Value.String())
			}
			return nil
		},
	}
	logLevel = "warn"
	cmd.PersistentFlags().Var(levelValue{&logLevel}, "log-level", "log level: debug, info, warn or error (env SHOAL_LOG_LEVEL)")
	cmd.AddCommand(nodeCmd(), workerCmd(), hostAgentCmd(), submitCmd(), waitCmd(), statusCmd(), drainCmd(), demoCmd(), benchCmd(), flowCmd(), devCertsCmd(), planCmd())
	cmd.AddCommand(pauseCmd(), resumeCmd())   // pause.go
	cmd.AddCommand(versionCmd(), cancelCmd()) // version.go, cancel.go
	cmd.AddCommand(healthcheckCmd())          // healthcheck.go
	cmd.Version = versionString()
	cmd.SetVersionTemplate("{{.Version}}\n")
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
	_ = lvl.UnmarshalText([]byte(logLevel)) // checked by levelValue
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}
