package api

import (
	"context"
	"net/http"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// readyz answers 200 {"status":"ready"} when Config.Ready finds the node
// serving, else 503 {"status":"not ready","reason":...}. It is public, like
// /healthz, so that container healthchecks need no token.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "no readiness check configured"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), min(s.cfg.AskTimeout, 5*time.Second))
	defer cancel()
	if err := s.cfg.Ready(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		writeError(w, messages.Errorf(messages.CodeNotFound, "metrics are not served by this API (shoal node serves them on --http)"))
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}
