package viz

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
)

// Colours of the overlay decorations, as 0xRRGGBB.
const (
	fakeHex  = 0xe53935 // box and chip of a face scored fake
	realHex  = 0x2e9d4f // ... scored real
	panelHex = 0x1e1e1e // Panel background
)

// rgb converts 0xRRGGBB to an opaque colour.
func rgb(hex uint32) color.RGBA {
	return color.RGBA{uint8(hex >> 16), uint8(hex >> 8), uint8(hex), 0xff}
}

// Heat opacity: a patch of probability p is blended with alpha
// heatAlpha0 + heatAlphaP*p, so forged regions stand out while the face
// stays visible under confident-real regions.
const (
	heatAlpha0 = 0.35
	heatAlphaP = 0.25
)

// HeatColor is the colour of probability v in overlays and their legend:
// the turbo map from its blue (0.1) to its dark red end (1), skipping the
// near-black start so that low probabilities still read as blue on a face.
func HeatColor(v float64) color.RGBA {
	return Turbo(0.1 + 0.9*math.Max(0, math.Min(1, v)))
}

// layout is where Overlay draws, in image coordinates.
type layout struct {
	px      float64         // font size in pixels
	thick   int             // box outline thickness
	box     image.Rectangle // the face box as given
	heat    image.Rectangle // box clipped to the image: the heat map
	outline image.Rectangle // box grown by thick, clipped: heat map plus outline
	chip    image.Rectangle // score text chip
	legend  image.Rectangle // colour-scale legend panel
	text    string          // score text
}

// fontPx is the font size Overlay uses on an image of bounds b.
func fontPx(b image.Rectangle) float64 {
	return math.Max(12, math.Min(40, math.Round(float64(min(b.Dx(), b.Dy()))/28)))
}

// legendMetrics returns the sizes of the legend parts at font size px.
func legendMetrics(face font.Face) (pad, barW, labelW, titleW, lineH int) {
	titleW, lineH = textSize(face, "p(fake)")
	labelW, _ = textSize(face, "0.5")
	pad = lineH/2 + 3
	barW = max(8, lineH*3/4)
	return pad, barW, labelW, titleW, lineH
}

// tickLen and tickGap are the length of a legend tick and the space
// between it and its label.
func tickLen(pad int) int { return max(2, pad/4) }
func tickGap(pad int) int { return max(3, pad/3) }

// legendSize is the size of the legend panel for an image h pixels high.
func legendSize(face font.Face, h int) image.Point {
	pad, barW, labelW, titleW, lineH := legendMetrics(face)
	w := pad + max(barW+tickLen(pad)+tickGap(pad)+labelW, titleW) + pad
	return image.Pt(w, pad+lineH+pad/2+legendBarH(face, h)+pad)
}

// legendBarH is the height of the colour bar for an image h pixels high.
func legendBarH(face font.Face, h int) int {
	_, _, _, _, lineH := legendMetrics(face)
	return max(3*lineH, h*3/10)
}

// chipSize is the size of the score chip showing text.
func chipSize(face font.Face, text string) image.Point {
	tw, th := textSize(face, text)
	padX, padY := th/3+2, th/6+1
	return image.Pt(tw+2*padX, th+2*padY)
}

// plan computes where everything goes on an image of bounds b; face is
// the chip's font and small the legend's.
func plan(b, box image.Rectangle, face, small font.Face, px float64, text string) layout {
	l := layout{px: px, box: box, text: text}
	l.thick = max(2, int(math.Round(px/7)))
	l.heat = box.Intersect(b)
	l.outline = box.Inset(-l.thick).Intersect(b)

	cs := chipSize(face, text)
	outer := box.Inset(-l.thick)
	x := min(max(outer.Min.X, b.Min.X), b.Max.X-cs.X)
	y := outer.Min.Y - cs.Y // above the box
	if y < b.Min.Y {
		y = outer.Max.Y // below
		if y+cs.Y > b.Max.Y {
			y = max(box.Min.Y, b.Min.Y) // inside, at the top
		}
	}
	l.chip = image.Rectangle{Min: image.Pt(x, y), Max: image.Pt(x+cs.X, y+cs.Y)}.Intersect(b)

	ls := legendSize(small, b.Dy())
	m := int(px / 2)
	corners := []image.Point{
		{b.Max.X - m - ls.X, b.Min.Y + m}, // top right
		{b.Min.X + m, b.Min.Y + m},        // top left
		{b.Max.X - m - ls.X, b.Max.Y - m - ls.Y},
		{b.Min.X + m, b.Max.Y - m - ls.Y},
	}
	best := -1
	for _, c := range corners {
		r := image.Rectangle{Min: c, Max: c.Add(ls)}
		cost := area(r.Intersect(l.outline)) + area(r.Intersect(l.chip))
		if best < 0 || cost < best {
			best, l.legend = cost, r.Intersect(b)
		}
	}
	return l
}

