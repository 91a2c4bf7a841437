package api

import (
	"net/http"

	"github.com/shoalrt/shoal/messages"
)

// Executors (docs/supervision.md): drain one.

type drainIn struct {
	// Undo makes a draining executor active again.
	Undo bool `json:"undo,omitempty"`
}

type drainOut struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Leases int32  `json:"leases"`
}

// POST /v1/executors/{id}/drain: stop granting the executor work; its
// running tasks finish.
func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	var in drainIn
	if r.ContentLength != 0 {
		if e := decode(r, &in); e != nil {
			writeError(w, e)
			return
		}
	}
	id := r.PathValue("id")
	ack, err := s.client.Drain(r.Context(), id, in.Undo)
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, drainOut{ID: id, State: ack.State, Leases: ack.Leases})
}
