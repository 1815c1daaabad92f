package model

import (
	"fmt"

	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// LVNet is the two-stream network. Its tensors live in Store under the
// authors' state-dict names.
type LVNet struct {
	Config Config
	Store  *nn.Store

	rgb, srm *Xception
	srmConv  *SRM
	score    [6]*BasicConv
	fusion   *HBFusion
	cmce     [3]*CMCE
	lfga     [3]*LFGA
	clsHead  *ClsHead
	segHead  *ConvHead
	proHead  *ConvHead

	// Inference state of PrepareInference.
	fusedOut *nn.Linear // HBFusion.OutTrans with cls_header's BatchNorm folded in
	nhwc     bool
}

// Output is what a forward pass returns.
type Output struct {
	Cls         *torch.Tensor // B x 2 class logits (0 real, 1 fake)
	Seg         *torch.Tensor // B x 2 x G x G patch logits (nil without localisation)
	SegFeatures *torch.Tensor // B x SegChannels x G x G (nil without localisation)
	Pro         *torch.Tensor // B x 256 x G x G SSPSL patch features (nil unless Config.SSPSL)
}

// Tracer receives intermediate results by stage name (see golden.json's
// eval_stages); nil disables tracing.
type Tracer func(stage string, t *torch.Tensor)

// New builds an LVNet with PyTorch's default initialisation, drawing from a
// generator seeded with seed.
func New(cfg Config, seed uint64) (*LVNet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st := nn.NewStore(seed)
	root := st.Root()
	m := &LVNet{Config: cfg, Store: st}
	ch := cfg.Ch
	m.rgb = newXception(root.Sub("xception_rgb.model"), cfg)
	if cfg.SRMStream {
		m.srm = newXception(root.Sub("xception_srm.model"), cfg)
		m.srmConv = newSRM(root.Sub("srm_conv0"))
	}
	chans := []int64{ch(64), ch(128), ch(256), ch(728), ch(728), ch(728)}
	if cfg.Localize {
		for i, c := range chans {
			m.score[i] = newBasicConv(root.Subf("score%d", i), c, ch(512))
		}
	}
	mul := chans[0] + chans[1] + chans[2] + chans[3] + chans[5]
	m.fusion = newHBFusion(root.Sub("HBFusion"), mul, ch(2048), ch(2048), ch(4096), cfg.Dropout)
	if cfg.CMCE {
		for i := 0; i < 3; i++ {
			m.cmce[i] = newCMCE(root.Subf("cmc%d", i), chans[i])
		}
	}
	if cfg.LFGA {
		for i := 0; i < 3; i++ {
			m.lfga[i] = newLFGA(root.Subf("lfe%d", i), chans[3+i])
		}
	}
	m.clsHead = newClsHead(root.Sub("cls_header"), ch(4096), cfg.Dropout)
	if cfg.Localize {
		m.segHead = newConvHead(root.Sub("seg_header"), cfg.SegChannels(), 2)
	}
	if cfg.SSPSL {
		m.proHead = newConvHead(root.Sub("pro_header"), ch(728), 256)
	}
	if err := st.Err(); err != nil {
		st.Free()
		return nil, fmt.Errorf("build lvnet: %w", err)
	}
	return m, nil
}

// DType is the element type of the model's weights.
func (m *LVNet) DType() torch.DType { return m.rgb.stem1.Conv.W.DType() }

// Device is where the model's weights live.
func (m *LVNet) Device() torch.Device { return m.rgb.stem1.Conv.W.Device() }

// To converts the model's weights to dt (Float32, Float64; BFloat16 for
// inference) on device dev.
func (m *LVNet) To(dt torch.DType, dev torch.Device) error {
	m.invalidate()
	return m.Store.To(dt, dev)
}

// Free releases the model's tensors.
func (m *LVNet) Free() {
	m.invalidate()
	m.Store.Free()
}

// Forward runs the network on x (B x 3 x S x S, normalised to [-1, 1]).
func (m *LVNet) Forward(ctx *nn.Ctx, x *torch.Tensor) Output { return m.ForwardTrace(ctx, x, nil) }

// ForwardTrace is Forward reporting every stage to trace.
func (m *LVNet) ForwardTrace(ctx *nn.Ctx, x *torch.Tensor, trace Tracer) Output {
	if trace == nil {
		trace = func(string, *torch.Tensor) {}
	}
	if err := m.checkInput(x); err != nil {
		e := torch.Errorf("lvnet", "%w", err)
		return Output{Cls: e, Seg: e, SegFeatures: e, Pro: e}
	}
	if m.nhwc {
		x = x.ChannelsLast()
	}
	cfg := m.Config
	two := cfg.SRMStream
	rgb, srm := m.rgb, m.srm

	// Entry flow, with cross-modality consistency enhancement after each stage.
	x0 := rgb.Stem(ctx, x)
	trace("rgb_stem", x0)
	y0 := x0
	if two {
		s := m.srmConv.Forward(x)
		trace("srm", s)
		y0 = srm.Stem(ctx, s)
		trace("srm_stem", y0)
	}
	x0, y0 = m.couple(0, x0, y0, trace)
	x1 := rgb.Block(ctx, 1, x0)
	y1 := x1
	if two {
		y1 = srm.Block(ctx, 1, y0)
	}
	x1, y1 = m.couple(1, x1, y1, trace)
	x2 := rgb.Block(ctx, 2, x1)
	y2 := x2
	if two {
		y2 = srm.Block(ctx, 2, y1)
	}
	x2, y2 = m.couple(2, x2, y2, trace)

	// Block 3 sees the sum of both streams; then the middle flow, where local
	// forgery guided attention lets the RGB stream steer the SRM stream.
	f := x2
	if two {
		f = x2.Add(y2)
	}
	x3 := rgb.Block(ctx, 3, f)
	trace("block3_rgb", x3)
	y3 := x3
	if two {
		y3 = srm.Block(ctx, 3, f)
		trace("block3_srm", y3)
	}
	y3 = m.attend(0, y3, x3, trace)
	x4 := rgb.Middle0(ctx, x3)
	trace("middle0_rgb", x4)
	y4 := x4
	if two {
		y4 = srm.Middle0(ctx, y3)
	}
	y4 = m.attend(1, y4, x4, trace)
	x5 := rgb.Middle1(ctx, x4)
	trace("middle1_rgb", x5)
	y5 := x5
	if two {
		y5 = srm.Middle1(ctx, y4)
	}
	y5 = m.attend(2, y5, x5, trace)
	var y6 *torch.Tensor
	if two {
		y6 = srm.Exit(ctx, y5)
		trace("exit_srm", y6)
	} else {
		y6 = rgb.Exit(ctx, x5)
		trace("exit_rgb", y6)
	}

	var out Output
	// Localisation branch: MPFF of every level against score5(x5).
	if cfg.Localize {
		xs := []*torch.Tensor{x0, x1, x2, x3, x4, x5}
		u5 := m.score[5].Forward(ctx, x5)
		parts := make([]*torch.Tensor, 0, 6)
		for i := 0; i < 5; i++ {
			i := i
			p := scoped(func(in []*torch.Tensor) []*torch.Tensor {
				if m.fusedMPFF(in[0]) {
					// The fused kernel reads NHWC; so does oneDNN's fastest 1x1 convolution.
					return []*torch.Tensor{torch.MPFF(m.score[i].Forward(ctx, in[0].ChannelsLast()), in[1])}
				}
				return []*torch.Tensor{MPFF(m.score[i].Forward(ctx, in[0]), in[1])}
			}, xs[i], u5)[0]
			if i == 0 {
				trace("mpff_x0", p)
			}
			parts = append(parts, p)
		}
		out.SegFeatures = torch.Cat(1, append(parts, x5)...)
		trace("seg_features", out.SegFeatures)
		out.Seg = m.segHead.Forward(ctx, out.SegFeatures)
		trace("seg_logits", out.Seg)
	}

	// Verification branch: pooled SRM features fused with the exit flow.
	_, _, _, _, cls := cfg.Sizes()
	n := int64(cls)
	mul := torch.Cat(1, padMaxPool(y0, n), padMaxPool(y1, n), padMaxPool(y2, n), padMaxPool(y3, n), padMaxPool(y5, n))
	if !ctx.Train && m.fusedOut != nil {
		fused := m.fusion.forward(ctx, mul, y6, m.fusedOut)
		trace("cls_features_bn", fused)
		out.Cls = m.clsHead.afterBN(ctx, fused)
	} else {
		fused := m.fusion.Forward(ctx, mul, y6)
		trace("cls_features", fused)
		out.Cls = m.clsHead.Forward(ctx, fused)
	}
	trace("cls_logits", out.Cls)
	if cfg.SSPSL {
		out.Pro = m.proHead.Forward(ctx, x5)
	}
	return out
}

// fusedMPFF reports whether MPFF runs as the fused CPU op (torch.MPFF):
// float32 on the CPU (other types and devices use the composite MPFF).
func (m *LVNet) fusedMPFF(x *torch.Tensor) bool {
	return x.DType() == torch.Float32 && x.Device() == torch.CPU
}

func (m *LVNet) couple(i int, x, y *torch.Tensor, trace Tracer) (*torch.Tensor, *torch.Tensor) {
	if m.cmce[i] == nil {
		return x, y
	}
	x, y = m.cmce[i].Forward(x, y)
	trace(fmt.Sprintf("cmce%d_rgb", i), x)
	trace(fmt.Sprintf("cmce%d_srm", i), y)
	return x, y
}

func (m *LVNet) attend(i int, srm, rgb *torch.Tensor, trace Tracer) *torch.Tensor {
	if m.lfga[i] == nil {
		return srm
	}
	out := m.lfga[i].Forward(srm, rgb)
	trace(fmt.Sprintf("lfga%d", i), out)
	return out
}

func (m *LVNet) checkInput(x *torch.Tensor) error {
	if err := x.Err(); err != nil {
		return err
	}
	s := x.Shape()
	n := int64(m.Config.ImageSize)
	if len(s) != 4 || s[1] != 3 || s[2] != n || s[3] != n {
		return fmt.Errorf("input must be B x 3 x %d x %d, got %v", n, n, s)
	}
	if want := m.DType(); x.DType() != want {
		return fmt.Errorf("input must be %v like the model, got %v", want, x.DType())
	}
	return nil
}
