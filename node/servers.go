package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/servers"
)

// The servers view (S3.4, docs/servers.md). One actor, messages.ActorServers,
// owns the history: every Config.Servers.Resolution it gathers the node's
// executors (from the dispatcher, through Status), the host agents' rows of
// the node-status table and every other member's local view (a
// ServersRequest{Local} to its servers actor), joins them per server and
// records one sample per server. The gathering runs on a goroutine and
// comes back as a message; nothing is shared.

// NameServers is the servers actor.
const NameServers = messages.ActorServers

// HostStaleAfter marks a host agent whose node-status row is older than
// this "stale" in the view (its agent reports every 10 s by default).
const HostStaleAfter = time.Minute

// memberAsk bounds the wait for another member's view.
const memberAsk = 2 * time.Second

type (
	serversTick struct{}
	// gathered is one gathering's outcome.
	gathered struct {
		at          time.Time
		reports     []servers.Report
		unreachable []string
	}
	serversWaiter struct{ to *actor.PID }
	// serversHosts hands the actor the node-status table once the host
	// bridge is up (it starts after the actors).
	serversHosts struct{ tbl table.Table }
)

type serversActor struct {
	n         *Node
	tr        actorio.Transport
	hist      *servers.History
	view      *messages.Servers // the last cluster view
	gathering bool
	waiters   []serversWaiter
	timer     actorio.Timer
	hosts     table.Table // nil: no host bridge
}

func (n *Node) spawnServers(tr actorio.Transport, spawn func(*actor.Props, string) error) error {
	if err := n.cfg.Servers.Validate(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	h := servers.NewHistory(n.cfg.Servers)
	return spawn(actor.PropsFromProducer(func() actor.Actor { return &serversActor{n: n, tr: tr, hist: h} }), NameServers)
}

func (n *Node) serversPID() *actor.PID { return actor.NewPID(n.system.Address(), NameServers) }

func (a *serversActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		c.Send(c.Self(), serversTick{})
	case *actor.Stopping:
		a.timer.Stop()
	case serversHosts:
		a.hosts = m.tbl
	case serversTick:
		a.timer.Clear()
		a.gather(c)
	case gathered:
		a.gathering = false
		view := servers.Join(m.reports)
		a.hist.Record(m.at, view)
		a.view = &messages.Servers{Node: a.n.cfg.Name, At: m.at.UnixMilli(), Servers: view, Unreachable: m.unreachable}
		for _, w := range a.waiters {
			a.tr.Send(c, w.to, a.view)
		}
		a.waiters = nil
		a.timer.Arm(a.n.system, c.Self(), a.hist.Config().Resolution, serversTick{})
	case *messages.ServersRequest:
		a.request(c, m)
	}
}

// request answers a ServersRequest: a member's Local ask with a fresh local
// gathering, a history from the actor's own, and the cluster view from the
// last gathering when it is recent, else from the next one.
func (a *serversActor) request(c actor.Context, m *messages.ServersRequest) {
	to := c.Sender()
	if to == nil {
		return
	}
	cfg := a.hist.Config()
	switch {
	case m.History != "":
		out := &messages.Servers{Node: a.n.cfg.Name, At: a.n.cfg.Now().UnixMilli(), ResolutionMillis: cfg.Resolution.Milliseconds(), Keep: int32(cfg.Keep)}
		if s, ok := a.hist.Samples(m.History); ok {
			out.History = s
		} else {
			out.Err = messages.Errorf(messages.CodeNotFound, "server %q: no history on %s (GET /v1/servers lists the ids)", m.History, a.n.cfg.Name)
		}
		a.tr.Send(c, to, out)
	case m.Local:
		n, tr, root, hosts := a.n, a.tr, a.n.system.Root, a.hosts
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), memberAsk)
			defer cancel()
			tr.Send(root, to, &messages.Servers{Node: n.cfg.Name, At: n.cfg.Now().UnixMilli(), Servers: servers.Join(n.localReports(ctx, hosts))})
		}()
	case a.view != nil && a.n.cfg.Now().Sub(time.UnixMilli(a.view.At)) < min(time.Second, cfg.Resolution):
		a.tr.Send(c, to, a.view)
	default:
		a.waiters = append(a.waiters, serversWaiter{to: to})
		a.gather(c)
	}
}

// gather starts a gathering unless one runs.
func (a *serversActor) gather(c actor.Context) {
	if a.gathering {
		return
	}
	a.gathering = true
	a.timer.Stop()
	n, self, hosts := a.n, c.Self(), a.hosts
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), memberAsk+time.Second)
		defer cancel()
		g := n.gatherServers(ctx, hosts)
		n.system.Root.Send(self, g)
	}()
}

