package torch_test

import (
	"math"
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

// refConv2d is a direct (loop) 2-D convolution of x (n,c,h,w) with weight
// (o, c/groups, kh, kw), bias b (o or nil), zero padding.
func refConv2d(x []float64, n, c, h, w int, wt []float64, o, kh, kw int, b []float64, o2 torch.Conv) ([]float64, int, int) {
	sh, sw := int(o2.Stride[0]), int(o2.Stride[1])
	ph, pw := int(o2.Padding[0]), int(o2.Padding[1])
	dh, dw := int(o2.Dilation[0]), int(o2.Dilation[1])
	g := int(o2.Groups)
	oh := (h+2*ph-dh*(kh-1)-1)/sh + 1
	ow := (w+2*pw-dw*(kw-1)-1)/sw + 1
	cin, cout := c/g, o/g
	out := make([]float64, n*o*oh*ow)
	for b0 := 0; b0 < n; b0++ {
		for oc := 0; oc < o; oc++ {
			grp := oc / cout
			for y := 0; y < oh; y++ {
				for xx := 0; xx < ow; xx++ {
					acc := 0.0
					if b != nil {
						acc = b[oc]
					}
					for ic := 0; ic < cin; ic++ {
						ch := grp*cin + ic
						for ky := 0; ky < kh; ky++ {
							for kx := 0; kx < kw; kx++ {
								iy, ix := y*sh-ph+ky*dh, xx*sw-pw+kx*dw
								if iy < 0 || iy >= h || ix < 0 || ix >= w {
									continue
								}
								acc += x[((b0*c+ch)*h+iy)*w+ix] * wt[((oc*cin+ic)*kh+ky)*kw+kx]
							}
						}
					}
					out[((b0*o+oc)*oh+y)*ow+xx] = acc
				}
			}
		}
	}
	return out, oh, ow
}

func TestConv2dHandComputed(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, seq(1, 9), 1, 1, 3, 3) // [[1 2 3] [4 5 6] [7 8 9]]
	w := torch.Ones(s, 1, 1, 2, 2)
	expectClose(t, "2x2 ones", x.Conv2d(w, nil, torch.Conv{}), []float64{12, 16, 24, 28}, []int64{1, 1, 2, 2}, 1e-5)
	// stride 2, padding 1, bias 0.5: windows centred on (0,0) (0,2) (2,0) (2,2)
	// of a 3x3 ones kernel over the zero-padded input.
	w3 := torch.Ones(s, 1, 1, 3, 3)
	b := f32(t, s, []float64{0.5}, 1)
	expectClose(t, "3x3 s2 p1", x.Conv2d(w3, b, torch.Conv{Stride: torch.Sq(2), Padding: torch.Sq(1)}),
		[]float64{12.5, 16.5, 24.5, 28.5}, []int64{1, 1, 2, 2}, 1e-5)
	// depthwise: two channels, kernel [[1 0][0 -1]] and [[0 1][1 0]].
	x2 := f32(t, s, append(seq(1, 9), seq(10, 9)...), 1, 2, 3, 3)
	wd := f32(t, s, []float64{1, 0, 0, -1, 0, 1, 1, 0}, 2, 1, 2, 2)
	expectClose(t, "depthwise", x2.Conv2d(wd, nil, torch.Conv{Groups: 2}),
		[]float64{-4, -4, -4, -4, 11 + 13, 12 + 14, 14 + 16, 15 + 17}, []int64{1, 2, 2, 2}, 1e-5)
}

