package torch_test

import (
	"math"
	"slices"
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

func meanVar(v []float64) (mean, variance float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		variance += (x - mean) * (x - mean)
	}
	return mean, variance / float64(len(v)-1)
}

func TestSeededRandom(t *testing.T) {
	const n = 20000
	type draw func(s *torch.Scope, g *torch.Generator) *torch.Tensor
	tests := []struct {
		name       string
		draw       draw
		mean, vari float64 // expected moments
		lo, hi     float64 // support
	}{
		{"uniform", func(s *torch.Scope, g *torch.Generator) *torch.Tensor { return torch.Rand(s, g, n) },
			0.5, 1.0 / 12, 0, 1},
		{"normal", func(s *torch.Scope, g *torch.Generator) *torch.Tensor { return torch.Randn(s, g, 100, n/100) },
			0, 1, math.Inf(-1), math.Inf(1)},
		{"beta(2,5)", func(s *torch.Scope, g *torch.Generator) *torch.Tensor { return torch.Beta(s, g, 2, 5, n) },
			2.0 / 7, 10.0 / (49 * 8), 0, 1},
		{"beta(0.5,0.5)", func(s *torch.Scope, g *torch.Generator) *torch.Tensor { return torch.Beta(s, g, 0.5, 0.5, n) },
			0.5, 0.25 / 2, 0, 1},
		{"bernoulli(0.2)", func(s *torch.Scope, g *torch.Generator) *torch.Tensor {
			return torch.Bernoulli(g, torch.Full(s, 0.2, torch.Float32, torch.CPU, n))
		}, 0.2, 0.16, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			sample := func(seed uint64) []float64 {
				g, err := torch.NewGenerator(seed)
				if err != nil {
					t.Fatal(err)
				}
				defer g.Close()
				return values(t, tc.draw(s, g))
			}
			a, b, c := sample(42), sample(42), sample(43)
			if len(a) != n {
				t.Fatalf("%d values, want %d", len(a), n)
			}
			if closeTo(a, b, 0, 0) >= 0 {
				t.Error("same seed, different values")
			}
			if closeTo(a, c, 0, 0) < 0 {
				t.Error("different seeds, same values")
			}
			m, v := meanVar(a)
			// standard error of the mean is sqrt(var/n); allow 5 of them.
			if se := math.Sqrt(tc.vari / n); math.Abs(m-tc.mean) > 5*se {
				t.Errorf("mean %.4f, want %.4f ± %.4f", m, tc.mean, 5*se)
			}
			if math.Abs(v-tc.vari) > 0.1*tc.vari {
				t.Errorf("variance %.4f, want %.4f ± 10%%", v, tc.vari)
			}
			for _, x := range a {
				if x < tc.lo || x > tc.hi || (tc.name == "uniform" && x == 1) || math.IsNaN(x) {
					t.Fatalf("value %v outside the support [%v, %v]", x, tc.lo, tc.hi)
				}
			}
		})
	}
}

func TestRandperm(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	perm := func(seed uint64) []int64 {
		g, err := torch.NewGenerator(seed)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		p := torch.Randperm(s, g, 50)
		if p.DType() != torch.Int64 {
			t.Errorf("randperm dtype %v, want int64", p.DType())
		}
		v, err := p.Int64s()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a := perm(1)
	sorted := slices.Clone(a)
	slices.Sort(sorted)
	for i, v := range sorted {
		if v != int64(i) {
			t.Fatalf("randperm(50) is not a permutation of 0..49: %v", a)
		}
	}
	if !slices.Equal(a, perm(1)) {
		t.Error("same seed, different permutations")
	}
	if slices.Equal(a, perm(2)) {
		t.Error("different seeds, same permutation")
	}
}

func TestGeneratorState(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g, err := torch.NewGenerator(5)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	torch.Rand(s, g, 10) // advance
	st := g.State().In(s)
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	want := values(t, torch.Rand(s, g, 10))
	if err := g.SetState(st); err != nil {
		t.Fatal(err)
	}
	expectClose(t, "draw after restoring the state", torch.Rand(s, g, 10), want, nil, 0)
	if err := g.SetState(torch.Zeros(s, 3)); err == nil {
		t.Error("SetState with a float tensor of 3 elements: no error")
	}
}

func TestManualSeed(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	draw := func(seed uint64) []float64 {
		if err := torch.ManualSeed(seed); err != nil {
			t.Fatal(err)
		}
		return values(t, torch.Randn(s, nil, 8))
	}
	a := draw(3)
	if closeTo(a, draw(3), 0, 0) >= 0 {
		t.Error("global generator: same seed, different values")
	}
	if closeTo(a, draw(4), 0, 0) < 0 {
		t.Error("global generator: different seeds, same values")
	}
}

func TestClosedGenerator(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g, err := torch.NewGenerator(1)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	g.Close() // twice is fine
	tests := []struct {
		name string
		got  *torch.Tensor
	}{
		{"rand", torch.Rand(s, g, 3)},
		{"randn", torch.Randn(s, g, 3)},
		{"randperm", torch.Randperm(s, g, 3)},
		{"beta", torch.Beta(s, g, 1, 1, 3)},
		{"bernoulli", torch.Bernoulli(g, torch.Full(s, 0.5, torch.Float32, torch.CPU, 3))},
		{"dropout", torch.Ones(s, 3).Dropout(0.5, true, g)},
		{"state", g.State()},
	}
	for _, tc := range tests {
		// A closed generator must not fall back silently to the global one.
		wantErr(t, tc.name, tc.got.Err(), "", "closed")
	}
	if err := g.SetState(torch.Zeros(s, 1)); err == nil {
		t.Error("SetState on a closed generator: no error")
	}
	var null *torch.Generator
	if err := null.State().Err(); err == nil {
		t.Error("State of a nil generator: no error")
	}
	// nil means the global generator for draws.
	if err := torch.Rand(s, nil, 2).Err(); err != nil {
		t.Errorf("Rand with the global generator: %v", err)
	}
}
