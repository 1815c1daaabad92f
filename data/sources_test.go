package data

import (
	"bytes"
	"fmt"
	"image"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
)

// quiet are Options that discard warnings.
func quiet() Options { return Options{Warn: io.Discard} }

// brief summarises samples as "label video frame method mask?" lines, sorted.
func brief(ds *Dataset) []string {
	var out []string
	for _, s := range ds.Samples() {
		m := "-"
		if s.MaskPath != "" {
			m = "mask:" + filepath.Base(filepath.Dir(s.MaskPath)) + "/" + filepath.Base(s.MaskPath)
		}
		out = append(out, fmt.Sprintf("%d %s %d %s %s", s.Label, s.Video, s.Frame, s.Method, m))
	}
	sort.Strings(out)
	return out
}

func TestOpenFolder(t *testing.T) {
	dir := t.TempDir()
	img := flat(8, 8, teal)
	for _, p := range []string{
		"deepfake/real/image_904_19.png",
		"deepfake/real/image_904_20.png",
		"deepfake/real/image_16_7.png", // same name as a masked fake: still no mask
		"deepfake/fake/image_16_7.png",
		"deepfake/masks/image_16_7.png",
		"other/fake/vid3/0002.png",
		"other/fake/vid3/0010.png",
		"other/masks/vid3/0010.png",
		"real/plain.jpg.png",
		"unlabelled/x.png",
	} {
		writePNG(t, filepath.Join(dir, p), img)
	}
	writeFile(t, filepath.Join(dir, "deepfake/real/notes.txt"), "not an image")
	ds, err := Open(dir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"0 deepfake/real/16 7 deepfake -",
		"0 deepfake/real/904 19 deepfake -",
		"0 deepfake/real/904 20 deepfake -",
		"0 real/plain.jpg 0 " + filepath.Base(dir) + " -",
		"1 deepfake/fake/16 7 deepfake mask:masks/image_16_7.png",
		"1 other/fake/vid3 10 other mask:vid3/0010.png",
		"1 other/fake/vid3 2 other -",
	}
	if got := brief(ds); !reflect.DeepEqual(got, want) {
		t.Errorf("samples:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r, f := ds.Counts(); r != 4 || f != 3 {
		t.Errorf("Counts = %d, %d; want 4, 3", r, f)
	}
	// folder: prefix and a root that is itself a label directory.
	ds, err = Open("folder:"+filepath.Join(dir, "deepfake", "real"), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if r, f := ds.Counts(); r != 3 || f != 0 {
		t.Errorf("folder:real Counts = %d, %d; want 3, 0", r, f)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "nolabel/a.png"), flat(4, 4, teal))
	writeFile(t, filepath.Join(dir, "bad.json"), "{not json")
	writeFile(t, filepath.Join(dir, "list.txt"), "x")
	tests := []struct {
		name, spec, want string
	}{
		{"missing dir", filepath.Join(dir, "nope"), "nope"},
		{"no labelled images", filepath.Join(dir, "nolabel"), "no images below a directory named real or fake"},
		{"bad dfb json", "dfb:" + filepath.Join(dir, "bad.json"), "bad.json"},
		{"plain bad json", filepath.Join(dir, "bad.json"), "bad.json"},
		{"unknown file", filepath.Join(dir, "list.txt"), "not a directory"},
		{"unknown param", filepath.Join(dir, "nolabel") + "?evry=3", `unknown parameter "evry"`},
		{"bad every", "folder:" + filepath.Join(dir, "nolabel") + "?every=0", "every"},
		{"missing index", "index:" + filepath.Join(dir, "index.jsonl"), "index.jsonl"},
		{"ffpp missing root", "ffpp:" + filepath.Join(dir, "ff"), "ff"},
		{"unregistered generator", "sbi:" + dir, "no generator registered"},
		{"empty", "", "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.spec, quiet())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q) error = %v, want one containing %q", tc.spec, err, tc.want)
			}
		})
	}
	if _, err := Open(filepath.Join(dir, "nolabel"), Options{Region: "chin", Warn: io.Discard}); err == nil {
		t.Error("unknown region accepted")
	}
}

