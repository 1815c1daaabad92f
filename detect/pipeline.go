package detect

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// Defaults of Options and PipelineOptions.
const (
	DefaultThreshold = 0.5
	DefaultBatchSize = 8
)

// Kinds of Result.
const (
	KindImage = "image"
	KindVideo = "video"
	KindFace  = "face" // an aligned face crop
)

// Labels of Result and Face.
const (
	LabelReal = "real"
	LabelFake = "fake"
	LabelNone = "none"
)

// ErrNeedsAligned is returned for inputs analysed without Options.Aligned:
// finding faces in whole photos is not part of this pipeline yet.
var ErrNeedsAligned = errors.New("face detection is not available in this pipeline yet: analyse aligned face crops (Options.Aligned, lvnet detect --aligned)")

// InputError is the failure of one input: its name and the reason.
type InputError struct {
	Input string
	Err   error
}

// Error names the input once, followed by the reason.
func (e *InputError) Error() string { return e.Input + ": " + e.Reason() }

// Reason is the error message without the input's name.
func (e *InputError) Reason() string {
	msg := strings.TrimPrefix(e.Err.Error(), e.Input+": ")
	// media's errors start with the file's base name; do not repeat it.
	return strings.TrimPrefix(msg, filepath.Base(e.Input)+": ")
}

// Unwrap returns the reason.
func (e *InputError) Unwrap() error { return e.Err }

// PipelineOptions configure a Pipeline.
type PipelineOptions struct {
	BatchSize int          // faces per forward pass (default 8)
	Workers   int          // goroutines decoding inputs while the model runs (default: CPUs, at most 4)
	Limits    media.Limits // bounds on what decoding an input may cost (zero: media's defaults)
}

// Pipeline scores inputs with an LVNet model. It implements Analyzer and is
// safe for concurrent use (the model is only read).
//
// Each input is treated as an aligned face crop (Options.Aligned) used
// whole: scaled to [0,1], resized bilinearly to the model's input size as
// torch's F.interpolate(mode="bilinear", align_corners=False) does (no
// resize when it already has that size), normalised with mean 0.5 and std
// 0.5, and scored in eval mode. p_fake = 1 - softmax(class logits)[0]; the
// patch map is softmax over the patch logits, channel 1.
type Pipeline struct {
	m    *model.LVNet
	opts PipelineOptions
}

var _ Analyzer = (*Pipeline)(nil)

