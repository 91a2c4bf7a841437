package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func benchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bench",
		Short: "Run a benchmark workload (W1 …) against a real node",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("bench: not wired yet")
		},
	}
}
