package detect

import (
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lvnet-go/lvnet/face"
)

// fakeDetector finds the faces a function says, so that tests know where
// the faces are without the face models.
type fakeDetector struct {
	find func(img *image.RGBA) []face.Face
	mu   sync.Mutex
	n    int // calls
}

func (d *fakeDetector) Detect(img *image.RGBA) ([]face.Face, error) {
	d.mu.Lock()
	d.n++
	d.mu.Unlock()
	return d.find(img), nil
}

// fixedFaces returns a detector that finds the given boxes (with score
// 0.9) in every picture.
func fixedFaces(boxes ...face.Box) *fakeDetector {
	return &fakeDetector{find: func(*image.RGBA) []face.Face {
		out := make([]face.Face, len(boxes))
		for i, b := range boxes {
			out[i] = face.Face{Box: b, Score: 0.9}
		}
		return out
	}}
}

// realDetector loads the face detector from the installed models,
// skipping the test when they are absent (scripts/fetch-face-models.sh).
func realDetector(tb testing.TB) *face.Detector {
	tb.Helper()
	dir := face.DefaultModelDir()
	if _, err := os.Stat(filepath.Join(dir, "ssd_mobilenetv1_model-weights_manifest.json")); err != nil {
		tb.Skipf("face models not installed in %s (run scripts/fetch-face-models.sh): %v", dir, err)
	}
	d, err := face.NewDetector(dir, face.Options{NoLandmarks: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// needFFmpeg skips the test when ffmpeg or ffprobe is missing.
func needFFmpeg(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(p); err != nil {
			tb.Skipf("%s not installed (Debian package ffmpeg): %v", p, err)
		}
	}
}

// testVideo encodes ffmpeg's test pattern (w x h, frames at fps) into
// dir/name.
func testVideo(tb testing.TB, dir, name string, w, h, frames, fps int, extra ...string) string {
	tb.Helper()
	needFFmpeg(tb)
	p := filepath.Join(dir, name)
	args := []string{"-v", "error", "-y", "-f", "lavfi", "-i",
		fmt.Sprintf("testsrc=size=%dx%d:rate=%d", w, h, fps), "-frames:v", fmt.Sprint(frames)}
	args = append(append(args, extra...), p)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
	return p
}

// collect runs AnalyzeAll and returns the outcomes in the order given.
func collect(t *testing.T, p *Pipeline, ins []Input, opts Options) []outcome {
	t.Helper()
	var got []outcome
	err := p.AnalyzeAll(t.Context(), ins, opts, func(i int, r *Result, err error) {
		got = append(got, outcome{i, r, err})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ins) {
		t.Fatalf("%d outcomes for %d inputs", len(got), len(ins))
	}
	for j, o := range got {
		if o.i != j {
			t.Fatalf("outcome %d has index %d: not in input order", j, o.i)
		}
	}
	return got
}
