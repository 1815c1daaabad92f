package face

import (
	"image"
	"image/color"
	"math"
	"testing"
)

// frameWithSquare returns a w x h grey frame with a red square [x0, x1) x
// [y0, y1), and a mask of the same square.
func frameWithSquare(w, h int, sq image.Rectangle) (*image.RGBA, *image.Gray) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	mask := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{90, 90, 90, 255}
			if image.Pt(x, y).In(sq) {
				c = color.RGBA{230, 20, 20, 255}
				mask.SetGray(x, y, color.Gray{255})
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img, mask
}

func TestCropBox(t *testing.T) {
	bounds := image.Rect(0, 0, 400, 300)
	for _, tc := range []struct {
		name string
		b    Box
		o    CropOptions
		want Box
	}{
		{"centred", Box{100, 50, 200, 150}, CropOptions{}, Box{85, 35, 215, 165}},
		{"tall box", Box{100, 50, 180, 150}, CropOptions{Scale: 1}, Box{90, 50, 190, 150}},
		{"padded at border", Box{0, 0, 100, 100}, CropOptions{Scale: 2}, Box{-50, -50, 150, 150}},
		{"clamped at border", Box{0, 0, 100, 100}, CropOptions{Scale: 2, Clamp: true}, Box{0, 0, 200, 200}},
		{"clamped right", Box{350, 200, 400, 300}, CropOptions{Scale: 1.2, Clamp: true}, Box{280, 180, 400, 300}},
		{"too big to clamp", Box{0, 0, 400, 300}, CropOptions{Scale: 1, Clamp: true}, Box{0, -50, 400, 350}},
	} {
		got := CropBox(tc.b, bounds, tc.o)
		if math.Abs(float64(got.X0-tc.want.X0))+math.Abs(float64(got.Y0-tc.want.Y0))+
			math.Abs(float64(got.X1-tc.want.X1))+math.Abs(float64(got.Y1-tc.want.Y1)) > 1e-3 {
			t.Errorf("%s: CropBox(%v) = %v, want %v", tc.name, tc.b, got, tc.want)
		}
	}
}

func TestCropGeometry(t *testing.T) {
	// A red square [120, 180) x [70, 130) and a face box around it: the
	// crop square is [85, 215) x [35, 165) (130 px), so at Size 260 the red
	// square is [70, 190) x [70, 190) in the crop, and landmarks follow.
	img, mask := frameWithSquare(400, 300, image.Rect(120, 70, 180, 130))
	f := Face{Box: Box{100, 50, 200, 150}}
	f.Landmarks[0] = [2]float32{150, 100} // centre
	f.Landmarks[1] = [2]float32{120, 70}  // corner of the red square
	f.Landmarks[2] = [2]float32{85, 35}   // corner of the crop
	crop, lm, box := Crop(img, f, CropOptions{Size: 260})
	if crop.Rect != image.Rect(0, 0, 260, 260) {
		t.Fatalf("crop bounds %v", crop.Rect)
	}
	for i, want := range [][2]float32{{130, 130}, {70, 70}, {0, 0}} {
		if math.Abs(float64(lm[i][0]-want[0])) > 1e-3 || math.Abs(float64(lm[i][1]-want[1])) > 1e-3 {
			t.Errorf("landmark %d in crop %v, want %v", i, lm[i], want)
		}
		if back := FromCrop(lm[i], box, 260); math.Abs(float64(back[0]-f.Landmarks[i][0])) > 1e-3 {
			t.Errorf("landmark %d back in the image %v, want %v", i, back, f.Landmarks[i])
		}
	}
	isRed := func(c color.RGBA) bool { return c.R > 160 && c.G < 60 }
	cm := CropMask(mask, box, 260)
	for y := 0; y < 260; y++ {
		for x := 0; x < 260; x++ {
			inside := x >= 70 && x < 190 && y >= 70 && y < 190
			edge := (x >= 69 && x <= 70) || (x >= 189 && x <= 190) || (y >= 69 && y <= 70) || (y >= 189 && y <= 190)
			if edge {
				continue // blended
			}
			if got := isRed(crop.RGBAAt(x, y)); got != inside {
				t.Fatalf("crop pixel (%d, %d) red=%v, want %v", x, y, got, inside)
			}
			// The mask cut with the same geometry lines up with the picture.
			if m := cm.GrayAt(x, y).Y; (m > 127) != inside {
				t.Fatalf("mask pixel (%d, %d) = %d, want inside=%v", x, y, m, inside)
			}
		}
	}
}

