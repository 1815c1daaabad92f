package torch_test

import (
	"fmt"
	"math"
	"runtime"
	"syscall"
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

// The engine benchmarks time two Xception blocks through the Go layer; the
// same blocks written directly against libtorch in C++ (csrc/bench/blocks.cpp)
// give the reference. scripts/bench-engine.sh runs both and prints the Go
// overhead. Keep the two implementations op for op identical.

// bnParams is one BatchNorm2d: affine weight and bias, running statistics.
type bnParams struct{ w, b, rm, rv *torch.Tensor }

// sepConv is Xception's SeparableConv2d: depthwise 3x3 (pad 1) then
// pointwise 1x1, no bias.
type sepConv struct{ dw, pw *torch.Tensor }

// xBlock is Xception's Block: reps x [ReLU, SepConv, BN] (the first ReLU
// dropped when startWithReLU is false), a 3/2/1 max pool when strided, and a
// 1x1 strided conv + BN skip when the shape changes (else identity).
type xBlock struct {
	startWithReLU bool
	convs         []sepConv
	bns           []bnParams
	stride        int64
	skip          *torch.Tensor // nil: identity
	skipBN        bnParams
	params        []*torch.Tensor
	all           []*torch.Tensor
}

func newXBlock(b testing.TB, g *torch.Generator, in, out int64, reps int, stride int64, startWithReLU bool) *xBlock {
	b.Helper()
	x := &xBlock{startWithReLU: startWithReLU, stride: stride}
	param := func(scale float64, shape ...int64) *torch.Tensor {
		r := torch.Randn(nil, g, shape...)
		p := r.MulScalar(scale)
		r.Free()
		x.params = append(x.params, p)
		x.all = append(x.all, p)
		return p
	}
	bn := func(c int64) bnParams {
		p := bnParams{w: torch.Ones(nil, c), b: torch.Zeros(nil, c), rm: torch.Zeros(nil, c), rv: torch.Ones(nil, c)}
		x.params = append(x.params, p.w, p.b)
		x.all = append(x.all, p.w, p.b, p.rm, p.rv)
		return p
	}
	c := in
	for i := 0; i < reps; i++ {
		x.convs = append(x.convs, sepConv{
			dw: param(math.Sqrt(2.0/9), c, 1, 3, 3),
			pw: param(math.Sqrt(2.0/float64(c)), out, c, 1, 1),
		})
		x.bns = append(x.bns, bn(out))
		c = out
	}
	if in != out || stride != 1 {
		x.skip = param(math.Sqrt(2.0/float64(in)), out, in, 1, 1)
		x.skipBN = bn(out)
	}
	for _, p := range x.all {
		if err := p.Err(); err != nil {
			b.Fatal(err)
		}
	}
	return x
}

func (x *xBlock) setTrainable(on bool) {
	for _, p := range x.params {
		p.SetRequiresGrad(on)
	}
}

func (x *xBlock) free() {
	for _, p := range x.all {
		p.Free()
	}
}

func batchNorm(h *torch.Tensor, p bnParams, train bool) *torch.Tensor {
	return h.BatchNorm(p.w, p.b, p.rm, p.rv, train, 0.1, 1e-5)
}

// forward runs the block. With eager, each intermediate handle is freed as
// soon as the next op has consumed it, as C++ drops a reference when it
// reassigns a variable (autograd keeps what it saved for backward); without,
// intermediates live until the caller's scope closes.
func (x *xBlock) forward(inp *torch.Tensor, train, eager bool) *torch.Tensor {
	h := inp
	next := func(y *torch.Tensor) {
		if eager && h != inp {
			h.Free()
		}
		h = y
	}
	for i, c := range x.convs {
		if i > 0 || x.startWithReLU {
			next(h.Relu())
		}
		next(h.Conv2d(c.dw, nil, torch.Conv{Padding: torch.Sq(1), Groups: h.Size(1)}))
		next(h.Conv2d(c.pw, nil, torch.Conv{}))
		next(batchNorm(h, x.bns[i], train))
	}
	if x.stride != 1 {
		next(h.MaxPool2d(torch.Sq(3), torch.Sq(x.stride), torch.Sq(1), false))
	}
	skip := inp
	if x.skip != nil {
		conv := inp.Conv2d(x.skip, nil, torch.Conv{Stride: torch.Sq(x.stride)})
		skip = batchNorm(conv, x.skipBN, train)
		if eager {
			conv.Free()
		}
	}
	out := h.Add(skip)
	if eager {
		if h != inp {
			h.Free()
		}
		if skip != inp {
			skip.Free()
		}
	}
	return out
}

type blockSpec struct {
	name          string
	in, out       int64
	reps          int
	stride        int64
	startWithReLU bool
	hw            int64
}

// entryBlock is Xception's block 1 on a 64x150x150 input.
func entryBlock() blockSpec { return blockSpec{"XceptionEntry", 64, 128, 2, 2, false, 150} }

// middleBlock is one of Xception's middle-flow blocks (728 channels, 19x19).
func middleBlock() blockSpec { return blockSpec{"XceptionMiddle", 728, 728, 3, 1, true, 19} }

func benchBlock(b *testing.B, spec blockSpec) {
	torch.KeepFreedMemory() // as the C++ reference does
	// forward and train mirror the C++ reference: intermediates freed eagerly,
	// the goroutine locked to one OS thread for the whole loop (as libtorch's
	// caller thread in C++). The Go-only variants measure what differs from
	// that: intermediates kept until the step's scope closes (forward-scoped),
	// a goroutine free to move between OS threads (train-unpinned), and one
	// locked during each step only (train-pinned-per-step, torch.Pinned
	// around each step).
	modes := []struct {
		name             string
		train, pinned    bool
		eager, pinnedRun bool
	}{
		{"forward", false, true, true, false},
		{"train", true, true, true, false},
		{"forward-scoped", false, true, false, false},
		{"train-unpinned", true, false, true, false},
		{"train-pinned-per-step", true, false, true, true},
	}
	for _, mode := range modes {
		for _, batch := range []int64{1, 4} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode.name, batch), func(b *testing.B) {
				if mode.pinned {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
				}
				g, err := torch.NewGenerator(1)
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				blk := newXBlock(b, g, spec.in, spec.out, spec.reps, spec.stride, spec.startWithReLU)
				defer blk.free()
				inp := torch.Randn(nil, g, batch, spec.in, spec.hw, spec.hw)
				defer inp.Free()
				train := mode.train
				blk.setTrainable(train)
				iter := func() error {
					s := torch.NewScope()
					defer s.Close()
					if !train {
						return torch.NoGrad(func() error {
							return blk.forward(inp.Alias().In(s), false, mode.eager).Err()
						})
					}
					loss := blk.forward(inp.Alias().In(s), true, mode.eager).Mean(false)
					if err := loss.Backward(); err != nil {
						return err
					}
					for _, p := range blk.params {
						if err := p.ZeroGrad(); err != nil {
							return err
						}
					}
					return nil
				}
				for i := 0; i < 2; i++ { // warm-up, outside the timing, as in C++
					if err := iter(); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				cpu0, flt0 := cpuTime(), minorFaults()
				step := iter
				if mode.pinnedRun {
					step = func() error { return torch.Pinned(iter) }
				}
				for i := 0; i < b.N; i++ {
					if err := step(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(minorFaults()-flt0)/float64(b.N), "faults/op")
			})
		}
	}
}

