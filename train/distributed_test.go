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
	"sync"
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
	Data, Out string
	Config    Config
	MaxSteps  int
	Resume    bool
}

// runDDP trains job on world ranks (child processes on loopback, one thread
// each; world 1: one plain process) and returns each rank's output.
func runDDP(t *testing.T, world int, job ddpJob) []string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	spec, _ := json.Marshal(job)
	outs := make([]string, world)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := 0; r < world; r++ {
		c := exec.Command(os.Args[0], "-test.run=^TestDDPWorker$")
		c.Env = append(os.Environ(), "LVNET_DDP_JOB="+string(spec), "LVNET_THREADS=1", "RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(world), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
		var b bytes.Buffer
		c.Stdout, c.Stderr = &b, &b
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			errs[r] = c.Run()
			outs[r] = b.String()
		}(r)
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v\n%s", r, err, outs[r])
		}
	}
	return outs
}

// TestDDPWorker is one rank of runDDP (skipped in a normal run).
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
	o.MaxSteps, o.Resume = job.MaxSteps, job.Resume
	if env.Distributed() { // else the one-process reference, also on one thread
		j, err := dist.Join(env, dist.Options{Timeout: 60 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		o.Dist = j
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
	const steps = 4
	one := ddpConfig()
	one.BatchSize = 4
	ref := filepath.Join(t.TempDir(), "one")
	runDDP(t, 1, ddpJob{Data: dir, Out: ref, Config: one, MaxSteps: steps})
	last := func(dir string) string { return filepath.Join(dir, "last.safetensors") }

	two := ddpConfig()
	two.BatchSize = 2
	two.SyncBN = true
	whole := filepath.Join(t.TempDir(), "two")
	outs := runDDP(t, 2, ddpJob{Data: dir, Out: whole, Config: two, MaxSteps: steps})
	if !strings.Contains(outs[0], "data-parallel over 2 ranks") || !strings.Contains(outs[0], "c10d Reducer") {
		t.Errorf("rank 0's log does not describe the data-parallel run:\n%s", outs[0])
	}
	if rel, k := relDiff(t, last(whole), last(ref)); rel > 1e-5 {
		t.Errorf("two ranks x batch 2 vs one process x batch 4 after %d steps: %.2g relative (most in %s)", steps, rel, k)
	} else {
		t.Logf("two ranks x batch 2 vs one process x batch 4: %.2g relative", rel)
	}
	if _, err := os.Stat(filepath.Join(whole, "metrics.jsonl")); err != nil {
		t.Errorf("rank 0 wrote no metrics: %v", err)
	}

	// Stopped after 2 steps and resumed.
	parts := filepath.Join(t.TempDir(), "parts")
	runDDP(t, 2, ddpJob{Data: dir, Out: parts, Config: two, MaxSteps: 2})
	runDDP(t, 2, ddpJob{Data: dir, Out: parts, Config: two, MaxSteps: steps - 2, Resume: true})
	if rel, k := relDiff(t, last(parts), last(whole)); rel != 0 {
		t.Errorf("two ranks stopped after 2 steps and resumed vs uninterrupted: %.2g relative (most in %s), want bit-exact", rel, k)
	}

	// Per-replica BatchNorm (DDP's default) is another computation.
	two.SyncBN = false
	local := filepath.Join(t.TempDir(), "local")
	runDDP(t, 2, ddpJob{Data: dir, Out: local, Config: two, MaxSteps: steps})
	if rel, _ := relDiff(t, last(local), last(ref)); rel < 1e-4 {
		t.Errorf("per-replica BatchNorm over batches of 2 should differ from batch 4's: %.2g relative", rel)
	} else {
		t.Logf("without SyncBN: %.2g relative", rel)
	}
}