func TestConv2dReference(t *testing.T) {
	tests := []struct {
		name       string
		n, c, h, w int
		o, kh, kw  int
		bias       bool
		conv       torch.Conv
	}{
		{"plain", 2, 3, 5, 6, 4, 3, 3, true, torch.Conv{}},
		{"stride2 pad1", 1, 2, 7, 7, 3, 3, 3, false, torch.Conv{Stride: torch.Sq(2), Padding: torch.Sq(1)}},
		{"asymmetric", 1, 2, 6, 5, 2, 3, 1, true, torch.Conv{Stride: [2]int64{1, 2}, Padding: [2]int64{1, 0}}},
		{"dilation2", 1, 1, 7, 7, 2, 3, 3, false, torch.Conv{Dilation: torch.Sq(2), Padding: torch.Sq(2)}},
		{"groups2", 2, 4, 5, 5, 6, 3, 3, true, torch.Conv{Groups: 2, Padding: torch.Sq(1)}},
		{"depthwise s2", 1, 4, 6, 6, 4, 3, 3, false, torch.Conv{Groups: 4, Stride: torch.Sq(2), Padding: torch.Sq(1)}},
		{"depthwise x2 multiplier", 1, 3, 5, 5, 6, 3, 3, true, torch.Conv{Groups: 3, Padding: torch.Sq(1)}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			g := int(tc.conv.Groups)
			if g == 0 {
				g = 1
				tc.conv.Groups = 1
			}
			if tc.conv.Stride == [2]int64{} {
				tc.conv.Stride = torch.Sq(1)
			}
			if tc.conv.Dilation == [2]int64{} {
				tc.conv.Dilation = torch.Sq(1)
			}
			xv := randValues(uint64(i+1), tc.n*tc.c*tc.h*tc.w)
			wv := randValues(uint64(100+i), tc.o*(tc.c/g)*tc.kh*tc.kw)
			var bv []float64
			var b *torch.Tensor
			if tc.bias {
				bv = randValues(uint64(200+i), tc.o)
				b = f64(t, s, bv, int64(tc.o))
			}
			x := f64(t, s, xv, int64(tc.n), int64(tc.c), int64(tc.h), int64(tc.w))
			w := f64(t, s, wv, int64(tc.o), int64(tc.c/g), int64(tc.kh), int64(tc.kw))
			want, oh, ow := refConv2d(xv, tc.n, tc.c, tc.h, tc.w, wv, tc.o, tc.kh, tc.kw, bv, tc.conv)
			expectClose(t, tc.name, x.Conv2d(w, b, tc.conv), want, []int64{int64(tc.n), int64(tc.o), int64(oh), int64(ow)}, 1e-10)
		})
	}
}

func TestBatchNorm(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	// N=2, C=2, H=1, W=2. Channel 0 holds 1,2 (n=0) and 3,4 (n=1); channel 1 is constant 10.
	x := f64(t, s, []float64{1, 2, 10, 10, 3, 4, 10, 10}, 2, 2, 1, 2)
	w := f64(t, s, []float64{2, 1}, 2)
	b := f64(t, s, []float64{0.5, -1}, 2)
	rm := torch.Full(s, 0, torch.Float64, torch.CPU, 2)
	rv := torch.Full(s, 1, torch.Float64, torch.CPU, 2)
	const eps = 1e-5
	y := x.BatchNorm(w, b, rm, rv, true, 0.1, eps)
	// channel 0: mean 2.5, biased variance 1.25 (normalisation), unbiased 5/3 (running).
	n0 := func(v float64) float64 { return (v-2.5)/math.Sqrt(1.25+eps)*2 + 0.5 }
	expectClose(t, "train output", y, []float64{n0(1), n0(2), -1, -1, n0(3), n0(4), -1, -1}, []int64{2, 2, 1, 2}, 1e-5)
	expectClose(t, "running mean", rm, []float64{0.1 * 2.5, 0.1 * 10}, nil, 1e-6)
	expectClose(t, "running var", rv, []float64{0.9 + 0.1*5.0/3, 0.9}, nil, 1e-6)

	// A second training step moves the running statistics again.
	x.BatchNorm(w, b, rm, rv, true, 0.1, eps)
	expectClose(t, "running mean step 2", rm, []float64{0.9*0.25 + 0.25, 0.9*1 + 1}, nil, 1e-6)

	// Eval uses the running statistics and leaves them alone.
	ev := x.BatchNorm(w, b, rm, rv, false, 0.1, eps)
	m0, m1 := 0.9*0.25+0.25, 1.9
	v0 := 0.9*(0.9+0.1*5.0/3) + 0.1*5.0/3
	v1 := 0.81
	e0 := func(v float64) float64 { return (v-m0)/math.Sqrt(v0+eps)*2 + 0.5 }
	e1 := (10-m1)/math.Sqrt(v1+eps) - 1
	expectClose(t, "eval output", ev, []float64{e0(1), e0(2), e1, e1, e0(3), e0(4), e1, e1}, nil, 1e-5)
	expectClose(t, "running var unchanged by eval", rv, []float64{v0, v1}, nil, 1e-6)

	// No affine parameters and no running statistics (training only).
	plain := x.BatchNorm(nil, nil, nil, nil, true, 0.1, eps)
	p0 := func(v float64) float64 { return (v - 2.5) / math.Sqrt(1.25+eps) }
	expectClose(t, "no affine", plain, []float64{p0(1), p0(2), 0, 0, p0(3), p0(4), 0, 0}, nil, 1e-5)
}

