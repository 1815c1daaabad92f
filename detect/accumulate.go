package detect

import (
	"image"

	"github.com/lvnet-go/lvnet/face"
)

// acc accumulates the scores of one input. Only the run's loop touches it
// until the input is complete; then it belongs to its finisher.
type acc struct {
	i        int
	in       Input
	end      *doneMsg // set when the producer is done with the input
	handed   bool     // given to a finisher
	unscored int      // faces sent but not scored yet
	frames   []*frameRec
	img      *image.RGBA // photos: the picture, for the heatmap
	tracks   map[int]*trackAcc
	nan      bool // the model gave NaN for a face
}

// frameRec is a photo or a sampled video frame and the faces in it.
type frameRec struct {
	index int
	time  float64
	faces []faceRec
}

// faceRec is one face of a frame and, once scored, its score. In videos
// only the track's most suspicious frame keeps its patch map.
type faceRec struct {
	box, crop face.Box
	score     float32
	id        int
	sc        Score
}

// trackAcc sums up one tracked face of a video.
type trackAcc struct {
	id        int
	n, above  int     // frames, and frames with p_fake >= threshold
	sum, max  float64 // of p_fake
	worst     faceRec // in the frame of the max
	worstAt   int     // its frame number
	worstTime float64
	worstImg  *image.RGBA // that frame, for the heatmap
}

// addFrame records a frame from a producer and returns its record.
func (a *acc) addFrame(f *frameMsg) *frameRec {
	fr := &frameRec{index: f.index, time: f.time, faces: make([]faceRec, len(f.faces))}
	for k, cf := range f.faces {
		fr.faces[k] = faceRec{box: cf.box, crop: cf.crop, score: cf.score, id: cf.id}
	}
	a.frames = append(a.frames, fr)
	a.unscored += len(f.faces)
	if !f.video {
		a.img = f.img
	}
	return fr
}

// scored records the score of face k of frame fr (img: the frame's
// picture) under label threshold th.
func (a *acc) scored(fr *frameRec, k int, img *image.RGBA, sc Score, th float64, video bool) {
	a.unscored--
	if !finite(sc) {
		a.nan = true
		return
	}
	f := &fr.faces[k]
	f.sc = sc
	if !video {
		return
	}
	t := a.tracks[f.id]
	if t == nil {
		t = &trackAcc{id: f.id}
		a.tracks[f.id] = t
	}
	p := sc.PFake
	t.n++
	t.sum += p
	if p >= th {
		t.above++
	}
	if t.n == 1 || p > t.max {
		t.max, t.worst, t.worstAt, t.worstTime, t.worstImg = p, *f, fr.index, fr.time, img
	}
	f.sc.Patch = nil // the frames list carries p_fake only
}
