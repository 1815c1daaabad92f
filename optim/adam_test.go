package optim_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/optim"
	"github.com/lvnet-go/lvnet/torch"
)

// refAdam is torch.optim.Adam's update written out in float64, independent of
// the shim: one parameter's values, moments and step count.
type refAdam struct {
	p, m, v []float64
	t       int
}

func (r *refAdam) step(grad []float64, lr, b1, b2, eps, wd float64) {
	r.t++
	if r.m == nil {
		r.m = make([]float64, len(r.p))
		r.v = make([]float64, len(r.p))
	}
	bc1 := 1 - math.Pow(b1, float64(r.t))
	bc2 := 1 - math.Pow(b2, float64(r.t))
	for i := range r.p {
		g := grad[i] + wd*r.p[i]
		r.m[i] = b1*r.m[i] + (1-b1)*g
		r.v[i] = b2*r.v[i] + (1-b2)*g*g
		mhat := r.m[i] / bc1
		vhat := r.v[i] / bc2
		r.p[i] -= lr * mhat / (math.Sqrt(vhat) + eps)
	}
}

func leaf(t *testing.T, data []float64, shape ...int64) *torch.Tensor {
	t.Helper()
	x := torch.FromSlice(nil, data, shape...).SetRequiresGrad(true)
	if err := x.Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Free)
	return x
}

func vals(t *testing.T, x *torch.Tensor) []float64 {
	t.Helper()
	v, err := x.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func near(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %.15g, want %.15g\ngot  %v\nwant %v", name, i, got[i], want[i], got, want)
		}
	}
}

// quadLoss is sum(c .* w²) + sum(d .* b): gradients 2 c w and d.
func quadLoss(s *torch.Scope, w, b *torch.Tensor, c, d []float64) *torch.Tensor {
	cw := torch.FromSlice(s, c, w.Shape()...)
	db := torch.FromSlice(s, d, b.Shape()...)
	return w.Square().Mul(cw).Sum(false).Add(b.Mul(db).Sum(false))
}

func TestAdamMatchesFormula(t *testing.T) {
	const lr, wd = 0.05, 0.1
	for _, dt := range []torch.DType{torch.Float64, torch.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			w0 := []float64{0.5, -1.5, 2, 0.01}
			b0 := []float64{0.3, -0.2}
			w := leaf(t, w0, 2, 2)
			b := leaf(t, b0, 2)
			if dt != torch.Float64 {
				w = torch.FromSlice(nil, []float32{0.5, -1.5, 2, 0.01}, 2, 2).SetRequiresGrad(true)
				b = torch.FromSlice(nil, []float32{0.3, -0.2}, 2).SetRequiresGrad(true)
				t.Cleanup(w.Free)
				t.Cleanup(b.Free)
				w0 = vals(t, w) // the float32-rounded start
				b0 = vals(t, b)
			}
			opt, err := optim.NewAdam([]optim.Param{
				optim.NewParam("layer.weight", w), // 2-D: decayed
				optim.NewParam("layer.bias", b),   // bias: not decayed
			}, optim.AdamConfig{LR: lr, WeightDecay: wd})
			if err != nil {
				t.Fatal(err)
			}
			defer opt.Close()
			c := []float64{1, 2, 0.5, 3}
			d := []float64{-1, 4}
			rw := &refAdam{p: slices.Clone(w0)}
			rb := &refAdam{p: slices.Clone(b0)}
			tol := 1e-12
			if dt == torch.Float32 {
				tol = 1e-6
			}
			for k := 1; k <= 3; k++ {
				s := torch.NewScope()
				opt.ZeroGrad()
				if err := quadLoss(s, w, b, c, d).Backward(); err != nil {
					t.Fatal(err)
				}
				gw := make([]float64, 4)
				for i := range gw {
					gw[i] = 2 * c[i] * rw.p[i]
				}
				if err := opt.Step(); err != nil {
					t.Fatal(err)
				}
				s.Close()
				rw.step(gw, lr, 0.9, 0.999, 1e-8, wd)
				rb.step(d, lr, 0.9, 0.999, 1e-8, 0)
				near(t, "weight after step "+string(rune('0'+k)), vals(t, w), rw.p, tol)
				near(t, "bias after step "+string(rune('0'+k)), vals(t, b), rb.p, tol)
			}
			st, steps := opt.State()
			defer freeAll(st)
			if steps["layer.weight"] != 3 || steps["layer.bias"] != 3 || len(steps) != 2 {
				t.Errorf("steps = %v, want 3 for both", steps)
			}
			near(t, "exp_avg.layer.weight", vals(t, st["exp_avg.layer.weight"]), rw.m, tol)
			near(t, "exp_avg_sq.layer.bias", vals(t, st["exp_avg_sq.layer.bias"]), rb.v, tol)
		})
	}
}

