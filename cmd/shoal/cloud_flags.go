package main

import (
	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/actors/cloud"
	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/node"
)

// cloudFlags are `shoal node`'s cloud spill flags (docs/supervision.md).
type cloudFlags struct {
	cfg                   cloud.Config
	script, image, logDir string
}

func (c *cloudFlags) add(f *pflag.FlagSet) {
	d := cloud.DefaultConfig()
	c.cfg = d
	f.StringVar(&c.cfg.Provider, "cloud", "", "cloud spill provider: process (starts shoal worker --cloud children), docker (containers of --cloud-image), exec (--cloud-script); empty: off")
	f.IntVar(&c.cfg.MaxExecutors, "cloud-max", d.MaxExecutors, "cloud executors at most at once")
	f.IntVar(&c.cfg.MaxPerHour, "cloud-max-rate", d.MaxPerHour, "cloud executors provisioned at most per hour (spend rate)")
	f.DurationVar(&c.cfg.Grace, "cloud-grace", d.Grace, "how long tasks stay unplaceable, or executors saturated, before a cloud executor is asked for")
	f.DurationVar(&c.cfg.Idle, "cloud-idle", d.Idle, "how long a cloud executor may hold no task before it is released")
	f.Float64Var(&c.cfg.Saturation, "cloud-saturation", d.Saturation, "queued tasks per free slot above which executors count as saturated")
	f.DurationVar(&c.cfg.ProvisionTimeout, "cloud-provision-timeout", d.ProvisionTimeout, "how long a cloud executor has to register before it is released as failed")
	f.IntVar(&c.cfg.Slots, "cloud-slots", d.Slots, "slots of each cloud executor")
	f.StringToStringVar(&c.cfg.Capabilities, "cloud-cap", nil, "capability cloud executors offer (repeatable), e.g. --cloud-cap gpu=a100 --cloud-cap os=linux")
	f.StringVar(&c.script, "cloud-script", "", "exec provider: script that gets a JSON request on stdin (see docs/supervision.md)")
	f.StringVar(&c.image, "cloud-image", "shoal:dev", "docker provider: image to run (make image builds shoal:dev)")
	f.StringVar(&c.logDir, "cloud-log-dir", "", "process provider: directory for each cloud worker's output (empty: discarded)")
}

// apply sets the node's cloud config and provider; addr is the node's
// remote address the cloud workers dial, with the node's TLS files and
// token.
func (c *cloudFlags) apply(cfg *node.Config, addr string, sec cluster.Security) error {
	cfg.Cloud = c.cfg
	if err := c.cfg.Validate(); err != nil {
		return err
	}
	p, err := cloud.NewProvider(c.cfg, cloud.Target{Node: addr, Token: sec.Token,
		TLSCert: sec.CertFile, TLSKey: sec.KeyFile, TLSCA: sec.CAFile}, c.script, c.image, c.logDir)
	if err != nil {
		return err
	}
	cfg.CloudProvider = p
	return nil
}