func area(r image.Rectangle) int {
	if r.Empty() {
		return 0
	}
	return r.Dx() * r.Dy()
}

// Overlay draws on a copy of base: the g x g patch forgery probabilities
// (row-major, in [0, 1]) upsampled smoothly to the face box and blended in
// as a turbo colour map (blue 0 to red 1), the box outline (red when score
// > 0.5, green otherwise), the text "label score" (e.g. "fake 0.93") above
// the box, and a colour-scale legend in the image corner farthest from the
// box. grid may be nil to draw only the box, score and legend. The result
// has base's bounds; box is in base's coordinates and may stick out of it.
func Overlay(base image.Image, box image.Rectangle, grid []float64, g int, score float64, label string) (*image.RGBA, error) {
	img, _, err := overlay(base, box, grid, g, score, label, fontPx(base.Bounds()))
	return img, err
}

// overlay implements Overlay at font size px and also returns where it drew.
func overlay(base image.Image, box image.Rectangle, grid []float64, g int, score float64, label string, px float64) (*image.RGBA, layout, error) {
	b := base.Bounds()
	if box.Intersect(b).Empty() {
		return nil, layout{}, fmt.Errorf("overlay: face box %v lies outside the image %v", box, b)
	}
	if math.IsNaN(score) {
		return nil, layout{}, errors.New("overlay: score is NaN")
	}
	var heat []float64
	if grid != nil {
		if g <= 0 || len(grid) != g*g {
			return nil, layout{}, fmt.Errorf("overlay: patch map has %d values, want %dx%d", len(grid), g, g)
		}
		for i, v := range grid {
			if math.IsNaN(v) {
				return nil, layout{}, fmt.Errorf("overlay: patch %d is NaN", i)
			}
		}
		var err error
		if heat, err = Heatmap(grid, g, box.Dx(), box.Dy()); err != nil {
			return nil, layout{}, fmt.Errorf("overlay: %w", err)
		}
	}
	bold, err := newFace(true, px)
	if err != nil {
		return nil, layout{}, fmt.Errorf("overlay: %w", err)
	}
	small, err := newFace(false, math.Round(px*0.85))
	if err != nil {
		return nil, layout{}, fmt.Errorf("overlay: %w", err)
	}
	text := fmt.Sprintf("%s %.2f", label, score)
	l := plan(b, box, bold, small, px, text)

	dst := image.NewRGBA(b)
	draw.Draw(dst, b, base, b.Min, draw.Src)
	if heat != nil {
		for y := l.heat.Min.Y; y < l.heat.Max.Y; y++ {
			row := heat[(y-box.Min.Y)*box.Dx():]
			for x := l.heat.Min.X; x < l.heat.Max.X; x++ {
				v := row[x-box.Min.X]
				blend(dst, x, y, HeatColor(v), heatAlpha0+heatAlphaP*math.Max(0, math.Min(1, v)))
			}
		}
	}
	accent := rgb(realHex)
	if score > 0.5 {
		accent = rgb(fakeHex)
	}
	// Outline: the ring between the box and the box grown by thick.
	for _, r := range []image.Rectangle{
		{Min: l.outline.Min, Max: image.Pt(l.outline.Max.X, box.Min.Y)},
		{Min: image.Pt(l.outline.Min.X, box.Max.Y), Max: l.outline.Max},
		{Min: image.Pt(l.outline.Min.X, box.Min.Y), Max: image.Pt(box.Min.X, box.Max.Y)},
		{Min: image.Pt(box.Max.X, box.Min.Y), Max: image.Pt(l.outline.Max.X, box.Max.Y)},
	} {
		draw.Draw(dst, r.Intersect(l.outline), image.NewUniform(accent), image.Point{}, draw.Src)
	}
	// Score chip.
	draw.Draw(dst, l.chip, image.NewUniform(accent), image.Point{}, draw.Src)
	cs := chipSize(bold, text)
	tw, th := textSize(bold, text)
	drawText(clipped(dst, l.chip), bold, l.chip.Min.Add(image.Pt((cs.X-tw)/2, (cs.Y-th)/2)), text, color.White)
	drawLegend(dst, l.legend, small, b.Dy())
	return dst, l, nil
}

