package api

import (
	"net/http"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/planner"
)

// PlanIn is a planning request: tasks with sizes and executors with
// backlogs, in one unit (seconds, say). Without executors, the node's
// registered executors are used with their estimated backlogs per slot,
// in seconds.
type PlanIn struct {
	Tasks     []planner.Task     `json:"tasks"`
	Executors []planner.Executor `json:"executors,omitempty"`
}

// MaxPlanTasks bounds one planning request.
const MaxPlanTasks = 10_000

// POST /v1/plan: an assignment minimising the makespan (docs/supervision.md).
// It plans only; submit the tasks with "pin" set to their executor.
func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	var in PlanIn
	if e := decode(r, &in); e != nil {
		writeError(w, e)
		return
	}
	if len(in.Tasks) > MaxPlanTasks {
		writeError(w, messages.Errorf(messages.CodeInvalid, "tasks: %d exceeds the limit of %d per plan", len(in.Tasks), MaxPlanTasks))
		return
	}
	if len(in.Executors) == 0 {
		st, err := s.client.Status(r.Context())
		if err != nil {
			writeError(w, messages.AsError(err))
			return
		}
		in.Executors = planner.FromStatus(st.Executors)
		if len(in.Executors) == 0 {
			writeError(w, messages.Errorf(messages.CodeUnavailable, "no executors given and none registered with this node"))
			return
		}
	}
	p, err := planner.Solve(in.Tasks, in.Executors)
	if err != nil {
		writeError(w, messages.Errorf(messages.CodeInvalid, "%v", err))
		return
	}
	writeJSON(w, http.StatusOK, p)
}
