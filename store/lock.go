package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrLocked is what OpenPebble's error Is when another process (or another
// open store in this process) holds the directory's lock.
var ErrLocked = errors.New("store: directory locked")

// lockedError names the directory and its lock file; it Is ErrLocked.
type lockedError struct{ msg string }

func (e *lockedError) Error() string        { return e.msg }
func (e *lockedError) Is(target error) bool { return target == ErrLocked }

// lockError is OpenPebble's error for err if err is Pebble failing to take
// dir's lock (nil otherwise), instead of "resource temporarily unavailable".
func lockError(dir string, err error) error {
	lock := filepath.Join(dir, "LOCK")
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe): // creating the lock file failed (permissions): not a lock held
		return nil
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EACCES): // fcntl F_SETLK: held elsewhere
		return &lockedError{fmt.Sprintf("store %s is in use by another shoal process (lock file %s); stop that process or use another directory", dir, lock)}
	case strings.Contains(err.Error(), "lock held by current process"): // pebble/vfs has no sentinel for it
		return &lockedError{fmt.Sprintf("store %s is in use: it is already open in this process (lock file %s)", dir, lock)}
	}
	return nil
}
