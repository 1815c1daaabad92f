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
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/weights"
)

// realPipeline saves a small LVNet (the paper's network at 64 pixels and a
// quarter of the channels, golden deterministic weights) with package
// checkpoint, loads it back as `lvnet serve --model` does and returns its
// pipeline.
func realPipeline(t *testing.T) *detect.Pipeline {
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
	p, err := detect.NewPipeline(loaded, detect.PipelineOptions{BatchSize: 2, Workers: 1})
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
