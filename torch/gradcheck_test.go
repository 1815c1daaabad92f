package torch_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

// gradInput is one differentiable float64 input of a gradcheck.
type gradInput struct {
	data  []float64
	shape []int64
}

// in returns a gradInput of the given shape filled with fixed pseudo-random
// values in [-1, 1).
func in(seed uint64, shape ...int64) gradInput {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return gradInput{data: randValues(seed, int(n)), shape: shape}
}

// gradcheck compares autograd's gradients with central finite differences in
// float64. f maps the inputs (float64 tensors in scope s) to any output; the
// checked scalar is sum(f(inputs) * r) with fixed pseudo-random weights r, so
// that every output element contributes with its own weight. Each input
// element is perturbed by ±h; analytic and numeric gradients must agree within
// atol + rtol*|numeric|.
func gradcheck(t checker, name string, f func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor, inputs ...gradInput) {
	t.Helper()
	const h, atol, rtol = 1e-6, 1e-6, 1e-5
	var r []float64
	// loss evaluates the weighted sum; with grad it also returns the inputs'
	// gradients from Backward.
	loss := func(data [][]float64, withGrad bool) (float64, [][]float64) {
		s := torch.NewScope()
		defer s.Close()
		xs := make([]*torch.Tensor, len(inputs))
		for i, inp := range inputs {
			xs[i] = torch.FromSlice(s, data[i], inp.shape...)
			if withGrad {
				xs[i].SetRequiresGrad(true)
			}
		}
		out := f(s, xs)
		if err := out.Err(); err != nil {
			t.Fatalf("%s: forward: %v", name, err)
		}
		if r == nil {
			r = randValues(999, int(out.Numel()))
		}
		l := out.Mul(torch.FromSlice(s, r, out.Shape()...)).Sum(false)
		v, err := l.Item()
		if err != nil {
			t.Fatalf("%s: loss: %v", name, err)
		}
		if !withGrad {
			return v, nil
		}
		if err := l.Backward(); err != nil {
			t.Fatalf("%s: backward: %v", name, err)
		}
		grads := make([][]float64, len(xs))
		for i, x := range xs {
			g := x.Grad()
			if g == nil { // no path from this input: zero gradient
				grads[i] = make([]float64, len(data[i]))
				continue
			}
			gv, err := g.Float64s()
			if err != nil {
				t.Fatalf("%s: grad: %v", name, err)
			}
			grads[i] = gv
		}
		return v, grads
	}
	data := make([][]float64, len(inputs))
	for i, inp := range inputs {
		data[i] = append([]float64(nil), inp.data...)
	}
	_, analytic := loss(data, true)
	for i := range inputs {
		for j := range data[i] {
			orig := data[i][j]
			var lp, lm float64
			_ = torch.NoGrad(func() error {
				data[i][j] = orig + h
				lp, _ = loss(data, false)
				data[i][j] = orig - h
				lm, _ = loss(data, false)
				return nil
			})
			data[i][j] = orig
			num := (lp - lm) / (2 * h)
			if a := analytic[i][j]; math.Abs(a-num) > atol+rtol*math.Abs(num) {
				t.Errorf("%s: d/d input%d[%d]: autograd %.10g, finite differences %.10g", name, i, j, a, num)
				return
			}
		}
	}
}

