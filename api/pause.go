package api

import (
	"net/http"

	"github.com/shoalrt/shoal/messages"
)

// Pause and resume (docs/operations.md): hold task types and priority
// classes back from dispatch.

type pauseIn struct {
	Types   []string `json:"types,omitempty"`
	Classes []string `json:"classes,omitempty"`
}

type pausedOut struct {
	Types   []string `json:"types"`
	Classes []string `json:"classes"`
}

// POST /v1/pause: nothing of the named types and classes is granted until
// they are resumed; the answer is the paused set after the change, once
// durable.
func (s *Server) pause(w http.ResponseWriter, r *http.Request) { s.pauseOrResume(w, r, false) }

// POST /v1/resume: let paused types and classes be granted again.
func (s *Server) resume(w http.ResponseWriter, r *http.Request) { s.pauseOrResume(w, r, true) }

func (s *Server) pauseOrResume(w http.ResponseWriter, r *http.Request, resume bool) {
	var in pauseIn
	if e := decode(r, &in); e != nil {
		writeError(w, e)
		return
	}
	if len(in.Types) == 0 && len(in.Classes) == 0 {
		writeError(w, messages.Errorf(messages.CodeInvalid, "give types or classes (high, normal, low)"))
		return
	}
	call := s.client.Pause
	if resume {
		call = s.client.Resume
	}
	res, err := call(r.Context(), in.Types, in.Classes)
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	out := pausedOut{Types: res.Types, Classes: res.Classes}
	if out.Types == nil {
		out.Types = []string{}
	}
	if out.Classes == nil {
		out.Classes = []string{}
	}
	writeJSON(w, http.StatusOK, out)
}
