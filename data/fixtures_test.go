package data

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// red and teal are the colours of the test scenes: a red square (the
// forged area) on a teal background.
var (
	red  = color.RGBA{255, 0, 0, 255}
	teal = color.RGBA{0, 160, 255, 255}
)

// scene returns a w x h image with a red square at (x0, y0) of the given
// side on teal, and its mask (255 on the square).
func scene(w, h, x0, y0, side int) (*image.RGBA, *image.Gray) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	mask := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if x >= x0 && x < x0+side && y >= y0 && y < y0+side {
				img.SetRGBA(x, y, red)
				mask.SetGray(x, y, color.Gray{255})
			} else {
				img.SetRGBA(x, y, teal)
			}
		}
	}
	return img, mask
}

// flat returns a w x h image of one colour.
func flat(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

// writePNG encodes img to path, creating directories.
func writePNG(t testing.TB, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes text to path, creating directories.
func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeJSON marshals v to path.
func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

// panels lays images side by side (the authors' face | mask | extra).
func panels(imgs ...image.Image) *image.RGBA {
	w, h := imgs[0].Bounds().Dx(), imgs[0].Bounds().Dy()
	out := image.NewRGBA(image.Rect(0, 0, w*len(imgs), h))
	for k, im := range imgs {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				out.Set(k*w+x, y, im.At(x, y))
			}
		}
	}
	return out
}

// npyBytes encodes points as a little-endian float32 (N, 2) .npy file.
func npyBytes(pts [][2]float32) []byte {
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': (" + strconv.Itoa(len(pts)) + ", 2), }"
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	hdr += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	for _, p := range pts {
		binary.Write(&b, binary.LittleEndian, math.Float32bits(p[0]))
		binary.Write(&b, binary.LittleEndian, math.Float32bits(p[1]))
	}
	return b.Bytes()
}

// landmarks68 returns 68 points with the mouth (48-67) spanning
// x 20..30, y 40..44, the nose (27-34) x 24..26, y 20..30, the eyes
// (36-47) x 10..40, y 12..14, everything else at (1, 1).
func landmarks68() [][2]float32 {
	lm := make([][2]float32, 68)
	for i := range lm {
		lm[i] = [2]float32{1, 1}
	}
	for i := 48; i < 68; i++ {
		lm[i] = [2]float32{20 + float32((i-48)%11), 40 + float32((i-48)%5)}
	}
	for i := 27; i < 35; i++ {
		lm[i] = [2]float32{24 + float32((i-27)%3), 20 + float32(i-27)*10/7}
	}
	for i := 36; i < 48; i++ {
		lm[i] = [2]float32{10 + float32(i-36)*30/11, 12 + float32(i%3)}
	}
	return lm
}
