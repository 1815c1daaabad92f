package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shared"
)

var prepareCmd cmdFunc = prepareMain

func TestPrepareUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"x.mp4"}, "--out is required"},
		{[]string{"--out", "o"}, "no inputs"},
		{[]string{"--out", "o", "--every", "0", "x"}, "--every 0"},
		{[]string{"--out", "o", "--frames", "-2", "x"}, "--frames -2"},
		{[]string{"--out", "o", "--label", "maybe", "x"}, `--label "maybe"`},
		{[]string{"--out", "o", "--layout", "flat", "x"}, `--layout "flat"`},
		{[]string{"--out", "o", "--scale", "0.5", "x"}, "--scale 0.5"},
		{[]string{"--out", "o", "--methods", "Deepfakes", t.TempDir()}, "not one"},
	} {
		_, _, err := runCmd(t, prepareCmd, tc.args...)
		var ue *usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}

// TestPrepareImage prepares the FaceForensics++ example frame (a photo
// input labelled from the command line) and checks the summary and index.
func TestPrepareImage(t *testing.T) {
	in := shared.Path(t, "data", "ffpp-examples", "ex_original.png")
	if _, err := os.Stat(filepath.Join(face.DefaultModelDir(), "ssd_mobilenetv1_model-weights_manifest.json")); err != nil {
		t.Skipf("face models not installed (run scripts/fetch-face-models.sh): %v", err)
	}
	out := t.TempDir()
	_, stderr, err := runCmd(t, prepareCmd, in, "--out", out, "--label", "real", "--size", "96", "--quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "1 of 1 videos/images done now, 0 earlier; 1 crops from 1 frames") {
		t.Errorf("summary: %s", stderr)
	}
	es, err := data.ReadIndex(filepath.Join(out, data.IndexFile))
	if err != nil || len(es) != 1 || es[0].Image != "real/ex_original.png/0000.png" || es[0].Label != 0 {
		t.Fatalf("index %+v, %v", es, err)
	}
	// Again: nothing to do.
	_, stderr, err = runCmd(t, prepareCmd, in, "--out", out, "--label", "real", "--size", "96", "--quiet")
	if err != nil || !strings.Contains(stderr, "0 of 1 videos/images done now, 1 earlier") {
		t.Errorf("rerun: %v\n%s", err, stderr)
	}
}
