package model_test

import (
	"math"
	"testing"

	"github.com/lvnet-go/lvnet/internal/modeltest"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/torch"
)

// The fused MPFF op computes the composite MPFF on every level size of the
// network, and its gradients equal those of the composite MPFF (random
// inputs; TestFusedMPFFMatchesAuthors holds it to the authors' output).
func TestFusedMPFFMatchesComposite(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g, _ := torch.NewGenerator(4)
	defer g.Close()
	for _, side := range []int64{150, 75, 38, 19, 7} {
		a := torch.Randn(s, g, 2, 16, side, side)
		b := torch.Randn(s, g, 2, 16, 19, 19)
		if e := modeltest.RelErr(modeltest.Values(t, torch.MPFF(a, b)), modeltest.Values(t, model.MPFF(a, b))); e > 1e-5 {
			t.Errorf("side %d: fused MPFF relative error %.3g", side, e)
		}
	}
	for _, side := range []int64{150, 38, 19, 7} {
		a := torch.Randn(s, g, 2, 16, side, side).SetRequiresGrad(true)
		b := torch.Randn(s, g, 2, 16, 19, 19).SetRequiresGrad(true)
		grads := func(f func(a, b *torch.Tensor) *torch.Tensor) ([]float32, []float32) {
			out := f(a, b)
			wt := torch.Arange(s, 0, float64(out.Numel()), 1, torch.Float32).Reshape(out.Shape()...).DivScalar(float64(out.Numel()))
			_ = a.ZeroGrad()
			_ = b.ZeroGrad()
			if err := out.Mul(wt).Sum(false).Backward(); err != nil {
				t.Fatal(err)
			}
			return modeltest.Values(t, a.Grad().In(s)), modeltest.Values(t, b.Grad().In(s))
		}
		ga, gb := grads(torch.MPFF)
		wa, wb := grads(model.MPFF)
		if e := math.Max(modeltest.RelErr(ga, wa), modeltest.RelErr(gb, wb)); e > 1e-5 {
			t.Errorf("side %d: fused MPFF gradient relative error %.3g", side, e)
		}
	}
	if err := torch.MPFF(torch.Randn(s, g, 2, 16, 38, 38), torch.Zeros(s, 1, 4, 19, 19)).Err(); err == nil {
		t.Error("mismatched shapes: no error")
	}
}
