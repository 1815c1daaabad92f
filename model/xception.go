package model

import (
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// SeparableConvBN is Xception's SeparableConv2d and the BatchNorm after it: a
// depthwise 3x3 convolution (conv1), then the pointwise 1x1 convolution
// (pointwise) and the BatchNorm as one nn.ConvBN (folded for inference). Both
// convolutions are without bias.
type SeparableConvBN struct {
	Depthwise   *nn.Conv2d
	PointwiseBN *nn.ConvBN
}

// newSeparableConvBN registers the convolutions under conv and the BatchNorm
// under bn.
func newSeparableConvBN(conv, bn nn.Path, in, out int64) *SeparableConvBN {
	return &SeparableConvBN{
		Depthwise: nn.NewConv2d(conv.Sub("conv1"), in, in, 3, torch.Conv{Padding: torch.Sq(1), Groups: in}, false),
		PointwiseBN: nn.NewConvBN(conv.Store(), nn.NewConv2d(conv.Sub("pointwise"), in, out, 1, torch.Conv{}, false),
			nn.NewBatchNorm2d(bn, out)),
	}
}

// Forward applies the depthwise convolution, then the pointwise one and the
// BatchNorm.
func (s *SeparableConvBN) Forward(ctx *nn.Ctx, x *torch.Tensor) *torch.Tensor {
	return s.PointwiseBN.Forward(ctx, s.Depthwise.Forward(x))
}

// blockSpec is one Xception block, as the authors' Block(in_filters,
// out_filters, reps, strides, start_with_relu, grow_first).
type blockSpec struct {
	in, out       int  // channels at width 1 (Config.Ch scales them)
	reps          int  // separable convolutions
	stride        int  // 2: a max pool, and a strided skip convolution
	startWithReLU bool // a ReLU before the first separable convolution
	growFirst     bool // the first (else the last) separable convolution changes the width
}

// xceptionBlocks are block1..block12 of the FaceForensics++ (Cadene) Xception:
// the entry flow, eight middle-flow blocks and the exit flow's block.
var xceptionBlocks = [12]blockSpec{
	{in: 64, out: 128, reps: 2, stride: 2, startWithReLU: false, growFirst: true},
	{in: 128, out: 256, reps: 2, stride: 2, startWithReLU: true, growFirst: true},
	{in: 256, out: 728, reps: 2, stride: 2, startWithReLU: true, growFirst: true},
	{in: 728, out: 728, reps: 3, stride: 1, startWithReLU: true, growFirst: true},
	{in: 728, out: 728, reps: 3, stride: 1, startWithReLU: true, growFirst: true},
	{in: 728, out: 728, reps: 3, stride: 1, startWithReLU: true, growFirst: true},
	{in: 728, out: 728, reps: 3, stride: 1, startWithReLU: true, growFirst: true},
	{in: 728, out: 728, reps: 3, stride: 1, startWithReLU: true, growFirst: true},
	{in: 728, out: 728, reps: 3, stride: 1, startWithReLU: true, growFirst: true},
	{in: 728, out: 728, reps: 3, stride: 1, startWithReLU: true, growFirst: true},
	{in: 728, out: 728, reps: 3, stride: 1, startWithReLU: true, growFirst: true},
	{in: 728, out: 1024, reps: 2, stride: 2, startWithReLU: true, growFirst: false},
}

// unit is one [ReLU] SeparableConv BN step of a block.
type unit struct {
	relu bool
	conv *SeparableConvBN
}

// Block is Xception's residual block: a chain of [ReLU, SeparableConv, BN]
// units, a max pool when strided, and a skip (identity, or 1x1 conv + BN).
type Block struct {
	units []unit
	pool  bool
	skip  *nn.ConvBN // nil: identity
}

// newBlock builds the block of spec with channels scaled by c and the
// authors' module indices inside "rep" (ReLU, SepConv and BN each take one
// index; the leading ReLU is dropped when startWithReLU is false).
func newBlock(p nn.Path, spec blockSpec, c Config) *Block {
	in, out := c.Ch(spec.in), c.Ch(spec.out)
	b := &Block{pool: spec.stride != 1}
	if out != in || spec.stride != 1 {
		b.skip = nn.NewConvBN(p.Store(),
			nn.NewConv2d(p.Sub("skip"), in, out, 1, torch.Conv{Stride: torch.Sq(int64(spec.stride))}, false),
			nn.NewBatchNorm2d(p.Sub("skipbn"), out))
	}
	type step struct{ in, out int64 }
	var steps []step
	filters := in
	if spec.growFirst {
		steps = append(steps, step{in, out})
		filters = out
	}
	for i := 0; i < spec.reps-1; i++ {
		steps = append(steps, step{filters, filters})
	}
	if !spec.growFirst {
		steps = append(steps, step{in, out})
	}
	rep := p.Sub("rep")
	idx := 0
	for i, s := range steps {
		u := unit{relu: i > 0 || spec.startWithReLU}
		if u.relu {
			idx++ // the ReLU module's slot
		}
		u.conv = newSeparableConvBN(rep.Subf("%d", idx), rep.Subf("%d", idx+1), s.in, s.out)
		idx += 2
		b.units = append(b.units, u)
	}
	return b
}

// Forward applies the block. The leading ReLU does not modify x (the skip
// reads it).
func (b *Block) Forward(ctx *nn.Ctx, x *torch.Tensor) *torch.Tensor {
	return scoped1(x, func(x *torch.Tensor) *torch.Tensor { return b.forward(ctx, x) })
}

func (b *Block) forward(ctx *nn.Ctx, x *torch.Tensor) *torch.Tensor {
	h := x
	for _, u := range b.units {
		if u.relu {
			h = h.Relu()
		}
		h = u.conv.Forward(ctx, h)
	}
	if b.pool {
		h = h.MaxPool2d(torch.Sq(3), torch.Sq(2), torch.Sq(1), false)
	}
	skip := x
	if b.skip != nil {
		skip = skipConv(ctx, b.skip, x)
	}
	return h.Add(skip)
}

// skipConv applies a block's strided 1x1 skip convolution and its BatchNorm.
// On NHWC tensors it runs as the same 1x1 convolution at stride 1 on every
// stride-th pixel: the same values, and it keeps oneDNN off its strided 1x1
// NHWC backward path, which corrupts the heap for some channel counts
// (oneDNN 2.6, as in libtorch 1.13; width 0.125 hits it).
func skipConv(ctx *nn.Ctx, c *nn.ConvBN, x *torch.Tensor) *torch.Tensor {
	if s := c.Conv.Opt.Stride; (s[0] > 1 || s[1] > 1) && x.IsChannelsLast() {
		sh := x.Shape()
		if len(sh) == 4 {
			x = x.Slice(2, 0, sh[2], s[0]).Slice(3, 0, sh[3], s[1])
		}
		c = c.WithStride(torch.Sq(1))
	}
	return c.Forward(ctx, x)
}

// Xception is one backbone stream (the FaceForensics++/Cadene variant), split
// into the parts LVNet interleaves with its cross-stream modules.
type Xception struct {
	stem1, stem2 *nn.ConvBN       // conv1 + bn1, conv2 + bn2
	blocks       [12]*Block       // block1..block12 (xceptionBlocks)
	exit1, exit2 *SeparableConvBN // conv3 + bn3, conv4 + bn4
}

// newXception registers a backbone under p ("xception_rgb.model"), with its
// unused classifier last_linear.1 (2048 -> 2) so checkpoints map one to one.
func newXception(p nn.Path, c Config) *Xception {
	st := p.Store()
	x := &Xception{
		stem1: nn.NewConvBN(st, nn.NewConv2d(p.Sub("conv1"), 3, c.Ch(32), 3, torch.Conv{Stride: torch.Sq(2), Padding: torch.Sq(1)}, false),
			nn.NewBatchNorm2d(p.Sub("bn1"), c.Ch(32))),
		stem2: nn.NewConvBN(st, nn.NewConv2d(p.Sub("conv2"), c.Ch(32), c.Ch(64), 3, torch.Conv{Padding: torch.Sq(1)}, false),
			nn.NewBatchNorm2d(p.Sub("bn2"), c.Ch(64))),
	}
	for i, spec := range xceptionBlocks {
		x.blocks[i] = newBlock(p.Subf("block%d", i+1), spec, c)
	}
	x.exit1 = newSeparableConvBN(p.Sub("conv3"), p.Sub("bn3"), c.Ch(1024), c.Ch(1536))
	x.exit2 = newSeparableConvBN(p.Sub("conv4"), p.Sub("bn4"), c.Ch(1536), c.Ch(2048))
	nn.NewLinear(p.Sub("last_linear.1"), c.Ch(2048), 2) // unused by LVNet
	return x
}

// Stem is fea_part1_0: conv 3x3/2, BN, ReLU, conv 3x3, BN, ReLU.
func (x *Xception) Stem(ctx *nn.Ctx, in *torch.Tensor) *torch.Tensor {
	return scoped1(in, func(in *torch.Tensor) *torch.Tensor {
		return x.stem2.Forward(ctx, x.stem1.Forward(ctx, in).Relu()).Relu()
	})
}

// Block applies block n (1-based).
func (x *Xception) Block(ctx *nn.Ctx, n int, in *torch.Tensor) *torch.Tensor {
	return x.blocks[n-1].Forward(ctx, in)
}

// Middle0 is fea_part2_0 (blocks 4-7); Middle1 is fea_part2_1 (blocks 8-11).
func (x *Xception) Middle0(ctx *nn.Ctx, in *torch.Tensor) *torch.Tensor {
	for n := 4; n <= 7; n++ {
		in = x.Block(ctx, n, in)
	}
	return in
}

// Middle1 applies blocks 8-11.
func (x *Xception) Middle1(ctx *nn.Ctx, in *torch.Tensor) *torch.Tensor {
	for n := 8; n <= 11; n++ {
		in = x.Block(ctx, n, in)
	}
	return in
}

// Exit is fea_part3: block12, conv3, bn3, ReLU, conv4, bn4 (no final ReLU).
func (x *Xception) Exit(ctx *nn.Ctx, in *torch.Tensor) *torch.Tensor {
	return scoped1(in, func(in *torch.Tensor) *torch.Tensor {
		h := x.Block(ctx, 12, in)
		return x.exit2.Forward(ctx, x.exit1.Forward(ctx, h).Relu())
	})
}
