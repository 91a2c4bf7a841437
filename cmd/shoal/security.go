package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/sdk"
)

// addSecurityFlags adds --tls-cert, --tls-key, --tls-ca and --token (each
// also SHOAL_TLS_CERT, ...) filling sec. tokenHelp says what the token does
// for this command.
func addSecurityFlags(f *pflag.FlagSet, sec *cluster.Security, tokenHelp string) {
	f.StringVar(&sec.CertFile, "tls-cert", "", "PEM certificate for mutual TLS of remote traffic (with --tls-key and --tls-ca; see docs/security.md)")
	f.StringVar(&sec.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&sec.CAFile, "tls-ca", "", "PEM CA certificate: peers must present a certificate it signed")
	f.StringVar(&sec.Token, "token", "", tokenHelp)
}

// clientTokenHelp is the --token help of commands that dial a node.
const clientTokenHelp = "token the node requires (shoal node --token)"

// dialNode connects a client or worker to the node at addr with sec; the
// probe in sdk.Dial makes a refused token or a TLS mismatch a clear error.
func dialNode(addr string, sec cluster.Security) (*sdk.Conn, error) {
	return sdk.Dial(addr, sdk.DialConfig{Logger: actorLogger(logger()), Security: sec})
}

func devCertsCmd() *cobra.Command {
	var (
		out   string
		hosts []string
		valid time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev-certs",
		Short: "Write a local CA and node and client certificates for mutual TLS (demos and tests)",
		Long: `Write a fresh local CA and two certificates it signs into --out:
ca.pem, ca-key.pem, node.pem, node-key.pem, client.pem, client-key.pem.
Both certificates can serve and dial (every shoal process does both) and name
localhost, 127.0.0.1, ::1 and every --host. Keys are written 0600. For demos,
tests and compose files: in production use your own CA and keep its key away
from the nodes.`,
		Example: `  shoal dev-certs --out ./certs --host node1 --host node2
  shoal node --tls-cert certs/node.pem --tls-key certs/node-key.pem --tls-ca certs/ca.pem --token s3cret
  shoal submit --tls-cert certs/client.pem --tls-key certs/client-key.pem --tls-ca certs/ca.pem --token s3cret --type echo --payload hi`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cluster.GenerateDevCerts(out, hosts, valid); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s in %s (names: localhost, 127.0.0.1, ::1 %s)\n",
				strings.Join(cluster.DevCertFiles, ", "), out, strings.Join(hosts, " "))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "shoal-certs", "directory to write the files to (created 0700)")
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "extra DNS name or IP the certificates name (repeat or comma-separate)")
	cmd.Flags().DurationVar(&valid, "valid", 365*24*time.Hour, "validity of the CA and the certificates")
	return cmd
}

// probePeers checks once that every member that appears accepts this node's
// credentials (cluster.Probe), so that a member started with another token
// or CA is reported at once in both logs instead of as forwards and steals
// timing out. A member that leaves and returns is probed again.
func probePeers(ctx context.Context, dir *route.Directory, sec cluster.Security, log *slog.Logger) {
	probed := map[string]bool{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		v := dir.View()
		live := map[string]bool{}
		for _, m := range v.Members {
			live[m.Name] = true
			if m.Name == v.Self || probed[m.Name] {
				continue
			}
			probed[m.Name] = true
			if err := cluster.Probe(ctx, m.Remote, sec); err != nil && ctx.Err() == nil {
				log.Error("a cluster member refuses this node's connection: tasks forwarded to it and work stolen from it will fail; members need one --token and certificates from one CA",
					"member", m.Name, "remote", m.Remote, "err", err)
			}
		}
		for name := range probed {
			if !live[name] {
				delete(probed, name)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