// ffppFixture builds the authors' FaceForensics++ layout with one split pair
// (001, 002): Deepfakes/001_002.mp4 (3 frames), Deepfakes/002_001.mp4 (2),
// youtube/001_002.mp4 (2) and, for the other order, only youtube/002.mp4 (1).
func ffppFixture(t *testing.T) string {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "splits", "train.json"), `[["001", "002"]]`)
	writeFile(t, filepath.Join(root, "splits", "val.json"), `[["003", "004"]]`)
	face, mask := scene(10, 10, 2, 3, 4)
	fake := panels(face, mask, face)
	realp := panels(flat(10, 10, teal), image.NewGray(image.Rect(0, 0, 10, 10)), face)
	for _, f := range []string{"0000.png", "0001.png", "0010.png"} {
		writePNG(t, filepath.Join(root, "Deepfakes", "001_002.mp4", f), fake)
	}
	for _, f := range []string{"0000.png", "0002.png"} {
		writePNG(t, filepath.Join(root, "Deepfakes", "002_001.mp4", f), fake)
		writePNG(t, filepath.Join(root, "youtube", "001_002.mp4", f), realp)
	}
	writePNG(t, filepath.Join(root, "youtube", "002.mp4", "0005.png"), realp)
	os.MkdirAll(filepath.Join(root, "Face2Face"), 0o755)
	return root
}

func TestOpenFFPP(t *testing.T) {
	root := ffppFixture(t)
	var warn bytes.Buffer
	ds, err := Open("ffpp:"+root+"?methods=Deepfakes", Options{Warn: &warn})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"0 youtube/001_002 0 youtube -",
		"0 youtube/001_002 2 youtube -",
		"0 youtube/002 5 youtube -",
		"1 Deepfakes/001_002 0 Deepfakes -",
		"1 Deepfakes/001_002 1 Deepfakes -",
		"1 Deepfakes/001_002 10 Deepfakes -",
		"1 Deepfakes/002_001 0 Deepfakes -",
		"1 Deepfakes/002_001 2 Deepfakes -",
	}
	if got := brief(ds); !reflect.DeepEqual(got, want) {
		t.Errorf("samples:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if warn.Len() != 0 {
		t.Errorf("unexpected warnings: %s", warn.String())
	}
	// Frames are 3-panel images: the face and the mask come from panels 1, 2.
	for i := 0; i < ds.Len(); i++ {
		s := ds.Sample(i)
		if s.Panel != 3 {
			t.Fatalf("sample %s: Panel = %d", s.Path, s.Panel)
		}
		it, err := ds.Load(i, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if it.Image.W != 10 || it.Image.H != 10 || it.Mask == nil || it.Mask.W != 10 {
			t.Fatalf("sample %s: image %dx%d mask %v", s.Path, it.Image.W, it.Image.H, it.Mask)
		}
		forged := 0
		for _, v := range it.Mask.Pix {
			if v > 0 {
				forged++
			}
		}
		if want := map[int]int{0: 0, 1: 16}[s.Label]; forged != want {
			t.Errorf("sample %s: %d forged pixels, want %d", s.Path, forged, want)
		}
		if p := it.Image.Pix[(4*10+3)*3:]; s.Label == 1 && (p[0] != 255 || p[1] != 0) {
			t.Errorf("sample %s: face panel pixel (3,4) = %v, want red", s.Path, p[:3])
		}
	}
	// every=2 keeps frames 0, 2, ... of each video.
	ds, err = Open("ffpp:"+root+"?methods=Deepfakes&every=2", quiet())
	if err != nil {
		t.Fatal(err)
	}
	if r, f := ds.Counts(); r != 2 || f != 3 {
		t.Errorf("every=2: Counts = %d, %d; want 2, 3", r, f)
	}
	// Options.Split picks splits/val.json, whose videos are missing.
	warn.Reset()
	_, err = Open("ffpp:"+root+"?methods=Deepfakes", Options{Split: "val", Warn: &warn})
	if err == nil || !strings.Contains(err.Error(), "no frames") || !strings.Contains(warn.String(), "003_004.mp4") {
		t.Errorf("val split: err %v, warnings %q", err, warn.String())
	}
	for _, tc := range []struct{ spec, want string }{
		{"ffpp:" + root, "no method folder"}, // FaceSwap is missing
		{"ffpp:" + root + "?split=nope.json&methods=Deepfakes", "no split file"},
		{"ffpp:" + root + "?methods=Deepfakes&real=originals", "no real video folder"},
	} {
		if _, err := Open(tc.spec, quiet()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) error = %v, want %q", tc.spec, err, tc.want)
		}
	}
	writeFile(t, filepath.Join(root, "bad.json"), `[["001"]]`)
	if _, err := Open("ffpp:"+root+"?split=bad.json&methods=Deepfakes", quiet()); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("bad split: %v", err)
	}
}