func TestPooling(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, seq(1, 9), 1, 1, 3, 3)
	neg := x.Neg()
	tests := []struct {
		name  string
		got   *torch.Tensor
		want  []float64
		shape []int64
	}{
		{"max 2 s1", x.MaxPool2d(torch.Sq(2), torch.Sq(1), torch.Sq(0), false), []float64{5, 6, 8, 9}, []int64{1, 1, 2, 2}},
		{"max 3 s2 p1", x.MaxPool2d(torch.Sq(3), torch.Sq(2), torch.Sq(1), false), []float64{5, 6, 8, 9}, []int64{1, 1, 2, 2}},
		// padding is -inf, not 0: all-negative input keeps its own maxima.
		{"max 3 s2 p1 negative", neg.MaxPool2d(torch.Sq(3), torch.Sq(2), torch.Sq(1), false), []float64{-1, -2, -4, -5}, []int64{1, 1, 2, 2}},
		{"max ceil", x.MaxPool2d(torch.Sq(2), torch.Sq(2), torch.Sq(0), true), []float64{5, 6, 8, 9}, []int64{1, 1, 2, 2}},
		{"max floor", x.MaxPool2d(torch.Sq(2), torch.Sq(2), torch.Sq(0), false), []float64{5}, []int64{1, 1, 1, 1}},
		// avg with padding counts the zeros: (1+2+4+5)/9 etc.
		{"avg 3 s2 p1", x.AvgPool2d(torch.Sq(3), torch.Sq(2), torch.Sq(1)), []float64{12.0 / 9, 16.0 / 9, 24.0 / 9, 28.0 / 9}, []int64{1, 1, 2, 2}},
		{"adaptive 1x1", x.AdaptiveAvgPool2d(1, 1), []float64{5}, []int64{1, 1, 1, 1}},
		// bins for 3 -> 2 are [0,2) and [1,3): overlapping windows.
		{"adaptive 2x2", x.AdaptiveAvgPool2d(2, 2), []float64{3, 4, 6, 7}, []int64{1, 1, 2, 2}},
		{"adaptive 3x1", x.AdaptiveAvgPool2d(3, 1), []float64{2, 5, 8}, []int64{1, 1, 3, 1}},
	}
	for _, tc := range tests {
		expectClose(t, tc.name, tc.got, tc.want, tc.shape, 1e-6)
	}
}

func TestPadding(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, []float64{1, 2, 3, 4}, 1, 1, 2, 2)
	expectClose(t, "replication l1 b1", x.ReplicationPad2d(1, 0, 0, 1),
		[]float64{1, 1, 2, 3, 3, 4, 3, 3, 4}, []int64{1, 1, 3, 3}, 0)
	expectClose(t, "replication all 1", x.ReplicationPad2d(1, 1, 1, 1),
		[]float64{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, []int64{1, 1, 4, 4}, 0)
	expectClose(t, "replication r2 t1", x.ReplicationPad2d(0, 2, 1, 0),
		[]float64{1, 2, 2, 2, 1, 2, 2, 2, 3, 4, 4, 4}, []int64{1, 1, 3, 4}, 0)
	expectClose(t, "constant last dim", x.ConstantPad(-1, 1, 0),
		[]float64{-1, 1, 2, -1, 3, 4}, []int64{1, 1, 2, 3}, 0)
	expectClose(t, "constant h and w", x.ConstantPad(0, 0, 1, 1, 0),
		[]float64{0, 0, 0, 1, 2, 0, 3, 4, 0}, []int64{1, 1, 3, 3}, 0)
}

