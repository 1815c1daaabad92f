package detect

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/internal/modeltest"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

func TestPreprocess(t *testing.T) {
	// A 2x2 image; red 0, 255 / 51, 102; green 255 everywhere; blue 0.
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	reds := []uint8{0, 255, 51, 102}
	for i, r := range reds {
		img.SetRGBA(i%2, i/2, color.RGBA{r, 255, 0, 255})
	}
	s := torch.NewScope()
	defer s.Close()
	norm := func(v float64) float32 { return float32((v - 0.5) / 0.5) }

	// Same size: only scaling and normalisation.
	got := modeltest.Values(t, Preprocess(s, img, 2))
	want := []float32{norm(0), norm(1), norm(0.2), norm(0.4), 1, 1, 1, 1, -1, -1, -1, -1}
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Errorf("same size: value %d = %v, want %v", i, got[i], want[i])
		}
	}

	// 2 -> 4 with align_corners=False: output i samples source (i+0.5)/2-0.5
	// = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1]; weights per axis
	// (1,0), (0.75,0.25), (0.25,0.75), (0,1).
	wts := [][2]float64{{1, 0}, {0.75, 0.25}, {0.25, 0.75}, {0, 1}}
	src := [2][2]float64{{0, 1}, {0.2, 0.4}}
	x := Preprocess(s, img, 4)
	if sh := x.Shape(); len(sh) != 4 || sh[0] != 1 || sh[1] != 3 || sh[2] != 4 || sh[3] != 4 {
		t.Fatalf("shape %v, want [1 3 4 4]", sh)
	}
	got = modeltest.Values(t, x)
	for y := range 4 {
		for xx := range 4 {
			var v float64
			for a := range 2 {
				for b := range 2 {
					v += wts[y][a] * wts[xx][b] * src[a][b]
				}
			}
			if g := got[4*y+xx]; math.Abs(float64(g-norm(v))) > 1e-6 {
				t.Errorf("resized red (%d,%d) = %v, want %v", y, xx, g, norm(v))
			}
			if g := got[16+4*y+xx]; g != 1 {
				t.Errorf("resized green (%d,%d) = %v, want 1", y, xx, g)
			}
		}
	}

	// A sub-image (bounds not at the origin) and a non-RGBA image.
	big := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i, r := range reds {
		big.SetRGBA(2+i%2, 1+i/2, color.RGBA{r, 255, 0, 255})
	}
	sub := big.SubImage(image.Rect(2, 1, 4, 3))
	gray := image.NewGray(image.Rect(0, 0, 2, 2))
	gray.SetGray(1, 1, color.Gray{255})
	for _, c := range []struct {
		name string
		img  image.Image
		want []float32
	}{
		{"sub-image", sub, []float32{norm(0), norm(1), norm(0.2), norm(0.4)}},
		{"gray", gray, []float32{-1, -1, -1, 1}},
	} {
		got := modeltest.Values(t, Preprocess(s, c.img, 2))
		for i, w := range c.want {
			if math.Abs(float64(got[i]-w)) > 1e-6 {
				t.Errorf("%s: value %d = %v, want %v", c.name, i, got[i], w)
			}
		}
	}
	if err := Preprocess(s, image.NewRGBA(image.Rect(0, 0, 0, 3)), 4).Err(); err == nil {
		t.Error("empty image accepted")
	}
}

// testModel is the small network (modeltest.SmallConfig) without the SSPSL
// head, holding the golden deterministic weights.
func testModel(t testing.TB) *model.LVNet {
	t.Helper()
	cfg := modeltest.SmallConfig()
	cfg.SSPSL = false
	return modeltest.Deterministic(t, cfg)
}

// noiseImage is a w x h image of smooth colour gradients plus noise.
func noiseImage(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := uint8(r.IntN(64))
			img.SetRGBA(x, y, color.RGBA{uint8(x*255/w) / 2, uint8(y*255/h)/2 + n, n * 2, 255})
		}
	}
	return img
}

