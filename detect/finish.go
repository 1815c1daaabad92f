package detect

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/png"
	"path/filepath"
	"sort"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/viz"
)

// finish builds the result of a complete input and draws its heatmap. It
// runs in a finisher goroutine, which owns a.
func (r *run) finish(a *acc) (*Result, error) {
	defer func() { a.img, a.frames, a.tracks = nil, nil, nil }()
	d := a.end
	name := a.in.name()
	if d.err != nil {
		return nil, &InputError{Input: name, Err: d.err}
	}
	if a.nan {
		return nil, &InputError{Input: name, Err: errors.New("the model's output is not a number (NaN)")}
	}
	res := &Result{
		Input: name, Kind: d.kind, Width: d.w, Height: d.h,
		Faces: []Face{}, PatchPFake: [][]float64{},
		Warnings: d.warnings, Incomplete: d.incomplete,
	}
	if d.kind == KindVideo {
		r.finishVideo(a, res)
	} else {
		r.finishPhoto(a, res)
	}
	return res, nil
}

// box4 converts a box to x0, y0, x1, y1.
func box4(b face.Box) [4]float64 {
	return [4]float64{float64(b.X0), float64(b.Y0), float64(b.X1), float64(b.Y1)}
}

// orEmpty returns m, or an empty map instead of nil (JSON [] not null).
func orEmpty(m [][]float64) [][]float64 {
	if m == nil {
		return [][]float64{}
	}
	return m
}

// finishPhoto fills in the result of a photo or an aligned crop: every face,
// the most suspicious one's verdict, and the overlay of all faces.
func (r *run) finishPhoto(a *acc, res *Result) {
	var faces []faceRec
	if len(a.frames) > 0 {
		faces = a.frames[0].faces
	}
	best := -1
	for k, f := range faces {
		res.Faces = append(res.Faces, Face{
			BBox: box4(f.box), CropBox: box4(f.crop), Score: float64(f.score),
			PFake: f.sc.PFake, Label: label(f.sc.PFake, r.opts.Threshold), PatchPFake: orEmpty(f.sc.Patch),
		})
		if best < 0 || f.sc.PFake > faces[best].sc.PFake {
			best = k
		}
	}
	if best < 0 {
		res.Label = LabelNone
		res.Warnings = append(res.Warnings, "no face found")
		return
	}
	res.PFake = faces[best].sc.PFake
	res.Label = res.Faces[best].Label
	res.PatchPFake = res.Faces[best].PatchPFake
	if !r.wantHeatmap() || a.img == nil {
		return
	}
	var img *image.RGBA
	var err error
	if res.Kind == KindFace {
		img, err = viz.Panel(a.img, flat(faces[0].sc.Patch), len(faces[0].sc.Patch), res.PFake, res.Label)
	} else {
		marks := make([]mark, len(faces))
		for k, f := range faces {
			marks[k] = mark{crop: f.crop, patch: f.sc.Patch, pFake: f.sc.PFake, label: res.Faces[k].Label}
		}
		img, err = drawFaces(a.img, marks)
	}
	ref, err := r.emit(a.i, img, err)
	if err != nil {
		res.Warnings = append(res.Warnings, "heatmap: "+err.Error())
		return
	}
	res.Heatmap = ref
	for k := range res.Faces {
		res.Faces[k].Heatmap = ref
	}
}

