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
	for _, l := range m.Store.ConvBNs() {
		if err = l.Fold(); err != nil {
			break
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
	for _, e := range m.Store.Entries() {
		if e.T.Dim() == 4 {
			if err := e.T.Assign(e.T.Detach().ChannelsLast().SetRequiresGrad(e.Kind == nn.Param)); err != nil {
				return fmt.Errorf("%s: %w", e.Name, err)
			}
		}
	}
	for _, l := range m.Store.ConvBNs() {
		if f := l.Folded(); f != nil {
			if err := f.W.Assign(f.W.ChannelsLast()); err != nil {
				return err
			}
		}
	}
	return nil
}

// invalidate drops the folded weights of PrepareInference.
func (m *LVNet) invalidate() {
	if m.rgb == nil {
		return
	}
	for _, l := range m.Store.ConvBNs() {
		l.Unfold()
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

// foldLinear returns a linear layer followed by a per-feature BatchNorm as
// one linear layer.
func foldLinear(l *nn.Linear, bn *nn.BatchNorm2d) (*nn.Linear, error) {
	s := torch.NewScope()
	defer s.Close()
	dt := l.W.DType()
	scale, shift := bn.ScaleShift(s)
	w := l.W.Detach().In(s).ToDType(torch.Float64).Mul(scale.Reshape(-1, 1))
	b := l.B.Detach().In(s).ToDType(torch.Float64).Mul(scale).Add(shift)
	f := &nn.Linear{W: w.ToDType(dt).Keep(), B: b.ToDType(dt).Keep()}
	if err := f.W.Err(); err != nil {
		return nil, err
	}
	return f, f.B.Err()
}
