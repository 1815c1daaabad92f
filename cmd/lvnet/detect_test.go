package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/weights"
)

// saveSmallModel writes a checkpoint of the paper's network at 64 pixels
// and a quarter of the channels, with the golden deterministic weights.
func saveSmallModel(t *testing.T) string {
	t.Helper()
	cfg := model.Paper()
	cfg.ImageSize, cfg.Width, cfg.SSPSL = 64, 0.25, false
	m, err := model.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	sd, err := weights.DeterministicStateDict(m.KeyShapes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetState(sd); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "small.safetensors")
	if err := checkpoint.Save(path, m, checkpoint.Meta{Provenance: checkpoint.Provenance{Source: checkpoint.SourceDeterministic}}); err != nil {
		t.Fatal(err)
	}
	return path
}

// cmdFunc is the signature of every lvnet command.
type cmdFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error

// runCmd runs a command as the program does, with empty stdin and captured
// output.
func runCmd(t *testing.T, f cmdFunc, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := f(t.Context(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// detectCmd is lvnet detect.
var detectCmd cmdFunc = detectMain

// ffppCrops returns n real and n fake crops of the shared FaceForensics++
// data (skipping when absent).
func ffppCrops(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for _, class := range []string{"real", "fake"} {
		dir := shared.Path(t, "data", "ffpp-crops", "deepfake", class)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents[:min(n, len(ents))] {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// jsonResult is the schema of one result as clients read it.
type jsonResult struct {
	Input      string      `json:"input"`
	Kind       string      `json:"kind"`
	PFake      *float64    `json:"p_fake"`
	Label      string      `json:"label"`
	PatchPFake [][]float64 `json:"patch_p_fake"`
	Faces      []struct {
		BBox  [4]float64 `json:"bbox"`
		PFake float64    `json:"p_fake"`
	} `json:"faces"`
	Width  int `json:"width"`
	Height int `json:"height"`
}

type jsonResponse struct {
	Results []jsonResult `json:"results"`
	Errors  []struct {
		Input string `json:"input"`
		Error string `json:"error"`
	} `json:"errors"`
}

// directScores decodes PNG crops and scores them with a plain forward of the
// checkpoint's model: p_fake and the patch map of each.
func directScores(t *testing.T, ckpt string, paths []string) ([]float64, [][]float64) {
	t.Helper()
	m, _, err := checkpoint.Load(ckpt, checkpoint.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	s := torch.NewScope()
	defer s.Close()
	n := int64(m.Config.ImageSize)
	var xs []*torch.Tensor
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		w, h := b.Dx(), b.Dy()
		v := make([]float32, 3*w*h)
		for y := range h {
			for x := range w {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				v[y*w+x], v[w*h+y*w+x], v[2*w*h+y*w+x] = float32(c.R)/255, float32(c.G)/255, float32(c.B)/255
			}
		}
		x := torch.FromSlice(s, v, 1, 3, int64(h), int64(w)).UpsampleBilinear2d(n, n, false)
		xs = append(xs, x.SubScalar(0.5).DivScalar(0.5))
	}
	var out model.Output
	if err := torch.NoGrad(func() error {
		out = m.Forward(nn.EvalCtx(), torch.Cat(0, xs...))
		return out.Seg.Err()
	}); err != nil {
		t.Fatal(err)
	}
	cls, err := out.Cls.Softmax(1).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	seg, err := out.Seg.Softmax(1).Narrow(1, 1, 1).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	g := m.Config.Grid()
	pf := make([]float64, len(paths))
	patches := make([][]float64, len(paths))
	for i := range paths {
		pf[i] = 1 - float64(cls[2*i])
		for _, v := range seg[i*g*g : (i+1)*g*g] {
			patches[i] = append(patches[i], float64(v))
		}
	}
	return pf, patches
}

func TestDetectAlignedJSON(t *testing.T) {
	crops := ffppCrops(t, 2)
	ckpt := saveSmallModel(t)
	bad := filepath.Join(t.TempDir(), "face.png")
	if err := os.WriteFile(bad, []byte("not a picture, just text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inputs := slices.Insert(slices.Clone(crops), 1, bad)
	args := append([]string{"--aligned", "--json", "--quiet", "--batch-size", "3", "--model", ckpt}, inputs...)
	stdout, stderr, err := runCmd(t, detectCmd, args...)
	var pe *partialError
	if !errors.As(err, &pe) || pe.failed != 1 {
		t.Fatalf("error %v, want a partialError with 1 failure (exit status 1)\nstderr: %s", err, stderr)
	}
	if !strings.Contains(stderr, bad+": ") || !strings.Contains(stderr, "not an image") {
		t.Errorf("stderr does not name the bad input and the reason:\n%s", stderr)
	}
	var resp jsonResponse
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("output is not the JSON schema: %v\n%s", err, stdout)
	}
	if len(resp.Errors) != 1 || resp.Errors[0].Input != bad || !strings.Contains(resp.Errors[0].Error, "not an image") {
		t.Errorf("errors %+v", resp.Errors)
	}
	if len(resp.Results) != len(crops) {
		t.Fatalf("%d results for %d readable inputs", len(resp.Results), len(crops))
	}
	wantPF, wantPatch := directScores(t, ckpt, crops)
	const g = 4 // the grid of a 64-pixel model
	for i, r := range resp.Results {
		if r.Input != crops[i] || r.Kind != "face" || r.PFake == nil || r.Width != 256 || r.Height != 256 {
			t.Errorf("result %d: %+v", i, r)
			continue
		}
		pf := *r.PFake
		if pf < 0 || pf > 1 || math.Abs(pf-wantPF[i]) > 1e-5 {
			t.Errorf("%s: p_fake %v, direct forward %v", r.Input, pf, wantPF[i])
		}
		if want := map[bool]string{true: "fake", false: "real"}[pf >= 0.5]; r.Label != want {
			t.Errorf("%s: label %q for p_fake %v", r.Input, r.Label, pf)
		}
		if len(r.PatchPFake) != g {
			t.Fatalf("%s: patch map of %d rows, want %d", r.Input, len(r.PatchPFake), g)
		}
		for y, row := range r.PatchPFake {
			if len(row) != g {
				t.Fatalf("%s: patch row %d of %d", r.Input, y, len(row))
			}
			for x, v := range row {
				w := wantPatch[i][y*g+x]
				if v < 0 || v > 1 || math.Abs(v-w) > 1e-9+1e-3*w {
					t.Errorf("%s: patch (%d,%d) = %v, direct forward %v", r.Input, y, x, v, w)
				}
			}
		}
		if len(r.Faces) != 1 || r.Faces[0].BBox != [4]float64{0, 0, 256, 256} || r.Faces[0].PFake != pf {
			t.Errorf("%s: faces %+v", r.Input, r.Faces)
		}
	}

	// The table: a header, then one line per readable input.
	stdout, _, err = runCmd(t, detectCmd, append([]string{"--aligned", "--quiet", "--model", ckpt, "--threshold", "0.999999"}, crops...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(crops)+1 || strings.Fields(lines[0])[0] != "INPUT" {
		t.Fatalf("table:\n%s", stdout)
	}
	for i, l := range lines[1:] {
		f := strings.Fields(l) // INPUT LABEL P_FAKE KIND FACES (no details)
		if len(f) != 5 || f[0] != crops[i] || (f[1] != "real" && f[1] != "fake") || f[3] != "face" || f[4] != "1" {
			t.Errorf("table line %q", l)
			continue
		}
		if want := map[bool]string{true: "fake", false: "real"}[wantPF[i] >= 0.999999]; f[1] != want {
			t.Errorf("threshold 0.999999: %s labelled %s, p_fake %v", f[0], f[1], wantPF[i])
		}
	}
}

func TestDetectUsage(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "absent.safetensors")
	t.Setenv(detect.ModelEnv, ckpt)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"a.png"}, "no model: $" + detect.ModelEnv},
		{"no inputs", []string{"--model", ckpt}, "no inputs"},
		{"json and csv", []string{"--model", ckpt, "--json", "--csv", "a.png"}, "--json and --csv"},
		{"threshold 0", []string{"--model", ckpt, "--threshold", "0", "a.png"}, "--threshold"},
		{"threshold above 1", []string{"--model", ckpt, "--threshold", "1.5", "a.png"}, "--threshold"},
		{"batch -1", []string{"--model", ckpt, "--batch-size", "-1", "a.png"}, "--batch-size"},
		{"every -1", []string{"--model", ckpt, "--every", "-1", "a.png"}, "--every"},
		{"max faces 0", []string{"--model", ckpt, "--max-faces", "0", "a.png"}, "--max-faces"},
		{"max frames -1", []string{"--model", ckpt, "--max-frames", "-1", "a.png"}, "--max-frames"},
		{"stdin twice", []string{"--model", ckpt, "-", "-"}, "given twice"},
		{"bad device", []string{"--model", ckpt, "--device", "tpu", "a.png"}, "--device"},
		{"bad dtype", []string{"--model", ckpt, "--dtype", "int8", "a.png"}, "--dtype"},
		{"unknown flag", []string{"--model", ckpt, "--fast", "a.png"}, "fast"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, detectCmd, tt.args...)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a usage error (exit status 2) mentioning %q", err, tt.want)
			}
		})
	}
	// A model file that cannot be loaded is an error naming it (exit 1).
	_, _, err := runCmd(t, detectCmd, "--aligned", "--model", ckpt, "a.png")
	var ue *usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), ckpt) {
		t.Errorf("absent model: %v", err)
	}
}

