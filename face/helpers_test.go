package face

import (
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg"
	_ "image/png"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// modelDir returns the installed model folder, skipping the test when the
// models are absent.
func modelDir(tb testing.TB) string {
	tb.Helper()
	d := DefaultModelDir()
	for _, f := range []string{ssdModel, landmarkModel} {
		if _, err := os.Stat(filepath.Join(d, f+"-weights_manifest.json")); err != nil {
			tb.Skipf("face models not installed in %s (run scripts/fetch-face-models.sh): %v", d, err)
		}
	}
	return d
}

var (
	detMu   sync.Mutex
	detByOp = map[string]*Detector{}
)

// detector returns a shared detector for opts (models load once per test
// binary).
func detector(tb testing.TB, opts Options) *Detector {
	tb.Helper()
	dir := modelDir(tb)
	detMu.Lock()
	defer detMu.Unlock()
	key := fmt.Sprintf("%+v", opts)
	if d, ok := detByOp[key]; ok {
		return d
	}
	d, err := NewDetector(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	detByOp[key] = d
	return d
}

func loadRGBA(tb testing.TB, path string) *image.RGBA {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	dst := image.NewRGBA(img.Bounds())
	draw.Draw(dst, dst.Rect, img, img.Bounds().Min, draw.Src)
	return dst
}
