package face

import (
	"fmt"

	"github.com/lvnet-go/lvnet/torch"
)

// activation after a convolution.
type activation int

const (
	actNone  activation = iota
	actRelu             // max(x, 0)
	actRelu6            // min(max(x, 0), 6), TensorFlow's relu6 / clipByValue(0, 6)
)

// conv2d is a 2-D convolution with TensorFlow "SAME" padding semantics: the
// output has ceil(in/stride) rows and columns and the padding, when odd, goes
// to the bottom and right (reproduced with an explicit pad before a
// zero-padding convolution).
type conv2d struct {
	w, b   *torch.Tensor // (out, in/groups, k, k), (out)
	k      int64
	stride int64
	groups int64
	act    activation
}

// samePad returns TensorFlow's SAME padding (before, after) for one axis.
func samePad(in, k, stride int64) (before, after int64) {
	out := (in + stride - 1) / stride
	total := (out-1)*stride + k - in
	if total < 0 {
		total = 0
	}
	return total / 2, total - total/2
}

func (c *conv2d) forward(x *torch.Tensor) *torch.Tensor {
	shape := x.Shape()
	if len(shape) != 4 {
		return torch.Errorf("face.conv2d", "want a 4-D input, got %v", shape)
	}
	pt, pb := samePad(shape[2], c.k, c.stride)
	pl, pr := samePad(shape[3], c.k, c.stride)
	o := torch.Conv{Stride: torch.Sq(c.stride), Groups: c.groups}
	if pt == pb && pl == pr {
		o.Padding = [2]int64{pt, pl}
	} else {
		x = x.ConstantPad(0, pl, pr, pt, pb)
	}
	y := x.Conv2d(c.w, c.b, o)
	switch c.act {
	case actRelu:
		y = y.Relu()
	case actRelu6:
		y = y.Clamp(0, 6)
	}
	return y
}

func (c *conv2d) free() {
	c.w.Free()
	if c.b != nil {
		c.b.Free()
	}
}

// weightSet hands out named TensorFlow.js weights, converted to torch
// tensors, and remembers the first error.
type weightSet struct {
	model string
	m     map[string]tfWeight
	err   error
	made  []*torch.Tensor
}

func (ws *weightSet) fail(format string, args ...any) {
	if ws.err == nil {
		ws.err = fmt.Errorf("face model %s: %s", ws.model, fmt.Sprintf(format, args...))
	}
}

// get returns the weight `name` checking its shape (-1 matches any size).
func (ws *weightSet) get(name string, shape ...int) tfWeight {
	w, ok := ws.m[name]
	if !ok {
		ws.fail("weight %s missing", name)
		return tfWeight{}
	}
	if len(w.Shape) != len(shape) {
		ws.fail("weight %s has shape %v, want %v", name, w.Shape, shape)
		return tfWeight{}
	}
	for i, d := range shape {
		if d >= 0 && w.Shape[i] != d {
			ws.fail("weight %s has shape %v, want %v", name, w.Shape, shape)
			return tfWeight{}
		}
	}
	return w
}

func (ws *weightSet) tensor(data []float32, shape ...int64) *torch.Tensor {
	t := torch.FromSlice(nil, data, shape...)
	if len(shape) == 4 {
		// Convolution weights in the layout of the channels-last inputs.
		cl := t.ChannelsLast()
		t.Free()
		t = cl
	}
	if err := t.Err(); err != nil && ws.err == nil {
		ws.err = fmt.Errorf("face model %s: %w", ws.model, err)
	}
	ws.made = append(ws.made, t)
	return t
}

// freeAll releases every tensor made (after an error).
func (ws *weightSet) freeAll() {
	for _, t := range ws.made {
		t.Free()
	}
}

// filter converts a TF conv filter [kh, kw, in, out] into torch's
// (out, in, kh, kw), multiplying output channel o by scale[o] when scale is
// not nil.
func (ws *weightSet) filter(name string, scale []float32) (*torch.Tensor, int64, int64) {
	w := ws.get(name, -1, -1, -1, -1)
	if w.Data == nil {
		return nil, 0, 0
	}
	kh, kw, in, out := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	d := make([]float32, len(w.Data))
	for y := 0; y < kh; y++ {
		for x := 0; x < kw; x++ {
			for i := 0; i < in; i++ {
				for o := 0; o < out; o++ {
					v := w.Data[((y*kw+x)*in+i)*out+o]
					if scale != nil {
						v *= scale[o]
					}
					d[((o*in+i)*kh+y)*kw+x] = v
				}
			}
		}
	}
	return ws.tensor(d, int64(out), int64(in), int64(kh), int64(kw)), int64(kh), int64(out)
}

// depthwise converts a TF depthwise filter [kh, kw, C, 1] into torch's
// grouped-convolution weight (C, 1, kh, kw), scaling channel c by scale[c]
// when scale is not nil.
func (ws *weightSet) depthwise(name string, scale []float32) (*torch.Tensor, int64, int64) {
	w := ws.get(name, -1, -1, -1, 1)
	if w.Data == nil {
		return nil, 0, 0
	}
	kh, kw, c := w.Shape[0], w.Shape[1], w.Shape[2]
	d := make([]float32, len(w.Data))
	for y := 0; y < kh; y++ {
		for x := 0; x < kw; x++ {
			for ch := 0; ch < c; ch++ {
				v := w.Data[(y*kw+x)*c+ch]
				if scale != nil {
					v *= scale[ch]
				}
				d[(ch*kh+y)*kw+x] = v
			}
		}
	}
	return ws.tensor(d, int64(c), 1, int64(kh), int64(kw)), int64(kh), int64(c)
}

// vector returns a 1-D weight of length n.
func (ws *weightSet) vector(name string, n int) []float32 {
	w := ws.get(name, n)
	if w.Data == nil {
		return make([]float32, n)
	}
	return w.Data
}