func TestLinearMatmul(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, []float64{1, 2, -1, 0.5}, 2, 2)
	w := f32(t, s, []float64{1, 0, 0, 1, 1, 1}, 3, 2)
	b := f32(t, s, []float64{0.5, 0, -1}, 3)
	expectClose(t, "linear", x.Linear(w, b), []float64{1.5, 2, 2, -0.5, 0.5, -1.5}, []int64{2, 3}, 1e-6)
	expectClose(t, "linear no bias", x.Linear(w, nil), []float64{1, 2, 3, -1, 0.5, -0.5}, []int64{2, 3}, 1e-6)

	a := f32(t, s, seq(1, 6), 2, 3) // [[1 2 3] [4 5 6]]
	m := f32(t, s, seq(1, 6), 3, 2) // [[1 2] [3 4] [5 6]]
	expectClose(t, "matmul", a.Matmul(m), []float64{22, 28, 49, 64}, []int64{2, 2}, 1e-5)
	v := f32(t, s, []float64{1, 0, -1}, 3)
	expectClose(t, "matmul vector", a.Matmul(v), []float64{-2, -2}, []int64{2}, 1e-6)
	// batched: second batch is the identity on the left.
	ab := torch.Stack(0, a.Narrow(0, 0, 2).Narrow(1, 0, 2), f32(t, s, []float64{1, 0, 0, 1}, 2, 2))
	mb := torch.Stack(0, f32(t, s, []float64{1, 1, 0, 1}, 2, 2), f32(t, s, []float64{3, 4, 5, 6}, 2, 2))
	expectClose(t, "bmm", ab.Bmm(mb), []float64{1, 3, 4, 9, 3, 4, 5, 6}, []int64{2, 2, 2}, 1e-6)
	expectClose(t, "matmul batched broadcast", ab.Matmul(f32(t, s, []float64{1, 1}, 2, 1)), []float64{3, 9, 1, 1}, []int64{2, 2, 1}, 1e-6)
}

func TestSoftmax(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, []float64{1, 2, 3, 0, 0, 0}, 2, 3)
	z := math.Exp(1) + math.Exp(2) + math.Exp(3)
	want := []float64{math.Exp(1) / z, math.Exp(2) / z, math.Exp(3) / z, 1.0 / 3, 1.0 / 3, 1.0 / 3}
	expectClose(t, "softmax", x.Softmax(1), want, []int64{2, 3}, 1e-6)
	lw := make([]float64, len(want))
	for i, v := range want {
		lw[i] = math.Log(v)
	}
	expectClose(t, "log_softmax", x.LogSoftmax(-1), lw, []int64{2, 3}, 1e-5)
	// dim 0: columns (1,0), (2,0), (3,0).
	col := func(a float64) float64 { return math.Exp(a) / (math.Exp(a) + 1) }
	expectClose(t, "softmax dim 0", x.Softmax(0), []float64{col(1), col(2), col(3), 1 - col(1), 1 - col(2), 1 - col(3)}, nil, 1e-6)
	// large logits stay finite
	big := f32(t, s, []float64{1000, 1000}, 2)
	expectClose(t, "softmax stable", big.Softmax(0), []float64{0.5, 0.5}, nil, 1e-6)
}

func TestCosineSimilarityNormalize(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := f32(t, s, []float64{1, 0, 1, 1, 3, 4}, 3, 2)
	b := f32(t, s, []float64{0, 1, 2, 2, 4, 3}, 3, 2)
	expectClose(t, "cosine dim 1", torch.CosineSimilarity(a, b, 1, 1e-8), []float64{0, 1, 24.0 / 25}, []int64{3}, 1e-6)
	// dim 0 compares columns: (1,1,3)·(0,2,4) and (0,1,4)·(1,2,3)
	c0 := 14 / (math.Sqrt(11) * math.Sqrt(20))
	c1 := 14 / (math.Sqrt(17) * math.Sqrt(14))
	expectClose(t, "cosine dim 0", torch.CosineSimilarity(a, b, 0, 1e-8), []float64{c0, c1}, []int64{2}, 1e-6)
	// broadcasting (3,2) against (1,2)
	expectClose(t, "cosine broadcast", torch.CosineSimilarity(a, f32(t, s, []float64{1, 0}, 1, 2), 1, 1e-8),
		[]float64{1, 1 / math.Sqrt(2), 0.6}, []int64{3}, 1e-6)
	expectClose(t, "normalize", a.Normalize(2, 1, 1e-12), []float64{1, 0, 1 / math.Sqrt(2), 1 / math.Sqrt(2), 0.6, 0.8}, []int64{3, 2}, 1e-6)
	// a zero row is divided by eps, not by 0.
	expectClose(t, "normalize zero", torch.Zeros(s, 1, 2).Normalize(2, 1, 1e-12), []float64{0, 0}, nil, 0)
}

