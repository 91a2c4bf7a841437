package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/node"
)

// timeoutFlags are the node's per-type durations: run timeouts for tasks
// that name none (request.Config.Timeouts and DefaultTimeout;
// docs/operations.md) and dedupe windows (dedupe.Config.TypeWindows).
type timeoutFlags struct {
	perType map[string]string
	def     time.Duration
	windows map[string]string
}

func (tf *timeoutFlags) add(f *pflag.FlagSet) {
	f.StringToStringVar(&tf.windows, "dedupe-window-type", nil, "how long a finished task of a type absorbs duplicates, instead of --dedupe-window (repeatable; 0s: none), e.g. --dedupe-window-type report=24h")
	f.StringToStringVar(&tf.perType, "task-timeout", nil, "run timeout of a task type's attempts when a task names none (repeatable), e.g. --task-timeout resize=30s")
	f.DurationVar(&tf.def, "default-task-timeout", 0, "run timeout of tasks whose type has no --task-timeout and that name none (0: none)")
}

func (tf *timeoutFlags) apply(cfg *node.Config) error {
	for typ, s := range tf.windows {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return fmt.Errorf("--dedupe-window-type %s=%s: want a duration >= 0 such as 24h", typ, s)
		}
		if cfg.Dedupe.TypeWindows == nil {
			cfg.Dedupe.TypeWindows = map[string]time.Duration{}
		}
		cfg.Dedupe.TypeWindows[typ] = d
	}
	cfg.Intake.DefaultTimeout = tf.def
	if len(tf.perType) == 0 {
		return nil
	}
	cfg.Intake.Timeouts = make(map[string]time.Duration, len(tf.perType))
	for typ, s := range tf.perType {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("--task-timeout %s=%s: want a positive duration such as 30s", typ, s)
		}
		cfg.Intake.Timeouts[typ] = d
	}
	return nil
}
