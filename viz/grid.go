package viz

import (
	"image"
	"image/draw"
	"math"

	xdraw "golang.org/x/image/draw"
)

// Contact sheet geometry.
const (
	sheetMaxCell = 400 // widest cell, in pixels; larger images are shrunk
	sheetGap     = 10  // space between and around cells
	sheetFontPx  = 14  // caption font size

	sheetBackground = 0xf4f4f4
	sheetCaption    = 0x222222
)

// Grid lays images out as a contact sheet with cols columns (cols <= 0
// picks a near-square layout), each image shrunk if needed to fit a common
// cell at most 400 pixels wide and centred in it, with its caption (may be
// shorter than images, or nil) below it, shortened with an ellipsis to fit.
// Nil images leave their cell empty.
func Grid(images []image.Image, cols int, captions []string) *image.RGBA {
	n := len(images)
	if n == 0 {
		img := image.NewRGBA(image.Rect(0, 0, 2*sheetGap, 2*sheetGap))
		draw.Draw(img, img.Bounds(), image.NewUniform(rgb(sheetBackground)), image.Point{}, draw.Src)
		return img
	}
	if cols <= 0 {
		cols = int(math.Ceil(math.Sqrt(float64(n))))
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols

	cw := 1
	for _, im := range images {
		if im != nil {
			cw = max(cw, im.Bounds().Dx())
		}
	}
	cw = min(cw, sheetMaxCell)
	ch := 1
	for _, im := range images {
		if im != nil {
			ch = max(ch, scaledSize(im.Bounds(), cw, math.MaxInt).Y)
		}
	}
	face, err := newFace(false, sheetFontPx)
	capH := 0
	if err == nil && len(captions) > 0 {
		_, capH = textSize(face, "Ag")
		capH += 4
	}
	W := sheetGap + cols*(cw+sheetGap)
	H := sheetGap + rows*(ch+capH+sheetGap)
	sheet := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(rgb(sheetBackground)), image.Point{}, draw.Src)
	for i, im := range images {
		cell := image.Rect(0, 0, cw, ch).Add(image.Pt(sheetGap+(i%cols)*(cw+sheetGap), sheetGap+(i/cols)*(ch+capH+sheetGap)))
		if im != nil {
			s := scaledSize(im.Bounds(), cw, ch)
			r := image.Rectangle{Max: s}.Add(cell.Min.Add(image.Pt((cw-s.X)/2, (ch-s.Y)/2)))
			if s == im.Bounds().Size() {
				draw.Draw(sheet, r, im, im.Bounds().Min, draw.Src)
			} else {
				xdraw.CatmullRom.Scale(sheet, r, im, im.Bounds(), draw.Src, nil)
			}
		}
		if capH > 0 && i < len(captions) {
			c := fit(face, captions[i], cw)
			tw, _ := textSize(face, c)
			capRect := image.Rect(cell.Min.X, cell.Max.Y, cell.Max.X, cell.Max.Y+capH)
			drawText(clipped(sheet, capRect), face, image.Pt(cell.Min.X+(cw-tw)/2, cell.Max.Y+2), c, rgb(sheetCaption))
		}
	}
	return sheet
}

// scaledSize is the size of b shrunk (never enlarged) to fit w x h,
// keeping its aspect ratio.
func scaledSize(b image.Rectangle, w, h int) image.Point {
	f := math.Min(1, math.Min(float64(w)/float64(b.Dx()), float64(h)/float64(b.Dy())))
	return image.Pt(max(1, int(math.Round(float64(b.Dx())*f))), max(1, int(math.Round(float64(b.Dy())*f))))
}
