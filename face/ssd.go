package face

import (
	"fmt"
	"math"

	"github.com/lvnet-go/lvnet/torch"
)

// ssdModel names the SSD-MobileNetV1 face detector of face-api.
const ssdModel = "ssd_mobilenetv1_model"

// ssdNet is face-api's SSD-MobileNetV1 face detector (a TensorFlow object
// detection API model): a MobileNetV1 backbone with batch norms folded into
// the convolutions, eight extra feature layers and six box predictors over
// feature maps of strides 16, 32, 64, 128, 256 and 512.
type ssdNet struct {
	backbone []conv2d // conv_0, then depthwise/pointwise pairs 1..13
	conv11   int      // index in backbone of the output of pair 11
	extra    [8]conv2d
	heads    [6]conv2d // fused box-encoding (4 per anchor) + class (3 per anchor) predictors
	perCell  [6]int    // anchors per feature-map cell
}

// bnEpsilon is the batch-norm epsilon of the depthwise layers.
const bnEpsilon = 0.0010000000474974513

func loadSSD(dir string) (*ssdNet, error) {
	m, err := loadTFJS(dir, ssdModel)
	if err != nil {
		return nil, err
	}
	ws := &weightSet{model: ssdModel, m: m}
	n := &ssdNet{}
	pointwise := func(prefix string, idx int, stride int64) conv2d {
		name := fmt.Sprintf("%s/Conv2d_%d_pointwise", prefix, idx)
		w, k, out := ws.filter(name+"/weights", nil)
		b := ws.tensor(ws.vector(name+"/convolution_bn_offset", int(out)), out)
		return conv2d{w: w, b: b, k: k, stride: stride, groups: 1, act: actRelu6}
	}
	n.backbone = append(n.backbone, pointwise("MobilenetV1", 0, 2))
	for i := 1; i <= 13; i++ {
		stride := int64(1)
		if i == 2 || i == 4 || i == 6 || i == 12 {
			stride = 2
		}
		p := fmt.Sprintf("MobilenetV1/Conv2d_%d_depthwise", i)
		raw := ws.get(p+"/depthwise_weights", -1, -1, -1, 1)
		c := 0
		if len(raw.Shape) == 4 {
			c = raw.Shape[2]
		}
		gamma := ws.vector(p+"/BatchNorm/gamma", c)
		beta := ws.vector(p+"/BatchNorm/beta", c)
		mean := ws.vector(p+"/BatchNorm/moving_mean", c)
		variance := ws.vector(p+"/BatchNorm/moving_variance", c)
		scale := make([]float32, c)
		bias := make([]float32, c)
		for j := range scale {
			s := float64(gamma[j]) / math.Sqrt(float64(variance[j])+bnEpsilon)
			scale[j] = float32(s)
			bias[j] = float32(float64(beta[j]) - float64(mean[j])*s)
		}
		w, k, ch := ws.depthwise(p+"/depthwise_weights", scale)
		n.backbone = append(n.backbone, conv2d{w: w, b: ws.tensor(bias, ch), k: k, stride: stride, groups: ch, act: actRelu6})
		n.backbone = append(n.backbone, pointwise("MobilenetV1", i, 1))
		if i == 11 {
			n.conv11 = len(n.backbone) - 1
		}
	}
	for i := range n.extra {
		n.extra[i] = pointwise("Prediction", i, int64(1+i%2))
	}
	for i := range n.heads {
		p := fmt.Sprintf("Prediction/BoxPredictor_%d/", i)
		bw := ws.get(p+"BoxEncodingPredictor/weights", 1, 1, -1, -1)
		cw := ws.get(p+"ClassPredictor/weights", 1, 1, -1, -1)
		if bw.Data == nil || cw.Data == nil {
			continue
		}
		in, nb, nc := bw.Shape[2], bw.Shape[3], cw.Shape[3]
		if cw.Shape[2] != in || nb%4 != 0 || nc%3 != 0 || nb/4 != nc/3 {
			ws.fail("box predictor %d: box weights %v and class weights %v disagree", i, bw.Shape, cw.Shape)
			continue
		}
		bb := ws.vector(p+"BoxEncodingPredictor/biases", nb)
		cb := ws.vector(p+"ClassPredictor/biases", nc)
		out := nb + nc
		w := make([]float32, out*in)
		for o := 0; o < nb; o++ {
			for c := 0; c < in; c++ {
				w[o*in+c] = bw.Data[c*nb+o]
			}
		}
		for o := 0; o < nc; o++ {
			for c := 0; c < in; c++ {
				w[(nb+o)*in+c] = cw.Data[c*nc+o]
			}
		}
		n.perCell[i] = nb / 4
		n.heads[i] = conv2d{
			w: ws.tensor(w, int64(out), int64(in), 1, 1), b: ws.tensor(append(append([]float32{}, bb...), cb...), int64(out)),
			k: 1, stride: 1, groups: 1, act: actNone,
		}
	}
	if ws.err == nil && n.perCell != [6]int{3, 6, 6, 6, 6, 6} {
		ws.fail("box predictors have %v anchors per cell, want [3 6 6 6 6 6]", n.perCell)
	}
	// The anchors are generated (for any input size); check that for the
	// training size they are the model's own.
	if own := ws.get("Output/extra_dim", 1, -1, 4); ws.err == nil {
		gen := ssdAnchors(512, 512)
		if len(gen) != len(own.Data) {
			ws.fail("Output/extra_dim has %d anchors, the generator makes %d", len(own.Data)/4, len(gen)/4)
		} else {
			for i := 0; i < len(gen); i += 4 {
				cy, cx, h, w := gen[i], gen[i+1], gen[i+2], gen[i+3]
				box := [4]float32{(cy - h/2) / 512, (cx - w/2) / 512, (cy + h/2) / 512, (cx + w/2) / 512}
				for k := range box {
					if d := box[k] - own.Data[i+k]; d > 1e-4 || d < -1e-4 {
						ws.fail("generated anchor %d %v differs from the model's %v", i/4, box, own.Data[i:i+4])
						break
					}
				}
			}
		}
	}
	if ws.err != nil {
		ws.freeAll()
		return nil, ws.err
	}
	return n, nil
}

