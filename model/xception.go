package model

import (
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// SeparableConv is Xception's depthwise 3x3 convolution (conv1) followed by a
// pointwise 1x1 convolution (pointwise), both without bias.
type SeparableConv struct {
	Depthwise, Pointwise *nn.Conv2d
}

func newSeparableConv(p nn.Path, in, out int64) *SeparableConv {
	return &SeparableConv{
		Depthwise: nn.NewConv2d(p.Sub("conv1"), in, in, 3, torch.Conv{Padding: torch.Sq(1), Groups: in}, false),
		Pointwise: nn.NewConv2d(p.Sub("pointwise"), in, out, 1, torch.Conv{}, false),
	}
}

// Forward applies both convolutions.
func (s *SeparableConv) Forward(x *torch.Tensor) *torch.Tensor {
	return s.Pointwise.Forward(s.Depthwise.Forward(x))
}

// unit is one [ReLU] SeparableConv BN step of a block.
type unit struct {
	relu  bool
	conv  *SeparableConv
	bn    *nn.BatchNorm2d
	fused *nn.Conv2d // pointwise with bn folded in (PrepareInference)
}

// forward applies the unit's convolution and BatchNorm.
func (u *unit) forward(ctx *nn.Ctx, h *torch.Tensor) *torch.Tensor {
	if !ctx.Train && u.fused != nil {
		return u.fused.Forward(u.conv.Depthwise.Forward(h))
	}
	return u.bn.Forward(ctx, u.conv.Forward(h))
}

// convBN applies conv then bn, or their folded form in eval mode.
func convBN(ctx *nn.Ctx, c *nn.Conv2d, bn *nn.BatchNorm2d, fused *nn.Conv2d, x *torch.Tensor) *torch.Tensor {
	if !ctx.Train && fused != nil {
		return fused.Forward(x)
	}
	return bn.Forward(ctx, c.Forward(x))
}

// skipConv applies a block's strided 1x1 skip convolution. On NHWC tensors
// it runs as the same 1x1 convolution at stride 1 on every stride-th pixel:
// the same values, and it keeps oneDNN off its strided 1x1 NHWC backward path,
// which corrupts the heap for some channel counts (oneDNN 2.6, as in libtorch
// 1.13; width 0.125 hits it).
func skipConv(ctx *nn.Ctx, c *nn.Conv2d, bn *nn.BatchNorm2d, fused *nn.Conv2d, x *torch.Tensor) *torch.Tensor {
	if s := c.Opt.Stride; (s[0] > 1 || s[1] > 1) && x.IsChannelsLast() {
		sh := x.Shape()
		if len(sh) == 4 {
			x = x.Slice(2, 0, sh[2], s[0]).Slice(3, 0, sh[3], s[1])
		}
		one := func(cv *nn.Conv2d) *nn.Conv2d {
			if cv == nil {
				return nil
			}
			o := *cv
			o.Opt.Stride = torch.Sq(1)
			return &o
		}
		c, fused = one(c), one(fused)
	}
	return convBN(ctx, c, bn, fused, x)
}

// Block is Xception's residual block: a chain of [ReLU, SeparableConv, BN]
// units, a max pool when strided, and a skip (identity, or 1x1 conv + BN).
type Block struct {
	units  []unit
	pool   bool
	skip   *nn.Conv2d
	skipBN *nn.BatchNorm2d
	fskip  *nn.Conv2d // skip with skipBN folded in
}

// newBlock builds Block(in, out, reps, stride, startWithReLU, growFirst) with
// the authors' module indices inside "rep" (ReLU, SepConv and BN each take
// one index; the leading ReLU is dropped when startWithReLU is false).
func newBlock(p nn.Path, in, out int64, reps, stride int, startWithReLU, growFirst bool) *Block {
	b := &Block{pool: stride != 1}
	if out != in || stride != 1 {
		b.skip = nn.NewConv2d(p.Sub("skip"), in, out, 1, torch.Conv{Stride: torch.Sq(int64(stride))}, false)
		b.skipBN = nn.NewBatchNorm2d(p.Sub("skipbn"), out)
	}
	type step struct{ in, out int64 }
	var steps []step
	filters := in
	if growFirst {
		steps = append(steps, step{in, out})
		filters = out
	}
	for i := 0; i < reps-1; i++ {
		steps = append(steps, step{filters, filters})
	}
	if !growFirst {
		steps = append(steps, step{in, out})
	}
	rep := p.Sub("rep")
	idx := 0
	for i, s := range steps {
		u := unit{relu: i > 0 || startWithReLU}
		if u.relu {
			idx++ // the ReLU module's slot
		}
		u.conv = newSeparableConv(rep.Subf("%d", idx), s.in, s.out)
		u.bn = nn.NewBatchNorm2d(rep.Subf("%d", idx+1), s.out)
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
		h = u.forward(ctx, h)
	}
	if b.pool {
		h = h.MaxPool2d(torch.Sq(3), torch.Sq(2), torch.Sq(1), false)
	}
	skip := x
	if b.skip != nil {
		skip = skipConv(ctx, b.skip, b.skipBN, b.fskip, x)
	}
	return h.Add(skip)
}

// Xception is one backbone stream (the FaceForensics++/Cadene variant), split
// into the parts LVNet interleaves with its cross-stream modules.
type Xception struct {
	conv1, conv2 *nn.Conv2d
	bn1, bn2     *nn.BatchNorm2d
	blocks       [12]*Block // block1..block12
	conv3, conv4 *SeparableConv
	bn3, bn4     *nn.BatchNorm2d
	// Folded layers of PrepareInference: stem convs with bn1/bn2, the exit
	// flow's pointwise convs with bn3/bn4.
	f1, f2, f3, f4 *nn.Conv2d
}

// newXception registers a backbone under p ("xception_rgb.model"), with its
// unused classifier last_linear.1 (2048 -> 2) so checkpoints map one to one.
func newXception(p nn.Path, c Config) *Xception {
	x := &Xception{}
	x.conv1 = nn.NewConv2d(p.Sub("conv1"), 3, c.Ch(32), 3, torch.Conv{Stride: torch.Sq(2), Padding: torch.Sq(1)}, false)
	x.bn1 = nn.NewBatchNorm2d(p.Sub("bn1"), c.Ch(32))
	x.conv2 = nn.NewConv2d(p.Sub("conv2"), c.Ch(32), c.Ch(64), 3, torch.Conv{Padding: torch.Sq(1)}, false)
	x.bn2 = nn.NewBatchNorm2d(p.Sub("bn2"), c.Ch(64))
	x.blocks[0] = newBlock(p.Sub("block1"), c.Ch(64), c.Ch(128), 2, 2, false, true)
	x.blocks[1] = newBlock(p.Sub("block2"), c.Ch(128), c.Ch(256), 2, 2, true, true)
	x.blocks[2] = newBlock(p.Sub("block3"), c.Ch(256), c.Ch(728), 2, 2, true, true)
	for i := 3; i < 11; i++ {
		x.blocks[i] = newBlock(p.Subf("block%d", i+1), c.Ch(728), c.Ch(728), 3, 1, true, true)
	}
	x.blocks[11] = newBlock(p.Sub("block12"), c.Ch(728), c.Ch(1024), 2, 2, true, false)
	x.conv3 = newSeparableConv(p.Sub("conv3"), c.Ch(1024), c.Ch(1536))
	x.bn3 = nn.NewBatchNorm2d(p.Sub("bn3"), c.Ch(1536))
	x.conv4 = newSeparableConv(p.Sub("conv4"), c.Ch(1536), c.Ch(2048))
	x.bn4 = nn.NewBatchNorm2d(p.Sub("bn4"), c.Ch(2048))
	nn.NewLinear(p.Sub("last_linear.1"), c.Ch(2048), 2) // unused by LVNet
	return x
}

// Stem is fea_part1_0: conv 3x3/2, BN, ReLU, conv 3x3, BN, ReLU.
func (x *Xception) Stem(ctx *nn.Ctx, in *torch.Tensor) *torch.Tensor {
	return scoped1(in, func(in *torch.Tensor) *torch.Tensor {
		h := convBN(ctx, x.conv1, x.bn1, x.f1, in).Relu()
		return convBN(ctx, x.conv2, x.bn2, x.f2, h).Relu()
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
		h = convBN(ctx, x.conv3.Pointwise, x.bn3, x.f3, x.conv3.Depthwise.Forward(h)).Relu()
		return convBN(ctx, x.conv4.Pointwise, x.bn4, x.f4, x.conv4.Depthwise.Forward(h))
	})
}
