package train

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/dist"
	"github.com/lvnet-go/lvnet/internal/fsutil"
	"github.com/lvnet-go/lvnet/internal/progress"
	"github.com/lvnet-go/lvnet/metrics"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/optim"
	"github.com/lvnet-go/lvnet/torch"
)

// Options describe one training run.
type Options struct {
	Config Config
	Train  string // data spec of the training set (see data.Open)
	Val    string // data spec of the validation set ("" for none)
	Out    string // run directory
	Resume bool   // continue from Out/last.optim.safetensors
	Device torch.Device

	Generators map[string]data.Generator // generated sources (sbi:DIR)
	Log        io.Writer                 // progress and messages (stderr)
	TTY        bool                      // redraw the progress bar in place
	MaxSteps   int                       // stop (as if interrupted) after this many steps in this call; 0: no limit
	Save       SaveFunc                  // writes model checkpoints (last/best)

	// afterStep, when set (tests), runs after every step with its number.
	afterStep func(step int)

	// Dist makes this call one rank of a data-parallel job (nil: one
	// process). Every rank trains on its shard of each epoch with the
	// gradients averaged by c10d's Reducer; rank 0 alone writes the run
	// directory (see distributed.go).
	Dist *dist.Job
}

// SaveFunc writes a model checkpoint with metadata (package checkpoint).
type SaveFunc func(path string, m *model.LVNet, meta map[string]any) error

// Result summarises a finished (or interrupted) run.
type Result struct {
	Epoch, Step int
	BestAUC     float64
	Interrupted bool
}

// Run trains according to o. It returns when all epochs are done, or when ctx
// is cancelled (Ctrl-C) or MaxSteps is reached: then the complete resumable
// state is saved first and Result.Interrupted is set.
func Run(ctx context.Context, o Options) (Result, error) {
	// One OS thread for the whole run: libtorch's per-thread state (autograd
	// sequence numbers, allocator arenas, OpenMP teams) then stays warm, and
	// steps are reproducible (torch.Pinned).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t := &trainer{o: o, cfg: o.Config}
	defer t.close()
	if err := t.setup(); err != nil {
		return Result{}, err
	}
	for t.pos.Epoch < t.cfg.Epochs {
		rec, err := t.runEpoch(ctx)
		if err == nil {
			var improved bool
			if improved, err = t.validate(ctx, &rec); err == nil {
				err = t.endEpoch(rec, improved)
			}
		}
		err = t.explain(err)
		if errors.Is(err, errStopped) {
			return t.interrupt()
		}
		if err != nil {
			return Result{}, err
		}
	}
	return t.result(false), t.finish()
}

// errStopped ends an epoch early: ctx was cancelled or MaxSteps reached.
var errStopped = errors.New("train: stopped")

// trainer is one call of Run: the data, the model and its optimiser, where
// the run stands, and the run directory's files.
type trainer struct {
	o   Options
	cfg Config

	loader    *data.Loader
	valLoader *data.Loader // nil: no validation
	m         *model.LVNet
	adam      *optim.Adam
	stepper   *Stepper

	pos       position
	steps     int  // steps trained in this call (for MaxSteps)
	unsaved   bool // steps trained since the resume state was last written
	statePath string
	mlog      *os.File // metrics.jsonl, appended to
	reducer   *torch.Reducer
}

func (t *trainer) logf(format string, args ...any) { fmt.Fprintf(t.o.Log, format+"\n", args...) }

