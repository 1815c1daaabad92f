package train

import (
	"math"
	"testing"

	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/torch"
)

// ce is the cross entropy of one row of logits against class y, by hand.
func ce(l []float64, y int) float64 {
	m := math.Max(l[0], l[1])
	return -(l[y] - m - math.Log(math.Exp(l[0]-m)+math.Exp(l[1]-m)))
}

// The authors' mixup: inputs lambda*x + (1-lambda)*x[perm], loss
// lambda*CE(y) + (1-lambda)*CE(y[perm]).
func TestMixupMatchesAuthorsFormula(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	perm := torch.FromSlice(s, []int64{2, 0, 3, 1})
	mix := Mix{Lambda: 0.3, Perm: perm}
	x := torch.FromSlice(s, []float32{1, 2, 3, 4}, 4, 1)
	got, err := mix.Inputs(x).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	xs, p := []float64{1, 2, 3, 4}, []int{2, 0, 3, 1}
	for i := range xs {
		want := 0.3*xs[i] + 0.7*xs[p[i]]
		if math.Abs(float64(got[i])-want) > 1e-6 {
			t.Errorf("mixed input %d = %v, want %v", i, got[i], want)
		}
	}
	logits := [][]float64{{0.2, -1}, {1.5, 0.5}, {-0.3, 0.9}, {0, 2}}
	labels := []int64{0, 1, 1, 0}
	var flat []float32
	for _, r := range logits {
		flat = append(flat, float32(r[0]), float32(r[1]))
	}
	loss, err := mix.Loss(model.ClsLoss, torch.FromSlice(s, flat, 4, 2), torch.FromSlice(s, labels)).Item()
	if err != nil {
		t.Fatal(err)
	}
	var a, b float64
	for i, r := range logits {
		a += ce(r, int(labels[i])) / 4
		b += ce(r, int(labels[p[i]])) / 4
	}
	if want := 0.3*a + 0.7*b; math.Abs(loss-want) > 1e-6 {
		t.Errorf("mixup loss %v, want %v", loss, want)
	}
	if l, _ := (Mix{Lambda: 1}).Loss(model.ClsLoss, torch.FromSlice(s, flat, 4, 2), torch.FromSlice(s, labels)).Item(); math.Abs(l-a) > 1e-6 {
		t.Errorf("unmixed loss %v, want %v", l, a)
	}
}

// DrawMix mixes with the given probability, lambda in (0,1) from Beta, and
// is reproducible from the generator's seed.
func TestDrawMix(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	mixed := 0
	for seed := uint64(0); seed < 200; seed++ {
		g, _ := torch.NewGenerator(seed)
		m, err := DrawMix(s, g, 8, 0.5, 1)
		g.Close()
		if err != nil {
			t.Fatal(err)
		}
		if m.Perm != nil {
			mixed++
			if m.Lambda <= 0 || m.Lambda >= 1 {
				t.Errorf("lambda %v outside (0,1)", m.Lambda)
			}
		} else if m.Lambda != 1 {
			t.Errorf("unmixed draw with lambda %v", m.Lambda)
		}
		g2, _ := torch.NewGenerator(seed)
		m2, _ := DrawMix(s, g2, 8, 0.5, 1)
		g2.Close()
		if m2.Lambda != m.Lambda {
			t.Errorf("seed %d: lambda %v then %v", seed, m.Lambda, m2.Lambda)
		}
	}
	if mixed < 70 || mixed > 130 {
		t.Errorf("%d of 200 batches mixed, want about 100", mixed)
	}
}
