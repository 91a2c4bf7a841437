package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/shoalrt/shoal/messages"
)

// version is the release this binary was built as; a release build sets it
// with -ldflags "-X main.version=v1.2.3". Otherwise it is the module
// version the Go toolchain recorded ("(devel)" for a build from a checkout).
var version = ""

// versionString names the release, the commit when the build recorded one,
// the wire protocol version and the Go toolchain.
func versionString() string {
	v, rev := version, ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	out := "shoal " + v
	if rev != "" {
		out += " (" + rev + ")"
	}
	return fmt.Sprintf("%s, protocol %d, %s %s/%s", out, messages.ProtocolVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the release, commit, wire protocol version and Go toolchain of this binary",
		Long: `Print the release this binary was built as (set with -ldflags
"-X main.version=..." or recorded by the Go toolchain), the commit when the
build recorded one, the wire protocol version it speaks (nodes, workers and
clients must agree on it) and the Go toolchain. shoal --version prints the same.`,
		Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionString())
		},
	}
}
