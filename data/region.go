package data

import (
	"math"

	"github.com/lvnet-go/lvnet/augment"
)

// Landmark index ranges (dlib's 68-point layout), end exclusive.
var landmarkRanges = map[string][][2]int{
	"mouth": {{48, 68}},
	"nose":  {{27, 35}},
	"eyes":  {{36, 42}, {42, 48}}, // right eye, left eye
}

// RegionBox returns the SSPSL reference box [x0, x1) x [y0, y1) of a region
// ("mouth", "nose" or "eyes") from landmarks: the bounding box of the
// region's points padded by 5 pixels (the authors' datasets/util.py),
// clipped to a w x h image. ok is false when the landmarks are too few or
// the box is empty.
func RegionBox(lm [][2]float32, region string, w, h int) (x0, y0, x1, y1 int, ok bool) {
	rs, known := landmarkRanges[region]
	if !known {
		return 0, 0, 0, 0, false
	}
	minX, minY := math.Inf(1), math.Inf(1)
	maxX, maxY := math.Inf(-1), math.Inf(-1)
	for _, r := range rs {
		if len(lm) < r[1] {
			return 0, 0, 0, 0, false
		}
		for _, p := range lm[r[0]:r[1]] {
			x, y := float64(p[0]), float64(p[1])
			if math.IsNaN(x) || math.IsNaN(y) {
				return 0, 0, 0, 0, false
			}
			minX, maxX = math.Min(minX, x), math.Max(maxX, x)
			minY, maxY = math.Min(minY, y), math.Max(maxY, y)
		}
	}
	x0 = clampInt(int(math.Round(minX))-5, 0, w)
	x1 = clampInt(int(math.Round(maxX))+5, 0, w)
	y0 = clampInt(int(math.Round(minY))-5, 0, h)
	y1 = clampInt(int(math.Round(maxY))+5, 0, h)
	return x0, y0, x1, y1, x1 > x0 && y1 > y0
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// regionMask draws the reference box as a w x h mask (255 inside); an
// unusable box gives an all-zero mask.
func regionMask(lm [][2]float32, region string, w, h int) *augment.Image {
	m := augment.New(w, h, 1)
	x0, y0, x1, y1, ok := RegionBox(lm, region, w, h)
	if !ok {
		return m
	}
	for y := y0; y < y1; y++ {
		row := m.Pix[y*w+x0 : y*w+x1]
		for i := range row {
			row[i] = 255
		}
	}
	return m
}
