package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckCmd asks a node's /readyz (or /healthz) and exits 0 only on
// 200: the Docker image is FROM scratch, with no curl for a HEALTHCHECK.
func healthcheckCmd() *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when a node's HTTP API answers ready (for container healthchecks)",
		Long: `healthcheck GETs --url (a node's /readyz by default) and exits 0 on 200,
1 otherwise, printing the answer. /readyz is ready once the node's store is
open and answers and, in a cluster, the node has joined; it needs no token.`,
		Example: `  shoal healthcheck --url http://127.0.0.1:8080/readyz`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("--url %q: %w", url, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck %s: %w", url, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			fmt.Fprintf(cmd.OutOrStdout(), "%d %s\n", resp.StatusCode, body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck %s: %s", url, resp.Status)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8080/readyz", "URL to GET (a node's /readyz or /healthz)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "bound on the request")
	return cmd
}
