package sbi

import (
	"errors"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/media"
)

func savePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func landmarkSlice(lm [face.NumLandmarks][2]float32) [][2]float32 {
	return append([][2]float32(nil), lm[:]...)
}

// indexFolder writes n synthetic faces and an index.jsonl listing them as
// reals with landmarks, plus one fake entry.
func indexFolder(t *testing.T, n int) (string, [face.NumLandmarks][2]float32) {
	dir := t.TempDir()
	img, lm := synthFace(96)
	w, err := data.OpenIndexWriter(filepath.Join(dir, data.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		rel := filepath.ToSlash(filepath.Join("real", "v", string(rune('a'+i))+".png"))
		savePNG(t, filepath.Join(dir, rel), img)
		if err := w.Append(data.IndexEntry{Image: rel, Label: 0, Landmarks: landmarkSlice(lm), Video: "v", Frame: i}); err != nil {
			t.Fatal(err)
		}
	}
	savePNG(t, filepath.Join(dir, "fake", "x.png"), img)
	if err := w.Append(data.IndexEntry{Image: "fake/x.png", Label: 1, Landmarks: landmarkSlice(lm)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, lm
}

func TestGeneratorFromIndex(t *testing.T) {
	dir, lm := indexFolder(t, 3)
	g, err := NewGenerator(dir, GeneratorOptions{Cache: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Faces() != 3 || g.Len() != 3 {
		t.Fatalf("%d faces, %d samples; want the 3 reals of the index", g.Faces(), g.Len())
	}
	if got := g.Landmarks(1); !reflect.DeepEqual(got, landmarkSlice(lm)) {
		t.Errorf("landmarks of sample 1 differ from the index's")
	}
	for i := 0; i < 3; i++ {
		if g.Label(i) != 1 {
			t.Errorf("label %d = %d, want 1", i, g.Label(i))
		}
		img, mask, err := g.Generate(i, rand.New(rand.NewPCG(5, uint64(i))))
		if err != nil {
			t.Fatal(err)
		}
		// The same as blending the decoded face with the same draws.
		src, err := media.DecodeImage(g.FacePath(i))
		if err != nil {
			t.Fatal(err)
		}
		want, wantMask, err := Blend(src, lm, rand.New(rand.NewPCG(5, uint64(i))), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if string(img.Pix) != string(want.Pix) || string(mask.Pix) != string(wantMask.Pix) {
			t.Errorf("sample %d differs from Blend with the same seed", i)
		}
	}
	if _, _, err := g.Generate(3, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("sample 3 of 3 generated")
	}

	// With Reals, even samples are the faces themselves.
	gr, err := NewGenerator(dir, GeneratorOptions{Cache: "-", Reals: true})
	if err != nil {
		t.Fatal(err)
	}
	defer gr.Close()
	if gr.Len() != 6 {
		t.Fatalf("Reals: %d samples, want 6", gr.Len())
	}
	for i := 0; i < 6; i++ {
		img, mask, err := gr.Generate(i, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatal(err)
		}
		src, _ := media.DecodeImage(gr.FacePath(i / 2))
		isReal := string(img.Pix) == string(src.Pix) && mask == nil
		if want := i%2 == 0; isReal != want || gr.Label(i) != i%2 {
			t.Errorf("Reals sample %d: unchanged %v, label %d", i, isReal, gr.Label(i))
		}
	}
}

// fakeDetector returns fixed landmarks for images of a given width and no
// face for the others, counting calls.
type fakeDetector struct {
	mu    sync.Mutex
	calls int
	width int
	lm    [face.NumLandmarks][2]float32
	fail  bool
}

func (d *fakeDetector) Detect(img *image.RGBA) ([]face.Face, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if d.fail {
		return nil, errors.New("detector must not be called")
	}
	if img.Rect.Dx() != d.width {
		return nil, nil
	}
	return []face.Face{{Landmarks: d.lm, Score: 0.9}}, nil
}

func TestGeneratorDetectsAndCaches(t *testing.T) {
	dir := t.TempDir()
	img, lm := synthFace(96)
	other, _ := synthFace(64) // "no face" for the fake detector
	savePNG(t, filepath.Join(dir, "real", "a.png"), img)
	savePNG(t, filepath.Join(dir, "real", "b.png"), other)
	savePNG(t, filepath.Join(dir, "fake", "c.png"), img) // not a real: ignored
	savePNG(t, filepath.Join(dir, "masks", "c.png"), img)
	savePNG(t, filepath.Join(dir, "loose.png"), img) // outside real/: ignored since real/ exists
	cache := filepath.Join(t.TempDir(), "lm.jsonl")

	det := &fakeDetector{width: 96, lm: lm}
	g, err := NewGenerator(dir, GeneratorOptions{Detector: det, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if g.Faces() != 2 || filepath.Base(g.FacePath(0)) != "a.png" || filepath.Base(g.FacePath(1)) != "b.png" {
		t.Fatalf("faces %d: want real/a.png and real/b.png", g.Faces())
	}
	if g.Landmarks(0) != nil {
		t.Error("landmarks known before detection")
	}
	for k := 0; k < 2; k++ { // the second use of a face does not detect again
		if _, _, err := g.Generate(0, rand.New(rand.NewPCG(1, 2))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := g.Generate(1, rand.New(rand.NewPCG(1, 2))); err == nil || !strings.Contains(err.Error(), "no face") {
			t.Fatalf("face without detection: %v", err)
		}
	}
	if det.calls != 3 { // a.png once, b.png twice (plain, then padded)
		t.Errorf("detector called %d times for 2 faces used twice, want 3", det.calls)
	}
	if !reflect.DeepEqual(g.Landmarks(0), landmarkSlice(lm)) {
		t.Error("Landmarks(0) after detection differ")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	// A torn last line (a crash while writing) is ignored.
	f, err := os.OpenFile(cache, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"image":"real/zz.png","lan`)
	f.Close()

	// A new generator reads both answers from the cache.
	g2, err := NewGenerator(dir, GeneratorOptions{Detector: &fakeDetector{fail: true}, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	a1, _, err := g2.Generate(0, rand.New(rand.NewPCG(9, 9)))
	if err != nil {
		t.Fatalf("cached landmarks: %v", err)
	}
	if _, _, err := g2.Generate(1, rand.New(rand.NewPCG(9, 9))); err == nil || !strings.Contains(err.Error(), "cached") {
		t.Fatalf("cached no-face: %v", err)
	}
	want, _, _ := Blend(img, lm, rand.New(rand.NewPCG(9, 9)), Options{})
	if string(a1.Pix) != string(want.Pix) {
		t.Error("blend from cached landmarks differs")
	}
	g2.Close()

	// A changed image is detected again.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "real", "a.png"), later, later); err != nil {
		t.Fatal(err)
	}
	det3 := &fakeDetector{width: 96, lm: lm}
	g3, err := NewGenerator(dir, GeneratorOptions{Detector: det3, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g3.Generate(0, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	if det3.calls != 1 {
		t.Errorf("changed image: %d detections, want 1", det3.calls)
	}
	g3.Close()
}

func TestGeneratorFeedsLoader(t *testing.T) {
	dir, _ := indexFolder(t, 4)
	spec := "sbi:" + dir
	g, err := NewGenerator(dir, GeneratorOptions{Cache: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ds, err := data.Open(spec, data.Options{ImageSize: 64, Generators: map[string]data.Generator{spec: g}, Warn: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if r, f := ds.Counts(); r != 0 || f != 4 {
		t.Fatalf("counts real %d fake %d, want 0 and 4", r, f)
	}
	it := data.NewLoader(ds, data.LoaderOptions{BatchSize: 4, Workers: 2, Train: true, Seed: 3}).Epoch(0, 0)
	defer it.Close()
	b, ok := it.Next()
	if !ok {
		t.Fatal("no batch")
	}
	if len(b.Labels) != 4 {
		t.Fatalf("%d samples in the batch", len(b.Labels))
	}
	for i, l := range b.Labels {
		if l != 1 || !b.HasMask[i] {
			t.Errorf("sample %d: label %d, has mask %v", i, l, b.HasMask[i])
		}
	}
	var sum float32
	for _, v := range b.Masks {
		sum += v
	}
	if sum == 0 {
		t.Error("the batch's masks are all zero")
	}
}

func TestNewGeneratorErrors(t *testing.T) {
	empty := t.TempDir()
	file := filepath.Join(t.TempDir(), "f.png")
	os.WriteFile(file, []byte("x"), 0o644)
	onlyFakes := t.TempDir()
	w, _ := data.OpenIndexWriter(filepath.Join(onlyFakes, data.IndexFile))
	w.Append(data.IndexEntry{Image: "x.png", Label: 1})
	w.Close()
	tests := []struct {
		name, dir string
		o         GeneratorOptions
		want      string
	}{
		{"missing", filepath.Join(empty, "nope"), GeneratorOptions{}, "no such file"},
		{"file", file, GeneratorOptions{}, "not a directory"},
		{"no images", empty, GeneratorOptions{}, "no real face images"},
		{"index without reals", onlyFakes, GeneratorOptions{}, "lists no real faces"},
		{"bad options", empty, GeneratorOptions{Blend: Options{Scale: 3}}, "scale 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewGenerator(tc.dir, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec    string
		dir     string
		reals   bool
		hulls   []Hull
		ratios  []float64
		cache   string
		wantErr string
	}{
		{spec: "sbi:/data/faces", dir: "/data/faces"},
		{spec: "sbi:faces?reals=1", dir: "faces", reals: true},
		{spec: "sbi:faces?hulls=face,dfl&ratios=0.5,1&cache=-", dir: "faces", hulls: []Hull{HullFace, HullDFL}, ratios: []float64{0.5, 1}, cache: "-"},
		{spec: "faces", wantErr: "want the form sbi:DIR"},
		{spec: "sbi:", wantErr: "no folder"},
		{spec: "sbi:x?reals=maybe", wantErr: "not a boolean"},
		{spec: "sbi:x?hulls=oval", wantErr: "unknown hull"},
		{spec: "sbi:x?ratios=2", wantErr: "blend ratio 2"},
		{spec: "sbi:x?every=3", wantErr: `unknown parameter "every"`},
	}
	for _, tc := range tests {
		dir, o, err := ParseSpec(tc.spec)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.spec, err)
			continue
		}
		if dir != tc.dir || o.Reals != tc.reals || !reflect.DeepEqual(o.Blend.Hulls, tc.hulls) || !reflect.DeepEqual(o.Blend.BlendRatios, tc.ratios) || o.Cache != tc.cache {
			t.Errorf("%s: got %q %+v", tc.spec, dir, o)
		}
	}
}

// TestGeneratorDefaultCache: by default the cache goes to the user's cache
// directory, never into the faces folder, and only once something was
// detected.
func TestGeneratorDefaultCache(t *testing.T) {
	cacheHome := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cacheHome)
	t.Setenv("HOME", t.TempDir())
	dir := t.TempDir()
	img, lm := synthFace(96)
	savePNG(t, filepath.Join(dir, "a.png"), img)
	g, err := NewGenerator(dir, GeneratorOptions{Detector: &fakeDetector{width: 96, lm: lm}})
	if err != nil {
		t.Fatal(err)
	}
	files := func(root string) []string {
		var out []string
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				rel, _ := filepath.Rel(root, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		return out
	}
	if got := files(cacheHome); len(got) != 0 {
		t.Errorf("cache written before any detection: %v", got)
	}
	if _, _, err := g.Generate(0, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	g.Close()
	if got := files(dir); !reflect.DeepEqual(got, []string{"a.png"}) {
		t.Errorf("faces folder holds %v, want only a.png", got)
	}
	if got := files(cacheHome); len(got) != 1 || !strings.HasPrefix(got[0], "lvnet/sbi/") {
		t.Errorf("cache files %v, want one in lvnet/sbi/", got)
	}
}

// TestGeneratorPadsTightCrops checks the retry on a padded frame: a face the
// detector only finds with a border is found, and its landmarks come back
// in the crop's coordinates.
func TestGeneratorPadsTightCrops(t *testing.T) {
	dir := t.TempDir()
	img, lm := synthFace(96)
	savePNG(t, filepath.Join(dir, "real", "a.png"), img)
	pad := float32(TightPad * 96)
	var inPadded [face.NumLandmarks][2]float32
	for i, p := range lm {
		inPadded[i] = [2]float32{p[0] + pad, p[1] + pad}
	}
	det := &fakeDetector{width: 96 + 2*int(pad), lm: inPadded} // finds the face in the padded frame only
	g, err := NewGenerator(dir, GeneratorOptions{Detector: det, Cache: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, _, err := g.Generate(0, rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	if det.calls != 2 {
		t.Errorf("%d detector calls, want 2 (plain, padded)", det.calls)
	}
	got := g.Landmarks(0)
	for i, p := range lm {
		if d := max(abs32(got[i][0]-p[0]), abs32(got[i][1]-p[1])); d > 1e-3 {
			t.Fatalf("landmark %d from the padded frame: %v, want %v", i, got[i], p)
		}
	}
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}
