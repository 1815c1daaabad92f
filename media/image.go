package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // GIF decoder (first frame)
	_ "image/jpeg"
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	_ "golang.org/x/image/bmp"  // BMP decoder
	_ "golang.org/x/image/webp" // WebP decoder (lossy and lossless)
)

// imageExts are the file extensions of the image formats DecodeImage reads,
// in the order they are tried where one is looked for by its stem.
var imageExts = []string{".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"}

// ImageExts returns the file extensions (lower case, with the dot) of the
// image formats this package decodes: the one list of the project's image
// files, for folders searched for pictures.
func ImageExts() []string { return slices.Clone(imageExts) }

// IsImageExt reports whether name (a file name or path) has, in any case,
// the extension of an image format this package decodes.
func IsImageExt(name string) bool {
	return slices.Contains(imageExts, strings.ToLower(filepath.Ext(name)))
}

// DecodeImage reads an image file with the default limits (see
// Limits.DecodeImage).
func DecodeImage(path string) (*image.RGBA, error) { return Limits{}.DecodeImage(path) }

// DecodeImageBytes decodes an image held in memory with the default limits;
// name is used in errors.
func DecodeImageBytes(b []byte, name string) (*image.RGBA, error) {
	return Limits{}.DecodeImageBytes(b, name)
}

// DecodeImage reads a JPEG, PNG, WebP, BMP or GIF (first frame) file into
// an RGBA image with bounds starting at (0, 0), applying the EXIF
// orientation of JPEGs. Transparent pixels come out composited over black.
// The file size and the pixel count (from the header) are checked against
// the limits before decoding.
func (l Limits) DecodeImage(path string) (*image.RGBA, error) {
	l = l.withDefaults()
	name := filepath.Base(path)
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("decode image: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: %w: is a directory", path, ErrNotImage)
	}
	if l.MaxBytes > 0 && st.Size() > l.MaxBytes {
		return nil, fmt.Errorf("%s: %w: the file has %d bytes, the limit is %d", name, ErrTooLarge, st.Size(), l.MaxBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("decode image: %w", err)
	}
	return l.DecodeImageBytes(b, name)
}

// DecodeImageBytes is DecodeImage for an image held in memory; name (a file
// name) is used in errors.
func (l Limits) DecodeImageBytes(b []byte, name string) (*image.RGBA, error) {
	l = l.withDefaults()
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrEmpty)
	}
	if l.MaxBytes > 0 && int64(len(b)) > l.MaxBytes {
		return nil, fmt.Errorf("%s: %w: %d bytes, the limit is %d", name, ErrTooLarge, len(b), l.MaxBytes)
	}
	format := sniffImage(b)
	if format == "" {
		return nil, fmt.Errorf("%s: %w (%s)", name, ErrNotImage, describe(b))
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, decodeError(name, format, b, err)
	}
	orientation := 1
	if format == "JPEG" {
		orientation = jpegOrientation(b)
	}
	if err := l.checkPixels(name, cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, decodeError(name, format, b, err)
	}
	return orient(toRGBA(img), orientation), nil
}

// decodeError words a decoder's error for the file contents b.
func decodeError(name, format string, b []byte, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "unexpected EOF") || !hasEnd(format, b) {
		return fmt.Errorf("%s: %w %s: %w", name, ErrTruncated, format, err)
	}
	return fmt.Errorf("%s: %w %s: %w", name, ErrCorrupt, format, err)
}

// hasEnd reports whether b ends the way a complete file of the format does
// (PNG: an IEND chunk; JPEG: an EOI marker; GIF: the trailer byte), allowing
// a little trailing junk. Formats without an end marker report true.
func hasEnd(format string, b []byte) bool {
	tail := b[max(0, len(b)-64):]
	switch format {
	case "PNG":
		return bytes.Contains(tail, []byte("IEND"))
	case "JPEG":
		return bytes.Contains(tail, []byte{0xFF, 0xD9})
	case "GIF":
		return bytes.IndexByte(tail, 0x3B) >= 0
	}
	return true
}

// toRGBA converts any image to *image.RGBA with bounds at the origin.
func toRGBA(img image.Image) *image.RGBA {
	if m, ok := img.(*image.RGBA); ok && m.Rect.Min == (image.Point{}) {
		return m
	}
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	return out
}

// sniffImage names the image format of b from its magic bytes ("" when it
// is not one this package decodes).
func sniffImage(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return "JPEG"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "PNG"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "GIF"
	case bytes.HasPrefix(b, []byte("BM")) && len(b) >= 14:
		return "BMP"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "WebP"
	}
	return ""
}

// describe says what a file that is not a supported image looks like.
func describe(b []byte) string {
	head := b[:min(len(b), 512)]
	switch {
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "TIFF, which is not supported"
	case IsHEIF(b):
		return "HEIF/AVIF, which is not supported"
	case sniffVideo(b) != "":
		return "looks like a " + sniffVideo(b) + " video"
	case bytes.HasPrefix(b, []byte("%PDF")):
		return "looks like a PDF document"
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return "looks like a ZIP archive"
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return "looks like a gzip archive"
	case LooksLikeText(head):
		return "looks like text"
	}
	return fmt.Sprintf("unknown format, starts with % x", b[:min(len(b), 8)])
}

// IsHEIF reports whether head starts an ISO media file ("ftyp" box) whose
// major brand is a HEIF or AVIF image, which this package does not decode.
func IsHEIF(head []byte) bool {
	return len(head) >= 12 && string(head[4:8]) == "ftyp" && isHEIF(string(head[8:12]))
}

func isHEIF(brand string) bool {
	switch brand {
	case "heic", "heix", "hevc", "hevx", "mif1", "msf1", "avif", "avis":
		return true
	}
	return false
}

// LooksLikeText reports whether b is UTF-8 without control characters other
// than white space (a cut multi-byte rune at the end is allowed): a text file
// given where an image or video was expected.
func LooksLikeText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return len(b) < utf8.UTFMax && !utf8.FullRune(b)
		}
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' && r != '\f' {
			return false
		}
		if r == 0x7f {
			return false
		}
		b = b[n:]
	}
	return true
}
