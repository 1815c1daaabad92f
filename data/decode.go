package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // register decoders
	_ "image/jpeg"
	_ "image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	"github.com/lvnet-go/lvnet/augment"
)

// imageExts are the file extensions treated as still images.
var imageExts = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".bmp": true, ".webp": true,
	".gif": true, ".tif": true, ".tiff": true,
}

func isImageFile(name string) bool { return imageExts[strings.ToLower(filepath.Ext(name))] }

// decodeFile reads and decodes a still image.
func decodeFile(path string) (image.Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("decode %s: empty file", path)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	if r := img.Bounds(); r.Dx() <= 0 || r.Dy() <= 0 {
		return nil, fmt.Errorf("decode %s: empty image", path)
	}
	return img, nil
}

// decodeRGB decodes a still image to 3 channels (alpha dropped).
func decodeRGB(path string) (*augment.Image, error) {
	img, err := decodeFile(path)
	if err != nil {
		return nil, err
	}
	return toRGB(img), nil
}

// decodeGray decodes a still image to 1 channel (luma of colour images).
func decodeGray(path string) (*augment.Image, error) {
	img, err := decodeFile(path)
	if err != nil {
		return nil, err
	}
	return toGray(img), nil
}

// toRGB converts any image.Image to a 3-channel augment.Image, with fast
// paths for the types the standard decoders return.
func toRGB(src image.Image) *augment.Image {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	out := augment.New(w, h, 3)
	switch s := src.(type) {
	case *image.RGBA:
		for y := 0; y < h; y++ {
			o := s.PixOffset(b.Min.X, b.Min.Y+y)
			row := s.Pix[o : o+4*w]
			d := out.Pix[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				d[3*x], d[3*x+1], d[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			o := s.PixOffset(b.Min.X, b.Min.Y+y)
			row := s.Pix[o : o+4*w]
			d := out.Pix[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				d[3*x], d[3*x+1], d[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			o := s.PixOffset(b.Min.X, b.Min.Y+y)
			row := s.Pix[o : o+w]
			d := out.Pix[y*w*3 : (y+1)*w*3]
			for x, v := range row {
				d[3*x], d[3*x+1], d[3*x+2] = v, v, v
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			d := out.Pix[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				yi := s.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := s.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := ycbcr(s.Y[yi], s.Cb[ci], s.Cr[ci])
				d[3*x], d[3*x+1], d[3*x+2] = r, g, bb
			}
		}
	case *image.Paletted:
		var pal [256][3]uint8
		for i, c := range s.Palette {
			r, g, bb, _ := c.RGBA()
			pal[i] = [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bb >> 8)}
		}
		for y := 0; y < h; y++ {
			o := s.PixOffset(b.Min.X, b.Min.Y+y)
			row := s.Pix[o : o+w]
			d := out.Pix[y*w*3 : (y+1)*w*3]
			for x, v := range row {
				p := pal[v]
				d[3*x], d[3*x+1], d[3*x+2] = p[0], p[1], p[2]
			}
		}
	default:
		for y := 0; y < h; y++ {
			d := out.Pix[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				r, g, bb, a := src.At(b.Min.X+x, b.Min.Y+y).RGBA()
				if a != 0 && a != 0xffff { // un-premultiply, like NRGBA
					r, g, bb = r*0xffff/a, g*0xffff/a, bb*0xffff/a
				}
				d[3*x], d[3*x+1], d[3*x+2] = uint8(r>>8), uint8(g>>8), uint8(bb>>8)
			}
		}
	}
	return out
}

// ycbcr is image/color's YCbCrToRGB, inlined.
func ycbcr(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	c := func(v int32) uint8 {
		if uint32(v)&0xff000000 == 0 {
			return uint8(v >> 16)
		}
		if v < 0 {
			return 0
		}
		return 255
	}
	return c(yy + 91881*cr1), c(yy - 22554*cb1 - 46802*cr1), c(yy + 116130*cb1)
}

// toGray converts any image to one channel: grey images are copied, colour
// images give their luma (OpenCV's weights).
func toGray(src image.Image) *augment.Image {
	switch s := src.(type) {
	case *image.Gray:
		b := s.Bounds()
		out := augment.New(b.Dx(), b.Dy(), 1)
		for y := 0; y < out.H; y++ {
			o := s.PixOffset(b.Min.X, b.Min.Y+y)
			copy(out.Pix[y*out.W:(y+1)*out.W], s.Pix[o:o+out.W])
		}
		return out
	case *image.YCbCr:
		// Y is the luma (JFIF uses the same weights), at full resolution
		// whatever the chroma subsampling.
		b := s.Bounds()
		out := augment.New(b.Dx(), b.Dy(), 1)
		for y := 0; y < out.H; y++ {
			o := s.YOffset(b.Min.X, b.Min.Y+y)
			copy(out.Pix[y*out.W:(y+1)*out.W], s.Y[o:o+out.W])
		}
		return out
	}
	return toRGB(src).Gray()
}

// splitPanels returns the first (face) and second (mask, as luma) of n
// equal panels laid side by side in img, the authors' FaceForensics++ frame
// layout (face | mask | extra).
func splitPanels(img *augment.Image, n int) (face, mask *augment.Image, err error) {
	if n < 2 || img.W%n != 0 {
		return nil, nil, fmt.Errorf("image width %d does not split into %d panels", img.W, n)
	}
	pw := img.W / n
	face = img.SubImage(0, 0, pw, img.H)
	mask = img.SubImage(pw, 0, pw, img.H).Gray()
	return face, mask, nil
}

// npyHeader matches the dtype and shape of a .npy header dictionary.
var (
	npyDescr = regexp.MustCompile(`'descr':\s*'([<>|=]?)([fiu])(\d)'`)
	npyOrder = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	npyShape = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// readLandmarks reads facial landmarks from a NumPy .npy file of shape
// (..., N, 2) (float or integer, as DeepfakeBench writes them).
func readLandmarks(path string) ([][2]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read landmarks: %w", err)
	}
	lm, err := parseNPY(b)
	if err != nil {
		return nil, fmt.Errorf("read landmarks %s: %w", path, err)
	}
	return lm, nil
}

func parseNPY(b []byte) ([][2]float32, error) {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, errors.New("not a .npy file")
	}
	var hlen, off int
	switch b[6] {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, errors.New("truncated .npy header")
		}
		hlen, off = int(binary.LittleEndian.Uint32(b[8:12])), 12
	default:
		return nil, fmt.Errorf(".npy version %d not supported", b[6])
	}
	if off+hlen > len(b) {
		return nil, errors.New("truncated .npy header")
	}
	hdr := string(b[off : off+hlen])
	data := b[off+hlen:]
	d := npyDescr.FindStringSubmatch(hdr)
	if d == nil {
		return nil, fmt.Errorf("unsupported dtype in header %q", strings.TrimSpace(hdr))
	}
	if o := npyOrder.FindStringSubmatch(hdr); o != nil && o[1] == "True" {
		return nil, errors.New("fortran-order arrays not supported")
	}
	sm := npyShape.FindStringSubmatch(hdr)
	if sm == nil {
		return nil, errors.New("no shape in header")
	}
	count := 1
	var dims []int
	for _, f := range strings.Split(sm[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad shape %q", sm[1])
		}
		dims = append(dims, n)
		count *= n
	}
	if len(dims) < 2 || dims[len(dims)-1] != 2 {
		return nil, fmt.Errorf("shape (%s) is not (..., N, 2)", sm[1])
	}
	size, _ := strconv.Atoi(d[3])
	var order binary.ByteOrder = binary.LittleEndian
	if d[1] == ">" {
		order = binary.BigEndian
	}
	if len(data) < count*size {
		return nil, fmt.Errorf("truncated data: %d bytes for %d values of %d bytes", len(data), count, size)
	}
	get := func(i int) (float32, error) {
		p := data[i*size : (i+1)*size]
		switch d[2] + d[3] {
		case "f4":
			return math.Float32frombits(order.Uint32(p)), nil
		case "f8":
			return float32(math.Float64frombits(order.Uint64(p))), nil
		case "i8":
			return float32(int64(order.Uint64(p))), nil
		case "i4":
			return float32(int32(order.Uint32(p))), nil
		case "i2":
			return float32(int16(order.Uint16(p))), nil
		case "u1":
			return float32(p[0]), nil
		case "u2":
			return float32(order.Uint16(p)), nil
		case "u4":
			return float32(order.Uint32(p)), nil
		case "i1":
			return float32(int8(p[0])), nil
		}
		return 0, fmt.Errorf("unsupported dtype %s%s", d[2], d[3])
	}
	out := make([][2]float32, count/2)
	for i := range out {
		x, err := get(2 * i)
		if err != nil {
			return nil, err
		}
		y, _ := get(2*i + 1)
		out[i] = [2]float32{x, y}
	}
	return out, nil
}
