package nn

import "github.com/lvnet-go/lvnet/torch"

// ConvBN is a convolution followed by a BatchNorm, as timm's ConvNorm. For
// inference it can fold itself (Fold, as timm's fuse): eval-mode passes then
// run one convolution whose weights and bias absorb the BatchNorm's affine
// map. Training-mode passes always run the two layers.
type ConvBN struct {
	Conv   *Conv2d
	BN     *BatchNorm2d
	folded *Conv2d // Conv with BN folded in (Fold); nil when unfolded
}

// NewConvBN joins conv and the bn that follows it into one layer, registered
// in the store s so that model-wide folding finds it (Store.ConvBNs).
func NewConvBN(s *Store, conv *Conv2d, bn *BatchNorm2d) *ConvBN {
	c := &ConvBN{Conv: conv, BN: bn}
	s.convBNs = append(s.convBNs, c)
	return c
}

// Forward applies the convolution and the BatchNorm, or in eval mode their
// folded form when there is one.
func (c *ConvBN) Forward(ctx *Ctx, x *torch.Tensor) *torch.Tensor {
	if !ctx.Train && c.folded != nil {
		return c.folded.Forward(x)
	}
	return c.BN.Forward(ctx, c.Conv.Forward(x))
}

// Fold computes the folded convolution from the current weights and running
// statistics (in float64, stored in the weights' type, NCHW): a derived copy,
// to fold again after the weights change. It replaces an earlier one.
func (c *ConvBN) Fold() error {
	c.Unfold()
	s := torch.NewScope()
	defer s.Close()
	dt := c.Conv.W.DType()
	scale, shift := c.BN.ScaleShift(s)
	w := c.Conv.W.Detach().In(s).ToDType(torch.Float64).Mul(scale.Reshape(-1, 1, 1, 1))
	b := shift
	if c.Conv.B != nil {
		b = c.Conv.B.Detach().In(s).ToDType(torch.Float64).Mul(scale).Add(shift)
	}
	f := &Conv2d{W: w.ToDType(dt).Contiguous().Keep(), B: b.ToDType(dt).Keep(), Opt: c.Conv.Opt}
	if err := f.W.Err(); err != nil {
		f.B.Free()
		return err
	}
	if err := f.B.Err(); err != nil {
		f.W.Free()
		return err
	}
	c.folded = f
	return nil
}

// Folded returns the folded convolution (nil when unfolded), e.g. to change
// its weights' memory layout.
func (c *ConvBN) Folded() *Conv2d { return c.folded }

// Unfold frees the folded convolution: eval-mode passes run both layers again.
func (c *ConvBN) Unfold() {
	if c.folded != nil {
		c.folded.W.Free()
		c.folded.B.Free()
		c.folded = nil
	}
}

// WithStride returns a view of the layer that convolves at stride (its folded
// form too), sharing the weights; it is not registered in the store.
func (c *ConvBN) WithStride(stride [2]int64) *ConvBN {
	o := *c
	conv := *c.Conv
	conv.Opt.Stride = stride
	o.Conv = &conv
	if c.folded != nil {
		f := *c.folded
		f.Opt.Stride = stride
		o.folded = &f
	}
	return &o
}
