package model

import (
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// srmKernels are the three fixed SRM high-pass filters (KB, KV, horizontal
// second order), already divided by 4, 12 and 2.
var srmKernels = [3][25]float32{
	{0, 0, 0, 0, 0, 0, -1, 2, -1, 0, 0, 2, -4, 2, 0, 0, -1, 2, -1, 0, 0, 0, 0, 0, 0},
	{-1, 2, -2, 2, -1, 2, -6, 8, -6, 2, -2, 8, -12, 8, -2, 2, -6, 8, -6, 2, -1, 2, -2, 2, -1},
	{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, -2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
}

var srmScale = [3]float32{4, 12, 2}

// SRMKernel returns the 3x3x5x5 weights of srm_conv0: output channel k applies
// filter k to every input channel and sums.
func SRMKernel() []float32 {
	w := make([]float32, 0, 3*3*25)
	for k := 0; k < 3; k++ {
		for c := 0; c < 3; c++ {
			for _, v := range srmKernels[k] {
				w = append(w, v/srmScale[k])
			}
		}
	}
	return w
}

// SRM is srm_conv0: the fixed (untrained) noise-residual convolution, 5x5,
// padding 2, no bias, followed by Hardtanh(-3, 3).
type SRM struct {
	Kernel *torch.Tensor
}

func newSRM(p nn.Path) *SRM {
	return &SRM{Kernel: p.BufferFrom("kernel", torch.FromSlice(nil, SRMKernel(), 3, 3, 5, 5))}
}

// Forward returns the truncated noise residuals of x.
func (s *SRM) Forward(x *torch.Tensor) *torch.Tensor {
	return x.Conv2d(s.Kernel, nil, torch.Conv{Padding: torch.Sq(2)}).Hardtanh(-3, 3)
}
