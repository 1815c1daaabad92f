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
// is cancelled (Ctrl-C) or MaxSteps is reached: then the state is saved
// first and Result.Interrupted is set.
func Run(ctx context.Context, o Options) (Result, error) {
	// One OS thread for the whole run: libtorch's per-thread state (autograd
	// sequence numbers, allocator arenas, OpenMP teams) then stays warm, and
	// steps are reproducible (torch.Pinned).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg := o.Config
	var res Result
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Save == nil {
		return res, errors.New("train: no checkpoint writer")
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return res, fmt.Errorf("train: %w", err)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }

	// Data.
	dopts := data.Options{Every: cfg.Every, Balance: cfg.Balance, Seed: cfg.Seed, Limit: cfg.Limit,
		ImageSize: cfg.Model.ImageSize, Split: "train", Warn: o.Log, Generators: o.Generators}
	if cfg.SSPSL {
		dopts.Region = cfg.Region
	} else {
		dopts.Region = "none"
	}
	trainSet, err := data.Open(o.Train, dopts)
	if err != nil {
		return res, fmt.Errorf("train data: %w", err)
	}
	nr, nf := trainSet.Counts()
	if nr == 0 || nf == 0 {
		return res, fmt.Errorf("train data %s: need both real and fake images, found %d real and %d fake", o.Train, nr, nf)
	}
	if trainSet.Len() < cfg.BatchSize {
		return res, fmt.Errorf("train data %s: %d images, fewer than one batch of %d", o.Train, trainSet.Len(), cfg.BatchSize)
	}
	aug := cfg.Augmentation()
	loader := data.NewLoader(trainSet, data.LoaderOptions{BatchSize: cfg.BatchSize, Workers: cfg.Workers,
		Train: true, Seed: cfg.Seed, DropLast: true, Augment: &aug})
	var valLoader *data.Loader
	if o.Val != "" {
		vopts := dopts
		vopts.Split, vopts.Balance, vopts.Every, vopts.Region = "val", false, 1, "none"
		valSet, err := data.Open(o.Val, vopts)
		if err != nil {
			return res, fmt.Errorf("validation data: %w", err)
		}
		valLoader = data.NewLoader(valSet, data.LoaderOptions{BatchSize: cfg.BatchSize, Workers: cfg.Workers, Seed: cfg.Seed})
	}
	logf("train: %d real + %d fake images (%d skipped), %d batches of %d per epoch, %d epochs",
		nr, nf, trainSet.Skipped(), loader.Len(), cfg.BatchSize, cfg.Epochs)

	// Model and optimiser.
	m, err := model.New(cfg.Model, uint64(cfg.Seed))
	if err != nil {
		return res, err
	}
	defer m.Free()
	if err := m.To(torch.Float32, o.Device); err != nil {
		return res, err
	}
	if o.Device == torch.CPU {
		// oneDNN trains Xception's convolutions faster on NHWC tensors.
		if err := m.UseChannelsLast(); err != nil {
			return res, err
		}
	}
	if cfg.Init != "" && !o.Resume {
		if err := initFrom(m, cfg.Init); err != nil {
			return res, err
		}
	}
	var params []optim.Param
	for _, e := range m.Params() {
		params = append(params, optim.Param{Name: e.Name, T: e.T, Decay: e.Decay})
	}
	adam, err := optim.NewAdam(params, optim.AdamConfig{LR: cfg.LR, Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps, WeightDecay: cfg.WeightDecay})
	if err != nil {
		return res, err
	}
	defer adam.Close()
	st := &Stepper{Model: m, Opt: adam, Config: cfg, Device: o.Device}

	pos := position{BestAUC: math.Inf(-1)}
	statePath := filepath.Join(o.Out, "last.optim.safetensors")
	logPath := filepath.Join(o.Out, "metrics.jsonl")
	if o.Resume {
		if pos, err = loadResume(statePath, m, adam, cfg, o); err != nil {
			return res, err
		}
		if err := trimLog(logPath, pos); err != nil {
			return res, err
		}
		logf("train: resuming at epoch %d, batch %d (step %d)", pos.Epoch+1, pos.Batch, pos.Step)
	} else {
		if _, err := os.Stat(statePath); err == nil {
			return res, fmt.Errorf("train: %s already holds a run; pass --resume to continue it or choose another --out", o.Out)
		}
		if err := os.WriteFile(filepath.Join(o.Out, "config.yaml"), []byte(cfg.YAML()), 0o644); err != nil {
			return res, fmt.Errorf("train: %w", err)
		}
	}
	mlog, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return res, fmt.Errorf("train: %w", err)
	}
	defer mlog.Close()
	logLine := func(v map[string]any) error {
		b, _ := json.Marshal(v)
		_, err := mlog.Write(append(b, '\n'))
		return err
	}
	meta := func(extra map[string]any) map[string]any {
		mm := map[string]any{"epoch": pos.Epoch, "step": pos.Step, "train_data": o.Train, "preset": cfg.Preset}
		for k, v := range extra {
			mm[k] = v
		}
		return mm
	}
	steps := 0
	interrupt := func() (Result, error) {
		if err := o.Save(filepath.Join(o.Out, "last.safetensors"), m, meta(nil)); err != nil {
			return res, err
		}
		logf("train: stopped at epoch %d, batch %d (step %d); state saved in %s — continue with --resume", pos.Epoch+1, pos.Batch, pos.Step, o.Out)
		return Result{Epoch: pos.Epoch, Step: pos.Step, BestAUC: pos.BestAUC, Interrupted: true}, nil
	}

	for pos.Epoch < cfg.Epochs {
		bar := progress.NewTo(o.Log, o.TTY, fmt.Sprintf("epoch %d/%d", pos.Epoch+1, cfg.Epochs), int64(loader.Len()), "batch")
		bar.SetDone(int64(pos.Batch))
		it := loader.Epoch(pos.Epoch, pos.Batch)
		// The epoch's running sums live in the position, so that the epoch
		// summary of a resumed epoch covers the batches before the resume.
		sum := &pos.Run
		t0 := time.Now().Add(-time.Duration(sum.Seconds * float64(time.Second)))
		for {
			if ctx.Err() != nil || (o.MaxSteps > 0 && steps >= o.MaxSteps) {
				it.Close()
				bar.Finish()
				return interrupt()
			}
			b, ok := it.Next()
			if !ok {
				break
			}
			ts := time.Now()
			adam.SetLR(cfg.LRAt(pos.Epoch, pos.Step, loader.Len()))
			s, err := st.Step(b, pos.Epoch)
			if err != nil {
				it.Close()
				return res, fmt.Errorf("epoch %d: %w", pos.Epoch+1, err)
			}
			steps++
			pos.Step++
			pos.Batch = b.Index + 1
			sum.Loss += s.Loss * float64(s.N)
			sum.LossCls += s.LossCls * float64(s.N)
			sum.LossSeg += s.LossSeg * float64(s.N)
			sum.Correct += s.Correct
			sum.N += s.N
			sum.Seconds = time.Since(t0).Seconds()
			ips := float64(s.N) / time.Since(ts).Seconds()
			if err := logLine(map[string]any{"kind": "step", "epoch": pos.Epoch, "step": pos.Step, "batch": b.Index,
				"loss": s.Loss, "loss_cls": s.LossCls, "loss_seg": s.LossSeg, "acc": float64(s.Correct) / float64(s.N),
				"lambda": s.Lambda, "lr": adam.LR(), "images_per_s": ips}); err != nil {
				return res, err
			}
			if pos.Step%cfg.SaveEvery == 0 {
				if err := saveResume(statePath, m, adam, cfg, o, pos); err != nil {
					return res, err
				}
			}
			bar.SetSuffix("loss %.4f acc %.1f%% %.1f img/s", sum.Loss/float64(sum.N), 100*float64(sum.Correct)/float64(sum.N), ips)
			bar.Add(1)
		}
		if err := it.Err(); err != nil {
			return res, fmt.Errorf("epoch %d data: %w", pos.Epoch+1, err)
		}
		bar.Finish()
		ep := map[string]any{"kind": "epoch", "epoch": pos.Epoch, "step": pos.Step, "seconds": time.Since(t0).Seconds()}
		if sum.N > 0 {
			ep["train_loss"], ep["train_acc"] = sum.Loss/float64(sum.N), float64(sum.Correct)/float64(sum.N)
			ep["train_loss_cls"], ep["train_loss_seg"] = sum.LossCls/float64(sum.N), sum.LossSeg/float64(sum.N)
		}
		improved := valLoader == nil
		if valLoader != nil {
			vbar := progress.NewTo(o.Log, o.TTY, "validate", 0, "img")
			recs, err := Evaluate(ctx, m, valLoader, o.Device, vbar)
			vbar.Finish()
			if err != nil {
				if ctx.Err() != nil {
					return interrupt()
				}
				return res, fmt.Errorf("validation: %w", err)
			}
			sm, err := metrics.Compute(recs)
			if err == nil && sm.AUC != nil {
				ep["val_auc"] = *sm.AUC
				if *sm.AUC > pos.BestAUC {
					pos.BestAUC, improved = *sm.AUC, true
				}
			} else if err != nil {
				logf("validation: %v", err)
			}
			if sm.Acc != nil {
				ep["val_acc"] = *sm.Acc
			}
		}
		if err := logLine(ep); err != nil {
			return res, err
		}
		logf("epoch %d: %s", pos.Epoch+1, summarize(ep))
		pos.Epoch++
		pos.Batch = 0
		pos.Run = epochRun{}
		if err := saveResume(statePath, m, adam, cfg, o, pos); err != nil {
			return res, err
		}
		if err := o.Save(filepath.Join(o.Out, "last.safetensors"), m, meta(map[string]any{"metrics": ep})); err != nil {
			return res, err
		}
		if improved {
			if err := o.Save(filepath.Join(o.Out, "best.safetensors"), m, meta(map[string]any{"metrics": ep})); err != nil {
				return res, err
			}
			if err := fsutil.CopyFile(statePath, filepath.Join(o.Out, "best.optim.safetensors"), 0o644); err != nil {
				return res, err
			}
		}
	}
	return Result{Epoch: pos.Epoch, Step: pos.Step, BestAUC: pos.BestAUC}, nil
}

func summarize(ep map[string]any) string {
	var parts []string
	for _, k := range []string{"train_loss", "train_acc", "val_auc", "val_acc", "seconds"} {
		if v, ok := ep[k].(float64); ok {
			parts = append(parts, fmt.Sprintf("%s %.4f", k, v))
		}
	}
	return strings.Join(parts, ", ")
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