// gatherServers collects this node's reports and every other member's.
func (n *Node) gatherServers(ctx context.Context, hosts table.Table) gathered {
	g := gathered{reports: n.localReports(ctx, hosts)}
	if n.cfg.Members != nil && n.codec != nil {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, m := range n.cfg.Members() {
			if m.Name == n.cfg.Name || m.Remote == "" {
				continue
			}
			wg.Go(func() {
				rs, ok := n.memberReports(m.Remote)
				mu.Lock()
				defer mu.Unlock()
				if !ok {
					g.unreachable = append(g.unreachable, m.Name)
					return
				}
				g.reports = append(g.reports, rs...)
			})
		}
		wg.Wait()
	}
	g.at = n.cfg.Now()
	return g
}

// memberReports asks a member for its local view and unjoins it (the
// join runs again over the whole cluster).
func (n *Node) memberReports(remote string) ([]servers.Report, bool) {
	f, err := n.codec.RequestFuture(n.system.Root, actor.NewPID(remote, NameServers), &messages.ServersRequest{Local: true}, memberAsk)
	if err != nil {
		return nil, false
	}
	res, err := n.codec.Result(f)
	v, ok := res.(*messages.Servers)
	if err != nil || !ok {
		return nil, false
	}
	var out []servers.Report
	for _, s := range v.Servers {
		for _, e := range s.Executors {
			host := ""
			if e.Kind == messages.ServerKindHost {
				host = s.Host
			}
			out = append(out, servers.Report{ServerExecutor: e, Host: host})
		}
	}
	return out, true
}

// localReports are this node's executors (the dispatcher's, the cloud
// actor's still provisioning) and the host agents' node-status rows.
func (n *Node) localReports(ctx context.Context, hosts table.Table) []servers.Report {
	var out []servers.Report
	name := n.cfg.Name
	if st, err := n.Status(ctx); err == nil {
		seen := map[string]bool{}
		for _, e := range st.Executors {
			seen[e.ID] = true
			if e.ID == BridgeID(name) {
				continue // its hosts are in the node-status table
			}
			kind := messages.ServerKindWorker
			switch {
			case e.Cloud:
				kind = messages.ServerKindCloud
			case e.Kind != "":
				kind = e.Kind
			}
			l := e.Load
			out = append(out, servers.Report{ServerExecutor: messages.ServerExecutor{ID: e.ID, Kind: kind, Node: name,
				CPU: l.CPU, Mem: l.Mem, IO: l.IO, Disk: l.Disk, Procs: l.Procs, IP: l.IP,
				Queue: e.Leases, Slots: e.Slots, State: e.State, At: e.LastSeen}})
		}
		for _, c := range st.Cloud {
			if !seen[c.ID] { // provisioned, not registered yet: no resources
				out = append(out, servers.Report{ServerExecutor: messages.ServerExecutor{ID: c.ID, Kind: messages.ServerKindCloud,
					Node: name, State: c.State, At: c.Since}})
			}
		}
	}
	if hosts != nil {
		rows, err := hosts.Statuses(ctx)
		if err != nil {
			n.cfg.Logger.Warn("servers: read the node-status table", "err", err)
		}
		now := n.cfg.Now()
		for _, h := range rows {
			state := messages.ExecActive
			if now.Sub(h.Reported) > HostStaleAfter {
				state = "stale"
			}
			out = append(out, servers.Report{Host: h.Host, ServerExecutor: messages.ServerExecutor{ID: h.Host, Kind: messages.ServerKindHost,
				Node: name, CPU: h.CPU, Mem: h.Mem, Disk: h.Disk, Procs: int32(h.Procs), IP: h.IP, Queue: int32(h.Running),
				State: state, At: h.Reported.UnixMilli()}})
		}
	}
	return out
}

// Servers is the servers view as a local client gets it (tests, tools).
func (n *Node) Servers(ctx context.Context, req *messages.ServersRequest) (*messages.Servers, error) {
	res, err := n.system.Root.RequestFuture(n.serversPID(), req, timeoutOf(ctx)).Result()
	if err != nil {
		return nil, err
	}
	v, _ := res.(*messages.Servers)
	if v == nil {
		return nil, messages.Errorf(messages.CodeInternal, "servers: unexpected answer %T", res)
	}
	if v.Err != nil {
		return v, v.Err
	}
	return v, nil
}
