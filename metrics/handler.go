package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoalrt/shoal/node"
)

// Handler serves the node's metrics in the Prometheus exposition format,
// with the Go runtime's and the process's (a registry of its own: no
// package-level state).
func Handler(n *node.Node, cfg Config) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(n, cfg), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
