package prepare

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/progress"
	"github.com/lvnet-go/lvnet/internal/shard"
)

// Layouts of the output (Options.Layout).
const (
	// LayoutIndex writes the crops, masks and index only.
	LayoutIndex = "index"
	// LayoutAuthors also writes the authors' 3-panel frame folders
	// (FaceForensics++ roots only).
	LayoutAuthors = "authors"
)

// Detector finds faces with landmarks in a batch of images, largest first
// in each (*face.Detector is one). It must be safe for concurrent use.
type Detector interface {
	DetectBatch(imgs []*image.RGBA) ([][]face.Face, error)
}

// Options configure Run. Out is required; zero values select the defaults.
type Options struct {
	// Out is the output directory.
	Out string
	// Masks gives the masks of plain inputs: a mask file for a single
	// input file, or a folder of masks with the inputs' relative names
	// (any image or video extension). FaceForensics++ roots bring their
	// own masks.
	Masks string
	// Every keeps every Nth frame of each video (frames 0, N, 2N, ...);
	// 0 or 1 keeps all, as the authors' preprocessing does.
	Every int
	// Frames keeps this many frames spread evenly over each video instead
	// (numpy.linspace(0, frames-1, Frames)); it overrides Every.
	Frames int
	// Size is the side of the square crops (default 299).
	Size int
	// Scale enlarges the face box to the crop square (default 1.3).
	Scale float32
	// Clamp moves the crop square inside the frame where it fits instead
	// of padding with black (see face.CropOptions).
	Clamp bool
	// AllFaces keeps every tracked face (each in its own folder,
	// face<ID>/) instead of only the track of the largest face.
	AllFaces bool
	// MinFace drops detected faces whose box is narrower or shorter than
	// this many pixels (default 0: keep all).
	MinFace float32
	// MaskThreshold binarises mask crops: values above it are forged
	// (default 127).
	MaskThreshold int
	// Layout is LayoutIndex or LayoutAuthors; "" selects LayoutAuthors for
	// a FaceForensics++ root and LayoutIndex otherwise.
	Layout string
	// Label forces the label of plain inputs ("real" or "fake"); "" infers
	// it from a folder named real or fake in each path.
	Label string
	// Methods restricts a FaceForensics++ root to these subsets
	// (Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter,
	// DeepFakeDetection, youtube, actors); nil processes all present.
	Methods []string
	// Compression picks the FaceForensics++ quality folder (default c23).
	Compression string
	// Workers is the number of videos processed at once (default 2).
	Workers int
	// BatchFrames is the number of frames detected in one batch (default
	// 1: batches of 4 were slower on CPU, see BenchmarkPrepare).
	BatchFrames int
	// Detector finds the faces; nil loads a face.Detector from ModelDir
	// (default face.DefaultModelDir()) for the run.
	Detector Detector
	ModelDir string
	// Log receives warnings (default os.Stderr).
	Log io.Writer
	// Progress shows the run; nil draws nothing.
	Progress func(total int64) *progress.Bar
	// Shard restricts the run to the videos and images of one shard
	// (shard.Key of each input's path below the input folder it was
	// found in) and keeps its state apart, so that N runs, one per shard,
	// can write the same Out at once; MergeShards then writes the index
	// (see shards.go). The zero value processes everything.
	Shard shard.Shard
}