func TestGradcheck(t *testing.T) {
	tests := []struct {
		name   string
		f      func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor
		inputs []gradInput
	}{
		{"conv groups=2 stride 2 pad 1 bias", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].Conv2d(x[1], x[2], torch.Conv{Stride: torch.Sq(2), Padding: torch.Sq(1), Groups: 2})
		}, []gradInput{in(1, 2, 4, 5, 5), in(2, 4, 2, 3, 3), in(3, 4)}},
		{"conv depthwise pad 1 dilation 2", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].Conv2d(x[1], nil, torch.Conv{Padding: torch.Sq(1), Dilation: torch.Sq(2), Groups: 3})
		}, []gradInput{in(4, 1, 3, 6, 6), in(5, 3, 1, 3, 3)}},
		{"batch norm train", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].BatchNorm(x[1], x[2], nil, nil, true, 0.1, 1e-5)
		}, []gradInput{in(6, 3, 2, 2, 2), in(7, 2), in(8, 2)}},
		{"batch norm train with running stats", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			rm := torch.Full(s, 0, torch.Float64, torch.CPU, 3)
			rv := torch.Full(s, 1, torch.Float64, torch.CPU, 3)
			return x[0].BatchNorm(x[1], nil, rm, rv, true, 0.1, 1e-5)
		}, []gradInput{in(9, 2, 3, 3, 1), in(10, 3)}},
		{"max pool 3/2 pad 1", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].MaxPool2d(torch.Sq(3), torch.Sq(2), torch.Sq(1), false)
		}, []gradInput{in(11, 1, 2, 5, 5)}},
		{"replication pad", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].ReplicationPad2d(1, 2, 0, 1)
		}, []gradInput{in(12, 1, 2, 3, 3)}},
		{"cosine similarity", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return torch.CosineSimilarity(x[0], x[1], 1, 1e-8)
		}, []gradInput{in(13, 3, 4), in(14, 3, 4)}},
		{"cosine similarity broadcast dim 0", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return torch.CosineSimilarity(x[0], x[1], 0, 1e-8)
		}, []gradInput{in(15, 4, 3), in(16, 4, 1)}},
		{"bmm softmax", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].Bmm(x[1]).MulScalar(2).Softmax(-1)
		}, []gradInput{in(17, 2, 3, 4), in(18, 2, 4, 3)}},
		{"cross entropy weighted mean", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			target := torch.FromSlice(s, []int64{0, 2, 1, 2}, 4)
			weight := torch.FromSlice(s, []float64{0.5, 2, 1}, 3)
			return torch.CrossEntropy(x[0].MulScalar(3), target, weight, torch.ReduceMean)
		}, []gradInput{in(19, 4, 3)}},
		{"cross entropy spatial none", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			target := torch.FromSlice(s, []int64{0, 1, 1, 0, 1, 0}, 1, 2, 3)
			return torch.CrossEntropy(x[0], target, nil, torch.ReduceNone)
		}, []gradInput{in(20, 1, 2, 2, 3)}},
		{"bilinear align corners", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].UpsampleBilinear2d(5, 4, true)
		}, []gradInput{in(21, 1, 2, 3, 3)}},
		{"bilinear half pixel", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].UpsampleBilinear2d(5, 7, false)
		}, []gradInput{in(22, 1, 2, 3, 3)}},
		{"bilinear half pixel down", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].UpsampleBilinear2d(2, 3, false)
		}, []gradInput{in(23, 1, 1, 5, 5)}},
		{"linear", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].Linear(x[1], x[2])
		}, []gradInput{in(24, 3, 4), in(25, 2, 4), in(26, 2)}},
		{"adaptive avg pool", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].AdaptiveAvgPool2d(2, 3)
		}, []gradInput{in(27, 1, 2, 3, 5)}},
		{"unfold", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].Unfold(torch.Sq(2), torch.Sq(1), torch.Sq(1), torch.Sq(2))
		}, []gradInput{in(28, 1, 2, 3, 3)}},
		{"normalize tanh sigmoid", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].Normalize(2, 1, 1e-12).Tanh().Add(x[0].Sigmoid())
		}, []gradInput{in(29, 3, 4)}},
		{"log softmax cat split", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			p := torch.Cat(1, x[0], x[1]).LogSoftmax(1).Split(1, 2, 3)
			return p[0].Sum(false).Add(p[1].Permute(1, 0).Reshape(-1).Mean(false))
		}, []gradInput{in(30, 2, 3), in(31, 2, 2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { gradcheck(t, tc.name, tc.f, tc.inputs...) })
	}
}

// TestGradcheckCatchesWrongGradient makes sure the helper can fail: the
// autograd gradient of x * detach(x) is x, half the true derivative 2x.
func TestGradcheckCatchesWrongGradient(t *testing.T) {
	rec := &recorder{}
	func() {
		defer func() {
			if r := recover(); r != nil && r != rec {
				panic(r)
			}
		}()
		gradcheck(rec, "x*detach(x)", func(s *torch.Scope, x []*torch.Tensor) *torch.Tensor {
			return x[0].Mul(x[0].Detach())
		}, in(40, 3))
	}()
	if len(rec.errs) == 0 {
		t.Error("gradcheck accepted x * detach(x), whose autograd gradient is wrong")
	}
}

// checker is the part of testing.TB that gradcheck uses.
type checker interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// recorder is a checker that records failures (Fatalf panics with the recorder).
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); panic(r) }
