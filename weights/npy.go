package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/lvnet-go/lvnet/internal/fsutil"
)

// npyMagic starts every .npy file.
const npyMagic = "\x93NUMPY"

// npyDescr maps NumPy type descriptors to Array dtypes.
var npyDescr = map[string]string{
	"<f4": F32, "<f8": F64, "<f2": F16,
	"<i8": I64, "<i4": I32,
	"|u1": U8, "<u1": U8, "|b1": BOOL, "<b1": BOOL,
}

// npyDescrOf is the descriptor written for each dtype.
func npyDescrOf(dtype string) (string, bool) {
	switch dtype {
	case F32:
		return "<f4", true
	case F64:
		return "<f8", true
	case F16:
		return "<f2", true
	case I64:
		return "<i8", true
	case I32:
		return "<i4", true
	case U8:
		return "|u1", true
	case BOOL:
		return "|b1", true
	}
	return "", false
}

// ReadNpy reads a NumPy .npy file (format versions 1, 2 and 3) holding a C
// order array of float32, float64, float16, int64, int32, uint8 or bool.
func ReadNpy(path string) (Array, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Array{}, fmt.Errorf("read %s: %w", path, err)
	}
	a, err := parseNpy(b)
	if err != nil {
		return Array{}, fmt.Errorf("read %s: %w", path, err)
	}
	return a, nil
}

// parseNpy decodes the bytes of a .npy file.
func parseNpy(b []byte) (Array, error) {
	if len(b) < 10 || string(b[:6]) != npyMagic {
		return Array{}, fmt.Errorf("not a .npy file")
	}
	major := b[6]
	var hlen, start int
	switch major {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return Array{}, fmt.Errorf("truncated: %d bytes", len(b))
		}
		h := binary.LittleEndian.Uint32(b[8:12])
		if int64(h) > int64(len(b)) {
			return Array{}, fmt.Errorf("truncated: header says %d bytes, file has %d", h, len(b))
		}
		hlen, start = int(h), 12
	default:
		return Array{}, fmt.Errorf("unsupported .npy format version %d.%d", major, b[7])
	}
	if start+hlen > len(b) {
		return Array{}, fmt.Errorf("truncated: header says %d bytes, file has %d", hlen, len(b))
	}
	descr, fortran, shape, err := parseNpyHeader(string(b[start : start+hlen]))
	if err != nil {
		return Array{}, fmt.Errorf("bad header: %w", err)
	}
	dtype, ok := npyDescr[descr]
	if !ok {
		return Array{}, fmt.Errorf("unsupported dtype %q (want <f4, <f8, <f2, <i8, <i4, |u1 or |b1)", descr)
	}
	if fortran {
		return Array{}, fmt.Errorf("fortran_order arrays are not supported; save with numpy.ascontiguousarray")
	}
	n, ok := numel(shape)
	if !ok {
		return Array{}, fmt.Errorf("invalid shape %v", shape)
	}
	data := b[start+hlen:]
	if want := n * int64(DTypeSize(dtype)); int64(len(data)) != want {
		if int64(len(data)) < want {
			return Array{}, fmt.Errorf("truncated: shape %v of %s needs %d data bytes, file has %d", shape, descr, want, len(data))
		}
		return Array{}, fmt.Errorf("%d trailing bytes after the data of shape %v", int64(len(data))-want, shape)
	}
	if shape == nil {
		shape = []int64{}
	}
	return Array{DType: dtype, Shape: shape, Data: data}, nil
}