func TestCrossEntropy(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	logits := f32(t, s, []float64{1, 2, 3, 1, 1, 1, 0, 5, 0}, 3, 3)
	target := i64(t, s, []int64{2, 0, 1}, 3)
	lse := func(v ...float64) float64 {
		z := 0.0
		for _, x := range v {
			z += math.Exp(x)
		}
		return math.Log(z)
	}
	l := []float64{lse(1, 2, 3) - 3, lse(1, 1, 1) - 1, lse(0, 5, 0) - 5}
	cw := []float64{1, 2, 3} // weights of the target classes: 3, 1, 2
	wl := []float64{3 * l[0], 1 * l[1], 2 * l[2]}
	weights := f32(t, s, cw, 3)
	tests := []struct {
		name  string
		got   *torch.Tensor
		want  []float64
		shape []int64
	}{
		{"none", torch.CrossEntropy(logits, target, nil, torch.ReduceNone), l, []int64{3}},
		{"mean", torch.CrossEntropy(logits, target, nil, torch.ReduceMean), []float64{(l[0] + l[1] + l[2]) / 3}, []int64{}},
		{"sum", torch.CrossEntropy(logits, target, nil, torch.ReduceSum), []float64{l[0] + l[1] + l[2]}, []int64{}},
		{"weighted none", torch.CrossEntropy(logits, target, weights, torch.ReduceNone), wl, []int64{3}},
		// weighted mean divides by the sum of the target weights (3+1+2).
		{"weighted mean", torch.CrossEntropy(logits, target, weights, torch.ReduceMean), []float64{(wl[0] + wl[1] + wl[2]) / 6}, []int64{}},
	}
	for _, tc := range tests {
		expectClose(t, tc.name, tc.got, tc.want, tc.shape, 1e-5)
	}
	// Spatial targets: logits (N=1,C=2,H=1,W=2), targets (1,1,2).
	sl := f32(t, s, []float64{0, 2, 1, 0}, 1, 2, 1, 2) // pixel 0: (0,1), pixel 1: (2,0)
	st := i64(t, s, []int64{1, 1}, 1, 1, 2)
	expectClose(t, "spatial none", torch.CrossEntropy(sl, st, nil, torch.ReduceNone),
		[]float64{lse(0, 1) - 1, lse(2, 0) - 0}, []int64{1, 1, 2}, 1e-5)
}