func writePNG(t testing.TB, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// direct scores images with a plain forward of m, preprocessing them as the
// documentation of Pipeline says.
func direct(t *testing.T, m *model.LVNet, imgs []*image.RGBA) []Score {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	n := int64(m.Config.ImageSize)
	xs := make([]*torch.Tensor, len(imgs))
	for i, img := range imgs {
		w, h := img.Rect.Dx(), img.Rect.Dy()
		v := make([]float32, 3*w*h)
		for y := range h {
			for x := range w {
				c := img.RGBAAt(x, y)
				for ch, u := range []uint8{c.R, c.G, c.B} {
					v[ch*w*h+y*w+x] = float32(u) / 255
				}
			}
		}
		x := torch.FromSlice(s, v, 1, 3, int64(h), int64(w))
		if int64(w) != n || int64(h) != n {
			x = x.UpsampleBilinear2d(n, n, false)
		}
		xs[i] = x.MulScalar(2).SubScalar(1)
	}
	var out model.Output
	err := torch.NoGrad(func() error {
		out = m.Forward(nn.EvalCtx(), torch.Cat(0, xs...))
		return out.Seg.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	cls := modeltest.Values(t, out.Cls.Softmax(1))
	seg := modeltest.Values(t, out.Seg.Softmax(1))
	g := int(out.Seg.Size(2))
	scores := make([]Score, len(imgs))
	for b := range imgs {
		scores[b].PFake = 1 - float64(cls[2*b])
		for r := range g {
			row := make([]float64, g)
			for c := range g {
				row[c] = float64(seg[(2*b+1)*g*g+r*g+c])
			}
			scores[b].Patch = append(scores[b].Patch, row)
		}
	}
	return scores
}

type outcome struct {
	i   int
	r   *Result
	err error
}

func TestPipelineAligned(t *testing.T) {
	m := testModel(t)
	dir := t.TempDir()
	imgs := []*image.RGBA{noiseImage(64, 64, 1), noiseImage(80, 80, 2), noiseImage(50, 70, 3), noiseImage(64, 64, 4), noiseImage(256, 256, 5)}
	var ins []Input
	paths := map[int]string{}
	for i, img := range imgs {
		p := filepath.Join(dir, "face"+string(rune('a'+i))+".png")
		writePNG(t, p, img)
		paths[len(ins)] = p
		ins = append(ins, Input{Path: p})
		if i == 1 {
			bad := filepath.Join(dir, "notes.png")
			os.WriteFile(bad, []byte("this is a text file, not a picture\n"), 0o644)
			ins = append(ins, Input{Path: bad})
			ins = append(ins, Input{Path: filepath.Join(dir, "absent.png")})
		}
	}
	want := direct(t, m, imgs)

	for _, bs := range []int{1, 2, 8} {
		p, err := NewPipeline(m, PipelineOptions{BatchSize: bs, Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		var got []outcome
		err = p.AnalyzeAll(context.Background(), ins, Options{Aligned: true}, func(i int, r *Result, err error) {
			got = append(got, outcome{i, r, err})
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ins) {
			t.Fatalf("batch %d: %d outcomes for %d inputs", bs, len(got), len(ins))
		}
		k := 0
		for j, o := range got {
			if o.i != j {
				t.Fatalf("batch %d: outcome %d has index %d: not in input order", bs, j, o.i)
			}
			in := ins[j]
			if _, ok := paths[j]; !ok {
				var ie *InputError
				if o.err == nil || !errors.As(o.err, &ie) || ie.Input != in.Path || !strings.HasPrefix(o.err.Error(), in.Path+": ") {
					t.Errorf("batch %d: %s: error %v, want an InputError naming it", bs, in.Path, o.err)
				}
				if strings.Contains(in.Path, "notes") && !errors.Is(o.err, media.ErrNotImage) {
					t.Errorf("text file: %v, want media.ErrNotImage", o.err)
				}
				continue
			}
			if o.err != nil {
				t.Errorf("batch %d: %s: %v", bs, in.Path, o.err)
				k++
				continue
			}
			r, w := o.r, want[k]
			b := imgs[k].Rect
			k++
			if r.Input != in.Path || r.Kind != KindFace || r.Width != b.Dx() || r.Height != b.Dy() || len(r.Faces) != 1 {
				t.Errorf("result %+v", r)
				continue
			}
			if math.Abs(r.PFake-w.PFake) > 1e-5 || r.PFake < 0 || r.PFake > 1 {
				t.Errorf("batch %d: %s: p_fake %v, direct forward %v", bs, in.Path, r.PFake, w.PFake)
			}
			if wl := map[bool]string{true: LabelFake, false: LabelReal}[r.PFake >= 0.5]; r.Label != wl || r.Faces[0].Label != wl {
				t.Errorf("label %s for p_fake %v", r.Label, r.PFake)
			}
			if len(r.PatchPFake) != 4 {
				t.Fatalf("patch map has %d rows, want G = 4", len(r.PatchPFake))
			}
			for y, row := range r.PatchPFake {
				if len(row) != 4 {
					t.Fatalf("patch row %d has %d entries", y, len(row))
				}
				for x, v := range row {
					if math.Abs(v-w.Patch[y][x]) > 1e-9+1e-3*w.Patch[y][x] || v < 0 || v > 1 { // relative: patch probabilities are small
						t.Errorf("batch %d: %s: patch (%d,%d) = %v, direct %v", bs, in.Path, y, x, v, w.Patch[y][x])
					}
				}
			}
			f := r.Faces[0]
			if f.BBox != [4]float64{0, 0, float64(b.Dx()), float64(b.Dy())} || f.PFake != r.PFake {
				t.Errorf("face %+v", f)
			}
		}
	}
}

func TestPipelineThresholdAndUploads(t *testing.T) {
	m := testModel(t)
	p, err := NewPipeline(m, PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	png.Encode(&buf, noiseImage(64, 64, 7))
	in := Input{Name: "upload.png", Data: bytes.NewReader(buf.Bytes()), Size: int64(buf.Len())}
	r, err := p.Analyze(context.Background(), in, Options{Aligned: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Input != "upload.png" {
		t.Errorf("input %q", r.Input)
	}
	pf := r.PFake
	for _, c := range []struct {
		th   float64
		want string
	}{{pf, LabelFake}, {math.Nextafter(pf, 2), LabelReal}} {
		if c.th <= 0 || c.th > 1 {
			continue
		}
		r, err := p.Analyze(context.Background(), Input{Name: "u", Data: bytes.NewReader(buf.Bytes())}, Options{Aligned: true, Threshold: c.th})
		if err != nil {
			t.Fatal(err)
		}
		if r.Label != c.want || r.PFake != pf {
			t.Errorf("threshold %v: label %s (p_fake %v), want %s", c.th, r.Label, r.PFake, c.want)
		}
	}
	// Uploads above the byte limit are refused before decoding.
	small, _ := NewPipeline(m, PipelineOptions{Limits: media.Limits{MaxBytes: 100}})
	_, err = small.Analyze(context.Background(), Input{Name: "big.png", Data: bytes.NewReader(buf.Bytes())}, Options{Aligned: true})
	if !errors.Is(err, media.ErrTooLarge) || !strings.HasPrefix(err.Error(), "big.png: ") {
		t.Errorf("oversized upload: %v", err)
	}
}

func TestPipelineErrors(t *testing.T) {
	m := testModel(t)
	if _, err := NewPipeline(nil, PipelineOptions{}); err == nil {
		t.Error("nil model accepted")
	}
	if _, err := NewPipeline(m, PipelineOptions{BatchSize: -1}); err == nil {
		t.Error("negative batch accepted")
	}
	p, err := NewPipeline(m, PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.png")
	writePNG(t, path, noiseImage(64, 64, 1))
	in := Input{Path: path}
	if _, err := p.Analyze(context.Background(), in, Options{}); !errors.Is(err, ErrNeedsAligned) {
		t.Errorf("not aligned: %v", err)
	}
	for _, th := range []float64{-0.1, 1.5, math.NaN()} {
		if _, err := p.Analyze(context.Background(), in, Options{Aligned: true, Threshold: th}); err == nil {
			t.Errorf("threshold %v accepted", th)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.AnalyzeAll(ctx, []Input{in, in, in}, Options{Aligned: true}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := p.Analyze(context.Background(), Input{}, Options{Aligned: true}); err == nil {
		t.Error("empty input accepted")
	}
	// ScoreCrops scores crops directly.
	sc, err := p.ScoreCrops([]*image.RGBA{noiseImage(64, 64, 1)})
	if err != nil || len(sc) != 1 {
		t.Fatalf("ScoreCrops: %v %v", sc, err)
	}
	r, err := p.Analyze(context.Background(), in, Options{Aligned: true})
	if err != nil || r.PFake != sc[0].PFake {
		t.Errorf("ScoreCrops p_fake %v, Analyze %v (%v)", sc[0].PFake, r, err)
	}
}

// TestHeatmapNamesGiven: overlays are named after the inputs (HeatmapNames),
// or as Input.Heatmap says (callers that analyse a list in parts).
func TestHeatmapNamesGiven(t *testing.T) {
	m := testModel(t)
	dir := t.TempDir()
	var ins []Input
	for i, sub := range []string{"a", "b"} {
		p := filepath.Join(dir, sub, "face.png")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writePNG(t, p, noiseImage(64, 64, uint64(i+1)))
		ins = append(ins, Input{Path: p})
	}
	if got := HeatmapNames(ins); !slices.Equal(got, []string{"face.heatmap.png", "face-2.heatmap.png"}) {
		t.Errorf("HeatmapNames: %q", got)
	}
	p, err := NewPipeline(m, PipelineOptions{BatchSize: 2, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	hm := filepath.Join(dir, "heatmaps")
	// The second input alone, named as in the whole list.
	part := []Input{{Path: ins[1].Path, Heatmap: "face-2.heatmap.png"}}
	got := collect(t, p, part, Options{Aligned: true, Heatmaps: hm})
	if got[0].err != nil || got[0].r.Heatmap != filepath.Join(hm, "face-2.heatmap.png") {
		t.Fatalf("heatmap %+v, %v", got[0].r, got[0].err)
	}
	if _, err := os.Stat(filepath.Join(hm, "face-2.heatmap.png")); err != nil {
		t.Error(err)
	}
}
