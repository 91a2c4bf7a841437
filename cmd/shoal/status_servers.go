package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
	"github.com/shoalrt/shoal/servers"
)

// serversFlags are `shoal node`'s servers view flags (docs/servers.md).
type serversFlags struct{ cfg servers.Config }

func (s *serversFlags) add(f *pflag.FlagSet) {
	d := servers.DefaultConfig()
	s.cfg = d
	f.DurationVar(&s.cfg.Resolution, "servers-resolution", d.Resolution, "servers view: how often every server's resources are gathered, and the history's resolution")
	f.IntVar(&s.cfg.Keep, "servers-keep", d.Keep, "servers view: history samples kept per server (the default keeps 6 h at 10 s, 84 KiB a server)")
	f.IntVar(&s.cfg.MaxServers, "servers-max", d.MaxServers, "servers view: servers with a history at most (the least recently seen is dropped)")
}

func (s *serversFlags) apply(cfg *node.Config) error {
	s.cfg.Forget = 0 // Resolution × Keep
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("--servers-*: %w", err)
	}
	cfg.Servers = s.cfg
	return nil
}

// printServers prints the servers view (docs/servers.md) under status. A
// node without it (older) prints nothing.
func printServers(w io.Writer, c *sdk.Client, ctx context.Context) {
	v, err := c.Servers(ctx)
	if err != nil {
		fmt.Fprintf(w, "\nservers: %v\n", err)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SERVER\tHOST\tCPU\tMEM\tDISK\tPROCS\tQUEUE\tEXECUTORS\tNODES\tREPORTED")
	for _, s := range v.Servers {
		var ex []string
		for _, e := range s.Executors {
			ex = append(ex, e.Kind+":"+e.ID)
		}
		host := s.Host
		if host == "" {
			host = "-"
		}
		seen := "-"
		if s.At > 0 {
			seen = time.Since(time.UnixMilli(s.At)).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f%%\t%.0f%%\t%.0f%%\t%d\t%d\t%s\t%s\t%s\n", s.ID, host, s.CPU*100, s.Mem*100, s.Disk*100, s.Procs,
			s.Queue, strings.Join(ex, ","), strings.Join(s.Nodes, ","), seen)
	}
	if len(v.Unreachable) > 0 {
		fmt.Fprintf(tw, "(members not answering: %s)\n", strings.Join(v.Unreachable, ", "))
	}
	tw.Flush()
}
