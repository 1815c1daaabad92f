package face

import (
	"path/filepath"
	"sort"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
)

// TestDetectFFPPCrops checks that the face is found in at least 97% of the
// tightly cropped FaceForensics++ faces (all 650; every 5th with -short)
// with TightOptions (a black border, a smaller input). Without the border
// the detector finds about 70% of them.
func TestDetectFFPPCrops(t *testing.T) {
	root := shared.Path(t, "data", "ffpp-crops")
	files, err := filepath.Glob(filepath.Join(root, "*", "*", "*.png"))
	if err != nil || len(files) == 0 {
		t.Skipf("no crops under %s: %v", root, err)
	}
	sort.Strings(files)
	if testing.Short() {
		var sub []string
		for i := 0; i < len(files); i += 5 {
			sub = append(sub, files[i])
		}
		files = sub
	}
	o := TightOptions()
	o.NoLandmarks = true
	d := detector(t, o)
	var missed []string
	for _, f := range files {
		faces, err := d.Detect(loadRGBA(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) == 0 {
			rel, _ := filepath.Rel(root, f)
			missed = append(missed, rel)
		}
	}
	rate := 1 - float64(len(missed))/float64(len(files))
	t.Logf("face found in %d of %d crops (%.1f%%); missed: %v", len(files)-len(missed), len(files), 100*rate, missed)
	if rate < 0.97 {
		t.Errorf("detection rate %.1f%%, want at least 97%%", 100*rate)
	}
}