// setup checks the options, opens the data, builds the model and the
// optimiser, and starts the run directory or resumes the run in it.
func (t *trainer) setup() error {
	if err := t.cfg.Validate(); err != nil {
		return err
	}
	if t.o.Log == nil {
		t.o.Log = os.Stderr
	}
	if !t.writer() {
		t.o.Log = io.Discard // rank 0 reports
	}
	if t.o.Save == nil {
		return errors.New("train: no checkpoint writer")
	}
	if t.writer() {
		if err := os.MkdirAll(t.o.Out, 0o755); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if err := t.openData(); err != nil {
		return err
	}
	if err := t.agree(); err != nil {
		return err
	}
	if err := t.buildModel(); err != nil {
		return err
	}
	if err := t.openRun(); err != nil {
		return t.explain(err)
	}
	return t.explain(t.replicate())
}

// openData opens the training set (and the validation set) and their
// loaders.
func (t *trainer) openData() error {
	cfg, o := t.cfg, t.o
	dopts := data.Options{Every: cfg.Every, Balance: cfg.Balance, Seed: cfg.Seed, Limit: cfg.Limit,
		ImageSize: cfg.Model.ImageSize, Split: "train", Warn: o.Log, Generators: o.Generators}
	if cfg.SSPSL {
		dopts.Region = cfg.Region
	} else {
		dopts.Region = "none"
	}
	trainSet, err := data.Open(o.Train, dopts)
	if err != nil {
		return fmt.Errorf("train data: %w", err)
	}
	nr, nf := trainSet.Counts()
	if nr == 0 || nf == 0 {
		return fmt.Errorf("train data %s: need both real and fake images, found %d real and %d fake", o.Train, nr, nf)
	}
	if trainSet.Len() < cfg.BatchSize {
		return fmt.Errorf("train data %s: %d images, fewer than one batch of %d", o.Train, trainSet.Len(), cfg.BatchSize)
	}
	aug := cfg.Augmentation()
	rank, world := t.rank()
	t.loader = data.NewLoader(trainSet, data.LoaderOptions{BatchSize: cfg.BatchSize, Workers: cfg.Workers,
		Train: true, Seed: cfg.Seed, DropLast: true, Augment: &aug, Rank: rank, World: world})
	if o.Val != "" {
		vopts := dopts
		vopts.Split, vopts.Balance, vopts.Every, vopts.Region = "val", false, 1, "none"
		valSet, err := data.Open(o.Val, vopts)
		if err != nil {
			return fmt.Errorf("validation data: %w", err)
		}
		t.valLoader = data.NewLoader(valSet, data.LoaderOptions{BatchSize: cfg.BatchSize, Workers: cfg.Workers, Seed: cfg.Seed,
			Rank: rank, World: world})
	}
	t.logf("train: %d real + %d fake images (%d skipped), %d batches of %d per epoch, %d epochs",
		nr, nf, trainSet.Skipped(), t.loader.Len(), cfg.BatchSize, cfg.Epochs)
	if world > 1 {
		t.logf("train: data-parallel over %d ranks (%s): %d images per rank and epoch, global batch %d",
			world, t.o.Dist.Group.Backend(), t.loader.Samples(), world*cfg.BatchSize)
	}
	return nil
}

// buildModel makes the model (with its starting weights) on the device,
// and its optimiser.
func (t *trainer) buildModel() error {
	cfg, o := t.cfg, t.o
	m, err := model.New(cfg.Model, uint64(cfg.Seed))
	if err != nil {
		return err
	}
	t.m = m
	if err := m.To(torch.Float32, o.Device); err != nil {
		return err
	}
	if o.Device == torch.CPU {
		// oneDNN trains Xception's convolutions faster on NHWC tensors.
		if err := m.UseChannelsLast(); err != nil {
			return err
		}
	}
	if cfg.Init != "" && !o.Resume && t.writer() { // other ranks receive rank 0's weights
		if err := initFrom(m, cfg.Init); err != nil {
			return err
		}
	}
	var params []optim.Param
	for _, e := range m.Params() {
		params = append(params, optim.Param{Name: e.Name, T: e.T, Decay: e.Decay})
	}
	adam, err := optim.NewAdam(params, optim.AdamConfig{LR: cfg.LR, Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps, WeightDecay: cfg.WeightDecay})
	if err != nil {
		return err
	}
	t.adam = adam
	t.stepper = &Stepper{Model: m, Opt: adam, Config: cfg, Device: o.Device}
	return nil
}

// openRun resumes the run in the run directory (model, optimiser, position;
// metrics.jsonl cut back to the saved state) or starts a new one there, and
// opens metrics.jsonl.
func (t *trainer) openRun() error {
	o := t.o
	t.pos = position{BestAUC: math.Inf(-1)}
	t.statePath = filepath.Join(o.Out, "last.optim.safetensors")
	logPath := filepath.Join(o.Out, "metrics.jsonl")
	if o.Resume {
		statePath, cleanup, err := t.resumeFile()
		if err != nil {
			return err
		}
		defer cleanup()
		pos, err := loadResume(statePath, t.m, t.adam, t.cfg, o)
		if err != nil {
			return err
		}
		t.pos = pos
		if !t.writer() {
			return nil
		}
		if err := trimLog(logPath, pos); err != nil {
			return err
		}
		t.logf("train: resuming at epoch %d, batch %d (step %d)", pos.Epoch+1, pos.Batch, pos.Step)
	} else if t.writer() {
		if _, err := os.Stat(t.statePath); err == nil {
			return fmt.Errorf("train: %s already holds a run; pass --resume to continue it or choose another --out", o.Out)
		}
		if err := fsutil.WriteFile(filepath.Join(o.Out, "config.yaml"), []byte(t.cfg.YAML()), 0o644); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	} else {
		return nil
	}
	mlog, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	t.mlog = mlog
	return nil
}

// close frees what setup made, in reverse order.
func (t *trainer) close() {
	if t.reducer != nil {
		t.reducer.Close()
	}
	if t.mlog != nil {
		t.mlog.Close()
	}
	if t.adam != nil {
		t.adam.Close()
	}
	if t.m != nil {
		t.m.Free()
	}
}

// runEpoch trains the batches of the current epoch from the current
// position, saving the resume state every SaveEvery steps, and returns the
// epoch's summary (without validation). It returns errStopped when ctx is
// cancelled or MaxSteps is reached before the epoch ends.
func (t *trainer) runEpoch(ctx context.Context) (EpochRecord, error) {
	cfg, pos := t.cfg, &t.pos
	bar := progress.NewTo(t.o.Log, t.o.TTY, fmt.Sprintf("epoch %d/%d", pos.Epoch+1, cfg.Epochs), int64(t.loader.Len()), "batch")
	bar.SetDone(int64(pos.Batch))
	it := t.loader.Epoch(pos.Epoch, pos.Batch)
	// The epoch's running sums live in the position, so that the epoch
	// summary of a resumed epoch covers the batches before the resume.
	sum := &pos.Run
	t0 := time.Now().Add(-time.Duration(sum.Seconds * float64(time.Second)))
	for {
		stop, err := t.agreeStop(ctx.Err() != nil || (t.o.MaxSteps > 0 && t.steps >= t.o.MaxSteps))
		if err != nil {
			it.Close()
			return EpochRecord{}, err
		}
		if stop {
			it.Close()
			bar.Finish()
			return EpochRecord{}, errStopped
		}
		b, ok := it.Next()
		if !ok {
			break
		}
		ts := time.Now()
		t.adam.SetLR(cfg.LRAt(pos.Epoch, pos.Step, t.loader.Len()))
		s, err := t.stepper.Step(b, pos.Epoch)
		if err != nil {
			it.Close()
			return EpochRecord{}, fmt.Errorf("epoch %d: %w", pos.Epoch+1, err)
		}
		if s, err = t.reduceStats(s); err != nil {
			it.Close()
			return EpochRecord{}, fmt.Errorf("epoch %d: %w", pos.Epoch+1, err)
		}
		t.steps++
		t.unsaved = true
		pos.Step++
		pos.Batch = b.Index + 1
		sum.Loss += s.Loss * float64(s.N)
		sum.LossCls += s.LossCls * float64(s.N)
		sum.LossSeg += s.LossSeg * float64(s.N)
		sum.Correct += s.Correct
		sum.N += s.N
		sum.Seconds = time.Since(t0).Seconds()
		ips := float64(s.N) / time.Since(ts).Seconds()
		if err := t.record(StepRecord{Kind: KindStep, Epoch: pos.Epoch, Step: pos.Step, Batch: b.Index,
			Loss: s.Loss, LossCls: s.LossCls, LossSeg: s.LossSeg, Acc: float64(s.Correct) / float64(s.N),
			Lambda: s.Lambda, LR: t.adam.LR(), ImagesPerS: ips}); err != nil {
			return EpochRecord{}, err
		}
		if pos.Step%cfg.SaveEvery == 0 {
			if err := t.saveState(); err != nil {
				return EpochRecord{}, err
			}
		}
		if t.o.afterStep != nil {
			t.o.afterStep(pos.Step)
		}
		bar.SetSuffix("loss %.4f acc %.1f%% %.1f img/s", sum.Loss/float64(sum.N), 100*float64(sum.Correct)/float64(sum.N), ips)
		bar.Add(1)
	}
	if err := it.Err(); err != nil {
		return EpochRecord{}, fmt.Errorf("epoch %d data: %w", pos.Epoch+1, err)
	}
	bar.Finish()
	rec := EpochRecord{Kind: KindEpoch, Epoch: pos.Epoch, Step: pos.Step, Seconds: time.Since(t0).Seconds()}
	if n := float64(sum.N); sum.N > 0 {
		rec.TrainLoss, rec.TrainAcc = ptr(sum.Loss/n), ptr(float64(sum.Correct)/n)
		rec.TrainLossCls, rec.TrainLossSeg = ptr(sum.LossCls/n), ptr(sum.LossSeg/n)
	}
	return rec, nil
}

// validate scores the validation set (when there is one) into rec and
// reports whether the model is the best so far (always, without a
// validation set). It returns errStopped when ctx is cancelled meanwhile.
func (t *trainer) validate(ctx context.Context, rec *EpochRecord) (improved bool, err error) {
	if t.valLoader == nil {
		return true, nil
	}
	vbar := progress.NewTo(t.o.Log, t.o.TTY, "validate", 0, "img")
	recs, err := Evaluate(ctx, t.m, t.valLoader, t.o.Device, vbar)
	vbar.Finish()
	if err == nil {
		recs, err = t.gatherRecords(recs)
	}
	if err != nil {
		if ctx.Err() != nil && t.o.Dist == nil {
			return false, errStopped
		}
		return false, fmt.Errorf("validation: %w", err)
	}
	sm, err := metrics.Compute(recs)
	if err == nil && sm.AUC != nil {
		rec.ValAUC = ptr(*sm.AUC)
		if *sm.AUC > t.pos.BestAUC {
			t.pos.BestAUC, improved = *sm.AUC, true
		}
	} else if err != nil {
		t.logf("validation: %v", err)
	}
	if sm.Acc != nil {
		rec.ValAcc = ptr(*sm.Acc)
	}
	return improved, nil
}

// endEpoch logs the epoch's summary, moves to the next epoch and saves:
// the resume state, last.safetensors, and when improved best.safetensors
// with best.optim.safetensors.
func (t *trainer) endEpoch(rec EpochRecord, improved bool) error {
	if err := t.record(rec); err != nil {
		return err
	}
	t.logf("epoch %d: %s", t.pos.Epoch+1, rec.summary())
	t.pos.Epoch++
	t.pos.Batch = 0
	t.pos.Run = epochRun{}
	if !t.writer() {
		return nil
	}
	if err := t.saveState(); err != nil {
		return err
	}
	meta := t.meta(map[string]any{"metrics": rec.Map()})
	if err := t.o.Save(filepath.Join(t.o.Out, "last.safetensors"), t.m, meta); err != nil {
		return err
	}
	if improved {
		if err := t.o.Save(filepath.Join(t.o.Out, "best.safetensors"), t.m, meta); err != nil {
			return err
		}
		if err := fsutil.CopyFile(t.statePath, filepath.Join(t.o.Out, "best.optim.safetensors"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// interrupt saves what a later --resume continues from (the complete
// resume state, whatever SaveEvery, and last.safetensors) and reports the
// run as interrupted.
func (t *trainer) interrupt() (Result, error) {
	if !t.writer() {
		return t.result(true), t.finish()
	}
	if _, err := os.Stat(t.statePath); t.unsaved || err != nil {
		if err := t.saveState(); err != nil {
			return Result{}, err
		}
	}
	if err := t.o.Save(filepath.Join(t.o.Out, "last.safetensors"), t.m, t.meta(nil)); err != nil {
		return Result{}, err
	}
	t.logf("train: stopped at epoch %d, batch %d (step %d); state saved in %s — continue with --resume", t.pos.Epoch+1, t.pos.Batch, t.pos.Step, t.o.Out)
	return t.result(true), t.finish()
}

// saveState writes the resume state of the current position.
func (t *trainer) saveState() error {
	if !t.writer() {
		return nil
	}
	if err := saveResume(t.statePath, t.m, t.adam, t.cfg, t.o, t.pos); err != nil {
		return err
	}
	t.unsaved = false
	return nil
}

// record appends one line to metrics.jsonl.
func (t *trainer) record(v any) error {
	if t.mlog == nil {
		return nil // not rank 0
	}
	b, _ := json.Marshal(v)
	_, err := t.mlog.Write(append(b, '\n'))
	return err
}

// meta is the checkpoint metadata of the current position, with extra.
func (t *trainer) meta(extra map[string]any) map[string]any {
	mm := map[string]any{"epoch": t.pos.Epoch, "step": t.pos.Step, "train_data": t.o.Train, "preset": t.cfg.Preset}
	for k, v := range extra {
		mm[k] = v
	}
	return mm
}

func (t *trainer) result(interrupted bool) Result {
	return Result{Epoch: t.pos.Epoch, Step: t.pos.Step, BestAUC: t.pos.BestAUC, Interrupted: interrupted}
}

// trimLog drops the metrics lines written after the saved state (a crash
// between logging a step and saving it), so a resumed run's log has each
// step once.
func trimLog(path string, pos position) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var keep []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v struct {
			Kind  string `json:"kind"`
			Epoch int    `json:"epoch"`
			Step  int    `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &v) != nil {
			continue // a torn last line
		}
		if (v.Kind == "step" && v.Step <= pos.Step) || (v.Kind == "epoch" && v.Epoch < pos.Epoch) {
			keep = append(keep, sc.Text())
		}
	}
	f.Close()
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	out := strings.Join(keep, "\n")
	if out != "" {
		out += "\n"
	}
	return fsutil.WriteFile(path, []byte(out), 0o644)
}
