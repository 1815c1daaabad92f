//go:build unix

package prepare

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockOut takes an exclusive lock on out/.prepare-lock so that two runs do
// not write the same output; the lock goes with the process.
func lockOut(out string) (func(), error) {
	p := filepath.Join(out, ".prepare-lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("prepare: lock %s: %w", out, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("prepare: another lvnet prepare is writing to %s (%s is locked)", out, p)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