// gridSizes returns the side of the six predictor feature maps for an
// input of side s.
func gridSizes(s int) [6]int {
	var g [6]int
	side := (s + 1) / 2 // conv_0, stride 2
	for _, st := range []int{2, 2, 2} {
		side = (side + st - 1) / st
	}
	g[0] = side // after pair 11 (stride 16)
	side = (side + 1) / 2
	g[1] = side // backbone output (stride 32)
	for i := 2; i < 6; i++ {
		side = (side + 1) / 2
		g[i] = side
	}
	return g
}

// forward runs the network on a normalised (N, 3, S, S) batch and returns
// per image and anchor the 4 box encodings and the 3 class logits, in the
// model's anchor order (feature map, row, column, anchor).
func (n *ssdNet) forward(x *torch.Tensor) (loc, cls []float32, err error) {
	var conv11 *torch.Tensor
	for i := range n.backbone {
		x = n.backbone[i].forward(x)
		if i == n.conv11 {
			conv11 = x
		}
	}
	feats := [6]*torch.Tensor{conv11, x}
	y := x
	for i := range n.extra {
		y = n.extra[i].forward(y)
		if i%2 == 1 {
			feats[2+i/2] = y
		}
	}
	batch := x.Size(0)
	outs := make([]*torch.Tensor, 6)
	for i, f := range feats {
		h := n.heads[i].forward(f)                         // (N, A*7, H, W)
		outs[i] = h.Permute(0, 2, 3, 1).Reshape(batch, -1) // (N, H*W*A*7)
	}
	all := torch.Cat(1, outs...)
	data, err := torch.Data[float32](all)
	if err != nil {
		return nil, nil, fmt.Errorf("face detector: %w", err)
	}
	// Split the per-head blocks into box encodings and class logits.
	per := int(all.Size(1))
	nA := per / 7
	loc = make([]float32, int(batch)*nA*4)
	cls = make([]float32, int(batch)*nA*3)
	for b := 0; b < int(batch); b++ {
		src := data[b*per : (b+1)*per]
		a := 0
		off := 0
		for i, o := range outs {
			cells := int(o.Size(1)) / (7 * n.perCell[i])
			A := n.perCell[i]
			for c := 0; c < cells; c++ {
				blk := src[off : off+7*A]
				copy(loc[(b*nA+a)*4:], blk[:4*A])
				copy(cls[(b*nA+a)*3:], blk[4*A:])
				a += A
				off += 7 * A
			}
		}
	}
	return loc, cls, nil
}

// ssdAnchors returns the anchors of an hIn x wIn input as (centre y, centre
// x, height, width) in input pixels, in the model's order (feature map, row,
// column, anchor). They follow the TensorFlow object detection API's SSD
// anchor generator as configured for this model (6 layers, scales
// 0.2..0.95 of the 512-pixel training input; per cell the scale at aspect
// ratio 1, the interpolated scale sqrt(s*s_next) at ratio 1, then ratios 2,
// 1/2, 3, 1/3; 3 reduced boxes in the lowest layer), laid out in pixels so
// that a 512x512 input gets exactly the model's own anchors
// (Output/extra_dim) and other sizes the same anchors on a larger or smaller
// grid.
func ssdAnchors(hIn, wIn int) []float32 {
	const minScale, maxScale, nominal = 0.2, 0.95, 512.0
	const layers = 6
	scales := make([]float64, layers+1)
	for i := 0; i < layers; i++ {
		scales[i] = minScale + (maxScale-minScale)*float64(i)/float64(layers-1)
	}
	scales[layers] = 1
	gh, gw := gridSizes(hIn), gridSizes(wIn)
	var out []float32
	for l := 0; l < layers; l++ {
		type spec struct{ scale, ar float64 }
		specs := []spec{{0.1, 1}, {scales[0], 2}, {scales[0], 0.5}}
		if l > 0 {
			specs = []spec{{scales[l], 1}, {math.Sqrt(scales[l] * scales[l+1]), 1}}
			for _, ar := range []float64{2, 0.5, 3, 0.3333} {
				specs = append(specs, spec{scales[l], ar})
			}
		}
		st := float64(int(16) << l) // input pixels between cells
		for y := 0; y < gh[l]; y++ {
			for x := 0; x < gw[l]; x++ {
				for _, sp := range specs {
					r := math.Sqrt(sp.ar)
					out = append(out, float32((float64(y)+0.5)*st), float32((float64(x)+0.5)*st),
						float32(sp.scale/r*nominal), float32(sp.scale*r*nominal))
				}
			}
		}
	}
	return out
}

func (n *ssdNet) free() {
	for i := range n.backbone {
		n.backbone[i].free()
	}
	for i := range n.extra {
		n.extra[i].free()
	}
	for i := range n.heads {
		n.heads[i].free()
	}
}
