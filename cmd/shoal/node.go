package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/spf13/cobra"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/cluster/steal"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
)

func nodeCmd() *cobra.Command {
	var (
		dir, listen, name, advertise string
		sec                          cluster.Security
		storeURL                     string
		capacity                     int
		standby                      int64
		window, lease, retention     time.Duration
		attempts                     int32
		maxLoad                      float64
		gossip                       gossipFlags
		cfgSteal                     steal.Config
		api                          httpFlags
		flows                        flowFlags
		sup                          supervisionFlags
		cloudF                       cloudFlags
		storeF                       storeFlags
		hosts                        hostsFlags
		serversF                     serversFlags
		limits                       limitFlags
		configFile                   string
		printCfg                     bool
		timeouts                     timeoutFlags
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a shoal node (task store, queues, dispatcher) until interrupted",
		Long: `Run a shoal node. It keeps its tasks in a Pebble store in --data (by
default the per-user $XDG_DATA_HOME/shoal, else ~/.local/share/shoal; or in
PostgreSQL with --store postgres://...), accepts
clients and workers on --listen (protoactor remote), and runs until SIGINT or
SIGTERM. Acknowledged tasks survive a crash: on restart every unfinished task
is queued again.

Every flag can also be set as SHOAL_<FLAG> (e.g. SHOAL_DATA, SHOAL_LISTEN)
or in a YAML file given with --config, whose keys are the flag names:

  data: /var/lib/shoal
  listen: 127.0.0.1:7070
  retry-base: 500ms
  digest-fields: ["resize=url,size"]

The command line wins over the environment, which wins over the file.
--print-config prints the settings in force in that format and exits.`,
		Example: `  shoal node --data /var/lib/shoal --listen 127.0.0.1:7070
  shoal node --config /etc/shoal/node.yaml --print-config
  shoal worker --node 127.0.0.1:7070 --types noop,hash`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logger()
			var err error
			cfg := node.DefaultConfig(dir)
			cfg.Name, cfg.Token, cfg.Logger = name, sec.Token, log
			cfg.Store = storeURL
			if cfg.Pebble, err = storeF.options(); err != nil {
				return err
			}
			cfg.Dispatch.Capacity = [messages.NumClasses]int{capacity, capacity, capacity}
			cfg.Dispatch.LeaseTTL, cfg.Dispatch.MaxLoad = lease, maxLoad
			cfg.Intake.StandbyLimit, cfg.Intake.DefaultMaxAttempts = standby, attempts
			cfg.Dedupe.Window, cfg.ResultRetention = window, retention
			cfg.Steal.MinDepth = cfgSteal.MinDepth
			flows.apply(&cfg)
			if err := hosts.apply(&cfg); err != nil {
				return err
			}
			if err := serversF.apply(&cfg); err != nil {
				return err
			}
			if err := limits.apply(&cfg); err != nil {
				return err
			}
			if err := timeouts.apply(&cfg); err != nil { // timeout_flags.go
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if _, err := api.config(); err != nil {
				return err
			}
			if printCfg {
				return printConfig(cmd.OutOrStdout(), cmd.Flags())
			}
			peers := &peerSet{}
			system, codec, shutdown, err := listenSystem(listen, advertise, sec, log, peers)
			if err != nil {
				return err
			}
			defer shutdown()
			if err := sup.apply(&cfg, system.Address(), sec); err != nil {
				return err
			}
			mem, err := gossip.start(name, system.Address(), log)
			if err != nil {
				return err
			}
			if mem != nil {
				defer func() { _ = mem.Leave() }()
				mem.Configure(&cfg)
				peers.watch(mem.Directory())
			}
			if err := cloudF.apply(&cfg, system.Address(), sec); err != nil {
				return err
			}
			n, err := node.Start(cmd.Context(), cfg, system, codec)
			if err != nil {
				return err
			}
			apiDone, err := api.start(cmd.Context(), system, n, cmd.OutOrStdout(), log)
			if err != nil {
				_ = n.Stop()
				return err
			}
			if mem != nil {
				go mem.Run(cmd.Context(), n)
				go probePeers(cmd.Context(), mem.Directory(), sec, log)
				fmt.Fprintf(cmd.OutOrStdout(), "shoal node %s gossiping on %s\n", name, mem.Addr())
			}
			// The line scripts and tests wait for: the address to dial.
			where := dir
			if storeURL != "" {
				where = "postgres" // not the URL: it may hold a password
			}
			fmt.Fprintf(cmd.OutOrStdout(), "shoal node %s listening on %s (data %s)\n", name, system.Address(), where)
			<-cmd.Context().Done()
			log.Info("node stopping")
			if apiDone != nil {
				<-apiDone
			}
			return n.Stop()
		},
	}
	d := node.DefaultConfig("")
	f := cmd.Flags()
	f.StringVar(&dir, "data", defaultDataDir(), "directory of the node's Pebble task store; per user: $XDG_DATA_HOME/shoal, else ~/.local/share/shoal")
	f.StringVar(&storeURL, "store", "", "task store: empty for Pebble in --data, or a postgres:// URL (schema \"shoal\", created if missing)")
	f.StringVar(&listen, "listen", "127.0.0.1:7070", "host:port for clients and workers (port 0: any free port)")
	f.StringVar(&name, "name", d.Name, "node name shown in status")
	f.StringVar(&advertise, "advertise", "", "host:port other nodes, clients and workers reach --listen at, when it differs (e.g. --listen 0.0.0.0:7070 --advertise node1:7070)")
	addSecurityFlags(f, &sec, "token required on every remote connection (clients, workers, other nodes) and sent to peers; members share one (empty: none)")
	f.IntVar(&capacity, "queue-capacity", d.Dispatch.Capacity[0], "places in each priority class's queue; past it tasks wait in standby in the store")
	f.Int64Var(&standby, "standby-limit", d.Intake.StandbyLimit, "standby tasks past which submissions are refused as overloaded")
	f.DurationVar(&window, "dedupe-window", d.Dedupe.Window, "how long a finished task absorbs duplicates")
	f.DurationVar(&lease, "lease-ttl", d.Dispatch.LeaseTTL, "how long a silent executor keeps its leases")
	f.DurationVar(&retention, "retention", d.ResultRetention, "how long results are kept")
	f.Int32Var(&attempts, "max-attempts", d.Intake.DefaultMaxAttempts, "default attempts per task before it is dead")
	f.Float64Var(&maxLoad, "max-load", d.Dispatch.MaxLoad, "executor load (0..1) up to which work is prefetched beyond free slots")
	f.StringVar(&configFile, "config", "", "YAML file of settings: keys are these flags' names (see above); flags and SHOAL_* win over it")
	f.BoolVar(&printCfg, "print-config", false, "print the settings in force (as a --config file, secrets not shown) and exit")
	limits.add(f)
	storeF.add(f)
	flows.add(f)
	hosts.add(f)
	serversF.add(f)
	timeouts.add(f)
	sup.add(f)
	cloudF.add(f)
	f.StringVar(&gossip.bind, "gossip", "", "host:port for cluster membership gossip (empty: a single node). Members route tasks by partition owner (see docs/cluster.md)")
	f.StringVar(&gossip.join, "join", "", "comma-separated gossip addresses of members to join")
	f.DurationVar(&gossip.joinRetry, "join-retry", 0, "keep retrying --join for this long while no seed answers (nodes starting in any order), then re-join seeds every 5 s while members are missing (heals long partitions); 0: fail at once")
	f.StringVar(&gossip.key, "gossip-key", "", "base64 AES key (16, 24 or 32 bytes) encrypting gossip; members without it cannot join")
	api.add(f)
	f.BoolVar(&gossip.fast, "gossip-fast", false, "failure detection tuned for one machine or LAN (~1 s instead of ~5 s)")
	f.BoolVar(&gossip.steal, "steal", true, "in a cluster, lease work from the most loaded peer when this node's queues are empty and its executors have free slots")
	f.Int64Var(&cfgSteal.MinDepth, "steal-min-depth", d.Steal.MinDepth, "queued tasks a peer must report before an idle node steals from it")
	return cmd
}

