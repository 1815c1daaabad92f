package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/lvnet-go/lvnet/augment"
	"github.com/lvnet-go/lvnet/media"
)

// isImageFile reports whether name is, by its extension, a picture package
// media decodes (the project's one list of image extensions).
func isImageFile(name string) bool { return media.IsImageExt(name) }

// decodeRGB decodes a still image to 3 channels (alpha dropped) through
// package media, as lvnet detect does: EXIF orientation applied, size
// limits checked before decoding.
func decodeRGB(path string) (*augment.Image, error) {
	img, err := media.DecodeImage(path)
	if err != nil {
		return nil, err
	}
	return augment.FromRGBA(img), nil
}

// decodeGray decodes a still image to 1 channel (luma of colour images).
func decodeGray(path string) (*augment.Image, error) {
	img, err := decodeRGB(path)
	if err != nil {
		return nil, err
	}
	return img.Gray(), nil
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
