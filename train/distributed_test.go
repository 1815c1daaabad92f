package train

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvnet-go/lvnet/dist"
	"github.com/lvnet-go/lvnet/weights"
)

// ddpConfig is tinyConfig with every draw that differs between one process
// and two ranks switched off (dropout, mixup); augmentation stays on (each
// sample's draws depend on the sample, not on the rank). The optimiser is
// set where training is not chaotic: this tiny LVNet (batch 4 at 64 px)
// amplifies rounding differences quickly, so that at lr 2e-3 one process on
// 2 threads ends 4 steps 5e-4 away (relative) from the same process on 1
// thread; at lr 2e-4 with Adam's eps 1e-3 (which keeps the parameters whose
// true gradient is zero, such as a bias before a BatchNorm, from taking
// full-size steps of random sign on rounding noise) that spread is 2.4e-6,
// and two ranks against one process measured 4.5e-7.
func ddpConfig() Config {
	c := tinyConfig()
	c.Model.Dropout = 0
	c.Mixup = false
	c.Epochs = 1
	c.LR = 2e-4
	c.Eps = 1e-3
	return c
}

// ddpJob is one rank's work in TestDDPWorker: the options are passed as JSON
// in the environment.
type ddpJob struct {
	Data, Val, Out string
	Config    Config
	MaxSteps  int
	Resume    bool
	Timeout   time.Duration // the job's collective timeout (default 60 s)
	// Fault, for rank 1: "die" exits after step FaultStep, "hang" blocks
	// there forever.
	Fault     string
	FaultStep int
}

// rankRun is how one rank ended.
type rankRun struct {
	out  string
	err  error
	took time.Duration
}