// listenSystem starts an actor system with remote on listen (host:port),
// reachable at advertise (empty: listen's address), secured by sec.
// Reconnects to addresses other than peers' are logged at debug (nil: no
// peers).
func listenSystem(listen, advertise string, sec cluster.Security, log *slog.Logger, peers *peerSet) (*actor.ActorSystem, *cluster.Codec, func(), error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--listen %q: want host:port: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--listen %q: bad port: %w", listen, err)
	}
	opts, err := sec.RemoteOptions()
	if err != nil {
		return nil, nil, nil, err
	}
	if advertise != "" {
		if _, _, err := net.SplitHostPort(advertise); err != nil {
			return nil, nil, nil, fmt.Errorf("--advertise %q: want host:port: %w", advertise, err)
		}
		opts = append(opts, remote.WithAdvertisedHost(advertise))
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && (!sec.TLS() || sec.Token == "") {
		log.Warn("remote listener reachable from other machines without TLS and a token: anyone who reaches it can submit, cancel and run tasks (see docs/security.md)",
			"listen", listen, "tls", sec.TLS(), "token", sec.Token != "")
	}
	alog := nodeActorLogger(log, peers)
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return alog }))
	r, err := cluster.StartRemote(system, host, port, log, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	return system, cluster.NewCodec(messages.Default()), func() { r.Shutdown(true) }, nil
}

// defaultDataDir is the node's default --data: a per-user absolute
// directory ($XDG_DATA_HOME/shoal, else ~/.local/share/shoal), so that a
// node started from another directory finds its tasks again.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "shoal")
	}
	if h, err := os.UserHomeDir(); err == nil && filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "share", "shoal")
	}
	return filepath.Join(os.TempDir(), "shoal-data")
}