// parseNpyHeader parses the Python dict literal of a .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
func parseNpyHeader(h string) (descr string, fortran bool, shape []int64, err error) {
	p := &litParser{s: strings.TrimRight(h, " \n\x00")}
	if !p.eat('{') {
		return "", false, nil, fmt.Errorf("header is not a dict: %.40q", h)
	}
	seen := map[string]bool{}
	for !p.eat('}') {
		key, err := p.str()
		if err != nil {
			return "", false, nil, err
		}
		if seen[key] {
			return "", false, nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		if !p.eat(':') {
			return "", false, nil, fmt.Errorf("missing ':' after %q", key)
		}
		switch key {
		case "descr":
			if descr, err = p.str(); err != nil {
				return "", false, nil, fmt.Errorf("descr: %w (structured dtypes are not supported)", err)
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				fortran = true
			case p.word("False"):
				fortran = false
			default:
				return "", false, nil, fmt.Errorf("fortran_order is not True or False")
			}
		case "shape":
			if shape, err = p.intTuple(); err != nil {
				return "", false, nil, fmt.Errorf("shape: %w", err)
			}
		default:
			return "", false, nil, fmt.Errorf("unexpected key %q", key)
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return "", false, nil, fmt.Errorf("expected ',' or '}' after %q", key)
			}
			break
		}
	}
	if !p.done() {
		return "", false, nil, fmt.Errorf("unexpected text after the dict")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return "", false, nil, fmt.Errorf("missing key %q", k)
		}
	}
	return descr, fortran, shape, nil
}

// litParser scans the small subset of Python literals found in .npy
// headers.
type litParser struct {
	s   string
	pos int
}

func (p *litParser) skip() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == '\n') {
		p.pos++
	}
}

func (p *litParser) done() bool { p.skip(); return p.pos == len(p.s) }

// eat consumes c (after blanks) if it is next.
func (p *litParser) eat(c byte) bool {
	p.skip()
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// word consumes the identifier w if it is next.
func (p *litParser) word(w string) bool {
	p.skip()
	if strings.HasPrefix(p.s[p.pos:], w) {
		p.pos += len(w)
		return true
	}
	return false
}

// str consumes a quoted string without escapes.
func (p *litParser) str() (string, error) {
	p.skip()
	if p.pos >= len(p.s) || (p.s[p.pos] != '\'' && p.s[p.pos] != '"') {
		return "", fmt.Errorf("expected a quoted string at offset %d", p.pos)
	}
	q := p.s[p.pos]
	end := strings.IndexByte(p.s[p.pos+1:], q)
	if end < 0 {
		return "", fmt.Errorf("unterminated string at offset %d", p.pos)
	}
	v := p.s[p.pos+1 : p.pos+1+end]
	p.pos += end + 2
	return v, nil
}

// intTuple consumes a tuple of non-negative integers such as (), (3,) or
// (2, 3). Python 2 long suffixes (3L) are accepted.
func (p *litParser) intTuple() ([]int64, error) {
	if !p.eat('(') {
		return nil, fmt.Errorf("expected '('")
	}
	out := []int64{}
	for !p.eat(')') {
		p.skip()
		i := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		v, err := strconv.ParseInt(p.s[i:p.pos], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad dimension at offset %d", i)
		}
		if p.pos < len(p.s) && p.s[p.pos] == 'L' {
			p.pos++
		}
		out = append(out, v)
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, fmt.Errorf("expected ',' or ')' at offset %d", p.pos)
			}
			break
		}
	}
	return out, nil
}

// WriteNpy writes a to path as a .npy file (format 1.0, or 2.0 when the
// header is too long for it), atomically. BF16 has no NumPy dtype and is
// refused.
func WriteNpy(path string, a Array) error {
	if err := a.Validate(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	descr, ok := npyDescrOf(a.DType)
	if !ok {
		return fmt.Errorf("write %s: dtype %s has no .npy equivalent", path, a.DType)
	}
	var dims []string
	for _, d := range a.Shape {
		dims = append(dims, strconv.FormatInt(d, 10))
	}
	shape := "(" + strings.Join(dims, ", ") + ")"
	if len(dims) == 1 {
		shape = "(" + dims[0] + ",)"
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	var buf bytes.Buffer
	buf.WriteString(npyMagic)
	pre := 10
	if len(h)+1+pre > 65535 {
		pre = 12
	}
	pad := (64 - (pre+len(h)+1)%64) % 64
	h += strings.Repeat(" ", pad) + "\n"
	if pre == 10 {
		buf.Write([]byte{1, 0})
		binary.Write(&buf, binary.LittleEndian, uint16(len(h)))
	} else {
		buf.Write([]byte{2, 0})
		binary.Write(&buf, binary.LittleEndian, uint32(len(h)))
	}
	buf.WriteString(h)
	err := fsutil.Write(path, 0o644, func(w io.Writer) error {
		w.Write(buf.Bytes())
		_, err := w.Write(a.Data)
		return err
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
