package model

import (
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// BasicConv is conv 1x1 (no bias) + BN + ReLU: the score0..score5 layers that
// bring x0..x5 to a common width before MPFF.
type BasicConv struct {
	ConvBN *nn.ConvBN
}

func newBasicConv(p nn.Path, in, out int64) *BasicConv {
	return &BasicConv{ConvBN: nn.NewConvBN(p.Store(),
		nn.NewConv2d(p.Sub("conv"), in, out, 1, torch.Conv{}, false),
		nn.NewBatchNorm2d(p.Sub("bn"), out))}
}

// Forward applies conv, BN and ReLU.
func (b *BasicConv) Forward(ctx *nn.Ctx, x *torch.Tensor) *torch.Tensor {
	return b.ConvBN.Forward(ctx, x).Relu()
}

// ConvHead is BN, ReLU, conv 1x1 without bias: seg_header (814 -> 2 patch
// logits) and pro_header (728 -> 256 patch features for SSPSL).
type ConvHead struct {
	BN   *nn.BatchNorm2d
	Conv *nn.Conv2d
}

func newConvHead(p nn.Path, in, out int64) *ConvHead {
	return &ConvHead{
		BN:   nn.NewBatchNorm2d(p.Sub("0"), in),
		Conv: nn.NewConv2d(p.Sub("2"), in, out, 1, torch.Conv{}, false),
	}
}

// Forward applies the head.
func (h *ConvHead) Forward(ctx *nn.Ctx, x *torch.Tensor) *torch.Tensor {
	return h.Conv.Forward(h.BN.Forward(ctx, x).Relu())
}

// ClsHead is cls_header: BN, ReLU, global average pool, Dropout, Linear -> 2.
type ClsHead struct {
	BN      *nn.BatchNorm2d
	FC      *nn.Linear
	Dropout float64
}

func newClsHead(p nn.Path, in int64, dropout float64) *ClsHead {
	return &ClsHead{
		BN:      nn.NewBatchNorm2d(p.Sub("0"), in),
		FC:      nn.NewLinear(p.Sub("5"), in, 2),
		Dropout: dropout,
	}
}

// Forward returns B x 2 class logits (class 0 real, 1 fake).
func (h *ClsHead) Forward(ctx *nn.Ctx, x *torch.Tensor) *torch.Tensor {
	return h.afterBN(ctx, h.BN.Forward(ctx, x))
}

// afterBN is the head after its BatchNorm: ReLU, average pool, dropout, FC.
func (h *ClsHead) afterBN(ctx *nn.Ctx, x *torch.Tensor) *torch.Tensor {
	v := x.Relu().Mean(false, 2, 3)
	return h.FC.Forward(v.Dropout(h.Dropout, ctx.Train, ctx.Gen))
}