// NewPipeline returns a pipeline running m. The pipeline does not own m.
func NewPipeline(m *model.LVNet, opts PipelineOptions) (*Pipeline, error) {
	if m == nil {
		return nil, errors.New("new pipeline: nil model")
	}
	if opts.BatchSize < 0 || opts.Workers < 0 {
		return nil, fmt.Errorf("new pipeline: batch size %d and workers %d must not be negative", opts.BatchSize, opts.Workers)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Workers == 0 {
		opts.Workers = min(runtime.GOMAXPROCS(0), 4)
	}
	return &Pipeline{m: m, opts: opts}, nil
}

// Model returns the pipeline's model.
func (p *Pipeline) Model() *model.LVNet { return p.m }

// Analyze analyses one input (see AnalyzeAll). A failure of the input is
// returned as an *InputError.
func (p *Pipeline) Analyze(ctx context.Context, in Input, opts Options) (*Result, error) {
	var res *Result
	var ierr error
	err := p.AnalyzeAll(ctx, []Input{in}, opts, func(_ int, r *Result, err error) { res, ierr = r, err })
	if err != nil {
		return nil, err
	}
	return res, ierr
}

// AnalyzeAll analyses inputs, several per forward pass, decoding the next
// ones in parallel goroutines while the model runs. For every input it calls
// each (from the calling goroutine, in input order) with the result or the
// input's error (an *InputError naming it). The returned error is for what
// stops the whole run: bad options, a model failure, ctx cancellation.
func (p *Pipeline) AnalyzeAll(ctx context.Context, ins []Input, opts Options, each func(i int, r *Result, err error)) error {
	if opts.Threshold == 0 {
		opts.Threshold = DefaultThreshold
	}
	if opts.Threshold < 0 || opts.Threshold > 1 || math.IsNaN(opts.Threshold) {
		return fmt.Errorf("analyze: threshold %v outside [0, 1]", opts.Threshold)
	}
	if each == nil {
		each = func(int, *Result, error) {}
	}
	if !opts.Aligned {
		for i, in := range ins {
			if err := ctx.Err(); err != nil {
				return err
			}
			each(i, nil, &InputError{Input: in.name(), Err: ErrNeedsAligned})
		}
		return nil
	}
	return p.analyzeAligned(ctx, ins, opts, each)
}

// name is how results and errors call an input.
func (in Input) name() string {
	if in.Name != "" {
		return in.Name
	}
	return in.Path
}

// prepared is a decoded input ready for the model.
type prepared struct {
	i    int
	x    *torch.Tensor // 1 x 3 x S x S, normalised, owned (not in a scope)
	w, h int
	err  error
}

// analyzeAligned runs the decode workers and batches their output through
// the model.
func (p *Pipeline) analyzeAligned(ctx context.Context, ins []Input, opts Options, each func(int, *Result, error)) error {
	n := len(ins)
	if n == 0 {
		return nil
	}
	size := p.m.Config.ImageSize
	stop := make(chan struct{})
	jobs := make(chan int)
	out := make(chan prepared, 2*p.opts.BatchSize)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		for i := range ins {
			select {
			case jobs <- i:
			case <-stop:
				return
			}
		}
	}()
	workers := min(p.opts.Workers, n)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				pr := p.prepare(ins[i], size)
				pr.i = i
				select {
				case out <- pr:
				case <-stop:
					pr.x.Free()
					return
				}
			}
		}()
	}
	var batch []prepared
	defer func() {
		close(stop)
		// Free what is still queued, then wait for the workers.
		go func() {
			wg.Wait()
			close(out)
		}()
		for pr := range out {
			pr.x.Free()
		}
		for _, pr := range batch {
			pr.x.Free()
		}
	}()

	// Results are handed to each in input order.
	done := make([]bool, n)
	results := make([]*Result, n)
	errs := make([]error, n)
	next := 0
	release := func() {
		for next < n && done[next] {
			each(next, results[next], errs[next])
			results[next], errs[next] = nil, nil
			next++
		}
	}
	for received := 0; received < n; {
		var pr prepared
		select {
		case <-ctx.Done():
			return ctx.Err()
		case pr = <-out:
		}
		received++
		if pr.err != nil {
			done[pr.i], errs[pr.i] = true, &InputError{Input: ins[pr.i].name(), Err: pr.err}
			release()
		} else {
			batch = append(batch, pr)
		}
		if len(batch) == 0 || (len(batch) < p.opts.BatchSize && received < n) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		scores, err := p.scoreBatch(batch)
		if err != nil {
			return err
		}
		for k, pr := range batch {
			pr.x.Free()
			if !finite(scores[k]) {
				errs[pr.i] = &InputError{Input: ins[pr.i].name(), Err: errors.New("the model's output is not a number (NaN)")}
			} else {
				results[pr.i] = p.result(ins[pr.i], pr, scores[k], opts)
			}
			done[pr.i] = true
		}
		batch = batch[:0]
		release()
	}
	return nil
}

// prepare decodes an input and turns it into the model's input tensor.
func (p *Pipeline) prepare(in Input, size int) prepared {
	img, err := p.decode(in)
	if err != nil {
		return prepared{err: err}
	}
	s := torch.NewScope()
	defer s.Close()
	x := Preprocess(s, img, size)
	if err := x.Err(); err != nil {
		return prepared{err: fmt.Errorf("preprocess: %w", err)}
	}
	b := img.Bounds()
	return prepared{x: x.Keep(), w: b.Dx(), h: b.Dy()}
}

