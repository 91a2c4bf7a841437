package dispatch

import (
	"strings"

	"github.com/hashicorp/go-version"
)

// Satisfies reports whether a capability value meets a requirement:
// "=label" compares strings; anything else is a version constraint
// (hashicorp/go-version syntax) that the capability must parse and satisfy.
// A missing capability satisfies nothing.
func Satisfies(capability, requirement string) bool {
	if capability == "" {
		return false
	}
	if len(requirement) > 1 && requirement[0] == '=' && requirement[1] != '=' && requirement[1] != ' ' {
		return capability == requirement[1:]
	}
	c, err := version.NewConstraint(strings.TrimSpace(requirement))
	if err != nil {
		return false
	}
	v, err := version.NewVersion(capability)
	if err != nil {
		return false
	}
	return c.Check(v)
}
