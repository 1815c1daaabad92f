package model

import (
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// CMCE is cross-modality consistency enhancement (cmc0..cmc2): each stream is
// reinforced by the other where the two agree (cosine similarity over
// channels).
type CMCE struct{}

// newCMCE registers the module's unused members (bn, stage1 and stage2 conv +
// BN) so that the authors' checkpoints load one to one.
func newCMCE(p nn.Path, c int64) *CMCE {
	nn.NewBatchNorm2d(p.Sub("bn"), c)
	for _, st := range []string{"stage1", "stage2"} {
		nn.NewConv2d(p.Sub(st).Sub("0"), c, c, 3, torch.Conv{}, false)
		nn.NewBatchNorm2d(p.Sub(st).Sub("1"), c)
	}
	return &CMCE{}
}

// Forward couples fa (RGB) and fb (SRM):
//
//	c  = cos(fa, fb) over channels
//	fa = fa + fb*c
//	fb = fb + fa*c   (the updated fa)
//	return relu(fa), relu(fb)
func (m *CMCE) Forward(fa, fb *torch.Tensor) (*torch.Tensor, *torch.Tensor) {
	out := scoped(func(in []*torch.Tensor) []*torch.Tensor {
		fa, fb := in[0], in[1]
		c := torch.CosineSimilarity(fa, fb, 1, 1e-8).Unsqueeze(1)
		fa = fa.Add(fb.Mul(c))
		fb = fb.Add(fa.Mul(c))
		return []*torch.Tensor{fa.Relu(), fb.Relu()}
	}, fa, fb)
	return out[0], out[1]
}
