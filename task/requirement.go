package task

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-version"
)

// The requirement grammar, written once: a task's requirement value is
// either a label equality ("=value", compared as a string) or a version
// constraint in hashicorp/go-version syntax (">= 15.0, < 16") that the
// executor's capability of the same key must parse and satisfy.

// label returns the label of an equality requirement ("=value").
// "==1.0" and "= 1.0" are version constraints, not labels.
func label(requirement string) (string, bool) {
	if len(requirement) > 1 && requirement[0] == '=' && requirement[1] != '=' && requirement[1] != ' ' {
		return requirement[1:], true
	}
	return "", false
}

// ParseRequirement checks one requirement: a label equality ("=value") or a
// version constraint (">= 15.0, < 16").
func ParseRequirement(key, value string) error {
	if key == "" || len(key) > 64 {
		return fmt.Errorf("requirement key %q must be 1 to 64 bytes", key)
	}
	if _, ok := label(value); ok {
		return nil
	}
	if _, err := version.NewConstraint(value); err != nil {
		return fmt.Errorf("requirement %s: %q is neither \"=label\" nor a version constraint: %v", key, value, err)
	}
	return nil
}

// Satisfies reports whether a capability value meets a requirement. A
// missing capability satisfies nothing.
func Satisfies(capability, requirement string) bool {
	if capability == "" {
		return false
	}
	if l, ok := label(requirement); ok {
		return capability == l
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