// decode reads an input's image.
func (p *Pipeline) decode(in Input) (*image.RGBA, error) {
	lim := p.opts.Limits
	if in.Data == nil {
		if in.Path == "" {
			return nil, errors.New("input has neither a path nor data")
		}
		return lim.DecodeImage(in.Path)
	}
	maxBytes := lim.MaxBytes
	if maxBytes == 0 {
		maxBytes = media.DefaultLimits().MaxBytes
	}
	r := in.Data
	if maxBytes > 0 {
		r = io.LimitReader(r, maxBytes+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if maxBytes > 0 && int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", media.ErrTooLarge, maxBytes)
	}
	return lim.DecodeImageBytes(b, in.name())
}

// Score is the model's verdict on one face crop.
type Score struct {
	PFake float64     // 1 - softmax(class logits)[0]
	Patch [][]float64 // G x G P(forged) per patch, row-major; nil without the localisation branch
}

// ScoreCrops scores face crops (any size; resized to the model's input) in
// one forward pass.
func (p *Pipeline) ScoreCrops(crops []*image.RGBA) ([]Score, error) {
	batch := make([]prepared, len(crops))
	defer func() {
		for _, pr := range batch {
			pr.x.Free()
		}
	}()
	for i, c := range crops {
		s := torch.NewScope()
		x := Preprocess(s, c, p.m.Config.ImageSize)
		if err := x.Err(); err != nil {
			s.Close()
			return nil, fmt.Errorf("score crops: crop %d: %w", i, err)
		}
		batch[i] = prepared{x: x.Keep()}
		s.Close()
	}
	return p.scoreBatch(batch)
}

// scoreBatch runs the model on the prepared inputs.
func (p *Pipeline) scoreBatch(batch []prepared) ([]Score, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	var cls, seg []float32
	var g int
	err := torch.InferenceMode(func() error {
		s := torch.NewScope()
		defer s.Close()
		xs := make([]*torch.Tensor, len(batch))
		for i, pr := range batch {
			xs[i] = pr.x
		}
		x := torch.Cat(0, xs...).In(s)
		if dt, dev := p.m.DType(), p.m.Device(); x.DType() != dt || x.Device() != dev {
			x = x.To(dt, dev)
		}
		out := p.m.Forward(nn.EvalCtx(), x)
		var err error
		if cls, err = out.Cls.Float32s(); err != nil {
			return err
		}
		if out.Seg != nil {
			g = int(out.Seg.Size(2))
			if seg, err = out.Seg.Float32s(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lvnet forward: %w", err)
	}
	scores := make([]Score, len(batch))
	for b := range batch {
		scores[b].PFake = softmax1(cls[2*b], cls[2*b+1])
		if seg == nil {
			continue
		}
		// Seg is B x 2 x G x G: channel 0 then channel 1 of item b.
		base := b * 2 * g * g
		scores[b].Patch = make([][]float64, g)
		for r := range g {
			row := make([]float64, g)
			for c := range g {
				k := r*g + c
				row[c] = softmax1(seg[base+k], seg[base+g*g+k])
			}
			scores[b].Patch[r] = row
		}
	}
	return scores, nil
}

// finite reports whether a score holds no NaN (which JSON cannot carry).
func finite(sc Score) bool {
	if math.IsNaN(sc.PFake) {
		return false
	}
	for _, row := range sc.Patch {
		for _, v := range row {
			if math.IsNaN(v) {
				return false
			}
		}
	}
	return true
}

// softmax1 returns the second component of softmax(l0, l1), in float64:
// 1 / (1 + exp(l0 - l1)).
func softmax1(l0, l1 float32) float64 {
	return 1 / (1 + math.Exp(float64(l0)-float64(l1)))
}

// result builds the Result of an aligned crop.
func (p *Pipeline) result(in Input, pr prepared, sc Score, opts Options) *Result {
	label := LabelReal
	if sc.PFake >= opts.Threshold {
		label = LabelFake
	}
	r := &Result{
		Input:      in.name(),
		Kind:       KindFace,
		PFake:      sc.PFake,
		Label:      label,
		PatchPFake: sc.Patch,
		Width:      pr.w,
		Height:     pr.h,
		Faces: []Face{{
			BBox:       [4]float64{0, 0, float64(pr.w), float64(pr.h)},
			Score:      1,
			PFake:      sc.PFake,
			Label:      label,
			PatchPFake: sc.Patch,
		}},
	}
	if opts.Heatmaps != "" || opts.InlinePNG {
		r.Warnings = append(r.Warnings, "heatmap overlays are not produced for aligned crops yet")
	}
	return r
}

// Preprocess turns an image into the model's input: a 1 x 3 x size x size
// float32 tensor in scope s. Pixels are scaled to [0,1] (v/255), resized
// bilinearly as torch's F.interpolate(mode="bilinear", align_corners=False)
// when the image is not size x size already, and normalised with mean 0.5
// and std 0.5 to [-1,1]. Alpha is ignored (RGBA pixels are taken as they
// are, that is composited over black).
func Preprocess(s *torch.Scope, img image.Image, size int) *torch.Tensor {
	rgba, ok := img.(*image.RGBA)
	if !ok {
		b := img.Bounds()
		rgba = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	}
	b := rgba.Rect
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 || size <= 0 {
		return torch.Errorf("preprocess", "empty image (%dx%d) or size %d", w, h, size)
	}
	plane := w * h
	v := make([]float32, 3*plane)
	for y := range h {
		row := rgba.Pix[rgba.PixOffset(b.Min.X, b.Min.Y+y):]
		for x := range w {
			px := row[4*x : 4*x+3]
			k := y*w + x
			v[k] = float32(px[0]) / 255
			v[plane+k] = float32(px[1]) / 255
			v[2*plane+k] = float32(px[2]) / 255
		}
	}
	t := torch.FromSlice(s, v, 1, 3, int64(h), int64(w))
	if w != size || h != size {
		t = t.UpsampleBilinear2d(int64(size), int64(size), false)
	}
	return t.SubScalar(0.5).DivScalar(0.5)
}