// dfbFixture writes a DeepfakeBench-style tree and dataset JSONs.
func dfbFixture(t *testing.T) string {
	root := t.TempDir()
	face, mask := scene(12, 12, 4, 4, 4)
	for _, p := range []string{
		"FaceForensics++/original_sequences/youtube/c23/frames/000/000.png",
		"FaceForensics++/original_sequences/youtube/c23/frames/000/001.png",
		"FaceForensics++/manipulated_sequences/Deepfakes/c23/frames/000_003/000.png",
		"FaceForensics++/manipulated_sequences/Deepfakes/c23/frames/000_003/001.png",
		"Celeb-DF-v2/Celeb-synthesis/frames/id0_id1_0000/000.png",
		"Celeb-DF-v2/Celeb-real/frames/id0_0000/000.png",
		"DFDC/test/frames/aaa/010.png",
	} {
		writePNG(t, filepath.Join(root, p), face)
	}
	writePNG(t, filepath.Join(root, "FaceForensics++/manipulated_sequences/Deepfakes/c23/masks/000_003/001.png"), mask)
	writePNG(t, filepath.Join(root, "Celeb-DF-v2/Celeb-synthesis/masks/id0_id1_0000/000.png"), mask)
	os.MkdirAll(filepath.Join(root, "Celeb-DF-v2/Celeb-synthesis/landmarks/id0_id1_0000"), 0o755)
	os.WriteFile(filepath.Join(root, "Celeb-DF-v2/Celeb-synthesis/landmarks/id0_id1_0000/000.npy"), npyBytes(landmarks68()), 0o644)
	lmDir := filepath.Join(root, "FaceForensics++/manipulated_sequences/Deepfakes/c23/landmarks/000_003")
	os.MkdirAll(lmDir, 0o755)
	os.WriteFile(filepath.Join(lmDir, "000.npy"), npyBytes(landmarks68()), 0o644)

	yt := "FaceForensics++/original_sequences/youtube/c23/frames/000/"
	df := "FaceForensics++/manipulated_sequences/Deepfakes/c23/frames/000_003/"
	writeJSON(t, filepath.Join(root, "FF-DF.json"), map[string]any{
		"FF-DF": map[string]any{
			"FF-real": map[string]any{
				"train": map[string]any{"c23": map[string]any{"000": map[string]any{"label": "FF-real", "frames": []string{yt + "001.png", yt + "000.png"}}}, "c40": map[string]any{}},
				"test":  map[string]any{"c23": map[string]any{}},
			},
			"FF-DF": map[string]any{
				"train": map[string]any{"c23": map[string]any{"000_003": map[string]any{
					"label":     "FF-DF",
					"frames":    []string{df + "000.png", df + "001.png"},
					"masks":     []string{"FaceForensics++/manipulated_sequences/Deepfakes/c23/masks/000_003/001.png"},
					"landmarks": []string{"FaceForensics++/manipulated_sequences/Deepfakes/c23/landmarks/000_003/000.npy"},
				}}, "c40": map[string]any{}},
			},
		},
	})
	writeJSON(t, filepath.Join(root, "Celeb-DF-v2.json"), map[string]any{
		"Celeb-DF-v2": map[string]any{
			"CelebDFv2_real": map[string]any{"test": map[string]any{"id0_0000": map[string]any{"label": "CelebDFv2_real",
				"frames": []string{`Celeb-DF-v2\Celeb-real\frames\id0_0000\000.png`}}}},
			"CelebDFv2_fake": map[string]any{"test": map[string]any{"id0_id1_0000": map[string]any{"label": "CelebDFv2_fake",
				"frames": []string{`Celeb-DF-v2\Celeb-synthesis\frames\id0_id1_0000\000.png`}}}},
		},
	})
	writeJSON(t, filepath.Join(root, "DFDC.json"), map[string]any{
		"DFDC": map[string]any{
			"DFDC_Real": map[string]any{"val": map[string]any{"label": "DFDC_Real", "frames": []string{"DFDC/test/frames/aaa/010.png"}}},
			"DFDC_Fake": map[string]any{"val": map[string]any{}},
		},
	})
	return root
}

