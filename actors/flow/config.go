package flow

import "fmt"

// Config tunes the flow runner.
type Config struct {
	// MaxActive bounds the flows running at once (submitting steps); more
	// wait in the runner, highest priority first. Default 20,000.
	MaxActive int
	// MaxFlows bounds the unfinished flows the runner holds (running and
	// waiting); past it RunFlows is refused with CodeOverloaded. Default
	// 200,000.
	MaxFlows int
	// MaxBatch bounds the steps of one Submit (at most the intake's
	// MaxBatch). Default 4,096.
	MaxBatch int
	// MaxSubmits bounds the step Submits waiting for their acknowledgement;
	// ready steps wait in the runner meanwhile and go out together. Default 4.
	MaxSubmits int
	// PlanCache bounds the compiled templates kept by their text. Default 1,024.
	PlanCache int
	// Classes are the intake's priority classes (set by the node).
	Classes Classes
	// Compile checks templates (known step types, retry bounds).
	Compile CompileOptions
	// TemplateDir, when set, is loaded at start (*.yaml, *.yml, *.json).
	TemplateDir string
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{MaxActive: 20_000, MaxFlows: 200_000, MaxBatch: 4096, MaxSubmits: 4, PlanCache: 1024,
		Classes: Classes{HighMin: 70, LowMax: 29}}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.MaxActive <= 0:
		return fmt.Errorf("flow: MaxActive must be > 0, got %d", c.MaxActive)
	case c.MaxFlows < c.MaxActive:
		return fmt.Errorf("flow: MaxFlows (%d) must be >= MaxActive (%d)", c.MaxFlows, c.MaxActive)
	case c.MaxBatch <= 0:
		return fmt.Errorf("flow: MaxBatch must be > 0, got %d", c.MaxBatch)
	case c.MaxSubmits <= 0:
		return fmt.Errorf("flow: MaxSubmits must be > 0, got %d", c.MaxSubmits)
	case c.PlanCache <= 0:
		return fmt.Errorf("flow: PlanCache must be > 0, got %d", c.PlanCache)
	}
	return nil
}
