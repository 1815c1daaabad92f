// Package detect is the product pipeline: from a photo, a video or an aligned
// face crop to, for every face, how likely it is forged and where. It finds
// faces (package face), crops them, scores them with LVNet in batches (package
// model), tracks faces through videos and draws heatmap overlays (package
// viz). The CLI (lvnet detect) and the HTTP server (package serve) both use it.
package detect

import (
	"context"
	"encoding/json"
	"io"
)

// Result is the verdict on one input. Its JSON form is the schema of
// `lvnet detect --json` and of the server's POST /v1/detect:
// results[].input, p_fake, label, patch_p_fake (of the most suspicious face),
// faces[], and for videos frames[] and video.
type Result struct {
	Input      string      `json:"input"`
	Kind       string      `json:"kind"` // "image", "video" or "face" (an aligned crop)
	PFake      float64     `json:"p_fake"`
	Label      string      `json:"label"` // "real" or "fake" (p_fake >= threshold), "none" without faces
	PatchPFake [][]float64 `json:"patch_p_fake"`
	Faces      []Face      `json:"faces"`
	Frames     []Frame     `json:"frames,omitempty"`
	Video      *Video      `json:"video,omitempty"`
	Heatmap    string      `json:"heatmap,omitempty"` // overlay of the most suspicious face/frame: file path or data URL
	Width      int         `json:"width,omitempty"`
	Height     int         `json:"height,omitempty"`
	Warnings   []string    `json:"warnings,omitempty"`
	// Incomplete is set when the input could not be read to its end (a
	// truncated or corrupt video): the result covers the frames read
	// before the damage, and Warnings says what happened.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Face is one face (one tracked person, for videos).
type Face struct {
	ID   int        `json:"id"`   // track id (0 in photos: faces ordered largest first)
	BBox [4]float64 `json:"bbox"` // x0, y0, x1, y1 in input pixels (of the most suspicious frame in videos)
	// CropBox is the square the model looked at (the face box enlarged
	// 1.3 times, as in training), x0, y0, x1, y1 in input pixels: the
	// patch map covers it, row 0 at its top. It may reach past the
	// picture's borders (black there).
	CropBox    [4]float64  `json:"crop_box"`
	Score      float64     `json:"score"`  // the face detector's confidence
	PFake      float64     `json:"p_fake"` // videos: mean over the frames of this face
	Label      string      `json:"label"`
	PatchPFake [][]float64 `json:"patch_p_fake"` // GxG, row-major; videos: of the most suspicious frame
	Heatmap    string      `json:"heatmap,omitempty"`
	// Videos only (in JSON when NumFrames > 0, zeros included):
	MaxPFake   float64 `json:"max_p_fake,omitempty"`  // the highest p_fake over the frames
	FracFake   float64 `json:"frac_fake,omitempty"`   // fraction of the frames with p_fake >= threshold
	NumFrames  int     `json:"num_frames,omitempty"`  // frames the face was scored in
	WorstFrame int     `json:"worst_frame,omitempty"` // frame number of the max
}

// MarshalJSON writes a face; the video fields are written whenever
// NumFrames > 0, even when zero (a face may be most suspicious in frame 0
// or never above the threshold).
func (f Face) MarshalJSON() ([]byte, error) {
	type plain Face // without this method
	if f.NumFrames == 0 {
		return json.Marshal(plain(f))
	}
	return json.Marshal(struct {
		plain
		MaxPFake   float64 `json:"max_p_fake"`
		FracFake   float64 `json:"frac_fake"`
		NumFrames  int     `json:"num_frames"`
		WorstFrame int     `json:"worst_frame"`
	}{plain(f), f.MaxPFake, f.FracFake, f.NumFrames, f.WorstFrame})
}

// Frame is the per-frame scores of a video.
type Frame struct {
	Index int         `json:"index"`
	Time  float64     `json:"time"`
	Faces []FrameFace `json:"faces"`
}

// FrameFace is one face's score in one frame.
type FrameFace struct {
	ID    int        `json:"id"`
	BBox  [4]float64 `json:"bbox"`
	PFake float64    `json:"p_fake"`
}

// Video summarises a video's verdict: the mean of the frame scores of its
// most suspicious face, their max and the fraction of frames above the
// threshold.
type Video struct {
	Frames    int     `json:"frames"` // frames analysed
	Duration  float64 `json:"duration"`
	FPS       float64 `json:"fps"`
	FaceID    int     `json:"face_id"`
	Mean      float64 `json:"mean"`
	Max       float64 `json:"max"`
	FracAbove float64 `json:"frac_above"`
}

// Input is something to analyse: a file path, or bytes with a name (uploads).
type Input struct {
	Name string    // shown in results; never used as a path when Data is set
	Path string    // file to read ("" when Data is set)
	Data io.Reader // upload body
	Size int64     // bytes in Data, when known
	// Heatmap is the file name of the input's overlay in
	// Options.Heatmaps; "" names it after the input (HeatmapNames). Set
	// it for all inputs of a call or for none, so that names do not
	// collide.
	Heatmap string
}

// Analyzer turns inputs into results. Implementations are safe for concurrent
// use; Analyze honours ctx cancellation between frames and batches.
type Analyzer interface {
	Analyze(ctx context.Context, in Input, opts Options) (*Result, error)
}

// Options adjust one analysis.
type Options struct {
	Threshold float64 // label threshold on p_fake (default 0.5)
	Every     int     // videos: analyse every Nth frame (default: about 2 frames per second)
	MaxFrames int     // videos: at most this many frames (0: no limit)
	Aligned   bool    // the input is an aligned face crop: no face detection
	Heatmaps  string  // directory for overlay PNGs ("" none)
	InlinePNG bool    // put overlays in Result as data:image/png;base64 URLs
	MaxFaces  int     // per frame, the largest (default 16); the others are counted in a warning
}

// Progress counts the work of an AnalyzeAll call so far.
type Progress struct {
	Inputs int // inputs finished (results or errors handed over)
	Frames int // photos and video frames decoded and searched for faces
	Faces  int // faces scored by the model
}

type progressKey struct{}

// WithProgress returns a context that makes AnalyzeAll (and Analyze) call f
// with its counts after every forward pass and every finished input, from
// the goroutine that called AnalyzeAll.
func WithProgress(ctx context.Context, f func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

// progressFunc returns the function of WithProgress, or nil.
func progressFunc(ctx context.Context) func(Progress) {
	f, _ := ctx.Value(progressKey{}).(func(Progress))
	return f
}
