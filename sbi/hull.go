package sbi

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Hull selects the shape of the initial blend mask, drawn from the
// landmarks (the four masks of Face X-ray's random_get_hull, which the SBI
// code uses).
type Hull int

const (
	// HullFace is the convex hull of all 68 landmarks (facehull).
	HullFace Hull = iota
	// HullDFL joins three hulls: jaw and mouth, nose ridge, brows and eyes
	// (DeepFaceLab's dfl_full).
	HullDFL
	// HullComponents joins eight hulls of face parts: both jaws, cheeks,
	// the area between the brows down to the chin, both eye regions and the
	// nose (components).
	HullComponents
	// HullExtended is HullComponents with the brows moved up the forehead
	// by half their distance from the eyes (extended).
	HullExtended
)

// allHulls are the hulls drawn from by default, uniformly.
var allHulls = []Hull{HullFace, HullDFL, HullComponents, HullExtended}

var hullNames = map[Hull]string{HullFace: "face", HullDFL: "dfl", HullComponents: "components", HullExtended: "extended"}

// String returns the hull's name, as ParseHull reads it.
func (h Hull) String() string {
	if n, ok := hullNames[h]; ok {
		return n
	}
	return fmt.Sprintf("Hull(%d)", int(h))
}

// ParseHull reads a hull name: face, dfl, components or extended.
func ParseHull(s string) (Hull, error) {
	for h, n := range hullNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return h, nil
		}
	}
	return 0, fmt.Errorf("unknown hull %q (want face, dfl, components or extended)", s)
}

type pt = [2]float64

// span lists landmarks [a, b).
func span(lm []pt, a, b int) []pt { return lm[a:b] }

// join concatenates point lists.
func join(parts ...[]pt) []pt {
	var out []pt
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// hullParts returns the point sets whose convex hulls, filled, make the
// initial mask of kind h.
func hullParts(lm []pt, h Hull) [][]pt {
	switch h {
	case HullDFL:
		return [][]pt{
			join(span(lm, 0, 17), span(lm, 48, 68), span(lm, 0, 1), span(lm, 8, 9), span(lm, 16, 17)),
			join(span(lm, 27, 31), span(lm, 33, 34)),
			join(span(lm, 17, 27), span(lm, 0, 1), span(lm, 27, 28), span(lm, 16, 17), span(lm, 33, 34)),
		}
	case HullComponents:
		return componentParts(lm)
	case HullExtended:
		return componentParts(extendBrows(lm))
	default:
		return [][]pt{lm}
	}
}

// componentParts are the eight part hulls of the components mask.
func componentParts(lm []pt) [][]pt {
	return [][]pt{
		join(span(lm, 0, 9), span(lm, 17, 18)),                                     // right jaw
		join(span(lm, 8, 17), span(lm, 26, 27)),                                    // left jaw
		join(span(lm, 17, 20), span(lm, 8, 9)),                                     // right cheek
		join(span(lm, 24, 27), span(lm, 8, 9)),                                     // left cheek
		join(span(lm, 19, 25), span(lm, 8, 9)),                                     // between the brows, down to the chin
		join(span(lm, 17, 22), span(lm, 27, 28), span(lm, 31, 36), span(lm, 8, 9)), // right eye region
		join(span(lm, 22, 27), span(lm, 27, 28), span(lm, 31, 36), span(lm, 8, 9)), // left eye region
		join(span(lm, 27, 31), span(lm, 31, 36)),                                   // nose
	}
}

// extendBrows returns the landmarks with the brows (17-26) moved away from
// the eyes by half their distance, reaching up the forehead. Each brow point
// is paired with an eye point (the outer ends with points halfway between
// the eye corner and the jaw's end).
func extendBrows(lm []pt) []pt {
	out := append([]pt(nil), lm...)
	mid := func(a, b pt) pt { return pt{(a[0] + b[0]) / 2, (a[1] + b[1]) / 2} }
	ml := mid(lm[36], lm[0])
	mr := mid(lm[16], lm[45])
	ql := mid(lm[36], ml)
	qr := mid(lm[45], mr)
	botL := []pt{ql, lm[36], lm[37], lm[38], lm[39]}
	botR := []pt{lm[42], lm[43], lm[44], lm[45], qr}
	for i := 0; i < 5; i++ {
		for c := 0; c < 2; c++ {
			out[17+i][c] = lm[17+i][c] + (lm[17+i][c]-botL[i][c])/2
			out[22+i][c] = lm[22+i][c] + (lm[22+i][c]-botR[i][c])/2
		}
	}
	return out
}

// convexHull returns the convex hull of ps in counter-clockwise order (in
// image coordinates, y down: clockwise on screen), without repeated points
// (Andrew's monotone chain).
func convexHull(ps []pt) []pt {
	s := append([]pt(nil), ps...)
	sort.Slice(s, func(i, j int) bool {
		if s[i][0] != s[j][0] {
			return s[i][0] < s[j][0]
		}
		return s[i][1] < s[j][1]
	})
	if len(s) < 3 {
		return s
	}
	cross := func(o, a, b pt) float64 {
		return (a[0]-o[0])*(b[1]-o[1]) - (a[1]-o[1])*(b[0]-o[0])
	}
	h := make([]pt, 0, 2*len(s))
	for _, p := range s {
		for len(h) >= 2 && cross(h[len(h)-2], h[len(h)-1], p) <= 0 {
			h = h[:len(h)-1]
		}
		h = append(h, p)
	}
	lower := len(h) + 1
	for i := len(s) - 2; i >= 0; i-- {
		p := s[i]
		for len(h) >= lower && cross(h[len(h)-2], h[len(h)-1], p) <= 0 {
			h = h[:len(h)-1]
		}
		h = append(h, p)
	}
	return h[:len(h)-1]
}

// fillConvex sets to 255 the pixels of a w x h mask whose centres (x+0.5,
// y+0.5) lie inside the convex polygon poly (a pixel covers [x, x+1)).
func fillConvex(m []uint8, w, h int, poly []pt) {
	if len(poly) < 3 {
		return
	}
	minY, maxY := math.Inf(1), math.Inf(-1)
	for _, p := range poly {
		minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
	}
	y0 := max(0, int(math.Ceil(minY-0.5)))
	y1 := min(h-1, int(math.Floor(maxY-0.5)))
	for y := y0; y <= y1; y++ {
		cy := float64(y) + 0.5
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := range poly {
			a, b := poly[i], poly[(i+1)%len(poly)]
			if (a[1] <= cy && b[1] >= cy) || (b[1] <= cy && a[1] >= cy) {
				var x float64
				if a[1] == b[1] {
					lo, hi = math.Min(lo, math.Min(a[0], b[0])), math.Max(hi, math.Max(a[0], b[0]))
					continue
				}
				x = a[0] + (cy-a[1])*(b[0]-a[0])/(b[1]-a[1])
				lo, hi = math.Min(lo, x), math.Max(hi, x)
			}
		}
		if lo > hi {
			continue
		}
		x0 := max(0, int(math.Ceil(lo-0.5)))
		x1 := min(w-1, int(math.Floor(hi-0.5)))
		row := m[y*w:]
		for x := x0; x <= x1; x++ {
			row[x] = 255
		}
	}
}

// hullMask draws the initial binary mask (0 or 255) of kind h.
func hullMask(lm []pt, h Hull, w, ht int) []uint8 {
	m := make([]uint8, w*ht)
	for _, part := range hullParts(lm, h) {
		fillConvex(m, w, ht, convexHull(part))
	}
	return m
}
