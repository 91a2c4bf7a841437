package dispatch

import (
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// satisfies is the tests' own reading of requirements against an
// executor (its types aside): the pin key against its id, the size key not
// at all. The property test holds the filter chain to it.
func (ex *executor) satisfies(req map[string]string) bool {
	for k, want := range req {
		switch k {
		case messages.ReqSize:
			continue
		case messages.ReqPin:
			if want != "="+ex.id {
				return false
			}
			continue
		}
		if !task.Satisfies(ex.caps[k], want) {
			return false
		}
	}
	return true
}
