package model

import (
	"errors"
	"fmt"

	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// InferenceOptions select how PrepareInference rewrites the network for
// fast evaluation.
type InferenceOptions struct {
	// ChannelsLast stores convolution weights (and converts inputs) NHWC,
	// the layout oneDNN runs fastest on CPUs.
	ChannelsLast bool
}

// PrepareInference speeds up eval-mode forward passes without changing what
// they compute (beyond float rounding): every BatchNorm that directly follows
// a convolution or linear layer (Xception's separable convolutions, skips,
// stem and exit flow, the score layers, HBFusion's output with cls_header's
// BatchNorm) is folded into that layer's weights and bias, and optionally the
// convolutions run channels-last. Training-mode passes are unaffected.
//
// The folded weights are derived copies: call PrepareInference again after
// the weights change (SetState and To drop them). It must not run
// concurrently with a forward pass.
func (m *LVNet) PrepareInference(opts InferenceOptions) error {
	m.invalidate()
	var err error
	fold := func(c *nn.Conv2d, bn *nn.BatchNorm2d) *nn.Conv2d {
		if err != nil {
			return nil
		}
		var f *nn.Conv2d
		f, err = foldConv(c, bn)
		return f
	}
	for _, x := range []*Xception{m.rgb, m.srm} {
		if x == nil {
			continue
		}
		x.f1, x.f2 = fold(x.conv1, x.bn1), fold(x.conv2, x.bn2)
		for _, b := range x.blocks {
			for i := range b.units {
				b.units[i].fused = fold(b.units[i].conv.Pointwise, b.units[i].bn)
			}
			if b.skip != nil {
				b.fskip = fold(b.skip, b.skipBN)
			}
		}
		x.f3, x.f4 = fold(x.conv3.Pointwise, x.bn3), fold(x.conv4.Pointwise, x.bn4)
	}
	for _, sc := range m.score {
		if sc != nil {
			sc.fused = fold(sc.Conv, sc.BN)
		}
	}
	if err == nil {
		m.fusedOut, err = foldLinear(m.fusion.OutTrans, m.clsHead.BN)
	}
	if err == nil && opts.ChannelsLast {
		err = m.channelsLast()
	}
	if err == nil {
		f := m.fusion
		f.conv = [3]*nn.Conv2d{linearAsConv(f.Trans1, opts.ChannelsLast), linearAsConv(f.Trans2, opts.ChannelsLast),
			linearAsConv(m.fusedOut, opts.ChannelsLast)}
		for _, c := range f.conv {
			if err == nil {
				err = errors.Join(c.W.Err(), c.B.Err())
			}
		}
	}
	if err != nil {
		m.invalidate()
		return fmt.Errorf("prepare inference: %w", err)
	}
	m.nhwc = m.nhwc || opts.ChannelsLast
	return nil
}

// UseChannelsLast stores every 4-D weight NHWC and makes forward passes
// (training too) convert their input to NHWC: oneDNN runs convolutions,
// above all the 1x1 ones that dominate Xception, several times faster in that
// layout, forward and backward. Values are unchanged; checkpoints are written
// in the usual layout.
func (m *LVNet) UseChannelsLast() error {
	if err := m.channelsLast(); err != nil {
		return fmt.Errorf("channels-last: %w", err)
	}
	m.nhwc = true
	return nil
}

// channelsLast converts every 4-D weight of the store and of the folded
// layers to NHWC memory order (values and shapes are unchanged).
func (m *LVNet) channelsLast() error {
	conv := func(c *nn.Conv2d) error {
		if c == nil {
			return nil
		}
		return c.W.Assign(c.W.ChannelsLast())
	}
	for _, e := range m.Store.Entries() {
		if e.T.Dim() == 4 {
			if err := e.T.Assign(e.T.Detach().ChannelsLast().SetRequiresGrad(e.Kind == nn.Param)); err != nil {
				return fmt.Errorf("%s: %w", e.Name, err)
			}
		}
	}
	for _, c := range m.foldedConvs() {
		if err := conv(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *LVNet) foldedConvs() []*nn.Conv2d {
	var out []*nn.Conv2d
	for _, x := range []*Xception{m.rgb, m.srm} {
		if x == nil {
			continue
		}
		out = append(out, x.f1, x.f2, x.f3, x.f4)
		for _, b := range x.blocks {
			for _, u := range b.units {
				out = append(out, u.fused)
			}
			out = append(out, b.fskip)
		}
	}
	for _, sc := range m.score {
		if sc != nil {
			out = append(out, sc.fused)
		}
	}
	return out
}

// invalidate drops the folded weights of PrepareInference.
func (m *LVNet) invalidate() {
	if m.rgb == nil {
		return
	}
	for _, c := range m.foldedConvs() {
		if c != nil {
			c.W.Free()
			c.B.Free()
		}
	}
	for _, x := range []*Xception{m.rgb, m.srm} {
		if x == nil {
			continue
		}
		x.f1, x.f2, x.f3, x.f4 = nil, nil, nil, nil
		for _, b := range x.blocks {
			for i := range b.units {
				b.units[i].fused = nil
			}
			b.fskip = nil
		}
	}
	for _, sc := range m.score {
		if sc != nil {
			sc.fused = nil
		}
	}
	if m.fusedOut != nil {
		m.fusedOut.W.Free()
		m.fusedOut.B.Free()
		m.fusedOut = nil
	}
	for i, c := range m.fusion.conv {
		if c != nil {
			c.W.Free()
			c.B.Free()
			m.fusion.conv[i] = nil
		}
	}
}

// bnScaleShift returns s = gamma / sqrt(var + eps) and t = beta - mean * s
// (float64 arithmetic), the affine map of an eval-mode BatchNorm.
func bnScaleShift(s *torch.Scope, bn *nn.BatchNorm2d) (scale, shift *torch.Tensor) {
	f64 := func(t *torch.Tensor) *torch.Tensor { return t.Detach().In(s).ToDType(torch.Float64) }
	scale = f64(bn.W).Div(f64(bn.RunningVar).AddScalar(bn.Eps).Sqrt())
	shift = f64(bn.B).Sub(f64(bn.RunningMean).Mul(scale))
	return scale, shift
}

// foldConv returns conv followed by bn as one convolution with bias.
func foldConv(c *nn.Conv2d, bn *nn.BatchNorm2d) (*nn.Conv2d, error) {
	s := torch.NewScope()
	defer s.Close()
	dt := c.W.DType()
	scale, shift := bnScaleShift(s, bn)
	w := c.W.Detach().In(s).ToDType(torch.Float64).Mul(scale.Reshape(-1, 1, 1, 1))
	b := shift
	if c.B != nil {
		b = c.B.Detach().In(s).ToDType(torch.Float64).Mul(scale).Add(shift)
	}
	f := &nn.Conv2d{W: w.ToDType(dt).Contiguous().Keep(), B: b.ToDType(dt).Keep(), Opt: c.Opt}
	if err := f.W.Err(); err != nil {
		return nil, err
	}
	return f, f.B.Err()
}

// foldLinear returns a linear layer followed by a per-feature BatchNorm as
// one linear layer.
func foldLinear(l *nn.Linear, bn *nn.BatchNorm2d) (*nn.Linear, error) {
	s := torch.NewScope()
	defer s.Close()
	dt := l.W.DType()
	scale, shift := bnScaleShift(s, bn)
	w := l.W.Detach().In(s).ToDType(torch.Float64).Mul(scale.Reshape(-1, 1))
	b := l.B.Detach().In(s).ToDType(torch.Float64).Mul(scale).Add(shift)
	f := &nn.Linear{W: w.ToDType(dt).Keep(), B: b.ToDType(dt).Keep()}
	if err := f.W.Err(); err != nil {
		return nil, err
	}
	return f, f.B.Err()
}
