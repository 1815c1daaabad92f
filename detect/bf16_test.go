package detect

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/lvnet-go/lvnet/internal/modeltest"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// TestBFloat16Accuracy measures the numeric drift of --dtype bfloat16: the
// paper's network (299 px, full width) under the golden deterministic weights
// scores real FaceForensics++ crops in float32 and in bfloat16 (both prepared
// for inference, channels-last), and the logits must agree to a few percent
// of their range (patch logits, which bfloat16 rounds through more layers,
// to 15%). (Those weights make the scores nearly independent of the
// face, so this is drift through the full depth, not a detection rate;
// docs/BENCHMARKS.md also compares a trained model's AUC.)
func TestBFloat16Accuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the paper network twice; skipped with -short")
	}
	modeltest.AuthorsKeys(t) // skips early without ../shared
	faces := bf16Faces(t, shared.Path(t, "data", "ffpp-crops"), 6)
	run := func(dt torch.DType) (pFake []float64, cls, seg []float32) {
		m := modeltest.Golden(t, modeltest.PaperSupervised())
		defer m.Free()
		if err := m.To(dt, torch.CPU); err != nil {
			t.Fatal(err)
		}
		if err := m.PrepareInference(model.InferenceOptions{ChannelsLast: true}); err != nil {
			t.Fatal(err)
		}
		for _, path := range faces {
			err := torch.InferenceMode(func() error {
				s := torch.NewScope()
				defer s.Close()
				img, err := media.DecodeImage(path)
				if err != nil {
					return err
				}
				out := m.Forward(nn.EvalCtx(), Preprocess(s, img, 299).ToDType(dt))
				c, err := out.Cls.ToDType(torch.Float32).Float32s()
				if err != nil {
					return err
				}
				g, err := out.Seg.ToDType(torch.Float32).Float32s()
				if err != nil {
					return err
				}
				cls, seg = append(cls, c...), append(seg, g...)
				pFake = append(pFake, softmax1(c[0], c[1]))
				return nil
			})
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return pFake, cls, seg
	}
	p32, c32, s32 := run(torch.Float32)
	p16, c16, s16 := run(torch.BFloat16)

	// drift returns max|a-b| relative to the range of a, and that range.
	drift := func(a, b []float32) (rel, span float64) {
		lo, hi, mx := math.Inf(1), math.Inf(-1), 0.0
		for i := range a {
			lo, hi = math.Min(lo, float64(a[i])), math.Max(hi, float64(a[i]))
			mx = math.Max(mx, math.Abs(float64(a[i]-b[i])))
		}
		return mx / (hi - lo), hi - lo
	}
	cRel, cSpan := drift(c32, c16)
	sRel, sSpan := drift(s32, s16)
	var pMax float64
	for i := range p32 {
		pMax = math.Max(pMax, math.Abs(p32[i]-p16[i]))
	}
	t.Logf("%d faces, bfloat16 vs float32: class logits max |diff| %.2g of their range %.3g, patch logits %.2g of %.3g, p_fake max |diff| %.4f",
		len(faces), cRel, cSpan, sRel, sSpan, pMax)
	if cSpan == 0 || sSpan == 0 {
		t.Fatalf("float32 logits are constant (class range %g, patch range %g): the comparison says nothing", cSpan, sSpan)
	}
	if cRel > 0.03 || sRel > 0.15 || pMax > 0.02 {
		t.Errorf("bfloat16 strays too far from float32: class logits %.3g, patch logits %.3g of range, p_fake %.4f", cRel, sRel, pMax)
	}
}

// bf16Faces returns perClass real and perClass fake crops, spread over the
// methods of an ffpp-crops tree, in a fixed order.
func bf16Faces(t *testing.T, root string, perClass int) []string {
	t.Helper()
	var real, fake []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Base(filepath.Dir(p)) {
		case "real":
			real = append(real, p)
		case "fake":
			fake = append(fake, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(real)
	sort.Strings(fake)
	pick := func(v []string) []string {
		var o []string
		for i := 0; i < perClass && len(v) > 0; i++ {
			o = append(o, v[i*len(v)/perClass])
		}
		return o
	}
	out := append(pick(real), pick(fake)...)
	if len(out) < 2*perClass {
		t.Fatalf("%s: want %d real and %d fake crops, found %d and %d", root, perClass, perClass, len(real), len(fake))
	}
	return out
}
