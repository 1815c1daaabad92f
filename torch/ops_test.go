package torch_test

import (
	"math"
	"slices"
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

func TestElementwiseBroadcast(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	col := f32(t, s, []float64{1, 2}, 2, 1)       // (2,1)
	row := f32(t, s, []float64{10, 20, 40}, 1, 3) // (1,3)
	// out[i][j] = op(col[i], row[j])
	outer := func(op func(a, b float64) float64) []float64 {
		var v []float64
		for _, a := range []float64{1, 2} {
			for _, b := range []float64{10, 20, 40} {
				v = append(v, op(a, b))
			}
		}
		return v
	}
	shape := []int64{2, 3}
	tests := []struct {
		name string
		got  *torch.Tensor
		want []float64
	}{
		{"add", col.Add(row), outer(func(a, b float64) float64 { return a + b })},
		{"sub", col.Sub(row), outer(func(a, b float64) float64 { return a - b })},
		{"mul", col.Mul(row), outer(func(a, b float64) float64 { return a * b })},
		{"div", col.Div(row), outer(func(a, b float64) float64 { return a / b })},
		{"pow", row.Pow(col), outer(func(a, b float64) float64 { return math.Pow(b, a) })},
		{"maximum", col.MulScalar(15).Maximum(row), outer(func(a, b float64) float64 { return math.Max(15*a, b) })},
		{"minimum", col.MulScalar(15).Minimum(row), outer(func(a, b float64) float64 { return math.Min(15*a, b) })},
		{"addcmul", col.AddCMul(row, col, 0.5), outer(func(a, b float64) float64 { return a + 0.5*b*a })},
	}
	for _, tc := range tests {
		expectClose(t, tc.name, tc.got, tc.want, shape, 1e-6)
	}

	x := f32(t, s, []float64{-2, -0.5, 0, 0.5, 2}, 5)
	scalar := []struct {
		name string
		got  *torch.Tensor
		f    func(float64) float64
	}{
		{"add scalar", x.AddScalar(1.5), func(v float64) float64 { return v + 1.5 }},
		{"sub scalar", x.SubScalar(1.5), func(v float64) float64 { return v - 1.5 }},
		{"mul scalar", x.MulScalar(-3), func(v float64) float64 { return -3 * v }},
		{"div scalar", x.DivScalar(4), func(v float64) float64 { return v / 4 }},
		{"pow scalar", x.PowScalar(2), func(v float64) float64 { return v * v }},
		{"clamp_min", x.ClampMin(0.25), func(v float64) float64 { return math.Max(v, 0.25) }},
		{"clamp_max", x.ClampMax(0.25), func(v float64) float64 { return math.Min(v, 0.25) }},
		{"clamp", x.Clamp(-1, 1), func(v float64) float64 { return math.Max(-1, math.Min(1, v)) }},
		{"neg", x.Neg(), func(v float64) float64 { return -v }},
		{"abs", x.Abs(), math.Abs},
		{"exp", x.Exp(), math.Exp},
		{"sin", x.Sin(), math.Sin},
		{"cos", x.Cos(), math.Cos},
		{"square", x.Square(), func(v float64) float64 { return v * v }},
		{"sign", x.Sign(), func(v float64) float64 {
			if v == 0 {
				return 0
			}
			return math.Copysign(1, v)
		}},
		{"floor", x.Floor(), math.Floor},
		{"round half even", x.Round(), math.RoundToEven},
		{"relu", x.Relu(), func(v float64) float64 { return math.Max(v, 0) }},
		{"hardtanh", x.Hardtanh(-1, 1), func(v float64) float64 { return math.Max(-1, math.Min(1, v)) }},
		{"tanh", x.Tanh(), math.Tanh},
		{"sigmoid", x.Sigmoid(), func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
	}
	for _, tc := range scalar {
		want := make([]float64, 5)
		for i, v := range []float64{-2, -0.5, 0, 0.5, 2} {
			want[i] = tc.f(v)
		}
		expectClose(t, tc.name, tc.got, want, []int64{5}, 1e-6)
	}

	pos := f32(t, s, []float64{0.25, 1, 4}, 3)
	expectClose(t, "log", pos.Log(), []float64{math.Log(0.25), 0, math.Log(4)}, nil, 1e-6)
	expectClose(t, "sqrt", pos.Sqrt(), []float64{0.5, 1, 2}, nil, 1e-6)
	expectClose(t, "rsqrt", pos.Rsqrt(), []float64{2, 1, 0.5}, nil, 1e-6)
	expectClose(t, "reciprocal", pos.Reciprocal(), []float64{4, 1, 0.25}, nil, 1e-6)
}

func TestComparisonsAndWhere(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := f32(t, s, []float64{1, 2, 3, 4}, 4)
	b := f32(t, s, []float64{4, 2, 1, 4}, 4)
	tests := []struct {
		name string
		got  *torch.Tensor
		want []bool
	}{
		{"eq", a.Eq(b), []bool{false, true, false, true}},
		{"ne", a.Ne(b), []bool{true, false, true, false}},
		{"lt", a.Lt(b), []bool{true, false, false, false}},
		{"le", a.Le(b), []bool{true, true, false, true}},
		{"gt", a.Gt(b), []bool{false, false, true, false}},
		{"ge", a.Ge(b), []bool{false, true, true, true}},
		{"eq scalar", a.EqScalar(2), []bool{false, true, false, false}},
		{"ne scalar", a.NeScalar(2), []bool{true, false, true, true}},
		{"lt scalar", a.LtScalar(3), []bool{true, true, false, false}},
		{"le scalar", a.LeScalar(3), []bool{true, true, true, false}},
		{"gt scalar", a.GtScalar(3), []bool{false, false, false, true}},
		{"ge scalar", a.GeScalar(3), []bool{false, false, true, true}},
		{"and", a.GtScalar(1).LogicalAnd(b.GtScalar(1)), []bool{false, true, false, true}},
		{"or", a.GtScalar(3).LogicalOr(b.GtScalar(3)), []bool{true, false, false, true}},
		{"not", a.GtScalar(2).LogicalNot(), []bool{true, true, false, false}},
		{"broadcast", f32(t, s, []float64{2}, 1).Lt(a), []bool{false, false, true, true}},
	}
	for _, tc := range tests {
		if tc.got.DType() != torch.Bool {
			t.Errorf("%s: dtype %v, want bool", tc.name, tc.got.DType())
		}
		got, err := torch.Data[bool](tc.got)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	// where broadcasts cond (4), a (4) and a scalar-like (1).
	w := torch.Where(a.Lt(b), a, f32(t, s, []float64{-1}, 1))
	expectClose(t, "where", w, []float64{1, -1, -1, -1}, []int64{4}, 0)
	w2 := torch.Where(f32(t, s, []float64{1, 0}, 2, 1).NeScalar(0), a.Reshape(1, 4), b.Reshape(1, 4))
	expectClose(t, "where 2-D broadcast", w2, []float64{1, 2, 3, 4, 4, 2, 1, 4}, []int64{2, 4}, 0)
}

func TestReductions(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, []float64{3, -1, 4, 1, 5, -9}, 2, 3) // [[3 -1 4] [1 5 -9]]
	tests := []struct {
		name  string
		got   *torch.Tensor
		want  []float64
		shape []int64
	}{
		{"sum all", x.Sum(false), []float64{3}, []int64{}},
		{"sum dim 0", x.Sum(false, 0), []float64{4, 4, -5}, []int64{3}},
		{"sum dim 1 keep", x.Sum(true, 1), []float64{6, -3}, []int64{2, 1}},
		{"sum dims 0,1", x.Sum(false, 0, 1), []float64{3}, []int64{}},
		{"mean all", x.Mean(false), []float64{0.5}, []int64{}},
		{"mean dim 1", x.Mean(false, 1), []float64{2, -1}, []int64{2}},
		{"mean dim -1 keep", x.Mean(true, -1), []float64{2, -1}, []int64{2, 1}},
		{"amax all", x.Amax(false), []float64{5}, []int64{}},
		{"amax dim 0", x.Amax(false, 0), []float64{3, 5, 4}, []int64{3}},
		{"amin dim 1", x.Amin(false, 1), []float64{-1, -9}, []int64{2}},
		{"norm 2 all", x.Norm(2, false), []float64{math.Sqrt(9 + 1 + 16 + 1 + 25 + 81)}, []int64{}},
		{"norm 1 dim 1", x.Norm(1, false, 1), []float64{8, 15}, []int64{2}},
	}
	for _, tc := range tests {
		expectClose(t, tc.name, tc.got, tc.want, tc.shape, 1e-5)
	}
	v, i := x.MaxDim(1, false)
	expectClose(t, "max values", v, []float64{4, 5}, []int64{2}, 0)
	idx, err := i.Int64s()
	if err != nil || !slices.Equal(idx, []int64{2, 1}) || i.DType() != torch.Int64 {
		t.Errorf("max indices = %v (%v), %v; want [2 1] int64", idx, i.DType(), err)
	}
	am, err := x.Argmax(0, false).Int64s()
	if err != nil || !slices.Equal(am, []int64{0, 1, 0}) {
		t.Errorf("argmax dim 0 = %v, %v; want [0 1 0]", am, err)
	}
	amk := x.Argmax(1, true)
	if !slices.Equal(amk.Shape(), []int64{2, 1}) {
		t.Errorf("argmax keepdim shape %v, want [2 1]", amk.Shape())
	}
}
