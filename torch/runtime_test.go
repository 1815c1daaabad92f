package torch_test

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

func TestAutogradBasics(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f64(t, s, []float64{1, 2, 3}, 3).SetRequiresGrad(true)
	if !x.RequiresGrad() {
		t.Fatal("SetRequiresGrad(true) had no effect")
	}
	if g := x.Grad(); g != nil {
		t.Fatalf("Grad before Backward = %v, want nil", g)
	}
	// d/dx sum(x^2 * 3) = 6x
	y := x.Square().MulScalar(3).Sum(false)
	if !y.RequiresGrad() {
		t.Error("result of ops on a leaf that requires grad does not require grad")
	}
	if err := y.Backward(); err != nil {
		t.Fatal(err)
	}
	expectClose(t, "grad", x.Grad(), []float64{6, 12, 18}, []int64{3}, 1e-12)
	// Gradients accumulate until ZeroGrad.
	if err := x.Sum(false).Backward(); err != nil {
		t.Fatal(err)
	}
	expectClose(t, "accumulated grad", x.Grad(), []float64{7, 13, 19}, nil, 1e-12)
	if err := x.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	if g := x.Grad(); g != nil {
		t.Errorf("Grad after ZeroGrad = %v, want nil", g)
	}
	// BackwardWith: explicit output gradient, graph kept for a second pass.
	z := x.Square() // saves x for backward: a second pass needs the graph kept
	if err := z.BackwardWith(f64(t, s, []float64{1, 0, -1}, 3), true); err != nil {
		t.Fatal(err)
	}
	if err := z.BackwardWith(f64(t, s, []float64{1, 0, -1}, 3), false); err != nil {
		t.Fatal(err)
	}
	expectClose(t, "two passes", x.Grad(), []float64{4, 0, -12}, nil, 1e-12)
	if err := z.BackwardWith(f64(t, s, []float64{1, 0, -1}, 3), false); err == nil {
		t.Error("third backward through a freed graph: no error")
	}
	// Backward of a non-scalar without a gradient is libtorch's error.
	if err := x.MulScalar(2).Backward(); err == nil {
		t.Error("Backward of a 3-element tensor: no error")
	}
	// Detach cuts the graph.
	if x.Detach().MulScalar(2).RequiresGrad() {
		t.Error("detached result requires grad")
	}
	if err := x.SetRequiresGrad(false).Err(); err != nil || x.RequiresGrad() {
		t.Errorf("SetRequiresGrad(false): %v, requires %v", err, x.RequiresGrad())
	}
	// requires_grad on an integer tensor is refused.
	if err := i64(t, s, []int64{1}, 1).SetRequiresGrad(true).Err(); err == nil {
		t.Error("SetRequiresGrad on int64: no error")
	}
}

