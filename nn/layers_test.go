package nn_test

import (
	"math"
	"slices"
	"testing"

	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// set copies values into a stored tensor, keeping its shape.
func set(t *testing.T, dst *torch.Tensor, v ...float32) {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	if err := dst.CopyFrom(torch.FromSlice(s, v, dst.Shape()...)); err != nil {
		t.Fatal(err)
	}
}

// near reports whether got and want agree to 1e-5 (relative to 1 + |want|).
func near(got []float32, want []float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
			return false
		}
	}
	return true
}

// values returns x's shape and elements.
func values(t *testing.T, x *torch.Tensor) ([]int64, []float32) {
	t.Helper()
	v, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return x.Shape(), v
}

// nine is a 1 x 1 x 3 x 3 image holding 1..9 row by row.
var nine = []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}

func TestConv2d(t *testing.T) {
	tests := []struct {
		name             string
		in, out, k       int64
		opt              torch.Conv
		bias             bool
		x                []float32
		xShape           []int64
		w, b             []float32
		wantW, wantShape []int64
		want             []float64
	}{
		{"2x2 sums plus bias", 1, 1, 2, torch.Conv{}, true, nine, []int64{1, 1, 3, 3},
			[]float32{1, 1, 1, 1}, []float32{0.5}, []int64{1, 1, 2, 2}, []int64{1, 1, 2, 2},
			[]float64{12.5, 16.5, 24.5, 28.5}},
		{"3x3, padding 1, stride 2", 1, 1, 3, torch.Conv{Stride: torch.Sq(2), Padding: torch.Sq(1)}, false, nine, []int64{1, 1, 3, 3},
			[]float32{1, 1, 1, 1, 1, 1, 1, 1, 1}, nil, []int64{1, 1, 3, 3}, []int64{1, 1, 2, 2},
			[]float64{1 + 2 + 4 + 5, 2 + 3 + 5 + 6, 4 + 5 + 7 + 8, 5 + 6 + 8 + 9}},
		{"weighted taps", 1, 1, 2, torch.Conv{}, false, nine, []int64{1, 1, 3, 3},
			[]float32{1, -1, 2, 0}, nil, []int64{1, 1, 2, 2}, []int64{1, 1, 2, 2},
			[]float64{1 - 2 + 8, 2 - 3 + 10, 4 - 5 + 14, 5 - 6 + 16}},
		{"depthwise 1x1 (groups 2)", 2, 2, 1, torch.Conv{Groups: 2}, true, []float32{1, 2, 3, 4}, []int64{1, 2, 1, 2},
			[]float32{2, 3}, []float32{1, -1}, []int64{2, 1, 1, 1}, []int64{1, 2, 1, 2},
			[]float64{3, 5, 8, 11}},
		{"1x1 mixes channels", 2, 1, 1, torch.Conv{}, false, []float32{1, 2, 3, 4}, []int64{1, 2, 1, 2},
			[]float32{1, 10}, nil, []int64{1, 2, 1, 1}, []int64{1, 1, 1, 2},
			[]float64{31, 42}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := nn.NewStore(1)
			defer st.Free()
			c := nn.NewConv2d(st.Root().Sub("conv"), tc.in, tc.out, tc.k, tc.opt, tc.bias)
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			if got := c.W.Shape(); !slices.Equal(got, tc.wantW) {
				t.Errorf("weight shape %v, want %v", got, tc.wantW)
			}
			if (c.B != nil) != tc.bias || (tc.bias && !slices.Equal(c.B.Shape(), []int64{tc.out})) {
				t.Errorf("bias %v, want one of %d only when asked", c.B.Shape(), tc.out)
			}
			set(t, c.W, tc.w...)
			if tc.bias {
				set(t, c.B, tc.b...)
			}
			s := torch.NewScope()
			defer s.Close()
			shape, got := values(t, c.Forward(torch.FromSlice(s, tc.x, tc.xShape...)))
			if !slices.Equal(shape, tc.wantShape) || !near(got, tc.want) {
				t.Errorf("output %v %v, want %v %v", shape, got, tc.wantShape, tc.want)
			}
		})
	}
}