// startRanks runs job on world ranks (child processes on loopback, one
// thread each; world 1: one plain process), rank r with job.Config changed
// by tweak (nil: none), and returns how each ended. Ranks still running
// when rank 0 has ended are killed after grace.
func startRanks(t *testing.T, world int, job ddpJob, tweak func(r int, c *Config), grace time.Duration) []rankRun {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	runs := make([]rankRun, world)
	cmds := make([]*exec.Cmd, world)
	bufs := make([]*bytes.Buffer, world)
	done := make([]chan struct{}, world)
	start := time.Now()
	for r := 0; r < world; r++ {
		jr := job
		if tweak != nil {
			tweak(r, &jr.Config)
		}
		if r != 1 {
			jr.Fault = ""
		}
		spec, _ := json.Marshal(jr)
		c := exec.Command(os.Args[0], "-test.run=^TestDDPWorker$")
		c.Env = append(os.Environ(), "LVNET_DDP_JOB="+string(spec), "LVNET_THREADS=1", "RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(world), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
		bufs[r] = &bytes.Buffer{}
		c.Stdout, c.Stderr = bufs[r], bufs[r]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[r], done[r] = c, make(chan struct{})
		go func(r int) {
			runs[r].err = cmds[r].Wait()
			runs[r].took = time.Since(start)
			close(done[r])
		}(r)
	}
	<-done[0]
	for r := 1; r < world; r++ {
		select {
		case <-done[r]:
		case <-time.After(grace):
			cmds[r].Process.Kill()
			<-done[r]
		}
	}
	for r := range runs {
		runs[r].out = bufs[r].String()
	}
	return runs
}

// runDDP is startRanks for runs that must succeed; it returns each rank's
// output.
func runDDP(t *testing.T, world int, job ddpJob) []string {
	t.Helper()
	outs := make([]string, world)
	for r, run := range startRanks(t, world, job, nil, 2*time.Minute) {
		if run.err != nil {
			t.Fatalf("rank %d: %v\n%s", r, run.err, run.out)
		}
		outs[r] = run.out
	}
	return outs
}

// TestDDPWorker is one rank of startRanks (skipped in a normal run).
func TestDDPWorker(t *testing.T) {
	spec := os.Getenv("LVNET_DDP_JOB")
	if spec == "" {
		t.Skip("a rank of the data-parallel tests; run by them")
	}
	var job ddpJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		t.Fatal(err)
	}
	env, err := dist.FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	o := runOpts(job.Data, job.Out, job.Config)
	o.Val, o.MaxSteps, o.Resume = job.Val, job.MaxSteps, job.Resume
	if env.Distributed() { // else the one-process reference, also on one thread
		if job.Timeout == 0 {
			job.Timeout = time.Minute
		}
		j, err := dist.Join(env, dist.Options{Timeout: job.Timeout})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		o.Dist = j
	}
	switch job.Fault {
	case "die":
		o.afterStep = func(step int) {
			if step == job.FaultStep {
				os.Exit(3)
			}
		}
	case "hang":
		o.afterStep = func(step int) {
			if step == job.FaultStep {
				select {}
			}
		}
	}
	o.Log = os.Stderr
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

// relDiff compares two checkpoints: the norm of their difference over the
// norm of b, all tensors together, and the tensor that differs most.
func relDiff(t *testing.T, a, b string) (float64, string) {
	t.Helper()
	wa, _, err := weights.ReadSafetensors(a)
	if err != nil {
		t.Fatal(err)
	}
	wb, _, err := weights.ReadSafetensors(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(wa) != len(wb) {
		t.Fatalf("%s has %d tensors, %s %d", a, len(wa), b, len(wb))
	}
	var num, den, worst float64
	where := ""
	for k, x := range wb {
		y, ok := wa[k]
		if !ok {
			t.Fatalf("%s lacks %s", a, k)
		}
		xs, err1 := x.Float32s()
		ys, err2 := y.Float32s()
		if err1 != nil || err2 != nil || len(xs) != len(ys) {
			t.Fatalf("%s: %v %v, %d vs %d values", k, err1, err2, len(xs), len(ys))
		}
		var d2 float64
		for i := range xs {
			d := float64(xs[i]) - float64(ys[i])
			d2 += d * d
			den += float64(xs[i]) * float64(xs[i])
		}
		num += d2
		if d2 > worst {
			worst, where = d2, k
		}
	}
	return math.Sqrt(num / den), where
}

// Two ranks with batch b each train to the same weights (1e-5 relative) as
// one process with batch 2b: the same samples and augmentations per step
// (DistributedSampler order), gradients averaged by the Reducer, BatchNorm
// statistics over the global batch (SyncBN); also when the two-rank run is
// stopped and resumed, which reproduces the uninterrupted two-rank run bit
// for bit. Without SyncBN each rank normalises by its own batch of 2, and
// the weights differ: the comparison can fail.
func TestDDPMatchesOneProcessWithDoubleBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("trains five times in child processes")
	}
	dir := t.TempDir()
	writeSet(t, dir, 8) // 16 images: 4 steps of 4 (one process) = 4 steps of 2 x 2 (two ranks)
	one := ddpConfig()
	one.BatchSize = 4
	ref := filepath.Join(t.TempDir(), "one")
	runDDP(t, 1, ddpJob{Data: dir, Val: dir, Out: ref, Config: one}) // one epoch: 4 steps, then validation
	last := func(dir string) string { return filepath.Join(dir, "last.safetensors") }
	valAUC := func(dir string) float64 {
		ep := readKind(t, filepath.Join(dir, "metrics.jsonl"), "epoch")
		if len(ep) != 1 || ep[0]["val_auc"] == nil {
			t.Fatalf("%s: %d epoch lines, want 1 with val_auc", dir, len(ep))
		}
		return ep[0]["val_auc"].(float64)
	}

	two := ddpConfig()
	two.BatchSize = 2
	two.SyncBN = true
	whole := filepath.Join(t.TempDir(), "two")
	outs := runDDP(t, 2, ddpJob{Data: dir, Val: dir, Out: whole, Config: two})
	if !strings.Contains(outs[0], "data-parallel over 2 ranks") || !strings.Contains(outs[0], "c10d Reducer") {
		t.Errorf("rank 0's log does not describe the data-parallel run:\n%s", outs[0])
	}
	if rel, k := relDiff(t, last(whole), last(ref)); rel > 1e-5 {
		t.Errorf("two ranks x batch 2 vs one process x batch 4 after 4 steps: %.2g relative (most in %s)", rel, k)
	} else {
		t.Logf("two ranks x batch 2 vs one process x batch 4: %.2g relative", rel)
	}
	// Validation split between the ranks and gathered: the same AUC.
	if a, b := valAUC(whole), valAUC(ref); math.Abs(a-b) > 1e-6 {
		t.Errorf("validation AUC: two ranks %v, one process %v", a, b)
	}

	// Stopped after 2 steps and resumed.
	parts := filepath.Join(t.TempDir(), "parts")
	runDDP(t, 2, ddpJob{Data: dir, Out: parts, Config: two, MaxSteps: 2})
	// A resume needs the world size that saved the state.
	if runs := startRanks(t, 1, ddpJob{Data: dir, Out: parts, Config: two, MaxSteps: 1, Resume: true}, nil, time.Minute); runs[0].err == nil ||
		!strings.Contains(runs[0].out, "was saved by a run of 2 rank(s); resume it with 2") {
		t.Errorf("resuming a 2-rank state on one process should be refused: %v\n%s", runs[0].err, runs[0].out)
	}
	runDDP(t, 2, ddpJob{Data: dir, Val: dir, Out: parts, Config: two, Resume: true})
	if rel, k := relDiff(t, last(parts), last(whole)); rel != 0 {
		t.Errorf("two ranks stopped after 2 steps and resumed vs uninterrupted: %.2g relative (most in %s), want bit-exact", rel, k)
	}

	// Per-replica BatchNorm (DDP's default) is another computation.
	two.SyncBN = false
	local := filepath.Join(t.TempDir(), "local")
	runDDP(t, 2, ddpJob{Data: dir, Out: local, Config: two})
	if rel, _ := relDiff(t, last(local), last(ref)); rel < 1e-4 {
		t.Errorf("per-replica BatchNorm over batches of 2 should differ from batch 4's: %.2g relative", rel)
	} else {
		t.Logf("without SyncBN: %.2g relative", rel)
	}
}

