package prepare

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/torch"
)

// realDetector loads the face detector, skipping the test when the models
// are not installed.
func realDetector(t testing.TB) *face.Detector {
	t.Helper()
	dir := face.DefaultModelDir()
	if _, err := os.Stat(filepath.Join(dir, "ssd_mobilenetv1_model-weights_manifest.json")); err != nil {
		t.Skipf("face models not installed in %s (run scripts/fetch-face-models.sh): %v", dir, err)
	}
	torch.KeepFreedMemory() // as the lvnet command does: much faster detection
	d, err := face.NewDetector(dir, face.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// stopAfter passes batches to a detector and cancels the run once n frames
// were detected.
type stopAfter struct {
	Detector
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
}

func (s *stopAfter) DetectBatch(imgs []*image.RGBA) ([][]face.Face, error) {
	s.mu.Lock()
	s.n -= len(imgs)
	if s.n <= 0 {
		s.cancel()
	}
	s.mu.Unlock()
	return s.Detector.DetectBatch(imgs)
}

// ffppTree builds a small FaceForensics++ download: two originals, two
// Deepfakes videos with their mask videos, and a corrupt fake, each video
// 2 frames of the example frames at 320x240.
func ffppTree(t *testing.T) string {
	ex := shared.Path(t, "data", "ffpp-examples")
	root := filepath.Join(t.TempDir(), "FaceForensics++")
	orig := filepath.Join(root, "original_sequences", "youtube", "c23", "videos")
	df := filepath.Join(root, "manipulated_sequences", "Deepfakes")
	// One encode per picture; the other videos are copies.
	cp := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ffmpegVideo(t, filepath.Join(orig, "000.mp4"), filepath.Join(ex, "ex_original.png"), 2, 320, 240)
	ffmpegVideo(t, filepath.Join(df, "c23", "videos", "000_001.mp4"), filepath.Join(ex, "ex_deepfakes.png"), 2, 320, 240)
	ffmpegVideo(t, filepath.Join(df, "masks", "videos", "000_001.mp4"), filepath.Join(ex, "ex_deepfakes_mask.png"), 2, 320, 240)
	cp(filepath.Join(orig, "000.mp4"), filepath.Join(orig, "001.mp4"))
	cp(filepath.Join(df, "c23", "videos", "000_001.mp4"), filepath.Join(df, "c23", "videos", "001_000.mp4"))
	cp(filepath.Join(df, "masks", "videos", "000_001.mp4"), filepath.Join(df, "masks", "videos", "001_000.mp4"))
	// A corrupt video: the first half of a real one.
	b, err := os.ReadFile(filepath.Join(orig, "000.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(df, "c23", "videos", "002_003.mp4"), b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestFFPPResume prepares a FaceForensics++ tree, is interrupted half-way,
// finds a crash's leftovers (index lines of an unfinished video, stale
// crops), resumes, and checks that every video is done once: no duplicate
// index lines, masks aligned with the crops, the authors' 3-panel layout in
// place, and the output readable by data (index, folder and ffpp specs).
func TestFFPPResume(t *testing.T) {
	root := ffppTree(t)
	det := realDetector(t)
	out := filepath.Join(t.TempDir(), "out")
	var log strings.Builder
	opts := func() Options {
		return Options{Out: out, Size: 64, Workers: 2, BatchFrames: 2, Log: &log}
	}

	// First run, one worker, a frame at a time: stopped while detecting
	// the 3rd frame, so the first video is done and the second abandoned.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := opts()
	o.Workers, o.BatchFrames = 1, 1
	o.Detector = &stopAfter{Detector: det, n: 3, cancel: cancel}
	st, err := Run(ctx, []string{root}, o)
	if err != nil {
		t.Fatal(err)
	}
	done1, _ := readDone(filepath.Join(out, DoneFile))
	if !st.Interrupted || st.Jobs != 5 || st.Done != 1 || len(done1) != 1 || !done1["Deepfakes/000_001"] {
		t.Fatalf("first run: %+v, done %v; want interrupted after the first of 5 videos", st, done1)
	}

	// A crash's leftovers: index lines and crops of a video not marked done.
	var victim string
	for _, k := range []string{"youtube/001", "youtube/000", "Deepfakes/001_000"} {
		if !done1[k] {
			victim = k
			break
		}
	}
	idx, err := data.OpenIndexWriter(filepath.Join(out, data.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	label, dir := 0, "real/"
	if strings.HasPrefix(victim, "Deepfakes") {
		label, dir = 1, "fake/"
	}
	for f := 0; f < 2; f++ {
		if err := idx.Append(data.IndexEntry{Image: dir + victim + "/000" + string(rune('0'+f)) + ".png", Label: label, Video: victim, Frame: f}); err != nil {
			t.Fatal(err)
		}
	}
	idx.Close()
	touch(t, out, dir+victim+"/0099.png")

	// Resume.
	o = opts()
	o.Detector = det
	st, err = Run(context.Background(), []string{root}, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.Interrupted || st.Skipped != len(done1) || st.Skipped+st.Done != 5 || st.Failed != 1 || st.Dropped < 2 {
		t.Fatalf("resumed run: %+v (done before: %d)", st, len(done1))
	}
	if !strings.Contains(log.String(), "002_003.mp4") {
		t.Errorf("no warning about the corrupt video in the log:\n%s", log.String())
	}
	if _, err := os.Stat(filepath.Join(out, dir+victim+"/0099.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale crop of the interrupted video survived: %v", err)
	}

	es, err := data.ReadIndex(filepath.Join(out, data.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	perVideo := map[string]int{}
	for _, e := range es {
		if seen[e.Image] {
			t.Errorf("duplicate index line for %s", e.Image)
		}
		seen[e.Image] = true
		perVideo[e.Video]++
		if _, err := os.Stat(filepath.Join(out, e.Image)); err != nil {
			t.Errorf("index names a missing crop: %v", err)
		}
		if len(e.Landmarks) != face.NumLandmarks {
			t.Errorf("%s: %d landmarks", e.Image, len(e.Landmarks))
		}
		if (e.Label == 1) != (e.Mask != "") {
			t.Errorf("%s: label %d, mask %q", e.Image, e.Label, e.Mask)
		}
		if e.Mask != "" {
			checkMaskAligned(t, filepath.Join(out, e.Mask), e.Landmarks)
		}
		panelDir := strings.TrimPrefix(strings.TrimPrefix(e.Video, "real/"), "fake/") + ".mp4"
		p := readRGBA(t, filepath.Join(out, panelDir, filepath.Base(e.Image)))
		if p.Rect.Dx() != 3*64 || p.Rect.Dy() != 64 {
			t.Errorf("panel of %s is %v, want 192x64", e.Image, p.Rect)
		}
	}
	want := map[string]int{"youtube/000": 2, "youtube/001": 2, "Deepfakes/000_001": 2, "Deepfakes/001_000": 2}
	for v, n := range want {
		if perVideo[v] != n {
			t.Errorf("video %s has %d crops, want %d (all: %v)", v, perVideo[v], n, perVideo)
		}
	}
	done, _ := readDone(filepath.Join(out, DoneFile))
	if len(done) != 5 {
		t.Errorf("%d videos marked done, want 5", len(done))
	}

	// A third run has nothing to do.
	before, _ := os.ReadFile(filepath.Join(out, data.IndexFile))
	o = opts()
	o.Detector = det
	if st, err = Run(context.Background(), []string{root}, o); err != nil || st.Skipped != 5 || st.Done != 0 {
		t.Fatalf("third run: %+v, %v", st, err)
	}
	if after, _ := os.ReadFile(filepath.Join(out, data.IndexFile)); string(after) != string(before) {
		t.Error("a run with nothing to do changed the index")
	}

	// data reads the result: the index (and a loader batch), and the
	// authors' layout through the ffpp spec.
	ds, err := data.Open(out, data.Options{ImageSize: 64, Warn: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if r, f := ds.Counts(); r != 4 || f != 4 {
		t.Errorf("index dataset: %d real, %d fake; want 4 and 4", r, f)
	}
	it := data.NewLoader(ds, data.LoaderOptions{BatchSize: 8, Workers: 2}).Epoch(0, 0)
	b, ok := it.Next()
	it.Close()
	if !ok || len(b.Labels) != 8 || b.Regions == nil {
		t.Fatalf("loader batch: ok %v, %d labels, regions %v", ok, len(b.Labels), b.Regions != nil)
	}
	split, _ := json.Marshal([][2]string{{"000", "001"}})
	os.MkdirAll(filepath.Join(out, "splits"), 0o755)
	os.WriteFile(filepath.Join(out, "splits", "train.json"), split, 0o644)
	ff, err := data.Open("ffpp:"+out+"?methods=Deepfakes", data.Options{ImageSize: 64, Warn: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if r, f := ff.Counts(); r != 4 || f != 4 {
		t.Errorf("authors' layout: %d real, %d fake; want 4 and 4", r, f)
	}
	it = data.NewLoader(ff, data.LoaderOptions{BatchSize: 8, Workers: 2}).Epoch(0, 0)
	fb, ok := it.Next()
	it.Close()
	if !ok {
		t.Fatal("no batch from the authors' layout")
	}
	var maskSum float32
	for _, v := range fb.Masks {
		maskSum += v
	}
	if maskSum == 0 {
		t.Error("the authors' layout has all-zero masks")
	}
}

// checkMaskAligned checks a mask crop of ex_deepfakes_mask.png against the
// face: the white rectangle of that mask covers the forehead and eyes, so
// in the crop it must span the eyes (landmarks 36-47) horizontally and
// hold the top of the nose (27).
func checkMaskAligned(t *testing.T, path string, lm [][2]float32) {
	t.Helper()
	m := readRGBA(t, path)
	x0, y0, x1, y1 := math.MaxInt, math.MaxInt, -1, -1
	for y := 0; y < m.Rect.Dy(); y++ {
		for x := 0; x < m.Rect.Dx(); x++ {
			v := m.Pix[m.PixOffset(x, y)]
			if v != 0 && v != 255 {
				t.Fatalf("%s: mask value %d is not binary", path, v)
			}
			if v == 255 {
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
		}
	}
	if x1 < 0 {
		t.Fatalf("%s: empty mask", path)
	}
	inside := func(p [2]float32) bool {
		return p[0] >= float32(x0)-1 && p[0] <= float32(x1)+2 && p[1] >= float32(y0)-1 && p[1] <= float32(y1)+2
	}
	if !inside(lm[27]) || !inside(lm[39]) || !inside(lm[42]) {
		t.Errorf("%s: mask box [%d,%d]-[%d,%d] misses the nose top %v or inner eye corners %v %v", path, x0, y0, x1, y1, lm[27], lm[39], lm[42])
	}
}
