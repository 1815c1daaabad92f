package detect

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/media"
)

// cropScores scores the crops face.Crop cuts for boxes out of img, one
// forward pass per face.
func cropScores(t *testing.T, p *Pipeline, img *image.RGBA, boxes []face.Box) []Score {
	t.Helper()
	out := make([]Score, len(boxes))
	for i, b := range boxes {
		crop, _, _ := face.Crop(img, face.Face{Box: b}, face.CropOptions{Scale: 1.3, Size: p.Model().Config.ImageSize})
		sc, err := p.ScoreCrops([]*image.RGBA{crop})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = sc[0]
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-5 }

func TestPipelinePhotoFaces(t *testing.T) {
	m := testModel(t)
	dir := t.TempDir()
	img := noiseImage(400, 300, 11)
	path := filepath.Join(dir, "crowd.png")
	writePNG(t, path, img)
	// 20 faces of distinct sizes, listed smallest first, and one empty
	// box the pipeline must drop.
	var boxes []face.Box
	for i := range 20 {
		x, y := float32(20*(i%5)), float32(30*(i/5))
		s := float32(20 + 3*i)
		boxes = append(boxes, face.Box{X0: x, Y0: y, X1: x + s, Y1: y + s*1.2})
	}
	det := fixedFaces(append(boxes, face.Box{X0: 5, Y0: 5, X1: 5, Y1: 40})...)
	p, err := NewPipeline(m, PipelineOptions{BatchSize: 3, Workers: 2, Faces: det})
	if err != nil {
		t.Fatal(err)
	}
	// The 16 largest, largest first.
	want := make([]face.Box, 16)
	for k := range want {
		want[k] = boxes[19-k]
	}
	scores := cropScores(t, p, img, want)

	hm := filepath.Join(dir, "heat")
	got := collect(t, p, []Input{{Path: path}}, Options{Heatmaps: hm})
	r, err := got[0].r, got[0].err
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != KindImage || r.Width != 400 || r.Height != 300 || len(r.Faces) != 16 {
		t.Fatalf("kind %s, %dx%d, %d faces; want image 400x300 with 16 faces", r.Kind, r.Width, r.Height, len(r.Faces))
	}
	best := 0
	for k, f := range r.Faces {
		if f.BBox != box4(want[k]) {
			t.Errorf("face %d: bbox %v, want %v (largest first)", k, f.BBox, box4(want[k]))
		}
		if sq := face.CropBox(want[k], img.Rect, face.CropOptions{}); f.CropBox != box4(sq) {
			t.Errorf("face %d: crop box %v, want %v", k, f.CropBox, box4(sq))
		}
		if !near(f.PFake, scores[k].PFake) || f.Score != float64(float32(0.9)) {
			t.Errorf("face %d: p_fake %v (score %v), scoring its crop alone gives %v", k, f.PFake, f.Score, scores[k].PFake)
		}
		if f.Label != label(f.PFake, 0.5) || f.Heatmap != r.Heatmap {
			t.Errorf("face %d: label %s for %v, heatmap %q", k, f.Label, f.PFake, f.Heatmap)
		}
		if len(f.PatchPFake) != 4 || !near(f.PatchPFake[1][2], scores[k].Patch[1][2]) {
			t.Errorf("face %d: patch map %v, want %v", k, f.PatchPFake, scores[k].Patch)
		}
		if f.PFake > r.Faces[best].PFake {
			best = k
		}
	}
	if r.PFake != r.Faces[best].PFake || r.Label != r.Faces[best].Label || r.PatchPFake[0][0] != r.Faces[best].PatchPFake[0][0] {
		t.Errorf("verdict p_fake %v %s, want the most suspicious face's %v", r.PFake, r.Label, r.Faces[best].PFake)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "20 faces found") || !strings.Contains(r.Warnings[0], "4 left out") {
		t.Errorf("warnings %q, want one counting the 4 faces left out", r.Warnings)
	}
	// The overlay: the photo's size, in the heatmap folder, named after it.
	if r.Heatmap != filepath.Join(hm, "crowd.heatmap.png") {
		t.Errorf("heatmap %q", r.Heatmap)
	}
	if hi := decodePNG(t, r.Heatmap); hi.Bounds() != img.Rect {
		t.Errorf("heatmap of %v, want the photo's %v", hi.Bounds(), img.Rect)
	}

	// Inline: the same picture as a data URL; MaxFaces; threshold.
	got = collect(t, p, []Input{{Path: path}}, Options{InlinePNG: true, MaxFaces: 2, Threshold: r.Faces[1].PFake})
	r2 := got[0].r
	b64, ok := strings.CutPrefix(r2.Heatmap, "data:image/png;base64,")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil {
		t.Fatalf("inline heatmap %.40q: %v", r2.Heatmap, err)
	}
	if hi, err := png.Decode(bytes.NewReader(raw)); err != nil || hi.Bounds() != img.Rect {
		t.Errorf("inline heatmap: %v", err)
	}
	if len(r2.Faces) != 2 || r2.Faces[1].Label != LabelFake || !strings.Contains(strings.Join(r2.Warnings, " "), "18 left out") {
		t.Errorf("max faces 2 at threshold %v: %d faces, labels %s/%s, warnings %q", r.Faces[1].PFake, len(r2.Faces), r2.Faces[0].Label, r2.Faces[1].Label, r2.Warnings)
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func TestPipelineNoFaceAndBadInputs(t *testing.T) {
	m := testModel(t)
	dir := t.TempDir()
	p, err := NewPipeline(m, PipelineOptions{Faces: fixedFaces(), Limits: media.Limits{MaxPixels: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, noiseImage(64, 48, 3))
	good := pngBuf.Bytes()
	tests := []struct {
		name string
		in   Input
		want error // nil: a result without faces
	}{
		{"no face", Input{Path: write("empty.png", good)}, nil},
		{"no face, upload", Input{Name: "up.png", Data: bytes.NewReader(good)}, nil},
		{"empty file", Input{Path: write("zero.jpg", nil)}, media.ErrEmpty},
		{"text renamed .jpg", Input{Path: write("notes.jpg", []byte("just some text\n"))}, media.ErrNotImage},
		{"truncated PNG", Input{Path: write("cut.png", good[:len(good)/2])}, media.ErrTruncated},
		{"50000x50000 PNG header", Input{Path: write("huge.png", pngHeader(50000, 50000))}, media.ErrTooLarge},
		{"zero-byte video", Input{Path: write("clip.mp4", nil)}, media.ErrEmpty},
		{"text upload", Input{Name: "a.jpg", Data: strings.NewReader("hello")}, media.ErrNotImage},
		{"missing file", Input{Path: filepath.Join(dir, "absent.png")}, os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := p.Analyze(t.Context(), tc.in, Options{Heatmaps: filepath.Join(dir, "hm")})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if r.Label != LabelNone || r.PFake != 0 || len(r.Faces) != 0 || r.Heatmap != "" || len(r.Warnings) != 1 || r.Warnings[0] != "no face found" {
					t.Errorf("result %+v, want label none, no faces and the warning", r)
				}
				// JSON has [] for the faces and the patch map, never null.
				b, _ := json.Marshal(r)
				if !strings.Contains(string(b), `"faces":[]`) || !strings.Contains(string(b), `"patch_p_fake":[]`) {
					t.Errorf("JSON %s", b)
				}
				return
			}
			var ie *InputError
			name := tc.in.name()
			if !errors.As(err, &ie) || ie.Input != name || !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), name+": ") {
				t.Fatalf("error %v, want an InputError naming %s wrapping %v", err, name, tc.want)
			}
			if strings.Contains(ie.Reason(), filepath.Base(name)+": ") {
				t.Errorf("reason %q repeats the name", ie.Reason())
			}
		})
	}
}

// pngHeader returns the signature and IHDR chunk of a w x h RGB PNG, with
// no pixel data after them.
func pngHeader(w, h uint32) []byte {
	ihdr := []byte("IHDR\x00\x00\x00\x00\x00\x00\x00\x00\x08\x02\x00\x00\x00")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	out := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d")
	out = append(out, ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

// TestPipelineRealFaces finds the face of the FaceForensics++ example
// frame with the real detector: one face on the man's head, scored as its
// crop alone is; the mask picture has none.
func TestPipelineRealFaces(t *testing.T) {
	ex := shared.Path(t, "data", "ffpp-examples", "ex_original.png")
	mask := shared.Path(t, "data", "ffpp-examples", "ex_deepfakes_mask.png")
	det := realDetector(t)
	p, err := NewPipeline(testModel(t), PipelineOptions{Faces: det})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, p, []Input{{Path: ex}, {Path: mask}}, Options{})
	r, err := got[0].r, got[0].err
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Faces) != 1 {
		t.Fatalf("%d faces in the example frame, want 1", len(r.Faces))
	}
	f := r.Faces[0]
	// The face sits around (340, 120) of the 640x480 frame.
	if cx, cy := (f.BBox[0]+f.BBox[2])/2, (f.BBox[1]+f.BBox[3])/2; math.Abs(cx-340) > 40 || math.Abs(cy-120) > 40 || f.Score < 0.5 {
		t.Errorf("face %+v: centre (%.0f, %.0f), want near (340, 120)", f.BBox, cx, cy)
	}
	img, err := media.DecodeImage(ex)
	if err != nil {
		t.Fatal(err)
	}
	b := face.Box{X0: float32(f.BBox[0]), Y0: float32(f.BBox[1]), X1: float32(f.BBox[2]), Y1: float32(f.BBox[3])}
	if want := cropScores(t, p, img, []face.Box{b}); !near(f.PFake, want[0].PFake) || r.PFake != f.PFake {
		t.Errorf("p_fake %v, its crop scores %v", f.PFake, want[0].PFake)
	}
	if r2 := got[1].r; got[1].err != nil || r2.Label != LabelNone || len(r2.Faces) != 0 {
		t.Errorf("mask picture: %+v %v, want no face", r2, got[1].err)
	}
}

func TestHeatmapNames(t *testing.T) {
	ins := []Input{
		{Path: "a/face.jpg"}, {Path: "b/face.png"}, {Path: "face-2.jpg"}, {Name: "my photo (1).JPG"},
		{Path: "x/.hidden.png"}, {Name: "../../etc/passwd"}, {Name: `c:\users\me\pic.png`}, {Name: "漢字.png"},
		{Path: "clip.mp4"},
	}
	want := []string{"face.heatmap.png", "face-2.heatmap.png", "face-2-2.heatmap.png", "my_photo__1_.heatmap.png",
		"hidden.heatmap.png", "passwd.heatmap.png", "pic.heatmap.png", "__.heatmap.png", "clip.heatmap.png"}
	got := HeatmapNames(ins)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%q: %q, want %q", ins[i].name(), got[i], want[i])
		}
	}
}
