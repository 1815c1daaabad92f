package shipped_test

import (
	"encoding/json"
	"flag"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/metrics"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/shipped"
)

var update = flag.Bool("update", false, "rewrite testdata/scores.json from the shipped model")

// regressionFaces returns the ../shared faces whose scores the shipped
// model must reproduce: the first validation faces of each class of each
// set (never trained on), as paths relative to root.
func regressionFaces(t *testing.T, root string) []string {
	var out []string
	for _, spec := range []string{
		"dfdc:" + filepath.Join(root, "data", "dfdc-faces") + "?subset=val",
		filepath.Join(root, "data", "ffpp-crops") + "?subset=val",
	} {
		ds, err := data.Open(spec, data.Options{Warn: io.Discard, Region: "none"})
		if err != nil {
			continue
		}
		n := [2]int{}
		for _, s := range ds.Samples() {
			if n[s.Label] < 3 {
				n[s.Label]++
				rel, _ := filepath.Rel(root, s.Path)
				out = append(out, filepath.ToSlash(rel))
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d regression faces found in %s", len(out), root)
	}
	return out
}

// record is testdata/scores.json.
type record struct {
	SHA256 string             `json:"sha256"`
	PFake  map[string]float64 `json:"p_fake"` // calibrated, aligned crops
}

// loadShipped writes the shipped model to a temporary folder and loads it.
func loadShipped(t *testing.T) (string, *model.LVNet, checkpoint.Meta) {
	t.Helper()
	p, err := shipped.Path(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, meta, err := checkpoint.Load(p, checkpoint.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return p, m, meta
}

func TestShippedModelLoadsWithItsMetadata(t *testing.T) {
	p, m, meta := loadShipped(t)
	if meta.Calibration == nil || meta.Calibration.Validate() != nil {
		t.Fatalf("shipped model without a valid calibration: %+v", meta.Calibration)
	}
	pv := meta.Provenance
	if pv.Source != checkpoint.SourceTrained || pv.Data == "" || pv.Command == "" || pv.Commit == "" {
		t.Fatalf("shipped model provenance incomplete: %+v", pv)
	}
	if meta.Config != m.Config || meta.Config.ImageSize < 64 || !meta.Config.Localize {
		t.Fatalf("config %+v", meta.Config)
	}
	for _, k := range []string{"calibration_set"} {
		if _, ok := meta.Metrics[k]; !ok {
			t.Errorf("metrics lack %q: %v", k, meta.Metrics)
		}
	}
	// Path is idempotent and names the file by its hash.
	q, err := shipped.Path(filepath.Dir(p))
	if err != nil || q != p {
		t.Fatalf("second Path: %q, %v (first %q)", q, err, p)
	}
	if st, err := os.Stat(p); err != nil || st.Size() != int64(len(shipped.Bytes())) {
		t.Fatalf("written file: %v, %v", st, err)
	}
	// A damaged copy in the cache is replaced, not loaded.
	if err := os.WriteFile(p, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if q, err = shipped.Path(filepath.Dir(p)); err != nil || q != p {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); len(b) != len(shipped.Bytes()) {
		t.Fatal("damaged cache file not rewritten")
	}
}

// TestShippedModelScores checks that the shipped model reproduces the
// recorded calibrated scores of fixed ../shared faces (aligned crops, CPU,
// float32).
func TestShippedModelScores(t *testing.T) {
	root := shared.Path(t)
	_, m, meta := loadShipped(t)
	pl, err := detect.NewPipeline(m, detect.PipelineOptions{Temperature: meta.TemperatureOr1(), BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := record{SHA256: shipped.SHA256(), PFake: map[string]float64{}}
	for _, rel := range regressionFaces(t, root) {
		img, err := media.DecodeImage(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		sc, err := pl.ScoreCrops([]*image.RGBA{img})
		if err != nil {
			t.Fatal(err)
		}
		got.PFake[rel] = sc[0].PFake
	}
	path := filepath.Join("testdata", "scores.json")
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want record
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if want.SHA256 != got.SHA256 {
		t.Fatalf("%s records scores of model %s, the shipped model is %s: rerun with -update", path, want.SHA256[:12], got.SHA256[:12])
	}
	for rel, w := range want.PFake {
		if g, ok := got.PFake[rel]; !ok || math.Abs(g-w) > 1e-4 {
			t.Errorf("%s: p_fake %v, recorded %v", rel, g, w)
		}
	}
}

// TestShippedModelLocatesFFPPExample measures the shipped model's patch map
// on the FaceForensics++ example frame whose Deepfakes mask ../shared holds
// (docs/MODEL.md, Localisation): the face found and cropped as lvnet detect
// does, the mask cropped alike, the real frame's face as the clean
// reference. The map must rank the forged patches above the clean ones
// clearly better than chance (0.737 measured for the model shipped at
// commit cf53426).
func TestShippedModelLocatesFFPPExample(t *testing.T) {
	dir := shared.Path(t, "data", "ffpp-examples")
	models := face.DefaultModelDir()
	if _, err := os.Stat(filepath.Join(models, "ssd_mobilenetv1_model-weights_manifest.json")); err != nil {
		t.Skipf("face models not installed in %s (run scripts/fetch-face-models.sh): %v", models, err)
	}
	det, err := face.NewDetector(models, face.Options{NoLandmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	_, m, meta := loadShipped(t)
	pl, err := detect.NewPipeline(m, detect.PipelineOptions{Temperature: meta.TemperatureOr1(), BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	size := m.Config.ImageSize
	maskImg, err := media.DecodeImage(filepath.Join(dir, "ex_deepfakes_mask.png"))
	if err != nil {
		t.Fatal(err)
	}
	mask := image.NewGray(maskImg.Rect)
	for i := range mask.Pix {
		mask.Pix[i] = maskImg.Pix[4*i]
	}
	var recs []metrics.Record
	for label, name := range []string{"ex_original.png", "ex_deepfakes.png"} {
		img, err := media.DecodeImage(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		faces, err := det.Detect(img)
		if err != nil || len(faces) == 0 {
			t.Fatalf("%s: %d faces, %v", name, len(faces), err)
		}
		crop, _, box := face.Crop(img, faces[0], face.CropOptions{Size: size})
		sc, err := pl.ScoreCrops([]*image.RGBA{crop})
		if err != nil {
			t.Fatal(err)
		}
		r := metrics.Record{Input: name, Label: label, PFake: sc[0].PFake, Grid: len(sc[0].Patch),
			Mask: make([]float64, size*size), MaskH: size, MaskW: size}
		for _, row := range sc[0].Patch {
			r.Patch = append(r.Patch, row...)
		}
		if label == 1 {
			for i, v := range face.CropMask(mask, box, size).Pix {
				r.Mask[i] = float64(v) / 255
			}
		}
		recs = append(recs, r)
	}
	sm, err := metrics.Compute(recs)
	if err != nil {
		t.Fatal(err)
	}
	if sm.PatchAUC == nil || sm.PatchIoU == nil {
		t.Fatalf("no localisation metrics: %+v", sm)
	}
	t.Logf("FF++ example: patch AUC %.3f, patch IoU %.3f, pixel IoU %v; p_fake real %.3f, fake %.3f",
		*sm.PatchAUC, *sm.PatchIoU, fmtPtr(sm.PixelIoU), recs[0].PFake, recs[1].PFake)
	if *sm.PatchAUC < 0.65 {
		t.Errorf("patch AUC %.3f on the FF++ example: the map does not find the forged patches", *sm.PatchAUC)
	}
}

func fmtPtr(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 3, 64)
}
