package main

import (
	"errors"
	"strings"
	"testing"
)

// TestHelpOnce checks that every command prints its usage once on -h, to
// its stderr, and that the commands running the model share --device and
// --threads.
func TestHelpOnce(t *testing.T) {
	engine := map[string]bool{"train": true, "eval": true, "calibrate": true, "bench": true, "detect": true, "serve": true}
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := runCmd(t, c.run, "-h")
			if !errors.Is(err, errHelp) {
				t.Fatalf("-h: %v, want errHelp", err)
			}
			if n := strings.Count(stderr, "usage: lvnet "+c.name); n != 1 {
				t.Errorf("usage printed %d times:\n%s", n, stderr)
			}
			if engine[c.name] && (!strings.Contains(stderr, "-device") || !strings.Contains(stderr, "-threads")) {
				t.Errorf("no --device/--threads:\n%s", stderr)
			}
		})
	}
}

// TestOneNamePerIdea checks the shared names: --out for outputs and
// --batch-size for batches.
func TestOneNamePerIdea(t *testing.T) {
	for _, tc := range []struct {
		cmd, want string
		absent    string
	}{
		{"import", "-out", ""},
		{"detect", "-batch-size", "-batch int"},
		{"serve", "-batch-size", "-batch int"},
		{"prepare", "-batch-size", "-batch int"},
		{"eval", "-batch-size", ""},
	} {
		for _, c := range commands() {
			if c.name != tc.cmd {
				continue
			}
			_, stderr, _ := runCmd(t, c.run, "-h")
			if !strings.Contains(stderr, tc.want) || (tc.absent != "" && strings.Contains(stderr, tc.absent)) {
				t.Errorf("%s -h: want %s (and no %q):\n%s", tc.cmd, tc.want, tc.absent, stderr)
			}
		}
	}
}
