//go:build !unix

package prepare

// lockOut does nothing where flock is unavailable.
func lockOut(out string) (func(), error) { return func() {}, nil }