// goldenPNGs writes the two golden input images as PNGs: the normalised
// input.npy mapped back to pixels, round((x+1)/2*255).
func goldenPNGs(t *testing.T) []string {
	t.Helper()
	a, err := weights.ReadNpy(shared.Path(t, "golden", "input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Shape, []int64{2, 3, 299, 299}) {
		t.Fatalf("input.npy shape %v", a.Shape)
	}
	const n = 299
	dir := t.TempDir()
	var paths []string
	for b := range 2 {
		img := image.NewRGBA(image.Rect(0, 0, n, n))
		for y := range n {
			for x := range n {
				var px [3]uint8
				for c := range 3 {
					f := (float64(v[((b*3+c)*n+y)*n+x]) + 1) / 2 * 255
					px[c] = uint8(math.Round(math.Max(0, math.Min(255, f))))
				}
				img.SetRGBA(x, y, color.RGBA{px[0], px[1], px[2], 255})
			}
		}
		p := filepath.Join(dir, []string{"real.png", "deepfake.png"}[b])
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestDetectGoldenParity runs `detect --aligned` with the authors' network
// under the golden deterministic weights (saved as a checkpoint) on the two
// golden input images and compares p_fake with the golden eval logits.
func TestDetectGoldenParity(t *testing.T) {
	if testing.Short() {
		t.Skip("paper-sized model: skipped in -short mode")
	}
	keys, err := weights.LoadKeyList(shared.Path(t, "golden", "state_dict_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	logits, err := weights.ReadNpy(shared.Path(t, "golden", "eval_cls_logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := logits.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	pngs := goldenPNGs(t)
	sd, err := weights.DeterministicStateDict(keys)
	if err != nil {
		t.Fatal(err)
	}
	cfg := model.Paper()
	cfg.SSPSL = false
	m, err := model.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetState(sd); err != nil {
		m.Free()
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "golden.safetensors")
	err = checkpoint.Save(ckpt, m, checkpoint.Meta{Provenance: checkpoint.Provenance{Source: checkpoint.SourceDeterministic}})
	m.Free()
	if err != nil {
		t.Fatal(err)
	}

	stdout, stderr, err := runCmd(t, detectCmd, append([]string{"--aligned", "--json", "--quiet", "--model", ckpt}, pngs...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var resp jsonResponse
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil || len(resp.Results) != 2 {
		t.Fatalf("output %s (%v)", stdout, err)
	}
	segA, err := weights.ReadNpy(shared.Path(t, "golden", "eval_seg_logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	seg, err := segA.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	const g = 19
	// goldenMargin is the golden patch logit of "forged" minus that of
	// "real": the log-odds of the patch probability.
	goldenMargin := func(b, y, x int) float64 {
		k := y*g + x
		return float64(seg[(2*b+1)*g*g+k]) - float64(seg[(2*b)*g*g+k])
	}
	var scale float64
	for b := range 2 {
		for k := range g * g {
			scale = math.Max(scale, math.Abs(goldenMargin(b, k/g, k%g)))
		}
	}
	for b, r := range resp.Results {
		want := 1 / (1 + math.Exp(float64(l[2*b])-float64(l[2*b+1]))) // 1 - softmax(logits)[0]
		got := *r.PFake
		// Tolerance: the network matches the golden logits to 1e-4
		// relative (|logits| < 2 here: 4e-4 on their difference, so
		// p(1-p)*4e-4 < 3e-5 on p_fake), and the PNG rounding moves every
		// input value by at most 1/255 in the [-1,1] range, which moved
		// p_fake by about 1e-8 (logged below).
		t.Logf("%s: p_fake %.8f, golden %.8f, difference %.2g", filepath.Base(r.Input), got, want, got-want)
		if math.Abs(got-want) > 5e-5 {
			t.Errorf("%s: p_fake %v, golden %v", r.Input, got, want)
		}
		if len(r.PatchPFake) != g {
			t.Fatalf("patch map of %d rows, want %d", len(r.PatchPFake), g)
		}
		// Patch probabilities are tiny under these weights: compare their
		// log-odds with the golden logit margins, relative to the largest
		// margin (the 1e-4 of the model's parity tests).
		var maxDiff, maxOther float64
		for y, row := range r.PatchPFake {
			if len(row) != g {
				t.Fatalf("patch row %d has %d entries, want %d", y, len(row), g)
			}
			for x, v := range row {
				m := math.Log(v / (1 - v))
				maxDiff = math.Max(maxDiff, math.Abs(m-goldenMargin(b, y, x))/scale)
				maxOther = math.Max(maxOther, math.Abs(m-goldenMargin(1-b, y, x))/scale)
			}
		}
		t.Logf("%s: patch log-odds differ from the golden margins by %.2g (relative; from the other image's by %.2g)", filepath.Base(r.Input), maxDiff, maxOther)
		if maxDiff > 1e-4 {
			t.Errorf("%s: patch log-odds differ from the golden margins by %.3g relative", r.Input, maxDiff)
		}
	}
}