// BenchmarkXceptionEntry times Block(64, 128, reps 2, stride 2,
// start_with_relu=False) on 64x150x150 inputs: forward in eval mode without
// grad, and a training step (train-mode BN, forward + backward).
func BenchmarkXceptionEntry(b *testing.B) { benchBlock(b, entryBlock()) }

// BenchmarkXceptionMiddle times a middle-flow Block(728, 728, reps 3) at
// 19x19 (identity skip).
func BenchmarkXceptionMiddle(b *testing.B) { benchBlock(b, middleBlock()) }

// TestXBlockShapes checks the benchmark blocks compute what they claim, so
// that the timings are of the right network (small spatial size, fast).
func TestXBlockShapes(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g, err := torch.NewGenerator(1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, spec := range []blockSpec{entryBlock(), middleBlock()} {
		spec.hw = 9
		blk := newXBlock(t, g, spec.in, spec.out, spec.reps, spec.stride, spec.startWithReLU)
		x := torch.Randn(s, g, 2, spec.in, spec.hw, spec.hw)
		y := blk.forward(x, true, true)
		want := []int64{2, spec.out, (spec.hw-1)/spec.stride + 1, (spec.hw-1)/spec.stride + 1}
		if err := y.Err(); err != nil {
			t.Fatalf("%s: %v", spec.name, err)
		}
		if fmt.Sprint(y.Shape()) != fmt.Sprint(want) {
			t.Errorf("%s: output shape %v, want %v", spec.name, y.Shape(), want)
		}
		blk.free()
	}
}

// BenchmarkTinyOp times one elementwise op on a one-element tensor whose
// result joins a scope that is then closed: the Go layer's fixed cost per op
// (cgo call, handle, finalizer, scope) on top of libtorch's own dispatch,
// which csrc/bench/blocks.cpp times alone.
func BenchmarkTinyOp(b *testing.B) {
	x := torch.Ones(nil, 1)
	defer x.Free()
	b.Run("add_scalar", func(b *testing.B) {
		cpu0 := cpuTime()
		for i := 0; i < b.N; i++ {
			s := torch.NewScope()
			x.AddScalar(1).In(s)
			s.Close()
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

// cpuTime returns the CPU time (user + system, all threads) this process has
// used, in nanoseconds. On a shared machine it varies less than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// minorFaults returns the process's minor page faults so far: memory touched
// for the first time (fresh allocations), which a warmed-up step avoids.
func minorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}
