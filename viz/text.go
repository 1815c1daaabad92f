package viz

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// newFace returns the Go font (bold or regular) at px pixels per em.
func newFace(bold bool, px float64) (font.Face, error) {
	ttf := goregular.TTF
	if bold {
		ttf = gobold.TTF
	}
	f, err := opentype.Parse(ttf)
	if err != nil {
		return nil, fmt.Errorf("parse Go font: %w", err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, fmt.Errorf("font face at %.0f px: %w", px, err)
	}
	return face, nil
}

// textSize returns the advance width of s and the line height of face.
func textSize(face font.Face, s string) (w, h int) {
	m := face.Metrics()
	return font.MeasureString(face, s).Ceil(), (m.Ascent + m.Descent).Ceil()
}

// drawText draws s with its top-left corner at pt, clipped to dst.
func drawText(dst draw.Image, face font.Face, pt image.Point, s string, c color.Color) {
	d := font.Drawer{
		Dst:  dst,
		Src:  image.NewUniform(c),
		Face: face,
		Dot:  fixed.Point26_6{X: fixed.I(pt.X), Y: fixed.I(pt.Y) + face.Metrics().Ascent},
	}
	d.DrawString(s)
}

// fit shortens s with an ellipsis until it is at most w pixels wide.
func fit(face font.Face, s string, w int) string {
	if tw, _ := textSize(face, s); tw <= w {
		return s
	}
	r := []rune(s)
	for len(r) > 0 {
		r = r[:len(r)-1]
		t := string(r) + "…"
		if tw, _ := textSize(face, t); tw <= w {
			return t
		}
	}
	return ""
}
