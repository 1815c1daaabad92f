package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/media"
)

// TestPipelineVideo analyses a 2-second clip at 10 fps with two faces (the
// fake detector's fixed boxes): every 5th frame by default, each face
// scored in each frame as its crop alone is, per-face and video verdicts
// computed from those scores.
func TestPipelineVideo(t *testing.T) {
	dir := t.TempDir()
	clip := testVideo(t, dir, "clip.mkv", 160, 120, 20, 10)
	big := face.Box{X0: 10, Y0: 10, X1: 80, Y1: 95}
	small := face.Box{X0: 100, Y0: 40, X1: 150, Y1: 100}
	p, err := NewPipeline(testModel(t), PipelineOptions{BatchSize: 3, Faces: fixedFaces(small, big)})
	if err != nil {
		t.Fatal(err)
	}
	frames, err := media.ReadFrames(clip, media.VideoOptions{Every: 5})
	if err != nil {
		t.Fatal(err)
	}
	// want[k][id-1]: the score of face id (1: the larger) in frame k.
	want := make([][]Score, len(frames))
	for k, f := range frames {
		want[k] = cropScores(t, p, f.Img, []face.Box{big, small})
	}
	hm := filepath.Join(dir, "hm")
	got := collect(t, p, []Input{{Path: clip}}, Options{Heatmaps: hm})
	r, err := got[0].r, got[0].err
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != KindVideo || r.Width != 160 || r.Height != 120 || r.Incomplete || len(r.Warnings) != 0 {
		t.Fatalf("result %+v", r)
	}
	if v := r.Video; v == nil || v.Frames != 4 || v.FPS != 10 || math.Abs(v.Duration-2) > 0.05 {
		t.Fatalf("video %+v, want 4 frames at 10 fps, 2 s", v)
	}
	var idx []int
	for k, fr := range r.Frames {
		idx = append(idx, fr.Index)
		if math.Abs(fr.Time-float64(fr.Index)/10) > 1e-9 || len(fr.Faces) != 2 {
			t.Fatalf("frame %+v", fr)
		}
		for j, ff := range fr.Faces {
			id := map[face.Box]int{big: 1, small: 2}[face.Box{X0: float32(ff.BBox[0]), Y0: float32(ff.BBox[1]), X1: float32(ff.BBox[2]), Y1: float32(ff.BBox[3])}]
			if ff.ID != id || id != j+1 {
				t.Errorf("frame %d face %d: id %d for box %v, want %d (largest first)", fr.Index, j, ff.ID, ff.BBox, j+1)
			}
			if !near(ff.PFake, want[k][j].PFake) {
				t.Errorf("frame %d face %d: p_fake %v, its crop scores %v", fr.Index, ff.ID, ff.PFake, want[k][j].PFake)
			}
		}
	}
	if !slices.Equal(idx, []int{0, 5, 10, 15}) {
		t.Errorf("frames %v, want every 5th: about 2 per second", idx)
	}
	if len(r.Faces) != 2 {
		t.Fatalf("%d faces, want 2 tracks", len(r.Faces))
	}
	bestID, bestMean := 0, -1.0
	for j, f := range r.Faces {
		var sum, mx float64
		above, worst := 0, 0
		for k := range want {
			v := want[k][j].PFake
			sum += v
			if v >= 0.5 {
				above++
			}
			if v > mx {
				mx, worst = v, k
			}
		}
		mean := sum / 4
		if f.ID != j+1 || f.NumFrames != 4 || !near(f.PFake, mean) || !near(f.MaxPFake, mx) ||
			f.FracFake != float64(above)/4 || f.WorstFrame != idx[worst] || f.Label != label(f.PFake, 0.5) {
			t.Errorf("face %d: %+v; want mean %v, max %v in frame %d, %d/4 above", j+1, f, mean, mx, idx[worst], above)
		}
		if !near(f.PatchPFake[3][0], want[worst][j].Patch[3][0]) {
			t.Errorf("face %d: patch map is not that of its most suspicious frame", f.ID)
		}
		if mean > bestMean {
			bestID, bestMean = f.ID, mean
		}
	}
	v := r.Video
	bf := r.Faces[bestID-1]
	if v.FaceID != bestID || r.PFake != bf.PFake || v.Mean != bf.PFake || v.Max != bf.MaxPFake || v.FracAbove != bf.FracFake || r.Label != bf.Label {
		t.Errorf("verdict %+v p_fake %v %s; want face %d's: %+v", v, r.PFake, r.Label, bestID, bf)
	}
	if r.Heatmap != filepath.Join(hm, "clip.heatmap.png") || bf.Heatmap != r.Heatmap || decodePNG(t, r.Heatmap).Bounds() != image.Rect(0, 0, 160, 120) {
		t.Errorf("heatmap %q (face %q)", r.Heatmap, bf.Heatmap)
	}
	// JSON: the video fields of faces are there even when zero.
	b, _ := json.Marshal(r)
	var back struct {
		Faces []map[string]any `json:"faces"`
	}
	json.Unmarshal(b, &back)
	for _, f := range back.Faces {
		for _, k := range []string{"worst_frame", "frac_fake", "max_p_fake", "num_frames", "bbox", "crop_box", "patch_p_fake"} {
			if _, ok := f[k]; !ok {
				t.Errorf("face JSON lacks %s: %v", k, f)
			}
		}
	}

	// Sampling: --every, and --max-frames spreading frames over the video.
	for _, c := range []struct {
		opts Options
		want []int
	}{
		{Options{Every: 7}, []int{0, 7, 14}},
		{Options{MaxFrames: 2}, []int{0, 19}},
	} {
		r, err := p.Analyze(t.Context(), Input{Path: clip}, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for _, fr := range r.Frames {
			idx = append(idx, fr.Index)
		}
		if !slices.Equal(idx, c.want) || r.Video.Frames != len(c.want) {
			t.Errorf("%+v: frames %v, want %v", c.opts, idx, c.want)
		}
	}

	// The same video uploaded as bytes is spooled to a temporary file that
	// is removed afterwards.
	data, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	up, err := p.Analyze(t.Context(), Input{Name: "upload.mkv", Data: bytes.NewReader(data)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if up.Input != "upload.mkv" || up.Kind != KindVideo || !near(up.PFake, got[0].r.PFake) {
		t.Errorf("upload: %s %s p_fake %v, want the file's %v", up.Input, up.Kind, up.PFake, got[0].r.PFake)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("%d temporary files left", len(left))
	}
}

func TestPipelineVideoNoFacesAndDamage(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPipeline(testModel(t), PipelineOptions{Faces: fixedFaces()})
	if err != nil {
		t.Fatal(err)
	}
	clip := testVideo(t, dir, "empty.mp4", 96, 64, 10, 5)
	r, err := p.Analyze(t.Context(), Input{Path: clip}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Label != LabelNone || r.PFake != 0 || len(r.Faces) != 0 || len(r.Frames) != 4 || r.Video.Frames != 4 ||
		len(r.Warnings) != 1 || r.Warnings[0] != "no face found in 4 frames" {
		t.Errorf("video without faces: %+v", r)
	}

	// Truncated: the frames before the damage are analysed; a video cut
	// before its first frame fails.
	noisy := testVideo(t, dir, "noisy.mkv", 160, 120, 30, 10, "-vf", "noise=alls=60:allf=t", "-c:v", "libx264", "-preset", "ultrafast")
	data, err := os.ReadFile(noisy)
	if err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(dir, "half.mkv")
	os.WriteFile(half, data[:len(data)/2], 0o644)
	p2, _ := NewPipeline(testModel(t), PipelineOptions{Faces: fixedFaces(face.Box{X0: 20, Y0: 20, X1: 80, Y1: 90})})
	r, err = p2.Analyze(t.Context(), Input{Path: half}, Options{Every: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Incomplete || len(r.Frames) == 0 || len(r.Frames) >= 30 || len(r.Warnings) != 1 ||
		!strings.Contains(r.Warnings[0], "truncated") || strings.HasPrefix(r.Warnings[0], "half.mkv") || len(r.Faces) != 1 || r.Faces[0].NumFrames != len(r.Frames) {
		t.Errorf("truncated video: incomplete %v, %d frames, warnings %q, faces %+v", r.Incomplete, len(r.Frames), r.Warnings, r.Faces)
	}
	head := filepath.Join(dir, "head.mkv")
	os.WriteFile(head, data[:300], 0o644)
	_, err = p2.Analyze(t.Context(), Input{Path: head}, Options{})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Input != head || !(errors.Is(err, media.ErrTruncated) || errors.Is(err, media.ErrCorrupt) || errors.Is(err, media.ErrNotVideo)) {
		t.Errorf("video cut in its header: %v", err)
	}

	// Aligned crops in a video: every frame used whole, as one face.
	r, err = p.Analyze(t.Context(), Input{Path: clip}, Options{Aligned: true, Every: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Faces) != 1 || r.Faces[0].ID != 1 || r.Faces[0].NumFrames != 5 || r.Faces[0].BBox != [4]float64{0, 0, 96, 64} || r.Label == LabelNone {
		t.Errorf("aligned video: %+v", r.Faces)
	}
}

// TestPipelineProgressAndCancel counts the work through WithProgress and
// stops a video analysis half-way by cancelling its context.
func TestPipelineProgressAndCancel(t *testing.T) {
	dir := t.TempDir()
	clip := testVideo(t, dir, "long.mkv", 96, 64, 60, 10)
	p, err := NewPipeline(testModel(t), PipelineOptions{Faces: fixedFaces(face.Box{X0: 10, Y0: 10, X1: 60, Y1: 60}, face.Box{X0: 60, Y0: 5, X1: 90, Y1: 40})})
	if err != nil {
		t.Fatal(err)
	}
	var last Progress
	ctx := WithProgress(t.Context(), func(pr Progress) { last = pr })
	photo := filepath.Join(dir, "p.png")
	writePNG(t, photo, noiseImage(80, 80, 1))
	if err := p.AnalyzeAll(ctx, []Input{{Path: clip}, {Path: photo}}, Options{Every: 10}, nil); err != nil {
		t.Fatal(err)
	}
	if want := (Progress{Inputs: 2, Frames: 6 + 1, Faces: 2*6 + 2}); last != want {
		t.Errorf("progress %+v, want %+v", last, want)
	}

	ctx, cancel := context.WithCancel(t.Context())
	ctx = WithProgress(ctx, func(pr Progress) {
		if pr.Faces > 0 {
			cancel()
		}
	})
	_, err = p.Analyze(ctx, Input{Path: clip}, Options{Every: 1})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled analysis: %v", err)
	}
}