func TestOpenDFB(t *testing.T) {
	root := dfbFixture(t)
	ds, err := Open("dfb:"+filepath.Join(root, "FF-DF.json"), quiet())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"0 FF-DF/FF-real/000 0 FF-real -",
		"0 FF-DF/FF-real/000 1 FF-real -",
		"1 FF-DF/FF-DF/000_003 0 FF-DF -",
		"1 FF-DF/FF-DF/000_003 1 FF-DF mask:000_003/001.png",
	}
	if got := brief(ds); !reflect.DeepEqual(got, want) {
		t.Errorf("samples:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var lmPaths []string
	for _, s := range ds.Samples() {
		if s.LandmarkPath != "" {
			lmPaths = append(lmPaths, filepath.Base(s.LandmarkPath))
		}
	}
	if !reflect.DeepEqual(lmPaths, []string{"000.npy"}) || !ds.HasRegions() {
		t.Errorf("landmark paths %v, HasRegions %v", lmPaths, ds.HasRegions())
	}
	// Several compression levels: c23 is the default, others on request.
	if _, err := Open("dfb:"+filepath.Join(root, "FF-DF.json")+"?compression=c40", quiet()); err == nil || !strings.Contains(err.Error(), "no frames") {
		t.Errorf("compression=c40 (empty): %v", err)
	}
	if _, err := Open("dfb:"+filepath.Join(root, "FF-DF.json")+"?compression=raw", quiet()); err == nil || !strings.Contains(err.Error(), `no compression level "raw"`) {
		t.Errorf("compression=raw: %v", err)
	}
	// Celeb-DF: no compression level, backslash paths, masks and landmarks
	// found by DeepfakeBench's frames -> masks/landmarks convention.
	ds, err = Open(filepath.Join(root, "Celeb-DF-v2.json")+"?split=test&dataset=Celeb-DF-v2", quiet())
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"0 Celeb-DF-v2/CelebDFv2_real/id0_0000 0 CelebDFv2_real -",
		"1 Celeb-DF-v2/CelebDFv2_fake/id0_id1_0000 0 CelebDFv2_fake mask:id0_id1_0000/000.png",
	}
	if got := brief(ds); !reflect.DeepEqual(got, want) {
		t.Errorf("samples:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := 0; i < ds.Len(); i++ {
		it, err := ds.Load(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := ds.Sample(i); (s.Label == 1) != (it.Region != nil) {
			t.Errorf("%s: region %v", s.Path, it.Region != nil)
		}
	}
	// DFDC's val quirk: the split holds one video object directly.
	var warn bytes.Buffer
	ds, err = Open("dfb:"+filepath.Join(root, "DFDC.json")+"?split=val", Options{Warn: &warn})
	if err != nil {
		t.Fatal(err)
	}
	if r, f := ds.Counts(); r != 1 || f != 0 {
		t.Errorf("DFDC val Counts = %d, %d", r, f)
	}
	for _, tc := range []struct{ spec, want string }{
		{"dfb:" + filepath.Join(root, "FF-DF.json") + "?dataset=Nope", `no dataset "Nope"`},
		{"dfb:" + filepath.Join(root, "Celeb-DF-v2.json"), "no frames"}, // default split train absent
		{"dfb:" + filepath.Join(root, "missing.json"), "missing.json"},
	} {
		if _, err := Open(tc.spec, quiet()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) error = %v, want %q", tc.spec, err, tc.want)
		}
	}
	writeJSON(t, filepath.Join(root, "multi.json"), map[string]any{"X": map[string]any{"X_fake": map[string]any{
		"train": map[string]any{"c40": map[string]any{}, "raw": map[string]any{}}}}})
	if _, err := Open("dfb:"+filepath.Join(root, "multi.json"), quiet()); err == nil || !strings.Contains(err.Error(), "pick one") {
		t.Errorf("ambiguous compression: %v", err)
	}
}

func TestOpenIndexAndRegions(t *testing.T) {
	dir := t.TempDir()
	face, mask := scene(60, 60, 10, 10, 20)
	writePNG(t, filepath.Join(dir, "img", "a.png"), face)
	writePNG(t, filepath.Join(dir, "img", "a_mask.png"), mask)
	writePNG(t, filepath.Join(dir, "img", "b.png"), flat(60, 60, teal))
	w, err := OpenIndexWriter(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	w.Append(IndexEntry{Image: "img/a.png", Mask: "img/a_mask.png", Label: 1, Video: "va", Frame: 4, Method: "Deepfakes", Landmarks: landmarks68()})
	w.Append(IndexEntry{Image: "img/b.png", Label: 0, Video: "vb"})
	w.Close()
	for _, spec := range []string{dir, "index:" + dir, "index:" + filepath.Join(dir, IndexFile), filepath.Join(dir, IndexFile)} {
		ds, err := Open(spec, quiet())
		if err != nil {
			t.Fatalf("Open(%q): %v", spec, err)
		}
		want := []string{"0 vb 0  -", "1 va 4 Deepfakes mask:img/a_mask.png"}
		if got := brief(ds); !reflect.DeepEqual(got, want) {
			t.Errorf("Open(%q) samples %q, want %q", spec, got, want)
		}
		if !ds.HasRegions() {
			t.Errorf("Open(%q): HasRegions false with landmarks", spec)
		}
	}
	// The mouth box of landmarks68 is x 20..30, y 40..44, padded by 5:
	// columns 15..34, rows 35..48.
	ds, _ := Open(dir, quiet())
	it, err := ds.Load(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if it.Sample.Label != 1 || it.Region == nil {
		t.Fatalf("sample 0: label %d region %v", it.Sample.Label, it.Region)
	}
	for y := 0; y < 60; y++ {
		for x := 0; x < 60; x++ {
			in := x >= 15 && x < 35 && y >= 35 && y < 49
			if got := it.Region.Pix[y*60+x] == 255; got != in {
				t.Fatalf("region at (%d,%d) = %v, want %v", x, y, got, in)
			}
		}
	}
	ds, _ = Open(dir, Options{Region: "none", Warn: io.Discard})
	if ds.HasRegions() {
		t.Error("Region none: HasRegions true")
	}
}

func TestRegionBox(t *testing.T) {
	lm := landmarks68()
	tests := []struct {
		region         string
		w, h           int
		x0, y0, x1, y1 int
		ok             bool
	}{
		{"mouth", 100, 100, 15, 35, 35, 49, true},
		{"nose", 100, 100, 19, 15, 31, 35, true},
		{"eyes", 100, 100, 5, 7, 45, 19, true},
		{"mouth", 30, 45, 15, 35, 30, 45, true}, // clipped
		{"chin", 100, 100, 0, 0, 0, 0, false},
	}
	for _, tc := range tests {
		x0, y0, x1, y1, ok := RegionBox(lm, tc.region, tc.w, tc.h)
		if ok != tc.ok || (ok && (x0 != tc.x0 || y0 != tc.y0 || x1 != tc.x1 || y1 != tc.y1)) {
			t.Errorf("RegionBox(%s, %dx%d) = %d,%d,%d,%d,%v want %d,%d,%d,%d,%v", tc.region, tc.w, tc.h,
				x0, y0, x1, y1, ok, tc.x0, tc.y0, tc.x1, tc.y1, tc.ok)
		}
	}
	if _, _, _, _, ok := RegionBox(lm[:50], "mouth", 100, 100); ok {
		t.Error("mouth box from 50 landmarks")
	}
}

func TestParseNPY(t *testing.T) {
	pts := [][2]float32{{1.5, 2}, {-3, 4.25}}
	got, err := parseNPY(npyBytes(pts))
	if err != nil || !reflect.DeepEqual(got, pts) {
		t.Errorf("parseNPY(f4) = %v, %v", got, err)
	}
	// int64, shape (1, 2, 2), version 1.
	hdr := "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2, 2), }\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = append(b, byte(len(hdr)), 0)
	b = append(b, hdr...)
	for _, v := range []int64{7, -8, 9, 10} {
		for k := 0; k < 8; k++ {
			b = append(b, byte(uint64(v)>>(8*k)))
		}
	}
	got, err = parseNPY(b)
	if want := [][2]float32{{7, -8}, {9, 10}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseNPY(i8) = %v, %v; want %v", got, err, want)
	}
	for name, bad := range map[string][]byte{
		"not npy":   []byte("hello world"),
		"truncated": npyBytes(pts)[:len(npyBytes(pts))-3],
		"shape":     []byte("\x93NUMPY\x01\x00\x30\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"),
	} {
		if _, err := parseNPY(bad); err == nil {
			t.Errorf("parseNPY(%s) succeeded", name)
		}
	}
}

// fakeGen is a Generator producing flat images; odd samples are real.
type fakeGen struct{ n int }

func (g fakeGen) Len() int        { return g.n }
func (g fakeGen) Label(i int) int { return 1 - i%2 }
func (g fakeGen) Generate(i int, rng *rand.Rand) (*image.RGBA, *image.Gray, error) {
	if i == 3 {
		return nil, nil, fmt.Errorf("sample %d cannot be generated", i)
	}
	img, mask := scene(16, 16, rng.IntN(8), rng.IntN(8), 8)
	if i%2 == 1 {
		return img, nil, nil
	}
	return img, mask, nil
}

func TestCombinedSpecsAndGenerator(t *testing.T) {
	root := t.TempDir()
	a := filepath.Join(root, "FF++")
	writePNG(t, filepath.Join(a, "real", "r.png"), flat(8, 8, teal))
	writePNG(t, filepath.Join(a, "fake", "f.png"), flat(8, 8, red))
	b := filepath.Join(root, "b")
	writePNG(t, filepath.Join(b, "fake", "g.png"), flat(8, 8, red))
	opts := Options{Warn: io.Discard, Generators: map[string]Generator{"sbi": fakeGen{n: 4}}}
	ds, err := Open(a+"+"+b+"+sbi:"+root, opts)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 7 {
		t.Fatalf("Len = %d, want 3+1+4", ds.Len())
	}
	if r, f := ds.Counts(); r != 3 || f != 4 {
		t.Errorf("Counts = %d, %d; want 3, 4", r, f)
	}
	// Generated samples are reproducible from the rng and carry their mask.
	idx := 3 // first generated sample
	if s := ds.Sample(idx); s.Path != "sbi:"+root+"#0" || s.Label != 1 {
		t.Fatalf("sample %d = %+v", idx, s)
	}
	x, err := ds.Load(idx, rand.New(rand.NewPCG(5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	y, _ := ds.Load(idx, rand.New(rand.NewPCG(5, 5)))
	if !reflect.DeepEqual(x.Image, y.Image) || x.Mask == nil {
		t.Error("generated sample not reproducible or without mask")
	}
	if _, err := ds.Load(idx+3, rand.New(rand.NewPCG(5, 5))); err == nil || ds.Skipped() != 1 {
		t.Errorf("failing generated sample: err %v, Skipped %d", err, ds.Skipped())
	}
}

func TestEveryLimitBalance(t *testing.T) {
	dir := t.TempDir()
	img := flat(4, 4, teal)
	// 3 real frames of one video, 10 fake frames in two videos.
	for f := 0; f < 3; f++ {
		writePNG(t, filepath.Join(dir, "m", "real", fmt.Sprintf("image_1_%d.png", f)), img)
	}
	for f := 0; f < 5; f++ {
		writePNG(t, filepath.Join(dir, "m", "fake", fmt.Sprintf("image_2_%d.png", f)), img)
		writePNG(t, filepath.Join(dir, "m", "fake", fmt.Sprintf("image_3_%d.png", f*3)), img)
	}
	count := func(o Options) (int, int) {
		o.Warn = io.Discard
		ds, err := Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		return ds.Counts()
	}
	tests := []struct {
		name       string
		opts       Options
		real, fake int
	}{
		{"all", Options{}, 3, 10},
		{"every 2", Options{Every: 2}, 2, 6},        // frames 0,2 | 0,2,4 | 0,6,12
		{"every 3", Options{Every: 3}, 1, 4},        // 0 | 0,3 | 0,9
		{"limit", Options{Limit: 4}, 3, 4},          // cap per class
		{"balance", Options{Balance: true}, 10, 10}, // 3 copies + 1 drawn
		{"limit+balance", Options{Limit: 2, Balance: true}, 2, 2},
	}
	for _, tc := range tests {
		if r, f := count(tc.opts); r != tc.real || f != tc.fake {
			t.Errorf("%s: Counts = %d, %d; want %d, %d", tc.name, r, f, tc.real, tc.fake)
		}
	}
	// Balancing: every real appears 3 or 4 times, and the draw follows Seed.
	draw := func(seed int64) map[string]int {
		ds, _ := Open(dir, Options{Balance: true, Seed: seed, Warn: io.Discard})
		n := map[string]int{}
		for _, s := range ds.Samples() {
			if s.Label == 0 {
				n[filepath.Base(s.Path)]++
			}
		}
		return n
	}
	first := draw(1)
	for name, n := range first {
		if n != 3 && n != 4 {
			t.Errorf("real %s appears %d times", name, n)
		}
	}
	if !reflect.DeepEqual(first, draw(1)) {
		t.Error("balancing is not reproducible for a seed")
	}
	// every=5 leaves 1 real and 2 fakes: the real is repeated.
	ds, _ := Open(dir+"?every=5", Options{Balance: true, Warn: io.Discard})
	if r, f := ds.Counts(); r != 2 || f != 2 {
		t.Errorf("every=5 balance: %d, %d; want 2, 2", r, f)
	}
	// More reals than fakes: a random subset of distinct reals is kept.
	dir2 := t.TempDir()
	for i := 0; i < 5; i++ {
		writePNG(t, filepath.Join(dir2, "real", fmt.Sprintf("r%d.png", i)), img)
	}
	writePNG(t, filepath.Join(dir2, "fake", "f0.png"), img)
	writePNG(t, filepath.Join(dir2, "fake", "f1.png"), img)
	ds, _ = Open(dir2, Options{Balance: true, Warn: io.Discard})
	seen := map[string]bool{}
	for _, s := range ds.Samples() {
		if s.Label == 0 {
			seen[s.Path] = true
		}
	}
	if r, f := ds.Counts(); r != 2 || f != 2 || len(seen) != 2 {
		t.Errorf("reals > fakes balance: %d, %d (%d distinct reals); want 2, 2, 2", r, f, len(seen))
	}
}

func TestNaturalLess(t *testing.T) {
	in := []string{"f10.png", "f2.png", "f1.png", "f02.png", "a", "f"}
	sort.Slice(in, func(i, j int) bool { return naturalLess(in[i], in[j]) })
	want := []string{"a", "f", "f1.png", "f2.png", "f02.png", "f10.png"}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("natural order %v, want %v", in, want)
	}
	for name, want := range map[string]int{"0012.png": 12, "image_3_45.png": 45, "frame7_x.png": 7, "none.png": -1} {
		if got := trailingNumber(name); got != want {
			t.Errorf("trailingNumber(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestFFPPCropsFolder(t *testing.T) {
	dir := shared.Path(t, "data", "ffpp-crops")
	ds, err := Open(dir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	// 7 subsets; README: 650 crops. Counted per label directory.
	if r, f := ds.Counts(); r != 312 || f != 338 {
		t.Errorf("Counts = %d real, %d fake; want 312, 338", r, f)
	}
	s := ds.Sample(0)
	if !strings.HasPrefix(s.Video, s.Method+"/") || s.MaskPath != "" {
		t.Errorf("first sample %+v", s)
	}
	methods := map[string]bool{}
	for _, s := range ds.Samples() {
		methods[s.Method] = true
	}
	if len(methods) != 7 {
		t.Errorf("methods %v, want 7", methods)
	}
}
