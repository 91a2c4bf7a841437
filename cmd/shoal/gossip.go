package main

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/shoalrt/shoal/node/member"
)

// gossipFlags are the `shoal node` flags for cluster membership.
type gossipFlags struct {
	bind, join, key string
	fast            bool
	joinRetry       time.Duration
	steal           bool
}

// start joins the cluster when --gossip is set; it returns nil when gossip
// is off.
func (g gossipFlags) start(name, remote string, log *slog.Logger) (*member.Member, error) {
	if g.bind == "" {
		if g.join != "" || g.key != "" {
			return nil, fmt.Errorf("--join and --gossip-key need --gossip host:port")
		}
		return nil, nil
	}
	var key []byte
	if g.key != "" {
		k, err := base64.StdEncoding.DecodeString(g.key)
		if err != nil {
			return nil, fmt.Errorf("--gossip-key: not base64: %w", err)
		}
		key = k
	}
	var seeds []string
	for _, s := range strings.Split(g.join, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	return member.Join(member.Config{Name: name, Gossip: g.bind, Seeds: seeds, Key: key, Fast: g.fast, NoSteal: !g.steal, Logger: log, JoinRetry: g.joinRetry}, remote)
}
