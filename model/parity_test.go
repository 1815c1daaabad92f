package model_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"testing"

	"github.com/lvnet-go/lvnet/internal/modeltest"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// Parity with the authors' PyTorch LVNet (torch 1.13) under the golden
// deterministic weights: ../shared/golden/README.md.

type stageStats struct {
	Shape   []int64 `json:"shape"`
	Mean    float64 `json:"mean"`
	Std     float64 `json:"std"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	AbsMean float64 `json:"abs_mean"`
}

type golden struct {
	EvalStages map[string]stageStats `json:"eval_stages"`
	Train      struct {
		Labels    []int64            `json:"labels"`
		LossCls   float64            `json:"loss_cls"`
		LossSeg   float64            `json:"loss_seg"`
		LossTotal float64            `json:"loss_total"`
		ClsLogits [][]float64        `json:"cls_logits"`
		GradNorms map[string]float64 `json:"grad_norms"`
		SSPSL     struct {
			Labels []int64 `json:"labels"`
			Loss   float64 `json:"loss"`
		} `json:"sspsl"`
	} `json:"train"`
}

func readGolden(t testing.TB) golden {
	t.Helper()
	b, err := os.ReadFile(shared.Path(t, "golden", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func rel(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

func statsOf(v []float32) stageStats {
	var sum, abs float64
	mn, mx := math.Inf(1), math.Inf(-1)
	for _, x := range v {
		f := float64(x)
		sum += f
		abs += math.Abs(f)
		mn, mx = math.Min(mn, f), math.Max(mx, f)
	}
	n := float64(len(v))
	mean := sum / n
	var ss float64
	for _, x := range v {
		d := float64(x) - mean
		ss += d * d
	}
	return stageStats{Mean: mean, Std: math.Sqrt(ss / (n - 1)), Min: mn, Max: mx, AbsMean: abs / n}
}

// parityReport collects the largest relative errors for docs/PARITY.md.
type parityReport map[string]float64

func (r parityReport) note(name string, e float64) {
	if old, ok := r[name]; !ok || e > old || math.IsNaN(e) {
		r[name] = e
	}
}

func (r parityReport) log(t *testing.T) {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("max relative error %-28s %.3g", k, r[k])
	}
}

func TestParityEval(t *testing.T) {
	g := readGolden(t)
	m := modeltest.Golden(t, modeltest.PaperSupervised())
	defer m.Free()
	s := torch.NewScope()
	defer s.Close()
	x := modeltest.Npy(t, s, "input.npy")
	stages := map[string][]float32{}
	var out model.Output
	err := torch.NoGrad(func() error {
		out = m.ForwardTrace(nn.EvalCtx(), x, func(name string, t2 *torch.Tensor) {
			stages[name] = modeltest.Values(t, t2)
		})
		return out.Cls.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := parityReport{}
	for _, c := range []struct {
		file string
		got  *torch.Tensor
		tol  float64
	}{
		{"eval_cls_logits.npy", out.Cls, 1e-4},
		{"eval_seg_logits.npy", out.Seg, 1e-4},
		{"eval_seg_features.npy", out.SegFeatures, 1e-4},
	} {
		e := modeltest.RelErr(modeltest.Values(t, c.got), modeltest.Values(t, modeltest.Npy(t, s, c.file)))
		rep.note(c.file, e)
		if e > c.tol {
			t.Errorf("%s: relative error %.3g > %.0e", c.file, e, c.tol)
		}
	}
	for name, want := range g.EvalStages {
		v, ok := stages[name]
		if !ok {
			t.Errorf("stage %s not traced", name)
			continue
		}
		got := statsOf(v)
		scale := math.Max(math.Abs(want.Max), math.Abs(want.Min))
		for _, f := range []struct {
			what      string
			got, want float64
		}{{"mean", got.Mean, want.Mean}, {"std", got.Std, want.Std}, {"min", got.Min, want.Min}, {"max", got.Max, want.Max}, {"abs_mean", got.AbsMean, want.AbsMean}} {
			// Relative to the stage's range: a mean near 0 has no meaningful
			// relative error of its own.
			e := math.Abs(f.got-f.want) / scale
			rep.note("stage "+name, e)
			if e > 1e-4 {
				t.Errorf("stage %s %s: got %.7g want %.7g (error %.3g of range)", name, f.what, f.got, f.want, e)
			}
		}
	}
	rep.log(t)
}

// PrepareInference (folded BatchNorms, channels-last) computes the same
// eval outputs.
func TestParityEvalPrepared(t *testing.T) {
	for _, nhwc := range []bool{false, true} {
		m := modeltest.Golden(t, modeltest.PaperSupervised())
		if err := m.PrepareInference(model.InferenceOptions{ChannelsLast: nhwc}); err != nil {
			t.Fatal(err)
		}
		s := torch.NewScope()
		x := modeltest.Npy(t, s, "input.npy")
		var out model.Output
		err := torch.InferenceMode(func() error {
			out = m.Forward(nn.EvalCtx(), x)
			return out.Cls.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			file string
			got  *torch.Tensor
		}{{"eval_cls_logits.npy", out.Cls}, {"eval_seg_logits.npy", out.Seg}, {"eval_seg_features.npy", out.SegFeatures}} {
			e := modeltest.RelErr(modeltest.Values(t, c.got), modeltest.Values(t, modeltest.Npy(t, s, c.file)))
			t.Logf("channels-last %v: %s max relative error %.3g", nhwc, c.file, e)
			if e > 1e-4 {
				t.Errorf("channels-last %v: %s relative error %.3g > 1e-4", nhwc, c.file, e)
			}
		}
		s.Close()
		m.Free()
	}
}

// trainPass runs the golden train-mode step (dropout off, labels [0,1],
// golden mask) on a model of element type dt and returns the outputs and
// losses after Backward.
func trainPass(t *testing.T, s *torch.Scope, dt torch.DType) (*model.LVNet, model.Output, model.Losses) {
	t.Helper()
	g := readGolden(t)
	cfg := modeltest.PaperSupervised()
	cfg.Dropout = 0 // the golden train pass ran with dropout disabled
	m := modeltest.Golden(t, cfg)
	if err := m.To(dt, torch.CPU); err != nil {
		t.Fatal(err)
	}
	x := modeltest.Npy(t, s, "input.npy").ToDType(dt)
	mask := modeltest.Npy(t, s, "train_mask.npy").ToDType(dt)
	labels := torch.FromSlice(s, g.Train.Labels)
	out := m.Forward(nn.TrainCtx(nil), x)
	l, err := m.SupervisedLoss(out, labels, mask)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Total.Backward(); err != nil {
		t.Fatal(err)
	}
	return m, out, l
}

// TestParityTrainGolden compares the float32 train-mode step with golden.json.
//
// The golden train pass is numerically chaotic: with these weights, training
// mode BatchNorm over a batch of two amplifies float32 rounding by ~1e5 in the
// middle flow, so the authors' own code moves its class logits by 5% and
// most gradient norms by 2-20x when only its thread count or CPU kernel set
// changes (docs/PARITY.md). What must hold exactly is the structure: the same
// mask targets and the same set of parameters receiving gradients. Values
// are held to the envelope the authors' code itself spans; the tight check of
// the train step is TestParityTrainFloat64.
func TestParityTrainGolden(t *testing.T) {
	g := readGolden(t)
	s := torch.NewScope()
	defer s.Close()
	m, out, l := trainPass(t, s, torch.Float32)
	defer m.Free()

	target := model.MaskTarget(modeltest.Npy(t, s, "train_mask.npy"), 19)
	if e := modeltest.RelErr(modeltest.Values(t, target), modeltest.Values(t, modeltest.Npy(t, s, "train_mask19.npy"))); e != 0 {
		t.Errorf("mask target differs from train_mask19.npy (error %g)", e)
	}
	var want []float32
	for _, r := range g.Train.ClsLogits {
		for _, v := range r {
			want = append(want, float32(v))
		}
	}
	got := modeltest.Values(t, out.Cls)
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 0.25 {
			t.Errorf("train cls logit %d = %.4f, golden %.4f: outside the authors' own spread", i, got[i], want[i])
		}
	}
	for _, c := range []struct {
		name string
		got  *torch.Tensor
		want float64
		tol  float64
	}{{"loss_cls", l.Cls, g.Train.LossCls, 0.15}, {"loss_seg", l.Seg, g.Train.LossSeg, 0.05}} {
		v, err := c.got.Item()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s = %.6f, golden %.6f (rel %.3g)", c.name, v, c.want, rel(v, c.want))
		if rel(v, c.want) > c.tol {
			t.Errorf("%s = %.6f, golden %.6f: outside the authors' own spread", c.name, v, c.want)
		}
	}
	withGrad := 0
	for _, e := range m.Store.Params() {
		gr := e.T.Grad()
		_, golden := g.Train.GradNorms[e.Name]
		if gr != nil {
			gr.In(s)
			withGrad++
		}
		if golden != (gr != nil) {
			t.Errorf("%s: has gradient %v, in the authors' model %v", e.Name, gr != nil, golden)
		}
	}
	if withGrad != len(g.Train.GradNorms) {
		t.Errorf("%d parameters received gradients, %d in the authors' model", withGrad, len(g.Train.GradNorms))
	}
}

// f64Reference is the authors' train step run in float64 (see its
// provenance field and docs/PARITY.md): stable to 1e-12 across thread counts.
type f64Reference struct {
	LossCls   float64            `json:"loss_cls"`
	LossSeg   float64            `json:"loss_seg"`
	ClsLogits [][]float64        `json:"cls_logits"`
	SegLogits []float64          `json:"seg_logits"`
	GradNorms map[string]float64 `json:"grad_norms"`
}

// TestParityTrainFloat64 runs the golden train step in float64 and holds
// losses, logits and every gradient norm to the authors' float64 values.
func TestParityTrainFloat64(t *testing.T) {
	if testing.Short() {
		t.Skip("float64 train step takes minutes: skipped in -short mode")
	}
	b, err := os.ReadFile("testdata/train_f64_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref f64Reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	s := torch.NewScope()
	defer s.Close()
	m, out, l := trainPass(t, s, torch.Float64)
	defer m.Free()
	rep := parityReport{}
	f64s := func(x *torch.Tensor) []float64 {
		v, err := x.Float64s()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cmp := func(name string, got, want []float64, tol float64) {
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
		}
		var d, scale float64
		for i := range want {
			d = math.Max(d, math.Abs(got[i]-want[i]))
			scale = math.Max(scale, math.Abs(want[i]))
		}
		e := d / scale
		rep.note(name, e)
		if e > tol {
			t.Errorf("%s: relative error %.3g > %.0e", name, e, tol)
		}
	}
	var cls []float64
	for _, r := range ref.ClsLogits {
		cls = append(cls, r...)
	}
	cmp("f64 cls_logits", f64s(out.Cls), cls, 1e-6)
	cmp("f64 seg_logits", f64s(out.Seg), ref.SegLogits, 1e-6)
	lc, _ := l.Cls.Item()
	ls, err := l.Seg.Item()
	if err != nil {
		t.Fatal(err)
	}
	cmp("f64 loss_cls", []float64{lc}, []float64{ref.LossCls}, 1e-6)
	cmp("f64 loss_seg", []float64{ls}, []float64{ref.LossSeg}, 1e-6)
	n := 0
	for _, e := range m.Store.Params() {
		want, ok := ref.GradNorms[e.Name]
		gr := e.T.Grad()
		if !ok {
			if gr != nil {
				t.Errorf("%s has a gradient the authors' model does not", e.Name)
			}
			continue
		}
		if gr == nil {
			t.Errorf("%s: no gradient, want norm %g", e.Name, want)
			continue
		}
		n++
		v, err := gr.In(s).Norm(2, false).Item()
		if err != nil {
			t.Fatal(err)
		}
		// Norms below 1e-3 are compared absolutely (relative error is
		// meaningless near 0, e.g. the LFGA query/key of the last stage).
		e2 := rel(v, want)
		if want < 1e-3 {
			e2 = math.Abs(v - want)
		}
		rep.note("f64 grad norm", e2)
		if e2 > 1e-5 {
			t.Errorf("grad norm %s = %.9g, want %.9g", e.Name, v, want)
		}
	}
	if n != len(ref.GradNorms) {
		t.Errorf("compared %d gradient norms, reference has %d", n, len(ref.GradNorms))
	}
	rep.log(t)
}

func TestParityMPFF(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	got := model.MPFF(modeltest.Npy(t, s, "mpff_fa.npy"), modeltest.Npy(t, s, "mpff_fb.npy"))
	want := modeltest.Npy(t, s, "mpff_out.npy")
	if fmt.Sprint(got.Shape()) != fmt.Sprint(want.Shape()) {
		t.Fatalf("shape %v, want %v", got.Shape(), want.Shape())
	}
	if e := modeltest.RelErr(modeltest.Values(t, got), modeltest.Values(t, want)); e > 1e-5 {
		t.Errorf("MPFF relative error %.3g", e)
	} else {
		t.Logf("MPFF max relative error %.3g", e)
	}
}

// The fused MPFF op computes MPFF like the authors' code, also on
// channels-last input (TestFusedMPFFMatchesComposite compares it with the
// composite MPFF on random inputs, gradients too).
func TestFusedMPFFMatchesAuthors(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	fa, fb := modeltest.Npy(t, s, "mpff_fa.npy"), modeltest.Npy(t, s, "mpff_fb.npy")
	want := modeltest.Values(t, modeltest.Npy(t, s, "mpff_out.npy"))
	for _, in := range []*torch.Tensor{fa, fa.ChannelsLast()} {
		if e := modeltest.RelErr(modeltest.Values(t, torch.MPFF(in, fb)), want); e > 1e-5 {
			t.Errorf("fused MPFF relative error %.3g", e)
		}
	}
}

func TestParitySSPSL(t *testing.T) {
	g := readGolden(t)
	s := torch.NewScope()
	defer s.Close()
	loss, targets := model.SSPSL(modeltest.Npy(t, s, "sspsl_psegs.npy"), modeltest.Npy(t, s, "sspsl_pfeas.npy"),
		modeltest.Npy(t, s, "sspsl_regions.npy"), g.Train.SSPSL.Labels)
	v, err := loss.Item()
	if err != nil {
		t.Fatal(err)
	}
	if rel(v, g.Train.SSPSL.Loss) > 1e-5 {
		t.Errorf("SSPSL loss %.7g, want %.7g", v, g.Train.SSPSL.Loss)
	}
	gotT, err := targets.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	wantT, err := modeltest.Npy(t, s, "sspsl_targets.npy").Int64s()
	if err != nil {
		t.Fatal(err)
	}
	if len(gotT) != len(wantT) {
		t.Fatalf("%d targets, want %d", len(gotT), len(wantT))
	}
	diff := 0
	for i := range gotT {
		if gotT[i] != wantT[i] {
			diff++
		}
	}
	if diff != 0 {
		t.Errorf("%d of %d pseudo-labels differ", diff, len(wantT))
	}
}

// Training on channels-last tensors (UseChannelsLast) computes the same
// losses and gradients as the default layout. Width 0.125 has channel counts
// (8 into a strided 1x1 skip) that crashed oneDNN's NHWC backward before
// skipConv.
func TestChannelsLastTrainingMatches(t *testing.T) {
	for _, width := range []float64{0.125, 0.25} {
		cfg := model.Paper()
		cfg.ImageSize, cfg.Width, cfg.Dropout = 96, width, 0
		l1, n1 := trainStepNorms(t, cfg, false)
		l2, n2 := trainStepNorms(t, cfg, true)
		if rel(l2, l1) > 1e-5 {
			t.Errorf("width %v: loss %v NCHW, %v NHWC", width, l1, l2)
		}
		if len(n1) != len(n2) {
			t.Fatalf("width %v: %d gradients NCHW, %d NHWC", width, len(n1), len(n2))
		}
		// Training-mode BatchNorm over a batch of 4 amplifies float32
		// rounding towards the input, and the gradients of BatchNorm
		// parameters and LFGA's gamma are sums of 10^4-10^5 terms of mixed
		// sign: layouts (different summation orders in oneDNN) then differ by
		// up to ~0.5% in the first layers. A layout bug gives O(1)
		// differences; the bound is 2%.
		worst, at := 0.0, ""
		for k, v := range n1 {
			const tol = 2e-2
			if v > 1e-6 && rel(n2[k], v)/tol > worst {
				worst, at = rel(n2[k], v)/tol, k
			}
		}
		t.Logf("width %v: largest gradient-norm difference %.2g of its tolerance (%s: %g vs %g)", width, worst, at, n1[at], n2[at])
		if worst > 1 {
			t.Errorf("width %v: %s gradient norm %g NCHW, %g NHWC", width, at, n1[at], n2[at])
		}
	}
}

// trainStepNorms runs one supervised training step of a fresh model (seed 7)
// on fixed random data and returns the loss and every gradient's norm.
func trainStepNorms(t *testing.T, cfg model.Config, nhwc bool) (float64, map[string]float64) {
	t.Helper()
	m, err := model.New(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if nhwc {
		if err := m.UseChannelsLast(); err != nil {
			t.Fatal(err)
		}
	}
	s := torch.NewScope()
	defer s.Close()
	g, _ := torch.NewGenerator(3)
	defer g.Close()
	n := int64(cfg.ImageSize)
	x := torch.Randn(s, g, 4, 3, n, n)
	mask := torch.Rand(s, g, 4, 1, n, n).GtScalar(0.7).ToDType(torch.Float32)
	labels := torch.FromSlice(s, []int64{0, 1, 0, 1})
	var loss float64
	norms := map[string]float64{}
	err = torch.Pinned(func() error {
		out := m.Forward(nn.TrainCtx(nil), x)
		l, err := m.SupervisedLoss(out, labels, mask)
		if err != nil {
			return err
		}
		if err := l.Total.Backward(); err != nil {
			return err
		}
		if loss, err = l.Total.Item(); err != nil {
			return err
		}
		for _, e := range m.Params() {
			if gr := e.T.Grad(); gr != nil {
				norms[e.Name], _ = gr.In(s).Norm(2, false).Item()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return loss, norms
}