// finishVideo fills in the result of a video: the frames, every tracked
// face, the verdict of the most suspicious face and the overlay of its
// most suspicious frame.
func (r *run) finishVideo(a *acc, res *Result) {
	info := a.end.video
	res.Frames = make([]Frame, len(a.frames))
	for k, fr := range a.frames {
		ff := make([]FrameFace, len(fr.faces))
		for j, f := range fr.faces {
			ff[j] = FrameFace{ID: f.id, BBox: box4(f.box), PFake: f.sc.PFake}
		}
		res.Frames[k] = Frame{Index: fr.index, Time: fr.time, Faces: ff}
	}
	res.Video = &Video{Frames: len(a.frames)}
	if info != nil {
		res.Video.Duration, res.Video.FPS = info.Duration.Seconds(), info.FPS
	}
	tracks := make([]*trackAcc, 0, len(a.tracks))
	longest := 0
	for _, t := range a.tracks {
		tracks = append(tracks, t)
		longest = max(longest, t.n)
	}
	sort.Slice(tracks, func(i, j int) bool { return tracks[i].id < tracks[j].id })
	var best *trackAcc
	bestK := -1
	for k, t := range tracks {
		mean := t.sum / float64(t.n)
		res.Faces = append(res.Faces, Face{
			ID: t.id, BBox: box4(t.worst.box), CropBox: box4(t.worst.crop), Score: float64(t.worst.score),
			PFake: mean, Label: label(mean, r.opts.Threshold), PatchPFake: orEmpty(t.worst.sc.Patch),
			MaxPFake: t.max, FracFake: float64(t.above) / float64(t.n), NumFrames: t.n, WorstFrame: t.worstAt,
		})
		// The verdict: the highest mean among faces seen long enough.
		if 10*t.n >= longest && (best == nil || mean > best.sum/float64(best.n)) {
			best, bestK = t, k
		}
	}
	if best == nil {
		res.Label = LabelNone
		if len(a.frames) == 0 {
			res.Warnings = append(res.Warnings, "no frame was decoded")
		} else {
			res.Warnings = append(res.Warnings, fmt.Sprintf("no face found in %d frames", len(a.frames)))
		}
		return
	}
	bf := res.Faces[bestK]
	res.PFake, res.Label, res.PatchPFake = bf.PFake, bf.Label, bf.PatchPFake
	res.Video.FaceID, res.Video.Mean, res.Video.Max, res.Video.FracAbove = best.id, bf.PFake, bf.MaxPFake, bf.FracFake
	if !r.wantHeatmap() || best.worstImg == nil {
		return
	}
	img, err := drawFaces(best.worstImg, []mark{{crop: best.worst.crop, patch: best.worst.sc.Patch, pFake: best.max,
		label: fmt.Sprintf("frame %d: %s", best.worstAt, label(best.max, r.opts.Threshold))}})
	ref, err := r.emit(a.i, img, err)
	if err != nil {
		res.Warnings = append(res.Warnings, "heatmap: "+err.Error())
		return
	}
	res.Heatmap = ref
	res.Faces[bestK].Heatmap = ref
}

// wantHeatmap reports whether overlays are wanted.
func (r *run) wantHeatmap() bool { return r.opts.InlinePNG || r.opts.Heatmaps != "" }

// emit turns the overlay of input i into what the result refers to: a data
// URL (Options.InlinePNG) or the path of a PNG written into
// Options.Heatmaps. drawErr is the error of drawing it, passed through.
func (r *run) emit(i int, img *image.RGBA, drawErr error) (string, error) {
	if drawErr != nil {
		return "", drawErr
	}
	if r.opts.InlinePNG {
		var b bytes.Buffer
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(&b, img); err != nil {
			return "", fmt.Errorf("encode: %w", err)
		}
		return pngDataURL + base64.StdEncoding.EncodeToString(b.Bytes()), nil
	}
	path := filepath.Join(r.opts.Heatmaps, r.names[i])
	if err := viz.WritePNG(path, img); err != nil {
		return "", err
	}
	return path, nil
}

// pngDataURL starts the data URLs of inline heatmaps.
const pngDataURL = "data:image/png;base64,"

// flat returns a G x G map as one row-major slice (nil for nil).
func flat(m [][]float64) []float64 {
	if len(m) == 0 {
		return nil
	}
	out := make([]float64, 0, len(m)*len(m))
	for _, row := range m {
		out = append(out, row...)
	}
	return out
}