func TestBatchNorm2d(t *testing.T) {
	const eps = 1e-5
	x := []float32{1, 2, 3, 4, 10, 10, 12, 12} // 1 x 2 x 2 x 2
	tests := []struct {
		name              string
		train             bool
		sync              bool // a second rank with the same batch (doubling every sum)
		w, b, mean, vari  []float32
		want              []float64
		wantMean, wantVar []float64
		wantCount         int64
	}{
		{"eval: running statistics", false, false, []float32{2, 1}, []float32{0.5, 0}, []float32{1, 10}, []float32{4, 1},
			[]float64{0.5, 0.5 + 2/math.Sqrt(4+eps), 0.5 + 4/math.Sqrt(4+eps), 0.5 + 6/math.Sqrt(4+eps), 0, 0, 2 / math.Sqrt(1+eps), 2 / math.Sqrt(1+eps)},
			[]float64{1, 10}, []float64{4, 1}, 0},
		{"train: batch statistics, running ones updated", true, false, []float32{1, 1}, []float32{0, 3}, []float32{0, 0}, []float32{1, 1},
			[]float64{-1.5 / math.Sqrt(1.25+eps), -0.5 / math.Sqrt(1.25+eps), 0.5 / math.Sqrt(1.25+eps), 1.5 / math.Sqrt(1.25+eps),
				3 - 1/math.Sqrt(1+eps), 3 - 1/math.Sqrt(1+eps), 3 + 1/math.Sqrt(1+eps), 3 + 1/math.Sqrt(1+eps)},
			// momentum 0.1; the running variance takes the unbiased batch variance (5/3, 4/3).
			[]float64{0.25, 1.1}, []float64{0.9 + 0.1*5.0/3, 0.9 + 0.1*4.0/3}, 1},
		// SyncBatchNorm over two ranks holding the same batch: the same
		// normalisation, but the unbiased variance counts 8 values (1.25*8/7, 1*8/7).
		{"train, synchronised: global batch statistics", true, true, []float32{1, 1}, []float32{0, 3}, []float32{0, 0}, []float32{1, 1},
			[]float64{-1.5 / math.Sqrt(1.25+eps), -0.5 / math.Sqrt(1.25+eps), 0.5 / math.Sqrt(1.25+eps), 1.5 / math.Sqrt(1.25+eps),
				3 - 1/math.Sqrt(1+eps), 3 - 1/math.Sqrt(1+eps), 3 + 1/math.Sqrt(1+eps), 3 + 1/math.Sqrt(1+eps)},
			[]float64{0.25, 1.1}, []float64{0.9 + 0.1*1.25*8/7, 0.9 + 0.1*8.0/7}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := nn.NewStore(1)
			defer st.Free()
			bn := nn.NewBatchNorm2d(st.Root().Sub("bn"), 2)
			if bn.Momentum != 0.1 || bn.Eps != eps {
				t.Errorf("momentum %v, eps %v; want torch's 0.1, 1e-5", bn.Momentum, bn.Eps)
			}
			set(t, bn.W, tc.w...)
			set(t, bn.B, tc.b...)
			set(t, bn.RunningMean, tc.mean...)
			set(t, bn.RunningVar, tc.vari...)
			s := torch.NewScope()
			defer s.Close()
			ctx := nn.EvalCtx()
			if tc.train {
				ctx = nn.TrainCtx(nil)
			}
			if tc.sync {
				ctx.Sync = twoRanks{}
			}
			shape, got := values(t, bn.Forward(ctx, torch.FromSlice(s, x, 1, 2, 2, 2)))
			if !slices.Equal(shape, []int64{1, 2, 2, 2}) || !near(got, tc.want) {
				t.Errorf("output %v %v, want %v", shape, got, tc.want)
			}
			if _, m := values(t, bn.RunningMean); !near(m, tc.wantMean) {
				t.Errorf("running mean %v, want %v", m, tc.wantMean)
			}
			if _, v := values(t, bn.RunningVar); !near(v, tc.wantVar) {
				t.Errorf("running var %v, want %v", v, tc.wantVar)
			}
			if n, err := bn.NumBatches.Int64s(); err != nil || len(n) != 1 || n[0] != tc.wantCount {
				t.Errorf("num_batches_tracked %v (%v), want %d", n, err, tc.wantCount)
			}
		})
	}
}

