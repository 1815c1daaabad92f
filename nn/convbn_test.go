package nn_test

import (
	"testing"

	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// A folded ConvBN computes in eval mode what the convolution and the eval-mode
// BatchNorm compute; training-mode passes ignore the folded form; Unfold and
// WithStride behave; the store lists the layer and frees its folded copy.
func TestConvBNFold(t *testing.T) {
	tests := []struct {
		name       string
		in, out, k int64
		opt        torch.Conv
		bias       bool
	}{
		{"3x3 with bias", 3, 4, 3, torch.Conv{Padding: torch.Sq(1)}, true},
		{"1x1 strided, no bias", 4, 6, 1, torch.Conv{Stride: torch.Sq(2)}, false},
		{"depthwise", 4, 4, 3, torch.Conv{Padding: torch.Sq(1), Groups: 4}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := nn.NewStore(2)
			defer st.Free()
			p := st.Root()
			l := nn.NewConvBN(st, nn.NewConv2d(p.Sub("conv"), tc.in, tc.out, tc.k, tc.opt, tc.bias), nn.NewBatchNorm2d(p.Sub("bn"), tc.out))
			if got := st.ConvBNs(); len(got) != 1 || got[0] != l {
				t.Fatalf("store lists %v, want the layer", got)
			}
			s := torch.NewScope()
			defer s.Close()
			g, _ := torch.NewGenerator(5)
			defer g.Close()
			// Statistics and affine parameters away from the identity.
			for _, x := range []*torch.Tensor{l.BN.W, l.BN.B, l.BN.RunningMean} {
				if err := x.CopyFrom(torch.Randn(s, g, tc.out)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.BN.RunningVar.CopyFrom(torch.Rand(s, g, tc.out).AddScalar(0.5)); err != nil {
				t.Fatal(err)
			}
			x := torch.Randn(s, g, 2, tc.in, 9, 9)
			eval := nn.EvalCtx()
			_, want := values(t, l.BN.Forward(eval, l.Conv.Forward(x)))
			if l.Folded() != nil {
				t.Fatal("folded before Fold")
			}
			if err := l.Fold(); err != nil {
				t.Fatal(err)
			}
			f := l.Folded()
			if f == nil || f.B == nil {
				t.Fatal("Fold made no convolution with bias")
			}
			_, got := values(t, l.Forward(eval, x))
			if !nearF32(got, want, 1e-5) {
				t.Errorf("folded output differs from conv + BatchNorm")
			}
			// Strided views share the weights, folded form included.
			_, strided := values(t, l.WithStride(torch.Sq(3)).Forward(eval, x))
			c := *l.Conv
			c.Opt.Stride = torch.Sq(3)
			if _, w := values(t, l.BN.Forward(eval, c.Forward(x))); !nearF32(strided, w, 1e-5) {
				t.Errorf("WithStride output differs")
			}
			// A training pass uses batch statistics, not the folded form.
			_, trained := values(t, l.Forward(nn.TrainCtx(nil), x))
			if nearF32(trained, want, 1e-3) {
				t.Errorf("training pass ran the folded (eval) form")
			}
			l.Unfold()
			if l.Folded() != nil || f.W.Err() == nil {
				t.Errorf("Unfold kept the folded convolution")
			}
			if err := l.Fold(); err != nil {
				t.Fatal(err)
			}
			f = l.Folded()
			st.Free()
			if f.W.Err() == nil {
				t.Error("Store.Free kept the folded convolution")
			}
		})
	}
}

// nearF32 reports whether got and want agree to tol relative to max|want|.
func nearF32(got, want []float32, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	var d, scale float64
	for i := range want {
		d = max(d, abs64(float64(got[i])-float64(want[i])))
		scale = max(scale, abs64(float64(want[i])))
	}
	return d <= tol*scale
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
