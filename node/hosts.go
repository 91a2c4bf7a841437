package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shoalrt/shoal/hosts/bridge"
	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/sdk"
)

// HostsConfig turns on the bridge to host agents (docs/hosts.md): an
// in-process executor serving Types whose tasks become instructions in the
// table DSN names, run by `shoal host-agent` processes on the hosts.
type HostsConfig struct {
	// DSN names the instruction table: a postgres:// URL or a SQLite file
	// path. Empty: no bridge (the default).
	DSN string
	// Types are the host task types the bridge serves. Required with DSN.
	Types []string
	// Host, when set, targets every instruction at that host; empty: any
	// agent serving the type.
	Host string
	// Slots is how many host tasks may wait on instructions at once.
	// Default 256: a waiting task costs a goroutine, not a CPU.
	Slots int
	// Poll is how often the bridge reads results and reaps expired host
	// leases (PostgreSQL notifications wake it sooner). Default 200 ms.
	Poll time.Duration
	// ConnectTimeout bounds opening the table at start. Default 5 s.
	ConnectTimeout time.Duration
	// Table, when set, is the table's configuration (schema, pool, SQLite
	// watch interval...); its DSN is replaced by DSN. Nil: the defaults.
	Table *table.Config
}

// Validate names the first bad field; an empty DSN is valid (off).
func (c HostsConfig) Validate() error {
	if c.DSN == "" {
		return nil
	}
	switch {
	case len(c.Types) == 0:
		return errors.New("node: Hosts.Types is empty: name the host task types the bridge serves")
	case c.Slots < 0:
		return fmt.Errorf("node: Hosts.Slots must be >= 0 (0: 256), got %d", c.Slots)
	case c.Poll < 0 || c.ConnectTimeout < 0:
		return fmt.Errorf("node: Hosts.Poll (%v) and Hosts.ConnectTimeout (%v) must be >= 0 (0: default)", c.Poll, c.ConnectTimeout)
	}
	return nil
}

// hostsPart is the running bridge.
type hostsPart struct {
	tbl  table.Table
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// BridgeID is the executor id of a node's host bridge.
func BridgeID(node string) string { return node + "-hosts" }

// startHosts opens the table and runs the bridge's executor, when configured.
func (n *Node) startHosts(ctx context.Context) error {
	hc := n.cfg.Hosts
	if hc.DSN == "" {
		return nil
	}
	tcfg := table.DefaultConfig(hc.DSN)
	if hc.Table != nil {
		tcfg = *hc.Table
		tcfg.DSN = hc.DSN
	}
	if hc.ConnectTimeout > 0 {
		tcfg.ConnectTimeout = hc.ConnectTimeout
	}
	tbl, err := table.Open(ctx, tcfg)
	if err != nil {
		return fmt.Errorf("node: open the host instruction table: %w", err)
	}
	bcfg := bridge.DefaultConfig(n.cfg.Name, hc.Types...)
	bcfg.Host = hc.Host
	if hc.Poll > 0 {
		bcfg.Poll = hc.Poll
	}
	br, err := bridge.New(tbl, bcfg, n.cfg.Logger.With("part", "hosts"))
	if err != nil {
		_ = tbl.Close()
		return fmt.Errorf("node: %w", err)
	}
	slots := hc.Slots
	if slots == 0 {
		slots = 256
	}
	// An ordinary SDK worker: the dispatcher sees one more executor. No
	// load sampling: the node's own load says nothing about the hosts.
	w := sdk.NewWorker(sdk.Local(n.system), sdk.WorkerConfig{ID: BridgeID(n.cfg.Name), Slots: slots, Token: n.cfg.Token,
		Logger: n.cfg.Logger.With("part", "hosts"), NoLoad: true, Capabilities: map[string]string{"shoal.hosts": tbl.Backend()}})
	for _, t := range br.Types() {
		w.Handle(t, br.Handle)
	}
	rctx, stop := context.WithCancel(context.Background())
	n.hosts = &hostsPart{tbl: tbl, stop: func() { br.Leave(); stop() }}
	n.hosts.wg.Go(func() { _ = br.Run(rctx) })
	n.hosts.wg.Go(func() {
		if err := w.Run(rctx); err != nil {
			n.cfg.Logger.Error("host bridge executor stopped", "err", err)
		}
	})
	n.system.Root.Send(n.serversPID(), serversHosts{tbl: tbl}) // servers.go: the node-status table
	n.cfg.Logger.Info("host bridge started", "backend", tbl.Backend(), "types", hc.Types)
	return nil
}

// stopHosts stops the bridge (its waiting tasks' instructions are
// cancelled, and the tasks run again at the next start) and closes the table.
func (n *Node) stopHosts() {
	if n.hosts == nil {
		return
	}
	n.system.Root.Send(n.serversPID(), serversHosts{}) // servers.go: the table closes
	n.hosts.stop()
	n.hosts.wg.Wait()
	_ = n.hosts.tbl.Close()
}
