package model

import (
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// LFGA is local forgery guided attention (lfe0..lfe2): attention computed
// from the RGB feature re-weights the SRM feature.
type LFGA struct {
	Gamma             *torch.Tensor
	Query, Key, Value *nn.Conv2d
}

// newLFGA registers gamma (initialised 0), the 1x1 query/key (C -> C/4) and
// value (C -> C) convolutions with bias, and the unused bn.
func newLFGA(p nn.Path, c int64) *LFGA {
	m := &LFGA{Gamma: p.Param("gamma", nn.Const(0), 1)}
	m.Query = nn.NewConv2d(p.Sub("query_conv"), c, c/4, 1, torch.Conv{}, true)
	m.Key = nn.NewConv2d(p.Sub("key_conv"), c, c/4, 1, torch.Conv{}, true)
	m.Value = nn.NewConv2d(p.Sub("value_conv"), c, c, 1, torch.Conv{}, true)
	nn.NewBatchNorm2d(p.Sub("bn"), c)
	return m
}

// Forward returns relu(gamma * (V(fa) A^T) + fa) with A = softmax(Q(fb) K(fb))
// over positions (no scaling); fa is the SRM feature, fb the RGB feature.
func (m *LFGA) Forward(fa, fb *torch.Tensor) *torch.Tensor {
	return scoped(func(in []*torch.Tensor) []*torch.Tensor {
		return []*torch.Tensor{m.forward(in[0], in[1])}
	}, fa, fb)[0]
}

func (m *LFGA) forward(fa, fb *torch.Tensor) *torch.Tensor {
	if err := fa.Err(); err != nil {
		return torch.Errorf("lfga", "%w", err)
	}
	s := fa.Shape()
	if len(s) != 4 {
		return torch.Errorf("lfga", "want a 4-D feature, got %v", s)
	}
	b, c, h, w := s[0], s[1], s[2], s[3]
	q := m.Query.Forward(fb).Reshape(b, -1, h*w).Permute(0, 2, 1) // B x HW x C/4
	k := m.Key.Forward(fb).Reshape(b, -1, h*w)                    // B x C/4 x HW
	a := q.Bmm(k).Softmax(-1)                                     // B x HW x HW
	v := m.Value.Forward(fa).Reshape(b, -1, h*w)                  // B x C x HW
	o := v.Bmm(a.Permute(0, 2, 1)).Reshape(b, c, h, w)
	return o.Mul(m.Gamma).Add(fa).Relu()
}