func TestUpsampleBilinear(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, []float64{1, 2, 3, 4}, 1, 1, 2, 2) // the plane 1 + x + 2y on the grid
	// align_corners=true, 2 -> 3: sample points 0, 0.5, 1.
	expectClose(t, "align true 3x3", x.UpsampleBilinear2d(3, 3, true),
		[]float64{1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4}, []int64{1, 1, 3, 3}, 1e-6)
	// align_corners=false, 2 -> 4: source = (dst+0.5)/2 - 0.5 clamped at 0:
	// 0, 0.25, 0.75, 1 (the last clamps to the edge).
	p := []float64{0, 0.25, 0.75, 1}
	var plane, prod []float64
	for _, py := range p {
		for _, px := range p {
			plane = append(plane, 1+px+2*py)
			prod = append(prod, px*py)
		}
	}
	expectClose(t, "align false 4x4", x.UpsampleBilinear2d(4, 4, false), plane, []int64{1, 1, 4, 4}, 1e-6)
	// A non-planar input: [[0 0] [0 1]] interpolates to x*y.
	corner := f32(t, s, []float64{0, 0, 0, 1}, 1, 1, 2, 2)
	expectClose(t, "align false product", corner.UpsampleBilinear2d(4, 4, false), prod, nil, 1e-6)
	// align_corners=true, 2 -> 4: points 0, 1/3, 2/3, 1.
	var thirds []float64
	for y := 0; y < 4; y++ {
		for x := 0; x < 4; x++ {
			thirds = append(thirds, float64(x)/3*float64(y)/3)
		}
	}
	expectClose(t, "align true product", corner.UpsampleBilinear2d(4, 4, true), thirds, nil, 1e-6)
	// Downsampling 4x4 -> 2x2 with align_corners=false samples at 0.5 and 2.5.
	big := f32(t, s, seq(0, 16), 1, 1, 4, 4) // value 4y + x
	expectClose(t, "align false down", big.UpsampleBilinear2d(2, 2, false),
		[]float64{4*0.5 + 0.5, 4*0.5 + 2.5, 4*2.5 + 0.5, 4*2.5 + 2.5}, []int64{1, 1, 2, 2}, 1e-6)
	expectClose(t, "nearest 2 -> 4", x.UpsampleNearest2d(4, 4),
		[]float64{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, []int64{1, 1, 4, 4}, 0)
}

func TestUnfold(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, seq(1, 9), 1, 1, 3, 3)
	// rows are kernel positions (0,0) (0,1) (1,0) (1,1); columns the 4 windows.
	expectClose(t, "k2 s1", x.Unfold(torch.Sq(2), torch.Sq(1), torch.Sq(0), torch.Sq(1)),
		[]float64{1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9}, []int64{1, 4, 4}, 0)
	// k2 s2 p1 on 3x3: 2x2 windows over the zero-padded 5x5 input.
	expectClose(t, "k2 s2 p1", x.Unfold(torch.Sq(2), torch.Sq(1), torch.Sq(1), torch.Sq(2)),
		[]float64{0, 0, 0, 5, 0, 0, 4, 6, 0, 2, 0, 8, 1, 3, 7, 9}, []int64{1, 4, 4}, 0)
	// two channels: channel-major rows.
	x2 := f32(t, s, seq(1, 8), 1, 2, 2, 2)
	expectClose(t, "2 channels k2", x2.Unfold(torch.Sq(2), torch.Sq(1), torch.Sq(0), torch.Sq(1)),
		seq(1, 8), []int64{1, 8, 1}, 0)
}

func TestDropout(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	const n, p = 20000, 0.3
	x := torch.Ones(s, n)
	mask := func(seed uint64) []float64 {
		g, err := torch.NewGenerator(seed)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		return values(t, x.Dropout(p, true, g))
	}
	a := mask(7)
	zeros := 0
	for _, v := range a {
		switch {
		case v == 0:
			zeros++
		case math.Abs(v-1/(1-p)) > 1e-6:
			t.Fatalf("kept value %v, want 1/(1-p) = %v", v, 1/(1-p))
		}
	}
	// binomial sd = sqrt(n p (1-p)) ~ 65: allow 5 sd.
	if frac := float64(zeros) / n; math.Abs(frac-p) > 5*math.Sqrt(p*(1-p)/n) {
		t.Errorf("zero fraction %.4f, want about %.2f", frac, p)
	}
	if closeTo(a, mask(7), 0, 0) >= 0 {
		t.Error("same seed gave different masks")
	}
	if closeTo(a, mask(8), 0, 0) < 0 {
		t.Error("different seeds gave the same mask")
	}
	expectClose(t, "eval identity", f32(t, s, []float64{1, -2, 3}, 3).Dropout(p, false, nil), []float64{1, -2, 3}, nil, 0)
	expectClose(t, "p=0 identity", f32(t, s, []float64{1, -2, 3}, 3).Dropout(0, true, nil), []float64{1, -2, 3}, nil, 0)
	expectClose(t, "p=1 zeros", f32(t, s, []float64{1, -2, 3}, 3).Dropout(1, true, nil), []float64{0, 0, 0}, nil, 0)
}
