// Package bench times LVNet the way the authors' timing script
// (shared/peer/bench_official.py) times their PyTorch code: eval forward at
// batch 1 and 8 and one Adam training step at batch 4 (cross entropy + patch
// cross entropy), 299x299, paper configuration, random weights; median and
// minimum of N runs after a warm-up.
package bench

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/optim"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/train"
)

// Options select what is timed and how.
type Options struct {
	Reps         int          // timed runs per measurement (after one warm-up)
	Threads      int          // intra-op threads (0: keep the current setting)
	Device       torch.Device // where the model runs
	Prepare      bool         // fold BatchNorms for eval (PrepareInference)
	ChannelsLast bool         // NHWC convolutions (eval and training)
	BFloat16     bool         // eval in bfloat16 (weights and activations)
	KeepMemory   bool         // tell glibc to keep freed memory (torch.KeepFreedMemory)
	Skip         []string     // measurements to skip: "eval_b1", "eval_b8", "train_b4"
	Log          io.Writer    // progress lines (nil: none)
}

// Stat is the median and minimum of a measurement, in seconds.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
}

// Result has the keys of the authors' timing script, plus our settings.
type Result struct {
	EvalB1    *Stat   `json:"eval_b1_s,omitempty"`
	EvalB8    *Stat   `json:"eval_b8_s,omitempty"`
	TrainB4   *Stat   `json:"train_b4_s,omitempty"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
	Threads   int     `json:"threads"`
	Reps      int     `json:"reps"`
	Torch     string  `json:"torch"`
	Settings  string  `json:"settings"`
}

func timeit(reps int, f func() error) (*Stat, error) {
	if err := f(); err != nil { // warm-up
		return nil, err
	}
	ts := make([]float64, 0, reps)
	for i := 0; i < reps; i++ {
		t0 := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		ts = append(ts, time.Since(t0).Seconds())
	}
	slices.Sort(ts)
	med := ts[len(ts)/2]
	if len(ts)%2 == 0 {
		med = (ts[len(ts)/2-1] + ts[len(ts)/2]) / 2
	}
	return &Stat{Median: med, Min: ts[0]}, nil
}

// Run performs the measurements.
func Run(o Options) (Result, error) {
	runtime.LockOSThread() // keep libtorch's per-thread state warm, as a training loop does
	defer runtime.UnlockOSThread()
	if o.Reps < 1 {
		o.Reps = 3
	}
	if o.Threads > 0 {
		torch.SetThreads(o.Threads)
	}
	if o.KeepMemory {
		torch.KeepFreedMemory()
	}
	info, _ := torch.RuntimeInfo()
	res := Result{Threads: torch.Threads(), Reps: o.Reps, Torch: info.TorchVersion,
		Settings: fmt.Sprintf("prepare=%v channels_last=%v bf16=%v keep_memory=%v device=%v", o.Prepare, o.ChannelsLast, o.BFloat16, o.KeepMemory, o.Device)}
	skip := func(name string) bool { return slices.Contains(o.Skip, name) }
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	cfg := model.Paper()
	cfg.SSPSL = false
	g, err := torch.NewGenerator(0)
	if err != nil {
		return res, err
	}
	defer g.Close()

	if !skip("eval_b1") || !skip("eval_b8") {
		m, err := model.New(cfg, 0)
		if err != nil {
			return res, err
		}
		dt := torch.Float32
		if o.BFloat16 {
			dt = torch.BFloat16
		}
		if err := m.To(dt, o.Device); err != nil {
			return res, err
		}
		if o.Prepare {
			if err := m.PrepareInference(model.InferenceOptions{ChannelsLast: o.ChannelsLast}); err != nil {
				return res, err
			}
		}
		for _, b := range []int64{1, 8} {
			name := fmt.Sprintf("eval_b%d", b)
			if skip(name) {
				continue
			}
			s := torch.NewScope()
			x := torch.Randn(s, g, b, 3, 299, 299).To(dt, o.Device)
			st, err := timeit(o.Reps, func() error {
				return torch.InferenceMode(func() error {
					sc := torch.NewScope()
					defer sc.Close()
					out := m.Forward(nn.EvalCtx(), x.Alias().In(sc))
					_, err := out.Cls.ToDType(torch.Float32).Float32s() // waits for the result (also on CUDA)
					return err
				})
			})
			s.Close()
			if err != nil {
				m.Free()
				return res, fmt.Errorf("%s: %w", name, err)
			}
			logf("%s: median %.3f s, min %.3f s", name, st.Median, st.Min)
			if b == 1 {
				res.EvalB1 = st
			} else {
				res.EvalB8 = st
			}
		}
		m.Free()
		if o.KeepMemory {
			// The eval buffers are not the training step's: hand them back,
			// so the process peaks at the larger working set, not the sum.
			torch.ReleaseFreedMemory()
		}
	}
	if !skip("train_b4") {
		st, err := trainStep(cfg, o, g)
		if err != nil {
			return res, fmt.Errorf("train_b4: %w", err)
		}
		logf("train_b4: median %.3f s, min %.3f s", st.Median, st.Min)
		res.TrainB4 = st
	}
	res.PeakRSSMB = torch.PeakRSSMB()
	return res, nil
}

// trainStep times one training step at batch 4 as the authors' script: Adam
// (lr 5e-4), cross entropy + patch cross entropy, random masks, labels
// [0,1,0,1], no mixup.
func trainStep(cfg model.Config, o Options, g *torch.Generator) (*Stat, error) {
	m, err := model.New(cfg, 0)
	if err != nil {
		return nil, err
	}
	defer m.Free()
	if err := m.To(torch.Float32, o.Device); err != nil {
		return nil, err
	}
	if o.ChannelsLast && o.Device == torch.CPU {
		if err := m.UseChannelsLast(); err != nil {
			return nil, err
		}
	}
	var params []optim.Param
	for _, e := range m.Params() {
		params = append(params, optim.Param{Name: e.Name, T: e.T, Decay: e.Decay})
	}
	adam, err := optim.NewAdam(params, optim.AdamConfig{LR: 5e-4})
	if err != nil {
		return nil, err
	}
	defer adam.Close()
	tc, _ := train.Preset("paper")
	tc.Model, tc.Mixup = cfg, false
	st := &train.Stepper{Model: m, Opt: adam, Config: tc, Device: o.Device}
	r := rand.New(rand.NewPCG(1, 2))
	const n, S = 4, 299
	b := data.Batch{Images: make([]float32, n*3*S*S), Masks: make([]float32, n*S*S), Labels: []int64{0, 1, 0, 1},
		HasMask: []bool{true, true, true, true}, Size: S}
	for i := range b.Images {
		b.Images[i] = float32(r.NormFloat64())
	}
	for i := range b.Masks {
		if r.Float64() > 0.5 {
			b.Masks[i] = 1
		}
	}
	return timeit(o.Reps, func() error {
		_, err := st.Step(b, 0)
		return err
	})
}