func (o Options) withDefaults() Options {
	if o.Size <= 0 {
		o.Size = 299
	}
	if o.Scale <= 0 {
		o.Scale = 1.3
	}
	if o.MaskThreshold <= 0 {
		o.MaskThreshold = 127
	}
	if o.Compression == "" {
		o.Compression = "c23"
	}
	if o.Workers <= 0 {
		o.Workers = min(2, runtime.NumCPU())
	}
	if o.BatchFrames <= 0 {
		o.BatchFrames = 1
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	return o
}

// Stats summarise a run.
type Stats struct {
	// Jobs is the number of videos and images found (in the shard, with
	// Options.Shard; All counts those of every shard); Skipped of them
	// were done by an earlier run, Done by this one.
	Jobs, All, Skipped, Done int
	// Failed counts unreadable or corrupt inputs (warned; frames read
	// before the damage are kept). NoFace counts inputs where no face was
	// found.
	Failed, NoFace int
	// Frames is the number of frames decoded, Crops the face crops
	// written, NoMask the fake frames left out because their mask was
	// empty there.
	Frames, Crops, NoMask int
	// Dropped is the number of index lines of interrupted videos removed
	// on resuming.
	Dropped int
	// Interrupted is set when the context ended the run early.
	Interrupted bool
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
}

// Run processes inputs into o.Out. A single input that is a
// FaceForensics++ root (IsFFPP) is processed whole; otherwise inputs are
// videos, images and folders of them. Done videos of an earlier run are
// skipped. When ctx ends, the videos in progress are abandoned (and redone
// by the next run) and Run returns with Stats.Interrupted set. With
// o.Shard only the shard's videos are processed (see MergeShards).
func Run(ctx context.Context, inputs []string, o Options) (st Stats, err error) {
	start := time.Now()
	o = o.withDefaults()
	if o.Out == "" {
		return st, errors.New("prepare: no output directory")
	}
	if len(inputs) == 0 {
		return st, errors.New("prepare: no inputs")
	}
	if o.Every < 0 || o.Frames < 0 {
		return st, fmt.Errorf("prepare: negative sampling (every %d, frames %d)", o.Every, o.Frames)
	}
	if o.Label != "" && o.Label != "real" && o.Label != "fake" {
		return st, fmt.Errorf("prepare: label %q: want real or fake", o.Label)
	}
	if o.MaskThreshold > 254 {
		return st, fmt.Errorf("prepare: mask threshold %d: want 1-254", o.MaskThreshold)
	}
	ffpp := len(inputs) == 1 && IsFFPP(inputs[0])
	switch o.Layout {
	case "":
		o.Layout = LayoutIndex
		if ffpp {
			o.Layout = LayoutAuthors
		}
	case LayoutIndex:
	case LayoutAuthors:
		if !ffpp {
			return st, fmt.Errorf("prepare: the authors' layout is for a FaceForensics++ root (original_sequences/, manipulated_sequences/); %s is not one", inputs[0])
		}
	default:
		return st, fmt.Errorf("prepare: unknown layout %q (want %s or %s)", o.Layout, LayoutIndex, LayoutAuthors)
	}
	if o.Layout == LayoutAuthors && o.AllFaces {
		return st, errors.New("prepare: the authors' layout holds one face per frame; drop --all-faces or use --layout index")
	}
	if o.Shard.Enabled() && (o.Shard.K < 0 || o.Shard.K >= o.Shard.N) {
		return st, fmt.Errorf("prepare: shard %s: want 0 <= K < N", o.Shard)
	}
	var jobs []job
	if ffpp {
		if o.Masks != "" {
			return st, errors.New("prepare: a FaceForensics++ root brings its own masks; drop --masks")
		}
		jobs, err = ffppJobs(inputs[0], o.Compression, o.Methods, o.Layout == LayoutAuthors)
	} else {
		if len(o.Methods) > 0 {
			return st, errors.New("prepare: --methods selects subsets of a FaceForensics++ root; the inputs are not one")
		}
		jobs, err = plainJobs(inputs, o.Label, o.Masks, o.Out)
	}
	if err != nil {
		return st, err
	}
	st.All = len(jobs)
	if o.Shard.Enabled() {
		var mine []job
		for _, j := range jobs {
			if o.Shard.Has(j.shardKey) {
				mine = append(mine, j)
			}
		}
		jobs = mine
	}
	st.Jobs = len(jobs)

	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return st, fmt.Errorf("prepare: %w", err)
	}
	sf := stateOf(o.Out, o.Shard)
	unlock, err := sf.lockOut(o.Out, o.Shard)
	if err != nil {
		return st, err
	}
	defer unlock()
	tmpRoot := sf.tmp
	if err := os.RemoveAll(tmpRoot); err != nil { // leftovers of an interrupted run
		return st, fmt.Errorf("prepare: %w", err)
	}
	defer os.RemoveAll(tmpRoot)
	done, err := readDone(sf.done)
	if err != nil {
		return st, err
	}
	if _, st.Dropped, err = repairIndex(sf.index, done); err != nil {
		return st, err
	}
	if st.Dropped > 0 {
		fmt.Fprintf(o.Log, "prepare: dropped %d index lines of videos interrupted by an earlier run; they are redone\n", st.Dropped)
	}
	var todo []job
	for _, j := range jobs {
		if done[j.key] {
			st.Skipped++
		} else {
			todo = append(todo, j)
		}
	}
	if o.Shard.Enabled() {
		// The shard's status, at the start and at the end, tells
		// MergeShards that it ran and whether it finished.
		if err := startShard(o.Out, sf, o.Shard, st.Jobs, st.Skipped); err != nil {
			return st, err
		}
		defer func() {
			serr := writeStatus(sf.status, shardStatus{Shard: o.Shard.String(), Jobs: st.Jobs, Done: st.Skipped + st.Done})
			if err == nil {
				err = serr
			}
		}()
		// Its done list exists even when the shard has nothing to do.
		dl, err := openDone(sf.done)
		if err != nil {
			return st, err
		}
		dl.Close()
	}
	if len(todo) == 0 {
		st.Elapsed = time.Since(start)
		return st, nil
	}

	det := o.Detector
	if det == nil {
		dir := o.ModelDir
		if dir == "" {
			dir = face.DefaultModelDir()
		}
		d, err := face.NewDetector(dir, face.Options{})
		if err != nil {
			return st, fmt.Errorf("prepare: %w", err)
		}
		defer d.Close()
		det = d
	}
	idx, err := data.OpenIndexWriter(sf.index)
	if err != nil {
		return st, fmt.Errorf("prepare: %w", err)
	}
	defer idx.Close()
	dlog, err := openDone(sf.done)
	if err != nil {
		return st, err
	}
	defer dlog.Close()

	bar := progress.Quiet()
	if o.Progress != nil {
		bar = o.Progress(int64(len(todo)))
	}
	defer bar.Finish()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobCh := make(chan job)
	resCh := make(chan result)
	var wg sync.WaitGroup
	p := &processor{o: o, det: det, tmpRoot: tmpRoot}
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobCh {
				r, err := p.process(ctx, j)
				if err != nil {
					if ctx.Err() == nil {
						cancel(err)
					}
					return
				}
				resCh <- r // complete results are committed even when interrupted
			}
		}()
	}
	go func() {
		defer close(jobCh)
		for _, j := range todo {
			select {
			case jobCh <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(resCh) }()

	var writeErr error
	for r := range resCh {
		if writeErr != nil {
			continue
		}
		if err := commit(idx, dlog, r); err != nil {
			writeErr = err
			cancel(err)
			continue
		}
		st.Done++
		st.Frames += r.frames
		st.Crops += len(r.entries)
		st.NoMask += r.noMask
		if r.failed != nil {
			st.Failed++
			fmt.Fprintf(o.Log, "prepare: warning: %v\n", r.failed)
		} else if len(r.entries) == 0 && r.frames > 0 && r.noMask == 0 {
			st.NoFace++
		}
		for _, w := range r.warnings {
			fmt.Fprintf(o.Log, "prepare: warning: %s\n", w)
		}
		bar.SetSuffix("%d frames (%.1f/s), %d crops, %d failed", st.Frames, float64(st.Frames)/time.Since(start).Seconds(), st.Crops, st.Failed)
		bar.Add(1)
	}
	st.Elapsed = time.Since(start)
	if writeErr != nil {
		return st, writeErr
	}
	if cause := context.Cause(ctx); cause != nil {
		if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
			st.Interrupted = true
			return st, nil
		}
		return st, cause
	}
	return st, nil
}

// commit appends a finished job's index lines, then marks it done.
func commit(idx *data.IndexWriter, dlog *doneLog, r result) error {
	for _, e := range r.entries {
		if err := idx.Append(e); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	return dlog.mark(r.key)
}
