package detect

import (
	"fmt"
	"image"
	"image/draw"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/viz"
)

// mark is a face to draw on an overlay.
type mark struct {
	crop  face.Box    // the square the model looked at: the patch map covers it
	patch [][]float64 // G x G, nil to draw the box and score only
	pFake float64
	label string
}

// rect rounds a box to pixels.
func rect(b face.Box) image.Rectangle {
	r := func(v float32) int { return int(math.Round(float64(v))) }
	return image.Rect(r(b.X0), r(b.Y0), r(b.X1), r(b.Y1))
}

// drawFaces draws every face on a copy of img with viz.Overlay: its patch
// map upsampled smoothly over the square the model looked at, the square's
// outline and the label and score. With several faces, the heat maps are
// drawn first, from the least to the most suspicious face (which ends up
// on top where squares overlap), then the outlines and scores in the same
// order, so that no heat map hides a score; the colour-scale legend is
// drawn once, in the corner farthest from the most suspicious face.
func drawFaces(img *image.RGBA, marks []mark) (*image.RGBA, error) {
	var order []int
	for i, m := range marks {
		if !rect(m.crop).Intersect(img.Rect).Empty() {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("overlay: no face inside the picture")
	}
	sort.SliceStable(order, func(a, b int) bool { return marks[order[a]].pFake < marks[order[b]].pFake })
	if len(order) == 1 {
		m := marks[order[0]]
		return viz.Overlay(img, rect(m.crop), flat(m.patch), len(m.patch), m.pFake, m.label)
	}
	cur := image.NewRGBA(img.Rect)
	copy(cur.Pix, img.Pix)
	for _, i := range order { // heat maps
		m := marks[i]
		box := rect(m.crop)
		if m.patch == nil {
			continue
		}
		over, err := viz.Overlay(cur, box, flat(m.patch), len(m.patch), m.pFake, m.label)
		if err != nil {
			return nil, err
		}
		heat := box.Intersect(img.Rect)
		draw.Draw(cur, heat, over, heat.Min, draw.Src)
	}
	for n, i := range order { // outlines, scores and, last, the legend
		m := marks[i]
		box := rect(m.crop)
		over, err := viz.Overlay(cur, box, nil, 0, m.pFake, m.label)
		if err != nil {
			return nil, err
		}
		if n == len(order)-1 {
			return over, nil
		}
		region, err := decorations(img.Rect, box, m.pFake, m.label)
		if err != nil {
			return nil, err
		}
		draw.Draw(cur, region, over, region.Min, draw.Src)
	}
	return cur, nil
}

// decorations returns the rectangle that viz.Overlay covers with the heat
// map, the outline and the score chip of a face (not its legend) on a
// picture of bounds b: it draws them on a transparent picture and finds
// the pixels in the outline's colour (the chip is filled with it too).
func decorations(b, box image.Rectangle, score float64, label string) (image.Rectangle, error) {
	probe, err := viz.Overlay(image.NewRGBA(b), box, nil, 0, score, label)
	if err != nil {
		return image.Rectangle{}, err
	}
	heat := box.Intersect(b)
	// The outline: a ring just outside the box; find its colour.
	var accent [4]uint8
	found := false
	for _, p := range []image.Point{
		{box.Min.X + box.Dx()/2, box.Min.Y - 1}, {box.Min.X + box.Dx()/2, box.Max.Y},
		{box.Min.X - 1, box.Min.Y + box.Dy()/2}, {box.Max.X, box.Min.Y + box.Dy()/2},
	} {
		if p.In(b) {
			o := probe.PixOffset(p.X, p.Y)
			if px := probe.Pix[o : o+4]; px[3] == 255 {
				copy(accent[:], px)
				found = true
				break
			}
		}
	}
	if !found { // the box covers the picture
		return b, nil
	}
	region := heat
	// The chip sits just above or below the box, or inside it at the top:
	// search the rows around the box.
	reach := max(box.Dy()/2, 160)
	for y := max(b.Min.Y, box.Min.Y-reach); y < min(b.Max.Y, box.Max.Y+reach); y++ {
		row := probe.Pix[probe.PixOffset(b.Min.X, y):]
		for x := 0; x < b.Dx(); x++ {
			px := row[4*x : 4*x+4]
			if px[3] == 255 && px[0] == accent[0] && px[1] == accent[1] && px[2] == accent[2] {
				region = region.Union(image.Rect(b.Min.X+x, y, b.Min.X+x+1, y+1))
			}
		}
	}
	return region.Intersect(b), nil
}

// HeatmapNames names the overlay file of every input (in Options.Heatmaps)
// after the input's file name: its base name without the extension,
// characters other than letters, digits, '-', '_' and '.' replaced by '_',
// plus ".heatmap.png"; "-2", "-3", ... tell apart inputs of the same name.
// AnalyzeAll names the overlays so unless Input.Heatmap is set; a caller
// that analyses a list in parts (shards of a batch job, a rerun of what is
// left) names them over the whole list and sets Input.Heatmap, so that the
// names do not depend on the parts.
func HeatmapNames(ins []Input) []string {
	used := map[string]bool{}
	names := make([]string, len(ins))
	for i, in := range ins {
		base := filepath.Base(strings.ReplaceAll(in.name(), `\`, "/"))
		stem := strings.TrimSuffix(base, filepath.Ext(base))
		var sb strings.Builder
		for _, c := range stem {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
				sb.WriteRune(c)
			default:
				sb.WriteByte('_')
			}
		}
		s := strings.TrimLeft(sb.String(), ".")
		if len(s) > 100 {
			s = s[:100]
		}
		if s == "" {
			s = "input"
		}
		name := s + ".heatmap.png"
		for k := 2; used[name]; k++ {
			name = fmt.Sprintf("%s-%d.heatmap.png", s, k)
		}
		used[name] = true
		names[i] = name
	}
	return names
}
