package train

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/metrics"
	"github.com/lvnet-go/lvnet/torch"
)

// Data-parallel training, as PyTorch's DistributedDataParallel does it
// (Options.Dist):
//   - every rank opens the same data; the loader gives each its shard of
//     every epoch (DistributedSampler semantics); the batch size is per
//     rank, so the global batch is World x BatchSize, and the learning rate
//     is left as configured (no linear scaling: see docs/SCALING.md);
//   - the ranks check at the start that they run the same configuration and
//     data (hashes through the store);
//   - rank 0's weights and buffers (its checkpoint, or its resume state) are
//     broadcast to all; c10d's Reducer averages the gradients in 25 MiB
//     buckets during the backward pass; the BatchNorm statistics are rank 0's,
//     broadcast before every forward pass (each rank normalises by its own
//     batch, unless SyncBN);
//   - the ranks agree on stopping at every step (Ctrl-C, MaxSteps), so they
//     stop at the same step and rank 0 saves a state they can all resume;
//   - validation is split between the ranks and gathered;
//   - rank 0 alone writes the run directory; a resume sends rank 0's state
//     to the others, so the ranks need no shared disk.

// bucketBytes is DistributedDataParallel's default bucket_cap_mb (25).
const bucketBytes = 25 << 20

// writer reports whether this call writes the run directory (rank 0, or no
// job).
func (t *trainer) writer() bool { return t.o.Dist == nil || t.o.Dist.Rank == 0 }

// rank returns this rank and the world size (0, 1 without a job).
func (t *trainer) rank() (rank, world int) {
	if t.o.Dist == nil {
		return 0, 1
	}
	return t.o.Dist.Rank, t.o.Dist.World
}

// explain names the rank behind a failed collective.
func (t *trainer) explain(err error) error {
	if err == nil || t.o.Dist == nil {
		return err
	}
	return t.o.Dist.Explain(err)
}

// agree checks that every rank runs the same configuration, data specs and
// data (the sample lists as opened).
func (t *trainer) agree() error {
	j := t.o.Dist
	if j == nil {
		return nil
	}
	cfg, _ := json.Marshal(struct {
		Config           Config
		Train, Val, Init string
		Resume           bool
		World            int
	}{t.cfg, t.o.Train, t.o.Val, t.cfg.Init, t.o.Resume, j.World})
	if err := j.Agree("configuration", cfg); err != nil {
		return err
	}
	list := func(ds *data.Dataset) []byte {
		b, _ := json.Marshal(ds.Samples())
		return b
	}
	if err := j.Agree("training data", list(t.loader.Dataset())); err != nil {
		return err
	}
	if t.valLoader != nil {
		return j.Agree("validation data", list(t.valLoader.Dataset()))
	}
	return nil
}

