package detect

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// Defaults of Options and PipelineOptions.
const (
	DefaultThreshold = 0.5
	// DefaultBatchSize is the batch size on GPUs. On CPUs the default is
	// DefaultCPUBatchSize: on 2 cores, batches of 4 faces at 299 pixels
	// ran 1.24x the faces per second of single faces for 0.9 GB more
	// memory, batches of 8 1.35x for 2 GB more (docs/DETECT.md).
	DefaultBatchSize    = 8
	DefaultCPUBatchSize = 4
	DefaultMaxFaces     = 16
	// CropScale enlarges the detector's face box to the square the model
	// looks at, as the training crops were cut (face.Crop's default).
	CropScale = 1.3
	// VideoSampleRate is how many frames per second of video are analysed
	// by default (Options.Every = round(fps / VideoSampleRate)).
	VideoSampleRate = 2
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

// ErrNeedsAligned is returned for photos and videos given to a pipeline
// without a face detector (PipelineOptions.Faces): only aligned face crops
// (Options.Aligned) can be analysed then.
var ErrNeedsAligned = errors.New("face detection is not available in this pipeline: it has no face detector " +
	"(install the face models with scripts/fetch-face-models.sh); analyse aligned face crops instead (Options.Aligned, lvnet detect --aligned)")

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

// FaceDetector finds the faces of a picture, largest first (*face.Detector
// is one). Implementations must be safe for concurrent use.
type FaceDetector interface {
	Detect(img *image.RGBA) ([]face.Face, error)
}

// PipelineOptions configure a Pipeline.
type PipelineOptions struct {
	BatchSize int          // faces per forward pass (default: DefaultCPUBatchSize on CPUs, DefaultBatchSize on GPUs)
	Workers   int          // goroutines decoding inputs and finding faces while the model runs (default: CPUs, at most 4)
	Limits    media.Limits // bounds on what decoding an input may cost (zero: media's defaults)
	// Faces finds the faces of photos and video frames. Without one only
	// aligned face crops (Options.Aligned) can be analysed; other inputs
	// fail with ErrNeedsAligned. The pipeline does not own it.
	Faces FaceDetector
	// Temperature divides the class logits before the softmax: the
	// model's calibration (checkpoint.Meta.Calibration); 0 means 1.
	Temperature float64
}

// Pipeline scores inputs with an LVNet model. It implements Analyzer and is
// safe for concurrent use (the model is only read).
//
// Photos and video frames: every face the detector finds (the MaxFaces
// largest) is cut out as training crops were, a square of CropScale times
// the longer side of the face box centred on it (black outside the
// picture), resized bilinearly to the model's input size (face.Crop). An
// aligned face crop (Options.Aligned) is used whole instead, resized to the
// model's input as torch's F.interpolate(mode="bilinear",
// align_corners=False) does (no resize when it already has that size).
// Crops are normalised with mean 0.5 and std 0.5 and scored in eval mode,
// several per forward pass across faces, frames and inputs. p_fake = 1 -
// softmax(class logits / Temperature)[0]; the patch map is softmax over the patch
// logits, channel 1.
//
// A photo's verdict is its most suspicious face (the highest p_fake). In a
// video, sampled frames (Options.Every) are searched for faces, faces are
// tracked across frames (face.Tracker) and every tracked face is scored in
// every sampled frame; a face's p_fake is the mean over its frames, and the
// video's verdict is its most suspicious face: the highest mean among the
// faces seen in at least a tenth as many frames as the face seen most
// (short tracks are usually the detector's mistakes).
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
	if opts.Temperature == 0 {
		opts.Temperature = 1
	}
	if !(opts.Temperature > 0) || math.IsInf(opts.Temperature, 0) {
		return nil, fmt.Errorf("new pipeline: temperature %v must be positive and finite", opts.Temperature)
	}
	if opts.BatchSize < 0 || opts.Workers < 0 {
		return nil, fmt.Errorf("new pipeline: batch size %d and workers %d must not be negative", opts.BatchSize, opts.Workers)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
		if m.Device().Type == torch.DeviceCPU {
			opts.BatchSize = DefaultCPUBatchSize
		}
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

// AnalyzeAll analyses inputs: photos, videos (by their contents, else their
// extension) or, with Options.Aligned, aligned face crops. Decoding, face
// detection and cropping run in parallel goroutines while the model scores
// the faces found, several per forward pass across faces, frames and
// inputs; video frames are streamed, never all held in memory. For every
// input it calls each (from the calling goroutine, in input order) with the
// result or the input's error (an *InputError naming it). The returned
// error is for what stops the whole run: bad options, a model failure, ctx
// cancellation.
func (p *Pipeline) AnalyzeAll(ctx context.Context, ins []Input, opts Options, each func(i int, r *Result, err error)) error {
	opts, err := resolve(opts)
	if err != nil {
		return err
	}
	if each == nil {
		each = func(int, *Result, error) {}
	}
	if !opts.Aligned && p.opts.Faces == nil {
		for i, in := range ins {
			if err := ctx.Err(); err != nil {
				return err
			}
			each(i, nil, &InputError{Input: in.name(), Err: ErrNeedsAligned})
		}
		return nil
	}
	if len(ins) == 0 {
		return nil
	}
	if opts.Heatmaps != "" && !opts.InlinePNG {
		if err := os.MkdirAll(opts.Heatmaps, 0o755); err != nil {
			return fmt.Errorf("heatmaps: %w", err)
		}
	}
	return newRun(p, ins, opts, each).run(ctx)
}

// resolve fills in the defaults of opts and checks them.
func resolve(opts Options) (Options, error) {
	if opts.Threshold == 0 {
		opts.Threshold = DefaultThreshold
	}
	if opts.Threshold < 0 || opts.Threshold > 1 || math.IsNaN(opts.Threshold) {
		return opts, fmt.Errorf("analyze: threshold %v outside [0, 1]", opts.Threshold)
	}
	if opts.Every < 0 || opts.MaxFrames < 0 || opts.MaxFaces < 0 {
		return opts, fmt.Errorf("analyze: every %d, max frames %d and max faces %d must not be negative", opts.Every, opts.MaxFrames, opts.MaxFaces)
	}
	if opts.MaxFaces == 0 {
		opts.MaxFaces = DefaultMaxFaces
	}
	return opts, nil
}

// name is how results and errors call an input.
func (in Input) name() string {
	if in.Name != "" {
		return in.Name
	}
	return in.Path
}

// label is the label of a p_fake under threshold th.
func label(pFake, th float64) string {
	if pFake >= th {
		return LabelFake
	}
	return LabelReal
}

// Score is the model's verdict on one face crop.
type Score struct {
	PFake float64     // 1 - softmax(class logits)[0]
	Patch [][]float64 // G x G P(forged) per patch, row-major; nil without the localisation branch
}

// ScoreCrops scores face crops (any size; resized to the model's input) in
// one forward pass.
func (p *Pipeline) ScoreCrops(crops []*image.RGBA) ([]Score, error) {
	xs := make([]*torch.Tensor, 0, len(crops))
	defer func() {
		for _, x := range xs {
			x.Free()
		}
	}()
	for i, c := range crops {
		s := torch.NewScope()
		x := Preprocess(s, c, p.m.Config.ImageSize)
		if err := x.Err(); err != nil {
			s.Close()
			return nil, fmt.Errorf("score crops: crop %d: %w", i, err)
		}
		xs = append(xs, x.Keep())
		s.Close()
	}
	return p.scoreBatch(xs)
}

// scoreBatch runs the model on inputs of 1 x 3 x S x S each.
func (p *Pipeline) scoreBatch(batch []*torch.Tensor) ([]Score, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	var cls, seg []float32
	var g int
	err := torch.InferenceMode(func() error {
		s := torch.NewScope()
		defer s.Close()
		x := torch.Cat(0, batch...).In(s)
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
		scores[b].PFake = softmaxT(cls[2*b], cls[2*b+1], p.opts.Temperature)
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

// softmaxT returns the second component of softmax(l0/t, l1/t), in
// float64: 1 / (1 + exp((l0 - l1)/t)).
func softmaxT(l0, l1 float32, t float64) float64 {
	return 1 / (1 + math.Exp((float64(l0)-float64(l1))/t))
}

// softmax1 returns the second component of softmax(l0, l1), in float64:
// 1 / (1 + exp(l0 - l1)).
func softmax1(l0, l1 float32) float64 {
	return 1 / (1 + math.Exp(float64(l0)-float64(l1)))
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