func TestLinear(t *testing.T) {
	tests := []struct {
		name      string
		x         []float32
		xShape    []int64
		want      []float64
		wantShape []int64
	}{
		{"one vector", []float32{1, 2}, []int64{2}, []float64{1, 3, 5}, []int64{3}},
		{"a batch", []float32{1, 2, -1, 0}, []int64{2, 2}, []float64{1, 3, 5, -1, 1, 1}, []int64{2, 3}},
		{"last dimension of 3-D", []float32{0, 0, 1, 1}, []int64{2, 1, 2}, []float64{0, 1, 2, 1, 2, 4}, []int64{2, 1, 3}},
	}
	st := nn.NewStore(1)
	defer st.Free()
	l := nn.NewLinear(st.Root().Sub("fc"), 2, 3)
	if !slices.Equal(l.W.Shape(), []int64{3, 2}) || !slices.Equal(l.B.Shape(), []int64{3}) {
		t.Fatalf("weight %v, bias %v; want [3 2], [3]", l.W.Shape(), l.B.Shape())
	}
	set(t, l.W, 1, 0, 0, 1, 1, 1) // rows: x0, x1, x0+x1
	set(t, l.B, 0, 1, 2)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			shape, got := values(t, l.Forward(torch.FromSlice(s, tc.x, tc.xShape...)))
			if !slices.Equal(shape, tc.wantShape) || !near(got, tc.want) {
				t.Errorf("output %v %v, want %v %v", shape, got, tc.wantShape, tc.want)
			}
		})
	}
}

// twoRanks stands in for rank 0 of a process group of two ranks holding
// the same batch: in the table of per-rank rows, rank 1's row equals rank 0's.
type twoRanks struct{}

func (twoRanks) AllReduceSum(x *torch.Tensor) *torch.Tensor {
	row := x.Narrow(0, 0, 1)
	return torch.Cat(0, row, row)
}
func (twoRanks) Rank() int  { return 0 }
func (twoRanks) World() int { return 2 }

type oneRank struct{}

func (oneRank) AllReduceSum(x *torch.Tensor) *torch.Tensor { return x }
func (oneRank) Rank() int                                  { return 0 }
func (oneRank) World() int                                 { return 1 }

// SyncBatchNorm on one rank is BatchNorm: same output and same gradients
// for the input, weight and bias.
func TestSyncBatchNormGradients(t *testing.T) {
	g, err := torch.NewGenerator(3)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s := torch.NewScope()
	defer s.Close()
	x0 := torch.Randn(s, g, 2, 3, 4, 4)
	r := torch.Randn(s, g, 2, 3, 4, 4)
	run := func(sync bool) (y, gx, gw, gb []float32) {
		st := nn.NewStore(1)
		defer st.Free()
		bn := nn.NewBatchNorm2d(st.Root().Sub("bn"), 3)
		set(t, bn.W, 0.5, 1, 2)
		set(t, bn.B, 0.1, 0, -1)
		x := x0.Detach().Clone().SetRequiresGrad(true)
		ctx := nn.TrainCtx(nil)
		if sync {
			ctx.Sync = oneRank{}
		}
		out := bn.Forward(ctx, x)
		if err := out.Mul(r).Sum(false).Backward(); err != nil {
			t.Fatal(err)
		}
		_, y = values(t, out.Detach())
		_, gx = values(t, x.Grad())
		_, gw = values(t, bn.W.Grad())
		_, gb = values(t, bn.B.Grad())
		return
	}
	y1, gx1, gw1, gb1 := run(false)
	y2, gx2, gw2, gb2 := run(true)
	for _, c := range []struct {
		name string
		a, b []float32
	}{{"output", y1, y2}, {"input grad", gx1, gx2}, {"weight grad", gw1, gw2}, {"bias grad", gb1, gb2}} {
		want := make([]float64, len(c.a))
		for i, v := range c.a {
			want[i] = float64(v)
		}
		if !near(c.b, want) {
			t.Errorf("%s: sync %v, plain %v", c.name, c.b, c.a)
		}
	}
}