// resumeFile returns the resume state to load: rank 0's own file, which
// rank 0 sends to the other ranks (written to a temporary file there).
func (t *trainer) resumeFile() (path string, cleanup func(), err error) {
	j := t.o.Dist
	if j == nil {
		return t.statePath, func() {}, nil
	}
	var b []byte
	if j.Rank == 0 {
		if b, err = os.ReadFile(t.statePath); err != nil {
			return "", nil, fmt.Errorf("resume: %w", err)
		}
	}
	if b, err = j.BroadcastBytes(b); err != nil {
		return "", nil, fmt.Errorf("resume: receive rank 0's state: %w", err)
	}
	if j.Rank == 0 {
		return t.statePath, func() {}, nil
	}
	f, err := os.CreateTemp("", "lvnet-resume-*.safetensors")
	if err != nil {
		return "", nil, fmt.Errorf("resume: %w", err)
	}
	name := f.Name()
	cleanup = func() { os.Remove(name) }
	if _, err := f.Write(b); err != nil {
		f.Close()
		cleanup()
		return "", nil, fmt.Errorf("resume: %w", err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("resume: %w", err)
	}
	return name, cleanup, nil
}

// replicate makes every rank start from rank 0's model (parameters and
// buffers), attaches the Reducer, and sets up the stepper for data-parallel
// steps.
func (t *trainer) replicate() error {
	j := t.o.Dist
	if j == nil {
		return nil
	}
	var all, params, buffers []*torch.Tensor
	for _, e := range t.m.Store.Entries() {
		all = append(all, e.T)
		if e.T.RequiresGrad() {
			params = append(params, e.T)
		} else {
			buffers = append(buffers, e.T)
		}
	}
	if err := j.Group.Broadcast(0, all...); err != nil {
		return fmt.Errorf("train: broadcast rank 0's model: %w", err)
	}
	// find_unused_parameters: LVNet keeps members of the authors' model that
	// its forward pass never uses (so checkpoints map one to one), and a
	// batch without known masks trains no patch head.
	red, err := torch.NewReducer(j.Group, params, bucketBytes, true)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	t.reducer = red
	t.stepper.Reducer, t.stepper.Group, t.stepper.Buffers, t.stepper.Rank = red, j.Group, buffers, j.Rank
	t.logf("train: gradients all-reduced in %d bucket(s) of up to %d MiB (c10d Reducer)", red.Buckets(), bucketBytes>>20)
	return t.timeAllReduce(params)
}

// timeAllReduce measures, once at the start, how long an all-reduce of one
// step's gradients takes without overlap (the median of 3, after a
// warm-up), and logs it: the communication a step cannot go below when the
// backward pass does not hide it.
func (t *trainer) timeAllReduce(params []*torch.Tensor) error {
	var n int64
	for _, p := range params {
		n += p.Numel()
	}
	s := torch.NewScope()
	defer s.Close()
	buf := torch.Full(s, 0, torch.Float32, t.o.Device, n)
	var times []float64
	for i := 0; i < 4; i++ {
		t0 := time.Now()
		if err := t.o.Dist.Group.AllReduce(true, buf); err != nil {
			return fmt.Errorf("train: time the all-reduce: %w", err)
		}
		if i > 0 {
			times = append(times, time.Since(t0).Seconds())
		}
	}
	sort.Float64s(times)
	t.logf("train: all-reduce of the %.1f MB of gradients: %.1f ms (%s, %d ranks)", float64(4*n)/1e6, 1000*times[len(times)/2],
		t.o.Dist.Group.Backend(), t.o.Dist.World)
	return nil
}

// agreeStop returns whether any rank wants to stop before the next step
// (one all-reduce of a flag), so that all stop at the same step.
func (t *trainer) agreeStop(local bool) (bool, error) {
	j := t.o.Dist
	if j == nil {
		return local, nil
	}
	v := 0.0
	if local {
		v = 1
	}
	s := torch.NewScope()
	defer s.Close()
	flag := torch.Full(s, v, torch.Float32, t.o.Device, 1) // NCCL reduces device tensors
	if err := j.Group.AllReduce(false, flag); err != nil {
		return false, fmt.Errorf("train: step %d: %w", t.pos.Step+1, err)
	}
	f, err := flag.Item()
	return f > 0, err
}

// reduceStats sums a step's statistics over the ranks (losses weighted by
// batch size), so that the logged numbers are the global batch's.
func (t *trainer) reduceStats(st StepStats) (StepStats, error) {
	j := t.o.Dist
	if j == nil {
		return st, nil
	}
	n := float64(st.N)
	s := torch.NewScope()
	defer s.Close()
	v := torch.FromSlice(s, []float64{st.Loss * n, st.LossCls * n, st.LossSeg * n, float64(st.Correct), n}).ToDevice(t.o.Device)
	if err := j.Group.AllReduce(false, v); err != nil {
		return st, err
	}
	g, err := v.ToDevice(torch.CPU).Float64s()
	if err != nil {
		return st, err
	}
	st.Loss, st.LossCls, st.LossSeg = g[0]/g[4], g[1]/g[4], g[2]/g[4]
	st.Correct, st.N = int(g[3]), int(g[4])
	j.Progress(t.pos.Step + 1)
	return st, nil
}

// gatherRecords collects the ranks' validation records (each rank scored
// the samples r, r+World, ...): scores are placed by sample index and summed
// over the ranks; the records are rebuilt from the dataset (path, video,
// label, score; the localisation maps stay on their rank).
func (t *trainer) gatherRecords(mine []metrics.Record) ([]metrics.Record, error) {
	j := t.o.Dist
	if j == nil {
		return mine, nil
	}
	ds := t.valLoader.Dataset()
	n := ds.Len()
	scores := make([]float64, 2*n) // score, present
	for k, r := range mine {
		i := j.Rank + k*j.World
		if i >= n {
			return nil, fmt.Errorf("validation: rank %d scored %d samples, more than its share of %d", j.Rank, len(mine), n)
		}
		scores[i], scores[n+i] = r.PFake, 1
	}
	s := torch.NewScope()
	defer s.Close()
	v := torch.FromSlice(s, scores).ToDevice(t.o.Device)
	if err := j.Group.AllReduce(false, v); err != nil {
		return nil, err
	}
	all, err := v.ToDevice(torch.CPU).Float64s()
	if err != nil {
		return nil, err
	}
	recs := make([]metrics.Record, 0, n)
	for i := 0; i < n; i++ {
		if all[n+i] != 1 {
			return nil, fmt.Errorf("validation: sample %d scored by %v ranks", i, all[n+i])
		}
		smp := ds.Sample(i)
		recs = append(recs, metrics.Record{Input: smp.Path, Video: smp.Video, Label: smp.Label, PFake: all[i]})
	}
	return recs, nil
}

// finish waits for every rank at the end of a run, so that rank 0 keeps the
// store up until all are done.
func (t *trainer) finish() error {
	if t.o.Dist == nil {
		return nil
	}
	if err := t.o.Dist.Group.Barrier(); err != nil {
		return t.explain(fmt.Errorf("train: final barrier: %w", err))
	}
	return nil
}
