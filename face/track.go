package face

import "sort"

// TrackerOptions tune a Tracker. Zero values select the defaults.
type TrackerOptions struct {
	// MinIoU is the least overlap between a face and a track's last box for
	// them to match (default 0.3).
	MinIoU float32
	// MaxGap is how many consecutive frames a track may miss and still be
	// continued (default 2).
	MaxGap int
}

// Tracker gives the faces of consecutive (sampled) video frames stable
// identities: each face continues the track whose last box overlaps it most
// (IoU), and starts a new track when none overlaps enough. Not safe for
// concurrent use.
type Tracker struct {
	opts   TrackerOptions
	tracks []track
	nextID int
	frame  int
}

type track struct {
	id   int
	box  Box
	last int // frame number last seen
}

// NewTracker returns a tracker; ids start at 1.
func NewTracker(opts TrackerOptions) *Tracker {
	if opts.MinIoU <= 0 {
		opts.MinIoU = 0.3
	}
	if opts.MaxGap < 0 {
		opts.MaxGap = 0
	} else if opts.MaxGap == 0 {
		opts.MaxGap = 2
	}
	return &Tracker{opts: opts, nextID: 1}
}

// Update assigns TrackID to the faces of the next frame (in place, and
// returns faces). Pairs are matched greedily by decreasing IoU; unmatched
// faces get new ids in the order given (largest first from Detect).
func (t *Tracker) Update(faces []Face) []Face {
	t.frame++
	// Forget tracks missing for more than MaxGap frames.
	live := t.tracks[:0]
	for _, tr := range t.tracks {
		if t.frame-tr.last <= t.opts.MaxGap+1 {
			live = append(live, tr)
		}
	}
	t.tracks = live
	type pair struct {
		iou     float32
		tr, fac int
	}
	var pairs []pair
	for i, tr := range t.tracks {
		for j, f := range faces {
			if iou := tr.box.IoU(f.Box); iou >= t.opts.MinIoU {
				pairs = append(pairs, pair{iou, i, j})
			}
		}
	}
	sort.SliceStable(pairs, func(a, b int) bool { return pairs[a].iou > pairs[b].iou })
	usedT := make([]bool, len(t.tracks))
	usedF := make([]bool, len(faces))
	for _, p := range pairs {
		if usedT[p.tr] || usedF[p.fac] {
			continue
		}
		usedT[p.tr], usedF[p.fac] = true, true
		tr := &t.tracks[p.tr]
		tr.box, tr.last = faces[p.fac].Box, t.frame
		faces[p.fac].TrackID = tr.id
	}
	for j := range faces {
		if usedF[j] {
			continue
		}
		faces[j].TrackID = t.nextID
		t.tracks = append(t.tracks, track{id: t.nextID, box: faces[j].Box, last: t.frame})
		t.nextID++
	}
	return faces
}