func TestNoGradAndInferenceMode(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	w := f32(t, s, []float64{1, 2}, 2).SetRequiresGrad(true)
	runtime.LockOSThread() // GradEnabled reads the mode of the current OS thread
	defer runtime.UnlockOSThread()
	if !torch.GradEnabled() {
		t.Fatal("grad mode off at the start")
	}
	var inside *torch.Tensor
	err := torch.NoGrad(func() error {
		if torch.GradEnabled() {
			t.Error("GradEnabled inside NoGrad")
		}
		inside = w.MulScalar(2).Add(w)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside.RequiresGrad() {
		t.Error("result made inside NoGrad requires grad")
	}
	if !torch.GradEnabled() {
		t.Error("grad mode not restored after NoGrad")
	}
	if !w.MulScalar(2).RequiresGrad() {
		t.Error("after NoGrad, results no longer require grad")
	}
	// Nested: the inner restore keeps the outer mode.
	_ = torch.NoGrad(func() error {
		_ = torch.NoGrad(func() error { return nil })
		if torch.GradEnabled() {
			t.Error("inner NoGrad re-enabled grad mode")
		}
		return nil
	})
	// The error from f comes back; the mode is restored on error too.
	sentinel := errors.New("boom")
	if err := torch.NoGrad(func() error { return sentinel }); err != sentinel {
		t.Errorf("NoGrad returned %v, want the function's error", err)
	}
	if !torch.GradEnabled() {
		t.Error("grad mode not restored after an error")
	}

	var inf *torch.Tensor
	err = torch.InferenceMode(func() error {
		if torch.GradEnabled() {
			t.Error("GradEnabled inside InferenceMode")
		}
		inf = w.MulScalar(3).Relu()
		return inf.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if inf.RequiresGrad() {
		t.Error("result made in inference mode requires grad")
	}
	expectClose(t, "inference result", inf, []float64{3, 6}, nil, 0)
	if !torch.GradEnabled() {
		t.Error("grad mode not restored after InferenceMode")
	}
	if !w.MulScalar(2).RequiresGrad() {
		t.Error("after InferenceMode, results no longer require grad")
	}
}

func TestThreads(t *testing.T) {
	want := runtime.NumCPU()
	if v, err := strconv.Atoi(os.Getenv(torch.ThreadsEnv)); err == nil && v > 0 {
		want = v
	}
	if got := torch.Threads(); got != want {
		t.Errorf("default Threads() = %d, want %d (NumCPU or $%s)", got, want, torch.ThreadsEnv)
	}
	defer torch.SetThreads(want)

	// threadsOnManyOSThreads reports Threads() seen from n goroutines that each
	// hold their own OS thread at the same time.
	threadsOnManyOSThreads := func(n int) []int {
		var ready, done sync.WaitGroup
		got := make([]int, n)
		ready.Add(n)
		done.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				defer done.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				ready.Done()
				ready.Wait() // all n goroutines are locked to distinct threads now
				got[i] = torch.Threads()
			}()
		}
		done.Wait()
		return got
	}
	for _, n := range []int{1, 3, want} {
		torch.SetThreads(n)
		for i, got := range threadsOnManyOSThreads(4) {
			if got != n {
				t.Errorf("after SetThreads(%d): OS thread %d sees %d threads", n, i, got)
			}
		}
		if got := torch.Threads(); got != n {
			t.Errorf("after SetThreads(%d): Threads() = %d", n, got)
		}
	}
	torch.SetThreads(0) // clamps to 1
	if got := torch.Threads(); got != 1 {
		t.Errorf("SetThreads(0): Threads() = %d, want 1", got)
	}
	// Ops still compute correctly with one thread on other OS threads.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := torch.NewScope()
			defer s.Close()
			v, err := torch.Ones(s, 64, 64).Matmul(torch.Ones(s, 64, 64)).Sum(false).Item()
			if err == nil && v != 64*64*64 {
				err = errors.New("wrong sum " + strconv.FormatFloat(v, 'g', -1, 64))
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestRuntimeInfoAndMemory(t *testing.T) {
	info, err := torch.RuntimeInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.TorchVersion == "" || info.Threads != torch.Threads() {
		t.Errorf("RuntimeInfo = %+v (Threads() = %d)", info, torch.Threads())
	}
	if rss, peak := torch.RSSMB(), torch.PeakRSSMB(); rss <= 0 || peak < rss {
		t.Errorf("RSSMB %.1f, PeakRSSMB %.1f: want 0 < rss <= peak", rss, peak)
	}
}

// ReleaseFreedMemory empties the caching allocator's free blocks, leaves
// tensors in use intact, and the allocator keeps working afterwards.
func TestReleaseFreedMemory(t *testing.T) {
	torch.KeepFreedMemory()
	keep := torch.Full(nil, 2, torch.Float32, torch.CPU, 1<<20) // 4 MiB, in use throughout
	defer keep.Free()
	for i := 0; i < 3; i++ {
		torch.Full(nil, 1, torch.Float32, torch.CPU, 4<<20).Free() // 16 MiB, freed into the cache
	}
	inUse, cached := torch.CacheStats()
	if cached < 16<<20 || inUse < 4<<20 {
		t.Fatalf("before release: in use %d, cached %d bytes; want >= 4 MiB and >= 16 MiB", inUse, cached)
	}
	torch.ReleaseFreedMemory()
	inUse2, cached2 := torch.CacheStats()
	if cached2 != 0 || inUse2 != inUse {
		t.Errorf("after release: in use %d (was %d), cached %d; want the same in use and 0 cached", inUse2, inUse, cached2)
	}
	if s := keep.Sum(false); s.Err() != nil {
		t.Fatal(s.Err())
	} else if v, _ := s.Item(); v != 2<<20 {
		t.Errorf("tensor in use changed by the release: sum %v, want %v", v, 2<<20)
	}
	x := torch.Full(nil, 3, torch.Float32, torch.CPU, 4<<20)
	defer x.Free()
	if v, err := x.Sum(false).Item(); err != nil || v != 3*(4<<20) {
		t.Errorf("allocation after release: sum %v, %v", v, err)
	}
}