// drawLegend draws the colour-scale legend panel into r.
func drawLegend(dst *image.RGBA, r image.Rectangle, face font.Face, h int) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			blend(dst, x, y, color.RGBA{0, 0, 0, 255}, 0.62)
		}
	}
	pad, barW, _, titleW, lineH := legendMetrics(face)
	barH := legendBarH(face, h)
	c := clipped(dst, r)
	inner := r.Dx() - 2*pad
	drawText(c, face, r.Min.Add(image.Pt(pad+(inner-titleW)/2, pad)), "p(fake)", color.White)
	bar := image.Rectangle{Min: r.Min.Add(image.Pt(pad, pad+lineH+pad/2))}
	bar.Max = bar.Min.Add(image.Pt(barW, barH))
	for y := bar.Min.Y; y < bar.Max.Y; y++ {
		v := 1 - float64(y-bar.Min.Y)/float64(max(1, barH-1))
		draw.Draw(c, image.Rect(bar.Min.X, y, bar.Max.X, y+1), image.NewUniform(HeatColor(v)), image.Point{}, draw.Src)
	}
	for _, tick := range []struct {
		v float64
		s string
	}{{1, "1"}, {0.5, "0.5"}, {0, "0"}} {
		y := bar.Min.Y + int(math.Round((1-tick.v)*float64(barH-1)))
		draw.Draw(c, image.Rect(bar.Max.X, y, bar.Max.X+tickLen(pad), y+1), image.White, image.Point{}, draw.Src)
		drawText(c, face, image.Pt(bar.Max.X+tickLen(pad)+tickGap(pad), y-lineH/2), tick.s, color.White)
	}
}

// blend mixes colour c into dst at (x, y) with opacity a.
func blend(dst *image.RGBA, x, y int, c color.RGBA, a float64) {
	i := dst.PixOffset(x, y)
	p := dst.Pix[i : i+4 : i+4]
	p[0] = uint8(math.Round(float64(p[0])*(1-a) + float64(c.R)*a))
	p[1] = uint8(math.Round(float64(p[1])*(1-a) + float64(c.G)*a))
	p[2] = uint8(math.Round(float64(p[2])*(1-a) + float64(c.B)*a))
}

// clipped returns a view of dst limited to r, so text never spills out of
// its region.
func clipped(dst *image.RGBA, r image.Rectangle) *image.RGBA {
	return dst.SubImage(r).(*image.RGBA)
}

// Panel shows a face crop on its own: the crop (enlarged to at least 320
// pixels on its longer side) on a dark canvas with room above for the score
// and to the right for the legend, overlaid like Overlay with the whole
// crop as the face box.
func Panel(face image.Image, grid []float64, g int, score float64, label string) (*image.RGBA, error) {
	fb := face.Bounds()
	if fb.Empty() {
		return nil, errors.New("panel: empty face image")
	}
	w, h := fb.Dx(), fb.Dy()
	if m := max(w, h); m < 320 {
		w, h = w*320/m, h*320/m
	}
	px := math.Max(12, math.Min(40, math.Round(float64(min(w, h))/18)))
	bold, err := newFace(true, px)
	if err != nil {
		return nil, fmt.Errorf("panel: %w", err)
	}
	small, err := newFace(false, math.Round(px*0.85))
	if err != nil {
		return nil, fmt.Errorf("panel: %w", err)
	}
	m := int(px / 2)
	thick := max(2, int(math.Round(px/7)))
	top := chipSize(bold, fmt.Sprintf("%s %.2f", label, score)).Y + thick
	ls := legendSize(small, h+top+m)
	box := image.Rect(m+thick, top+m, m+thick+w, top+m+h)
	canvas := image.NewRGBA(image.Rect(0, 0, box.Max.X+thick+m+ls.X+m, max(box.Max.Y+thick+m, ls.Y+2*m)))
	draw.Draw(canvas, canvas.Bounds(), image.NewUniform(rgb(panelHex)), image.Point{}, draw.Src)
	xdraw.CatmullRom.Scale(canvas, box, face, fb, draw.Src, nil)
	img, _, err := overlay(canvas, box, grid, g, score, label, px)
	if err != nil {
		return nil, fmt.Errorf("panel: %w", err)
	}
	return img, nil
}