// A rank that dies or hangs makes the other stop within the job's timeout
// with an error naming it; the run resumes from the last saved state. Ranks
// started with different configurations refuse to start.
func TestDDPFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	dir := t.TempDir()
	writeSet(t, dir, 8)
	cfg := ddpConfig()
	cfg.BatchSize = 2
	const timeout = 8 * time.Second
	for _, tc := range []struct {
		fault, want string
		within      time.Duration
	}{
		{"die", "rank 1 died", 40 * time.Second},
		{"hang", "rank 1 stopped responding (hung)", 60 * time.Second},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			runs := startRanks(t, 2, ddpJob{Data: dir, Out: out, Config: cfg, Timeout: timeout, Fault: tc.fault, FaultStep: 2}, nil, 5*time.Second)
			r0 := runs[0]
			if r0.err == nil || !strings.Contains(r0.out, tc.want) {
				t.Fatalf("rank 0 should fail with %q: %v\n%s", tc.want, r0.err, r0.out)
			}
			if r0.took > tc.within {
				t.Errorf("rank 0 took %v to stop (timeout %v)", r0.took, timeout)
			}
			t.Logf("rank 0 stopped after %.1fs: %s", r0.took.Seconds(), lastLine(r0.out, tc.want))
			// The state saved after step 2 is whole, and the run goes on from it.
			outs := runDDP(t, 2, ddpJob{Data: dir, Out: out, Config: cfg, Resume: true})
			if !strings.Contains(outs[0], "resuming at epoch 1, batch 2 (step 2)") {
				t.Errorf("the resumed run should start after step 2:\n%s", outs[0])
			}
		})
	}
	t.Run("mismatch", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		runs := startRanks(t, 2, ddpJob{Data: dir, Out: out, Config: cfg, Timeout: timeout},
			func(r int, c *Config) { c.Seed += int64(r) }, 20*time.Second)
		for r, run := range runs {
			if run.err == nil || !strings.Contains(run.out, "rank(s) 1 run a different configuration than rank 0") {
				t.Errorf("rank %d should refuse to start: %v\n%s", r, run.err, run.out)
			}
		}
	})
}

// lastLine returns the line of out that contains s.
func lastLine(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