func TestCropMaskAlignment(t *testing.T) {
	// Off-centre square near the border, padded crop: every crop pixel
	// whose colour is red has mask > 127 and the other way round (up to
	// blended edge pixels).
	img, mask := frameWithSquare(320, 240, image.Rect(5, 10, 61, 50))
	f := Face{Box: Box{0, 5, 70, 60}}
	for _, o := range []CropOptions{{}, {Scale: 1.7, Size: 128}, {Scale: 1.5, Size: 97, Clamp: true}} {
		crop, _, box := Crop(img, f, o)
		cm := CropMask(mask, box, crop.Rect.Dx())
		mismatch, red := 0, 0
		for y := 0; y < crop.Rect.Dy(); y++ {
			for x := 0; x < crop.Rect.Dx(); x++ {
				c := crop.RGBAAt(x, y)
				r := c.R > 160 && c.G < 60
				if r {
					red++
				}
				if r != (cm.GrayAt(x, y).Y > 127) {
					mismatch++
				}
			}
		}
		// Only blended edge pixels may disagree: fewer than the perimeter.
		if red == 0 || mismatch > 4*crop.Rect.Dx() {
			t.Errorf("%+v: %d red pixels, %d mismatches with the mask", o, red, mismatch)
		}
	}
}

func TestCropPadsBlack(t *testing.T) {
	img, _ := frameWithSquare(100, 100, image.Rect(0, 0, 0, 0))
	crop, _, box := Crop(img, Face{Box: Box{0, 0, 50, 50}}, CropOptions{Scale: 2, Size: 100})
	if box != (Box{-25, -25, 75, 75}) {
		t.Fatalf("box %v", box)
	}
	for _, p := range []image.Point{{5, 5}, {24, 50}, {50, 24}} {
		if c := crop.RGBAAt(p.X, p.Y); c != (color.RGBA{0, 0, 0, 255}) {
			t.Errorf("outside the image at %v: %v, want opaque black", p, c)
		}
	}
	for _, p := range []image.Point{{25, 25}, {60, 60}, {99, 99}} {
		if c := crop.RGBAAt(p.X, p.Y); c != (color.RGBA{90, 90, 90, 255}) {
			t.Errorf("inside the image at %v: %v, want the frame's grey", p, c)
		}
	}
}

func TestTracker(t *testing.T) {
	box := func(x, y, s float32) Face { return Face{Box: Box{x, y, x + s, y + s}} }
	ids := func(fs []Face) []int {
		var out []int
		for _, f := range fs {
			out = append(out, f.TrackID)
		}
		return out
	}
	tr := NewTracker(TrackerOptions{})
	steps := []struct {
		faces []Face
		want  []int
	}{
		{[]Face{box(100, 100, 80), box(400, 100, 60)}, []int{1, 2}},
		{[]Face{box(410, 105, 60), box(105, 102, 80)}, []int{2, 1}}, // order swapped, moved a little
		{[]Face{box(110, 104, 80)}, []int{1}},                       // person 2 missing...
		{[]Face{box(112, 104, 80)}, []int{1}},                       // ...for two frames
		{[]Face{box(115, 104, 80), box(412, 104, 60)}, []int{1, 2}}, // back: same id
		{[]Face{box(118, 104, 80), box(700, 300, 50)}, []int{1, 3}}, // someone new
		{nil, nil}, {nil, nil}, {nil, nil}, // three frames without faces
		{[]Face{box(118, 104, 80)}, []int{4}}, // gap too long: new id
		{[]Face{box(300, 104, 80)}, []int{5}}, // jumped: no overlap
	}
	for i, s := range steps {
		got := ids(tr.Update(s.faces))
		if len(got) != len(s.want) {
			t.Fatalf("step %d: ids %v, want %v", i, got, s.want)
		}
		for j := range got {
			if got[j] != s.want[j] {
				t.Fatalf("step %d: ids %v, want %v", i, got, s.want)
			}
		}
	}
}

func TestBoxIoU(t *testing.T) {
	for _, tc := range []struct {
		a, b Box
		want float32
	}{
		{Box{0, 0, 10, 10}, Box{0, 0, 10, 10}, 1},
		{Box{0, 0, 10, 10}, Box{5, 0, 15, 10}, 50.0 / 150},
		{Box{0, 0, 10, 10}, Box{10, 10, 20, 20}, 0},
		{Box{0, 0, 0, 0}, Box{0, 0, 0, 0}, 0},
	} {
		if got := tc.a.IoU(tc.b); math.Abs(float64(got-tc.want)) > 1e-6 {
			t.Errorf("IoU(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if r := (Box{1.5, 2.2, 10.1, 20}).Rect(); r != image.Rect(1, 2, 11, 20) {
		t.Errorf("Rect = %v", r)
	}
}
