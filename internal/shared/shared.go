// Package shared locates the project's read-only reference material (the
// ../shared folder beside the checkout: spec, golden outputs of the authors'
// code, research datasets) for tests and benchmarks. The data is never copied
// into the project.
package shared

import (
	"os"
	"path/filepath"
)

// TB is the part of testing.TB that Path uses (so that programs can find
// the folder with Find without linking package testing).
type TB interface {
	Helper()
	Skipf(format string, args ...any)
}

// Env overrides the location of the shared folder.
const Env = "LVNET_SHARED"

// Find returns the shared folder: $LVNET_SHARED, else ../shared next to the
// module root found from the working directory. ok is false when absent.
func Find() (dir string, ok bool) {
	if d := os.Getenv(Env); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d, true
		}
		return d, false
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			s := filepath.Join(filepath.Dir(d), "shared")
			if st, err := os.Stat(s); err == nil && st.IsDir() {
				return s, true
			}
			return s, false
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

// Path returns a path inside the shared folder, skipping the test with a
// message when the folder or the path is absent.
func Path(tb TB, elem ...string) string {
	tb.Helper()
	dir, ok := Find()
	if !ok {
		tb.Skipf("reference folder ../shared not found (set %s): skipping test that needs it", Env)
	}
	p := filepath.Join(append([]string{dir}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("reference file %s not present: %v", p, err)
	}
	return p
}
