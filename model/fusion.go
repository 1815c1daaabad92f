package model

import (
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// HBFusion is the Hadamard-product bilinear fusion of the verification
// branch, applied at every spatial position:
//
//	OutTrans(Dropout(tanh(Trans1(f1) * Trans2(f2))))
type HBFusion struct {
	Trans1, Trans2, OutTrans *nn.Linear
	Dropout                  float64
	// conv holds the three layers as 1x1 convolutions (PrepareInference):
	// the same per-position products, run by oneDNN on NHWC maps instead of
	// a BLAS matrix product over rearranged rows.
	conv [3]*nn.Conv2d
}

func newHBFusion(p nn.Path, dim1, dim2, hidden, out int64, dropout float64) *HBFusion {
	return &HBFusion{
		Trans1:   nn.NewLinear(p.Sub("Trans1"), dim1, hidden),
		Trans2:   nn.NewLinear(p.Sub("Trans2"), dim2, hidden),
		OutTrans: nn.NewLinear(p.Sub("OutTrans"), hidden, out),
		Dropout:  dropout,
	}
}

// Forward fuses f1 (B x C1 x H x W) and f2 (B x C2 x H x W) into
// B x out x H x W.
func (f *HBFusion) Forward(ctx *nn.Ctx, f1, f2 *torch.Tensor) *torch.Tensor {
	return f.forward(ctx, f1, f2, f.OutTrans)
}

// forward is Forward with another output layer (OutTrans with the class
// head's BatchNorm folded in, for inference).
func (f *HBFusion) forward(ctx *nn.Ctx, f1, f2 *torch.Tensor, outTrans *nn.Linear) *torch.Tensor {
	return scoped(func(in []*torch.Tensor) []*torch.Tensor {
		return []*torch.Tensor{f.fuse(ctx, in[0], in[1], outTrans)}
	}, f1, f2)[0]
}

func (f *HBFusion) fuse(ctx *nn.Ctx, f1, f2 *torch.Tensor, outTrans *nn.Linear) *torch.Tensor {
	s1, s2 := f1.Shape(), f2.Shape()
	if len(s1) != 4 || len(s2) != 4 || s1[0] != s2[0] || s1[2] != s2[2] || s1[3] != s2[3] {
		for _, t := range []*torch.Tensor{f1, f2} {
			if t.Err() != nil { // an upstream error: pass it on
				return t
			}
		}
		return torch.Errorf("hbfusion", "features %v and %v differ in batch or spatial size", s1, s2)
	}
	b, h, w := s1[0], s1[2], s1[3]
	if !ctx.Train && f.conv[0] != nil {
		prod := f.conv[0].Forward(f1).Mul(f.conv[1].Forward(f2)).Tanh()
		return f.conv[2].Forward(prod)
	}
	if f1.Device() == torch.CPU && f1.DType() == torch.Float32 {
		// On the CPU the per-position linear layers run fastest as 1x1
		// convolutions of NHWC maps (oneDNN), forward and backward; the
		// weights are views of the linear layers' parameters.
		conv := func(l *nn.Linear, x *torch.Tensor) *torch.Tensor {
			sh := l.W.Shape()
			return x.Conv2d(l.W.Reshape(sh[0], sh[1], 1, 1), l.B, torch.Conv{})
		}
		prod := conv(f.Trans1, f1.ChannelsLast()).Mul(conv(f.Trans2, f2.ChannelsLast())).Tanh()
		return conv(outTrans, prod.Dropout(f.Dropout, ctx.Train, ctx.Gen))
	}
	rows := func(t *torch.Tensor, c int64) *torch.Tensor {
		return t.Reshape(b, c, h*w).Permute(0, 2, 1).Reshape(-1, c)
	}
	prod := f.Trans1.Forward(rows(f1, s1[1])).Mul(f.Trans2.Forward(rows(f2, s2[1]))).Tanh()
	out := outTrans.Forward(prod.Dropout(f.Dropout, ctx.Train, ctx.Gen))
	return out.Reshape(b, h*w, -1).Permute(0, 2, 1).Reshape(b, -1, h, w)
}

// linearAsConv views a linear layer as a 1x1 convolution (sharing nothing:
// the weights are copied, in NHWC order when nhwc).
func linearAsConv(l *nn.Linear, nhwc bool) *nn.Conv2d {
	s := torch.NewScope()
	defer s.Close()
	sh := l.W.Shape()
	w := l.W.Detach().In(s).Reshape(sh[0], sh[1], 1, 1)
	if nhwc {
		w = w.ChannelsLast()
	} else {
		w = w.Contiguous()
	}
	return &nn.Conv2d{W: w.Clone().Keep(), B: l.B.Detach().In(s).Clone().Keep()}
}
