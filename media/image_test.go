package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
)

// Quadrant colours of the test pictures: top-left, top-right, bottom-left,
// bottom-right.
var (
	red   = color.RGBA{220, 30, 30, 255}
	green = color.RGBA{30, 200, 40, 255}
	blue  = color.RGBA{30, 40, 210, 255}
	white = color.RGBA{250, 250, 250, 255}
)

// quadrants returns a w x h picture of four coloured quadrants.
func quadrants(w, h int, tl, tr, bl, br color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := tl
			switch {
			case x >= w/2 && y < h/2:
				c = tr
			case x < w/2 && y >= h/2:
				c = bl
			case x >= w/2 && y >= h/2:
				c = br
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// near reports whether two colours differ by at most tol per channel.
func near(a, b color.RGBA, tol int) bool {
	d := func(x, y uint8) bool { return int(x)-int(y) <= tol && int(y)-int(x) <= tol }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B)
}

// checkQuadrants checks the centres of the four quadrants of img.
func checkQuadrants(t *testing.T, img *image.RGBA, w, h int, want [4]color.RGBA, tol int) {
	t.Helper()
	if img.Rect != image.Rect(0, 0, w, h) {
		t.Fatalf("bounds %v, want %v", img.Rect, image.Rect(0, 0, w, h))
	}
	pts := [4]image.Point{{w / 4, h / 4}, {3 * w / 4, h / 4}, {w / 4, 3 * h / 4}, {3 * w / 4, 3 * h / 4}}
	for i, p := range pts {
		if got := img.RGBAAt(p.X, p.Y); !near(got, want[i], tol) {
			t.Errorf("quadrant %d at %v: got %v, want %v", i, p, got, want[i])
		}
	}
}

func encode(t *testing.T, format string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	case "bmp":
		err = bmp.Encode(&buf, img)
	case "webp": // no Go encoder: ffmpeg's libwebp, lossless
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.png"), filepath.Join(dir, "out.webp")
		if err := os.WriteFile(in, encode(t, "png", img), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := exec.LookPath("ffmpeg"); err != nil {
			t.Skip("ffmpeg not installed: cannot make a WebP test file")
		}
		cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-i", in, "-c:v", "libwebp", "-lossless", "1", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("ffmpeg cannot encode WebP here: %v: %s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeFormats(t *testing.T) {
	const w, h = 64, 48
	src := quadrants(w, h, red, green, blue, white)
	want := [4]color.RGBA{red, green, blue, white}
	for _, tc := range []struct {
		format string
		tol    int
	}{
		{"png", 0}, {"jpeg", 12}, {"gif", 40}, {"bmp", 0}, {"webp", 3},
	} {
		t.Run(tc.format, func(t *testing.T) {
			b := encode(t, tc.format, src)
			img, err := DecodeImageBytes(b, "x."+tc.format)
			if err != nil {
				t.Fatal(err)
			}
			checkQuadrants(t, img, w, h, want, tc.tol)
			// And through a file.
			p := filepath.Join(t.TempDir(), "x."+tc.format)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			img2, err := DecodeImage(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(img.Pix, img2.Pix) {
				t.Error("file and bytes decode differently")
			}
		})
	}
}

func TestDecodeGIFFirstFrame(t *testing.T) {
	pal := color.Palette{red, green, blue, white}
	frame := func(c uint8) *image.Paletted {
		p := image.NewPaletted(image.Rect(0, 0, 8, 8), pal)
		for i := range p.Pix {
			p.Pix[i] = c
		}
		return p
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, &gif.GIF{Image: []*image.Paletted{frame(1), frame(2)}, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
	img, err := DecodeImageBytes(buf.Bytes(), "anim.gif")
	if err != nil {
		t.Fatal(err)
	}
	if got := img.RGBAAt(3, 3); got != green {
		t.Errorf("pixel of the first frame: got %v, want %v", got, green)
	}
}

// withOrientation inserts an APP1 Exif segment whose IFD0 holds the
// Orientation tag (byte order "II" or "MM") right after the SOI marker.
func withOrientation(jpg []byte, o uint16, order string) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	hdr := []byte("II*\x00")
	if order == "MM" {
		bo, hdr = binary.BigEndian, []byte("MM\x00*")
	}
	tiff := append([]byte{}, hdr...)
	tiff = bo.AppendUint32(tiff, 8)      // IFD0 offset
	tiff = bo.AppendUint16(tiff, 2)      // two entries
	tiff = bo.AppendUint16(tiff, 0x010F) // Make, ASCII, 4 bytes inline
	tiff = bo.AppendUint16(tiff, 2)
	tiff = bo.AppendUint32(tiff, 4)
	tiff = append(tiff, 'G', 'o', '!', 0)
	tiff = bo.AppendUint16(tiff, 0x0112) // Orientation, SHORT
	tiff = bo.AppendUint16(tiff, 3)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint16(tiff, o)
	tiff = bo.AppendUint16(tiff, 0)
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

func TestEXIFOrientation(t *testing.T) {
	// The displayed picture is always 64x32 with red, green, blue, white
	// quadrants (TL, TR, BL, BR). Each case stores the picture the way a
	// camera would for that orientation (EXIF 2.3, tag 0x0112): the
	// stored size and which colour sits in each stored corner.
	const w, h = 64, 32
	want := [4]color.RGBA{red, green, blue, white}
	for _, tc := range []struct {
		o              uint16
		sw, sh         int
		tl, tr, bl, br color.RGBA
	}{
		{1, w, h, red, green, blue, white},
		{2, w, h, green, red, white, blue}, // mirrored
		{3, w, h, white, blue, green, red}, // rotated 180
		{4, w, h, blue, white, red, green}, // flipped
		{5, h, w, red, blue, green, white}, // transposed
		{6, h, w, green, white, red, blue}, // display needs 90 clockwise
		{7, h, w, white, green, blue, red}, // transversed
		{8, h, w, blue, red, white, green}, // display needs 90 counter-clockwise
	} {
		for _, order := range []string{"II", "MM"} {
			t.Run(string(rune('0'+tc.o))+order, func(t *testing.T) {
				stored := quadrants(tc.sw, tc.sh, tc.tl, tc.tr, tc.bl, tc.br)
				b := withOrientation(encode(t, "jpeg", stored), tc.o, order)
				if got := jpegOrientation(b); got != int(tc.o) {
					t.Fatalf("parsed orientation %d, want %d", got, tc.o)
				}
				img, err := DecodeImageBytes(b, "o.jpg")
				if err != nil {
					t.Fatal(err)
				}
				checkQuadrants(t, img, w, h, want, 12)
			})
		}
	}
}

func TestEXIFOrientationIgnoredWhenBad(t *testing.T) {
	jpg := encode(t, "jpeg", quadrants(16, 8, red, green, blue, white))
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"no exif", jpg},
		{"orientation 0", withOrientation(jpg, 0, "II")},
		{"orientation 9", withOrientation(jpg, 9, "MM")},
		{"bad tiff header", bytes.Replace(withOrientation(jpg, 6, "II"), []byte("II*\x00"), []byte("XX*\x00"), 1)},
		{"cut segment", withOrientation(jpg, 6, "II")[:30]},
	} {
		if got := jpegOrientation(tc.b); got != 1 {
			t.Errorf("%s: orientation %d, want 1", tc.name, got)
		}
	}
}

func FuzzJPEGOrientation(f *testing.F) {
	jpg := []byte{0xFF, 0xD8, 0xFF, 0xD9}
	f.Add(withOrientation(jpg, 6, "II"))
	f.Add(withOrientation(jpg, 3, "MM"))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := jpegOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d out of range", o)
		}
	})
}

// pngWithSize rewrites the IHDR of a PNG to claim w x h (fixing the CRC).
func pngWithSize(b []byte, w, h uint32) []byte {
	out := append([]byte{}, b...)
	binary.BigEndian.PutUint32(out[16:], w)
	binary.BigEndian.PutUint32(out[20:], h)
	binary.BigEndian.PutUint32(out[29:], crc32.ChecksumIEEE(out[12:29]))
	return out
}

func TestDecodeErrors(t *testing.T) {
	pngB := encode(t, "png", quadrants(32, 32, red, green, blue, white))
	jpgB := encode(t, "jpeg", quadrants(32, 32, red, green, blue, white))
	corrupt := append([]byte{}, pngB...)
	for i := 40; i < len(corrupt)-20; i++ {
		corrupt[i] ^= 0x5A
	}
	for _, tc := range []struct {
		name  string
		b     []byte
		lim   Limits
		is    error
		words []string
	}{
		{"e.png", nil, Limits{}, ErrEmpty, []string{"e.png: empty file"}},
		{"a.jpg", []byte("hello, this is not a picture\n"), Limits{}, ErrNotImage, []string{"a.jpg: not an image (looks like text)"}},
		{"t.png", pngB[:len(pngB)/2], Limits{}, ErrTruncated, []string{"t.png: truncated PNG"}},
		{"t.jpg", jpgB[:len(jpgB)/2], Limits{}, ErrTruncated, []string{"t.jpg: truncated JPEG"}},
		{"c.png", corrupt, Limits{}, ErrCorrupt, []string{"c.png: corrupt PNG"}},
		{"big.png", pngWithSize(pngB, 50000, 50000), Limits{}, ErrTooLarge, []string{"big.png: too large", "50000x50000", "2500.0 megapixels", "limit is 50.0"}},
		{"small.png", pngB, Limits{MaxPixels: 1000}, ErrTooLarge, []string{"small.png: too large", "32x32"}},
		{"bytes.png", pngB, Limits{MaxBytes: 10}, ErrTooLarge, []string{"bytes.png: too large", "limit is 10"}},
		{"v.jpg", append([]byte("\x00\x00\x00\x18ftypisom"), make([]byte, 64)...), Limits{}, ErrNotImage, []string{"not an image (looks like a MP4 video)"}},
		{"t.tif", []byte("II*\x00\x08\x00\x00\x00"), Limits{}, ErrNotImage, []string{"TIFF, which is not supported"}},
		{"z.bin", []byte{0x00, 0x01, 0x02, 0x03, 0xfe}, Limits{}, ErrNotImage, []string{"unknown format, starts with 00 01 02 03 fe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := tc.lim.DecodeImageBytes(tc.b, tc.name)
			if err == nil {
				t.Fatalf("decoded %v, want an error", img.Rect)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestDecodeImageFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := DecodeImage(filepath.Join(dir, "missing.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := DecodeImage(dir); !errors.Is(err, ErrNotImage) {
		t.Errorf("directory: %v", err)
	}
	big := filepath.Join(dir, "big.png")
	if err := os.WriteFile(big, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	// The size limit is checked from the file's size, before reading.
	if _, err := (Limits{MaxBytes: 50}).DecodeImage(big); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.png") {
		t.Errorf("file over MaxBytes: %v", err)
	}
}

func TestDecodeTransparentOverBlack(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	src.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 255})
	src.SetNRGBA(1, 0, color.NRGBA{200, 100, 50, 0})
	img, err := DecodeImageBytes(encode(t, "png", src), "a.png")
	if err != nil {
		t.Fatal(err)
	}
	if got := img.RGBAAt(0, 0); got != (color.RGBA{200, 100, 50, 255}) {
		t.Errorf("opaque pixel %v", got)
	}
	if got := img.RGBAAt(1, 0); got.R != 0 || got.G != 0 || got.B != 0 {
		t.Errorf("transparent pixel %v, want black", got)
	}
}

func TestImageExts(t *testing.T) {
	for _, name := range []string{"a.png", "b.JPG", "dir/c.jpeg", "d.Bmp", "e.webp", "f.gif"} {
		if !IsImageExt(name) {
			t.Errorf("IsImageExt(%q) = false", name)
		}
	}
	for _, name := range []string{"a.tif", "b.tiff", "c.heic", "d.mp4", "png", "e.png.txt", ""} {
		if IsImageExt(name) {
			t.Errorf("IsImageExt(%q) = true", name)
		}
	}
	// Every listed extension names a format DecodeImage reads: encode a
	// picture in each format the standard library writes and decode it
	// through a file of that name.
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	enc := map[string]func(*bytes.Buffer) error{
		".png":  func(b *bytes.Buffer) error { return png.Encode(b, img) },
		".jpg":  func(b *bytes.Buffer) error { return jpeg.Encode(b, img, nil) },
		".jpeg": func(b *bytes.Buffer) error { return jpeg.Encode(b, img, nil) },
		".bmp":  func(b *bytes.Buffer) error { return bmp.Encode(b, img) },
		".gif":  func(b *bytes.Buffer) error { return gif.Encode(b, img, nil) },
	}
	dir := t.TempDir()
	for _, ext := range ImageExts() {
		if IsVideoExt("x" + ext) {
			t.Errorf("%s is both an image and a video extension", ext)
		}
		e, ok := enc[ext]
		if !ok {
			continue // WebP: decode only, covered by the decoding tests
		}
		var b bytes.Buffer
		if err := e(&b); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "x"+ext)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeImage(p); err != nil {
			t.Errorf("%s: %v", ext, err)
		}
	}
	if ImageExts()[0] = ".x"; ImageExts()[0] == ".x" {
		t.Error("ImageExts returns the package's own slice")
	}
}
