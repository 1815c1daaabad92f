package serve

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/weights"
)

// realPipeline saves a small LVNet (the paper's network at 64 pixels and a
// quarter of the channels, golden deterministic weights) with package
// checkpoint, loads it back as `lvnet serve --model` does and returns its
// pipeline.
func realPipeline(t *testing.T) *detect.Pipeline {
	t.Helper()
	return realPipelineWith(t, nil)
}

// realPipelineWith is realPipeline with a face detector (nil: none).
func realPipelineWith(t *testing.T, faces detect.FaceDetector) *detect.Pipeline {
	t.Helper()
	cfg := model.Paper()
	cfg.ImageSize, cfg.Width, cfg.SSPSL = 64, 0.25, false
	m, err := model.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := weights.DeterministicStateDict(m.KeyShapes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetState(sd); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "small.safetensors")
	err = checkpoint.Save(path, m, checkpoint.Meta{Provenance: checkpoint.Provenance{Source: checkpoint.SourceDeterministic}})
	m.Free()
	if err != nil {
		t.Fatal(err)
	}
	loaded, _, err := checkpoint.Load(path, checkpoint.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loaded.Free)
	p, err := detect.NewPipeline(loaded, detect.PipelineOptions{BatchSize: 2, Workers: 1, Faces: faces})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// noisePNG encodes a w x h picture of colour gradients and noise.
func noisePNG(t testing.TB, w, h int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := uint8(r.IntN(64))
			img.SetRGBA(x, y, color.RGBA{uint8(x*255/w)/2 + n, uint8(y*255/h) / 2, n * 2, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestRealPipeline serves the real detect.Pipeline over loopback: uploads
// get the scores the pipeline computes in-process, bad inputs get 4xx JSON
// errors, and the server keeps serving.
func TestRealPipeline(t *testing.T) {
	p := realPipeline(t)
	spool := t.TempDir()
	_, base := startServer(t, p, Config{TempDir: spool, ModelInfo: map[string]any{"name": "small.safetensors"}})
	face := noisePNG(t, 64, 64, 1)
	want, err := p.Analyze(context.Background(), detect.Input{Name: "ref.png", Data: bytes.NewReader(face)}, detect.Options{Aligned: true})
	if err != nil {
		t.Fatal(err)
	}

	check := func(name string, a answer) {
		t.Helper()
		if a.status != 200 {
			t.Fatalf("%s: %d %s", name, a.status, a.body)
		}
		r := a.resp.Results[0]
		if r.Input != name || r.Kind != detect.KindFace || r.Label != want.Label || math.Abs(r.PFake-want.PFake) > 1e-9 {
			t.Errorf("%s: input %q kind %q label %q p_fake %v; want %s face %s %v", name, r.Input, r.Kind, r.Label, r.PFake, name, want.Label, want.PFake)
		}
		g := len(want.PatchPFake)
		if g == 0 || len(r.PatchPFake) != g || len(r.Faces) != 1 {
			t.Fatalf("%s: %d-row patch map, %d faces; want %d rows, 1 face", name, len(r.PatchPFake), len(r.Faces), g)
		}
		for i := range g {
			for j := range g {
				if math.Abs(r.PatchPFake[i][j]-want.PatchPFake[i][j]) > 1e-9 {
					t.Errorf("%s: patch (%d,%d) = %v, want %v", name, i, j, r.PatchPFake[i][j], want.PatchPFake[i][j])
				}
			}
		}
	}
	check("face.png", postFile(t, base, "?aligned=1", "face.png", face))
	check("raw.png", do(t, "POST", base+"/v1/detect?aligned=1&name=raw.png", "image/png", bytes.NewReader(face)))

	trunc := noisePNG(t, 64, 64, 2)
	tests := []struct {
		name, query, file string
		data              []byte
		status            int
		code, msg         string
	}{
		{"whole photo", "", "photo.png", face, 422, "needs_aligned", "photo.png: face detection is not available"},
		{"empty file", "?aligned=1", "e.png", nil, 400, "empty", "e.png"},
		{"zero-byte video", "?aligned=1", "clip.mp4", nil, 400, "empty", "clip.mp4"},
		{"text renamed .jpg", "?aligned=1", "notes.jpg", []byte("hello there\n"), 415, "unsupported_media", "looks like text"},
		{"truncated PNG", "?aligned=1", "cut.png", trunc[:len(trunc)*2/3], 400, "truncated", "cut.png"},
		{"50000x50000 PNG header", "?aligned=1", "huge.png", pngHeader(50000, 50000), 413, "too_large", "50000x50000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := postFile(t, base, tc.query, tc.file, tc.data)
			if a.status != tc.status || a.err.Code != tc.code || !strings.Contains(a.err.Error, tc.msg) || strings.Contains(a.err.Error, "lvnet-upload") {
				t.Errorf("got %d %q %q; want %d %q with %q", a.status, a.err.Code, a.err.Error, tc.status, tc.code, tc.msg)
			}
		})
	}
	// A video (a bare MP4 header) is spooled to a file the pipeline reads; a
	// pipeline without video support says it is not an image, by the
	// client's name.
	a := postFile(t, base, "?aligned=1", "clip.mp4", []byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"))
	if a.status/100 != 4 || !strings.HasPrefix(a.err.Error, "clip.mp4: ") || strings.Contains(a.err.Error, "lvnet-upload") {
		t.Errorf("video: %d %q %q; want a 4xx naming clip.mp4", a.status, a.err.Code, a.err.Error)
	}
	if h := do(t, "GET", base+"/healthz", "", nil); h.status != http.StatusOK {
		t.Errorf("healthz: %d", h.status)
	}
	check("again.png", postFile(t, base, "?aligned=1", "again.png", face))
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("%d temporary file(s) left behind", len(left))
	}
}

// TestRealPipelineFaces serves the real pipeline with the real face
// detector: a photo gets its face, a linked heatmap of the photo's size; a
// video its frames and tracked face; a video without faces a result
// labelled none; bad files 4xx answers; and the server keeps serving.
func TestRealPipelineFaces(t *testing.T) {
	ex := shared.Path(t, "data", "ffpp-examples", "ex_original.png")
	dir := face.DefaultModelDir()
	if _, err := os.Stat(filepath.Join(dir, "ssd_mobilenetv1_model-weights_manifest.json")); err != nil {
		t.Skipf("face models not installed in %s (run scripts/fetch-face-models.sh)", dir)
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	det, err := face.NewDetector(dir, face.Options{NoLandmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	spool := t.TempDir()
	_, base := startServer(t, realPipelineWith(t, det), Config{TempDir: spool})
	photo, err := os.ReadFile(ex)
	if err != nil {
		t.Fatal(err)
	}
	a := postFile(t, base, "", "newsroom.png", photo)
	if a.status != 200 {
		t.Fatalf("photo: %d %s", a.status, a.body)
	}
	r := a.resp.Results[0]
	if r.Input != "newsroom.png" || r.Kind != detect.KindImage || len(r.Faces) != 1 || r.Faces[0].Heatmap != r.Heatmap ||
		!strings.HasPrefix(r.Heatmap, heatmapPath) || r.PFake != r.Faces[0].PFake || len(r.PatchPFake) != 4 {
		t.Fatalf("photo result %+v", r)
	}
	h, err := http.Get(base + r.Heatmap)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(h.Body)
	h.Body.Close()
	if err != nil || img.Bounds() != image.Rect(0, 0, 640, 480) {
		t.Errorf("heatmap %s: %v, bounds %v", r.Heatmap, err, img)
	}

	clip := filepath.Join(t.TempDir(), "c.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", ex, "-vf", "scale=320:240", "-frames:v", "4",
		"-r", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", clip).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	video, _ := os.ReadFile(clip)
	a = postFile(t, base, "?inline=1", "interview.mp4", video)
	if a.status != 200 {
		t.Fatalf("video: %d %s", a.status, a.body)
	}
	r = a.resp.Results[0]
	if r.Input != "interview.mp4" || r.Kind != detect.KindVideo || r.Video == nil || r.Video.Frames != 4 || len(r.Frames) != 4 ||
		len(r.Faces) != 1 || r.Faces[0].NumFrames != 4 || !strings.HasPrefix(r.Heatmap, "data:image/png;base64,") {
		t.Errorf("video result: kind %s, video %+v, %d frames, faces %d, heatmap %.30q", r.Kind, r.Video, len(r.Frames), len(r.Faces), r.Heatmap)
	}
	a = postFile(t, base, "", "pattern.mp4", mustRead(t, makeVideo(t, t.TempDir(), 5)))
	if a.status != 200 || a.resp.Results[0].Label != detect.LabelNone || len(a.resp.Results[0].Warnings) != 1 {
		t.Errorf("video without faces: %d %s", a.status, a.body)
	}
	trunc := noisePNG(t, 64, 64, 3)
	for _, tc := range []struct {
		name   string
		data   []byte
		status int
	}{
		{"empty.jpg", nil, 400},
		{"notes.jpg", []byte("text\n"), 415},
		{"cut.png", trunc[:len(trunc)/2], 400},
		{"huge.png", pngHeader(50000, 50000), 413},
		{"zero.mp4", nil, 400},
	} {
		if a := postFile(t, base, "", tc.name, tc.data); a.status != tc.status || !strings.Contains(a.err.Error, tc.name) {
			t.Errorf("%s: %d %q, want %d naming it", tc.name, a.status, a.err.Error, tc.status)
		}
	}
	if a := postFile(t, base, "", "again.png", photo); a.status != 200 || len(a.resp.Results[0].Faces) != 1 {
		t.Errorf("after bad inputs: %d %s", a.status, a.body)
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("%d temporary file(s) left behind", len(left))
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