func freeAll(m map[string]*torch.Tensor) {
	for _, x := range m {
		x.Free()
	}
}

func TestAdamWeightDecayOnlyOnDecayParams(t *testing.T) {
	// Both parameters get an exact zero gradient: only decay can move them.
	a := leaf(t, []float64{1, -2}, 2)
	b := leaf(t, []float64{1, -2}, 2)
	opt, err := optim.NewAdam([]optim.Param{{Name: "a", T: a, Decay: true}, {Name: "b", T: b, Decay: false}},
		optim.AdamConfig{LR: 0.01, WeightDecay: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	s := torch.NewScope()
	defer s.Close()
	if err := a.Add(b).MulScalar(0).Sum(false).Backward(); err != nil {
		t.Fatal(err)
	}
	if err := opt.Step(); err != nil {
		t.Fatal(err)
	}
	// a: g = 0.5 p; first step moves by lr * g/(|g|+eps) = lr toward zero.
	near(t, "decayed", vals(t, a), []float64{1 - 0.01, -2 + 0.01}, 1e-7)
	near(t, "not decayed", vals(t, b), []float64{1, -2}, 0)
}

func TestAdamSkipsParamsWithoutGrad(t *testing.T) {
	used := leaf(t, []float64{1, 2}, 2)
	idle := leaf(t, []float64{3, 4}, 2)
	frozen := torch.FromSlice(nil, []float64{5}, 1) // requires no grad
	defer frozen.Free()
	opt, err := optim.NewAdam([]optim.Param{
		{Name: "used", T: used}, {Name: "idle", T: idle, Decay: true}, {Name: "frozen", T: frozen, Decay: true},
	}, optim.AdamConfig{LR: 0.1, WeightDecay: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	for k := 0; k < 2; k++ {
		opt.ZeroGrad()
		s := torch.NewScope()
		if err := used.Sum(false).Backward(); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	near(t, "idle", vals(t, idle), []float64{3, 4}, 0) // no decay either: torch skips it entirely
	near(t, "frozen", vals(t, frozen), []float64{5}, 0)
	st, steps := opt.State()
	defer freeAll(st)
	if len(st) != 2 || steps["used"] != 2 || len(steps) != 1 {
		t.Errorf("state has %d tensors and steps %v; want only used's, 2 steps", len(st), steps)
	}
	// When idle first gets a gradient, its own step count starts at 1: the
	// first Adam step moves each element by about lr (g/|g|).
	opt.ZeroGrad()
	if err := idle.MulScalar(-3).Sum(false).Backward(); err != nil {
		t.Fatal(err)
	}
	if err := opt.Step(); err != nil {
		t.Fatal(err)
	}
	r := &refAdam{p: []float64{3, 4}}
	r.step([]float64{-3, -3}, 0.1, 0.9, 0.999, 1e-8, 0.1)
	near(t, "idle after its first gradient", vals(t, idle), r.p, 1e-12)
	_, steps = opt.State()
	if steps["idle"] != 1 || steps["used"] != 2 {
		t.Errorf("steps %v: want idle 1, used 2 (used had no gradient this time)", steps)
	}
}

// train runs n steps of a fixed problem on opt's params w and b.
func train(t *testing.T, opt *optim.Adam, w, b *torch.Tensor, n int) {
	t.Helper()
	for k := 0; k < n; k++ {
		s := torch.NewScope()
		opt.ZeroGrad()
		if err := quadLoss(s, w, b, []float64{1, -2, 3, 0.5}, []float64{0.7, -0.1}).Backward(); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

func TestAdamStateRoundTrip(t *testing.T) {
	cfg := optim.AdamConfig{LR: 0.02, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.01}
	newPair := func(w0, b0 []float64) (*torch.Tensor, *torch.Tensor, *optim.Adam) {
		w, b := leaf(t, w0, 2, 2), leaf(t, b0, 2)
		opt, err := optim.NewAdam([]optim.Param{optim.NewParam("fc.weight", w), optim.NewParam("fc.bias", b)}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(opt.Close)
		return w, b, opt
	}
	wa, ba, a := newPair([]float64{1, 2, -1, 0.5}, []float64{0.1, 0.2})
	train(t, a, wa, ba, 3)
	st, steps := a.State()
	defer freeAll(st)

	// A fresh optimiser on copies of the trained parameters, given the state.
	wb, bb, b := newPair(vals(t, wa), vals(t, ba))
	if err := b.LoadState(st, steps); err != nil {
		t.Fatal(err)
	}
	// The caller's tensors stay independent of the loaded state.
	for _, x := range st {
		if err := x.Fill(1e6); err != nil {
			t.Fatal(err)
		}
	}
	train(t, a, wa, ba, 2)
	train(t, b, wb, bb, 2)
	near(t, "weight after resumed steps", vals(t, wb), vals(t, wa), 0)
	near(t, "bias after resumed steps", vals(t, bb), vals(t, ba), 0)
	_, sb := b.State()
	if sb["fc.weight"] != 5 {
		t.Errorf("resumed step count %d, want 5", sb["fc.weight"])
	}
	// Without the state, the same two steps give a different result.
	wc, bc, c := newPair(vals(t, wb), vals(t, bb))
	_ = bc
	train(t, c, wc, bc, 1)
	train(t, b, wb, bb, 1)
	if slices.Equal(vals(t, wc), vals(t, wb)) {
		t.Error("a fresh optimiser matched a resumed one: the state had no effect")
	}
}

func TestAdamLoadStateErrors(t *testing.T) {
	w := leaf(t, []float64{1, 2, 3, 4}, 2, 2)
	b := leaf(t, []float64{1, 2}, 2)
	opt, err := optim.NewAdam([]optim.Param{optim.NewParam("fc.weight", w), optim.NewParam("fc.bias", b)}, optim.AdamConfig{LR: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	train(t, opt, w, b, 1)
	good, steps := opt.State()
	defer freeAll(good)
	wrongShape := torch.Zeros(nil, 4)
	defer wrongShape.Free()
	freed := torch.Zeros(nil, 2)
	freed.Free()
	with := func(k string, v *torch.Tensor) map[string]*torch.Tensor {
		m := make(map[string]*torch.Tensor)
		for key, x := range good {
			m[key] = x
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	stepsWith := func(k string, n int64, drop bool) map[string]int64 {
		m := map[string]int64{}
		for key, x := range steps {
			m[key] = x
		}
		if drop {
			delete(m, k)
		} else {
			m[k] = n
		}
		return m
	}
	tests := []struct {
		name    string
		tensors map[string]*torch.Tensor
		steps   map[string]int64
		frag    string
	}{
		{"unknown parameter", with("exp_avg.conv.weight", wrongShape), steps, `no parameter named "conv.weight"`},
		{"bad prefix", with("momentum.fc.bias", wrongShape), steps, `entry "momentum.fc.bias" is neither`},
		{"wrong shape", with("exp_avg_sq.fc.weight", wrongShape), steps, `"exp_avg_sq.fc.weight" has shape [4], parameter fc.weight has [2 2]`},
		{"missing buffer", with("exp_avg_sq.fc.bias", nil), steps, "fc.bias has a step count but no exp_avg_sq.fc.bias entry"},
		{"freed tensor", with("exp_avg.fc.bias", freed), steps, `"exp_avg.fc.bias": torch: use: tensor was freed`},
		{"missing step count", good, stepsWith("fc.bias", 0, true), `"exp_avg.fc.bias" has no step count`},
		{"zero step count", good, stepsWith("fc.bias", 0, false), "step count 0 for fc.bias"},
		{"unknown step count", good, stepsWith("head.weight", 3, false), `step count for unknown parameter "head.weight"`},
	}
	before := vals(t, good["exp_avg.fc.weight"])
	for _, tc := range tests {
		err := opt.LoadState(tc.tensors, tc.steps)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.frag) || !strings.HasPrefix(err.Error(), "adam: load state") {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.frag)
		}
	}
	// Failed loads left the state alone.
	st, s2 := opt.State()
	defer freeAll(st)
	near(t, "state after failed loads", vals(t, st["exp_avg.fc.weight"]), before, 0)
	if s2["fc.weight"] != 1 {
		t.Errorf("steps after failed loads: %v", s2)
	}
	// An empty state resets the optimiser.
	if err := opt.LoadState(nil, nil); err != nil {
		t.Fatal(err)
	}
	if st, s := opt.State(); len(st) != 0 || len(s) != 0 {
		t.Errorf("after loading an empty state: %d tensors, steps %v", len(st), s)
	}
	// A float32 state loads into float64 parameters (converted).
	f32 := make(map[string]*torch.Tensor)
	for k, x := range good {
		f32[k] = x.ToDType(torch.Float32)
		defer f32[k].Free()
	}
	if err := opt.LoadState(f32, steps); err != nil {
		t.Fatal(err)
	}
	st3, _ := opt.State()
	defer freeAll(st3)
	if st3["exp_avg.fc.weight"].DType() != torch.Float64 {
		t.Errorf("loaded buffer dtype %v, want the parameter's float64", st3["exp_avg.fc.weight"].DType())
	}
}

func TestNewAdamErrors(t *testing.T) {
	w := leaf(t, []float64{1}, 1)
	ints := torch.FromSlice(nil, []int64{1}, 1)
	defer ints.Free()
	freed := torch.Zeros(nil, 1)
	freed.Free()
	ok := optim.AdamConfig{LR: 1e-3}
	tests := []struct {
		name   string
		params []optim.Param
		cfg    optim.AdamConfig
		frag   string
	}{
		{"no name", []optim.Param{{T: w}}, ok, "parameter 0 has no name"},
		{"duplicate", []optim.Param{{Name: "a", T: w}, {Name: "a", T: w}}, ok, `"a" used twice`},
		{"int64", []optim.Param{{Name: "n", T: ints}}, ok, "n has element type int64"},
		{"freed", []optim.Param{{Name: "f", T: freed}}, ok, "f: torch: use: tensor was freed"},
		{"nil tensor", []optim.Param{{Name: "z"}}, ok, "z: torch: use: nil tensor"},
		{"zero lr", nil, optim.AdamConfig{}, "learning rate 0"},
		{"negative lr", nil, optim.AdamConfig{LR: -1}, "learning rate -1"},
		{"beta1 1", nil, optim.AdamConfig{LR: 1, Beta1: 1}, "beta1 1"},
		{"beta2 negative", nil, optim.AdamConfig{LR: 1, Beta2: -0.5}, "beta2 -0.5"},
		{"eps negative", nil, optim.AdamConfig{LR: 1, Eps: -1}, "eps -1"},
		{"decay NaN", nil, optim.AdamConfig{LR: 1, WeightDecay: math.NaN()}, "weight decay NaN"},
	}
	for _, tc := range tests {
		_, err := optim.NewAdam(tc.params, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.frag) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.frag)
		}
	}
	opt, err := optim.NewAdam(nil, optim.AdamConfig{LR: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if c := opt.Config(); c.Beta1 != 0.9 || c.Beta2 != 0.999 || c.Eps != 1e-8 || c.WeightDecay != 0 {
		t.Errorf("defaults = %+v, want torch's (0.9, 0.999, 1e-8, 0)", c)
	}
	if err := opt.Step(); err != nil {
		t.Errorf("Step with no parameters: %v", err)
	}
}

func TestAdamSetLR(t *testing.T) {
	w := leaf(t, []float64{1, -1}, 2)
	opt, err := optim.NewAdam([]optim.Param{{Name: "w", T: w}}, optim.AdamConfig{LR: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	if opt.LR() != 0.1 {
		t.Errorf("LR = %v, want 0.1", opt.LR())
	}
	step := func() {
		opt.ZeroGrad()
		if err := w.Sum(false).Backward(); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
	}
	opt.SetLR(0.25)
	if opt.LR() != 0.25 {
		t.Errorf("LR after SetLR = %v", opt.LR())
	}
	step() // first step moves by lr * g/|g| = 0.25
	near(t, "after lr 0.25", vals(t, w), []float64{0.75, -1.25}, 1e-7)
	opt.SetLR(0)
	step()
	near(t, "after lr 0", vals(t, w), []float64{0.75, -1.25}, 1e-7)
	if ps := opt.Params(); len(ps) != 1 || ps[0].Name != "w" {
		t.Errorf("Params = %v", ps)
	}
}

func TestDecayByDefault(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	tests := []struct {
		name  string
		shape []int64
		want  bool
	}{
		{"conv1.weight", []int64{32, 3, 3, 3}, true},
		{"fc.weight", []int64{2, 2048}, true},
		{"fc.bias", []int64{2}, false},
		{"bn1.weight", []int64{32}, false},
		{"bn1.running_mean", []int64{32}, false},
		{"odd.bias", []int64{2, 2}, false}, // the name rule alone
		{"scale", []int64{}, true},         // 0-D is not 1-D
	}
	for _, tc := range tests {
		if got := optim.DecayByDefault(tc.name, tc.shape); got != tc.want {
			t.Errorf("DecayByDefault(%q, %v) = %v, want %v", tc.name, tc.shape, got, tc.want)
		}
		p := optim.NewParam(tc.name, torch.Zeros(s, tc.shape...))
		if p.Decay != tc.want || p.Name != tc.name {
			t.Errorf("NewParam(%q) = %+v", tc.name, p)
		}
	}
}
