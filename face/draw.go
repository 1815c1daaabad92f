package face

import (
	"image"
	"image/color"
	"math"
)

// Draw marks face f on img for inspection: its box, the landmark outlines
// (jaw, brows, nose, eyes, mouth) and a dot on each landmark.
func Draw(img *image.RGBA, f Face, c color.RGBA) {
	b := f.Box
	corners := [4][2]float32{{b.X0, b.Y0}, {b.X1, b.Y0}, {b.X1, b.Y1}, {b.X0, b.Y1}}
	for i := range corners {
		line(img, corners[i], corners[(i+1)%4], c)
	}
	if f.Landmarks == ([NumLandmarks][2]float32{}) {
		return
	}
	parts := [][3]int{ // start, end, closed
		{JawStart, JawEnd, 0}, {RightBrowStart, RightBrowEnd, 0}, {LeftBrowStart, LeftBrowEnd, 0},
		{NoseStart, 31, 0}, {31, NoseEnd, 0}, {RightEyeStart, RightEyeEnd, 1}, {LeftEyeStart, LeftEyeEnd, 1},
		{MouthStart, 60, 1}, {60, MouthEnd, 1},
	}
	for _, p := range parts {
		for i := p[0]; i+1 < p[1]; i++ {
			line(img, f.Landmarks[i], f.Landmarks[i+1], c)
		}
		if p[2] == 1 {
			line(img, f.Landmarks[p[1]-1], f.Landmarks[p[0]], c)
		}
	}
	dot := color.RGBA{255 - c.R, 255 - c.G, 255 - c.B, 255}
	for _, p := range f.Landmarks {
		x, y := int(math.Floor(float64(p[0]))), int(math.Floor(float64(p[1])))
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				if image.Pt(x+dx, y+dy).In(img.Rect) {
					img.SetRGBA(x+dx, y+dy, dot)
				}
			}
		}
	}
}

// line draws a 1-pixel segment between two points (clipped to the image).
func line(img *image.RGBA, a, b [2]float32, c color.RGBA) {
	dx, dy := float64(b[0]-a[0]), float64(b[1]-a[1])
	n := int(math.Ceil(math.Max(math.Abs(dx), math.Abs(dy))))
	for i := 0; i <= n; i++ {
		t := 0.0
		if n > 0 {
			t = float64(i) / float64(n)
		}
		x := int(math.Floor(float64(a[0]) + dx*t))
		y := int(math.Floor(float64(a[1]) + dy*t))
		if image.Pt(x, y).In(img.Rect) {
			img.SetRGBA(x, y, c)
		}
	}
}
