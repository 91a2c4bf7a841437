//go:build !linux

package executor

// DiskUse is 0 off Linux.
func DiskUse(string) float64 { return 0 }

// ProcessCount is 0 off Linux.
func ProcessCount() int { return 0 }
