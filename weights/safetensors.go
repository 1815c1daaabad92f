package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/lvnet-go/lvnet/internal/fsutil"
)

// maxSafetensorsHeader is the largest header the reference implementation
// accepts (100 MB); anything larger is not a safetensors file.
const maxSafetensorsHeader = 100_000_000

// metadataKey is the header entry holding the free-form string metadata.
const metadataKey = "__metadata__"

// TensorInfo describes one tensor in a safetensors header: its dtype, shape
// and byte range [Begin, End) within the data section that follows the
// header.
type TensorInfo struct {
	DType      string
	Shape      []int64
	Begin, End int64
}

// WriteSafetensors writes tensors and the string metadata meta (may be nil)
// to path in the safetensors format. Tensors are laid out in sorted key
// order and the header is padded with spaces to a multiple of 8 bytes, so
// the same input always gives the same bytes. The file is written to a
// temporary file in the same directory, synced and renamed into place.
func WriteSafetensors(path string, tensors map[string]Array, meta map[string]string) error {
	header, keys, err := safetensorsHeader(tensors, meta)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = fsutil.Write(path, 0o644, func(w io.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
		w.Write(n[:])
		w.Write(header)
		for _, k := range keys {
			if _, err := w.Write(tensors[k].Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// safetensorsHeader builds the padded JSON header for tensors and returns it
// with the keys in data order.
func safetensorsHeader(tensors map[string]Array, meta map[string]string) ([]byte, []string, error) {
	keys := make([]string, 0, len(tensors))
	for k, a := range tensors {
		if k == metadataKey {
			return nil, nil, fmt.Errorf("tensor name %q is reserved", k)
		}
		if err := a.Validate(); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", k, err)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	quote := func(s string) {
		q, _ := json.Marshal(s) // strings always marshal
		b.Write(q)
	}
	if len(meta) > 0 {
		sep()
		quote(metadataKey)
		b.WriteString(":{")
		mk := make([]string, 0, len(meta))
		for k := range meta {
			mk = append(mk, k)
		}
		sort.Strings(mk)
		for i, k := range mk {
			if i > 0 {
				b.WriteByte(',')
			}
			quote(k)
			b.WriteByte(':')
			quote(meta[k])
		}
		b.WriteByte('}')
	}
	var off int64
	for _, k := range keys {
		a := tensors[k]
		sep()
		quote(k)
		b.WriteString(`:{"dtype":`)
		quote(a.DType)
		b.WriteString(`,"shape":[`)
		for i, d := range a.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(d, 10))
		}
		end := off + int64(len(a.Data))
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), keys, nil
}

// ReadSafetensors reads a safetensors file, returning its tensors and its
// string metadata (empty, not nil, when the file has none). The header is
// validated fully before any tensor data is read; a damaged or foreign file
// gives an error naming the file and the reason.
func ReadSafetensors(path string) (map[string]Array, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	infos, meta, dataStart, err := readSafetensorsHeader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := make(map[string]Array, len(infos))
	for k, ti := range infos {
		data := make([]byte, ti.End-ti.Begin)
		if _, err := f.ReadAt(data, dataStart+ti.Begin); err != nil {
			return nil, nil, fmt.Errorf("read %s: tensor %q: %w", path, k, err)
		}
		out[k] = Array{DType: ti.DType, Shape: ti.Shape, Data: data}
	}
	return out, meta, nil
}

// ReadSafetensorsMeta reads and validates only the header of a safetensors
// file: the description of every tensor and the string metadata.
func ReadSafetensorsMeta(path string) (map[string]TensorInfo, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	infos, meta, _, err := readSafetensorsHeader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return infos, meta, nil
}

// readSafetensorsHeader parses and validates the header of f and returns
// the tensor descriptions, the metadata and the file offset of the data
// section.
func readSafetensorsHeader(f *os.File) (map[string]TensorInfo, map[string]string, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, nil, 0, err
	}
	size := st.Size()
	var prefix [9]byte
	n, err := io.ReadFull(f, prefix[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, nil, 0, err
	}
	if n < 8 {
		return nil, nil, 0, fmt.Errorf("not a safetensors file: only %d bytes", n)
	}
	hlen := binary.LittleEndian.Uint64(prefix[:8])
	if n == 9 && prefix[8] != '{' {
		return nil, nil, 0, fmt.Errorf("not a safetensors file: no JSON header after the length prefix")
	}
	if hlen > maxSafetensorsHeader {
		return nil, nil, 0, fmt.Errorf("not a safetensors file: header length %d exceeds the %d byte limit", hlen, maxSafetensorsHeader)
	}
	if hlen < 2 {
		return nil, nil, 0, fmt.Errorf("not a safetensors file: header length %d", hlen)
	}
	if int64(hlen) > size-8 {
		return nil, nil, 0, fmt.Errorf("truncated: header says %d bytes, file has %d", hlen, size)
	}
	header := make([]byte, hlen)
	if _, err := f.ReadAt(header, 8); err != nil {
		return nil, nil, 0, err
	}
	dataStart := 8 + int64(hlen)
	infos, meta, err := parseSafetensorsHeader(header, size-dataStart)
	if err != nil {
		return nil, nil, 0, err
	}
	return infos, meta, dataStart, nil
}

// parseSafetensorsHeader decodes the JSON header and checks every entry
// against the others and against dataLen, the size of the data section.
func parseSafetensorsHeader(header []byte, dataLen int64) (map[string]TensorInfo, map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, nil, fmt.Errorf("bad header JSON: %w", err)
	}
	meta := map[string]string{}
	if m, ok := raw[metadataKey]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, nil, fmt.Errorf("bad header: %s must map strings to strings: %w", metadataKey, err)
		}
		if meta == nil { // "__metadata__": null
			meta = map[string]string{}
		}
		delete(raw, metadataKey)
	}
	type entry struct {
		DType       *string  `json:"dtype"`
		Shape       *[]int64 `json:"shape"`
		DataOffsets *[]int64 `json:"data_offsets"`
	}
	infos := make(map[string]TensorInfo, len(raw))
	for k, m := range raw {
		var e entry
		if err := json.Unmarshal(m, &e); err != nil {
			return nil, nil, fmt.Errorf("bad header entry %q: %w", k, err)
		}
		if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
			return nil, nil, fmt.Errorf("bad header entry %q: needs dtype, shape and data_offsets", k)
		}
		size := DTypeSize(*e.DType)
		if size == 0 {
			return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q", k, *e.DType)
		}
		n, ok := numel(*e.Shape)
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q: invalid shape %v", k, *e.Shape)
		}
		off := *e.DataOffsets
		if len(off) != 2 || off[0] < 0 || off[1] < off[0] {
			return nil, nil, fmt.Errorf("tensor %q: invalid data_offsets %v", k, off)
		}
		if off[1]-off[0] != n*int64(size) {
			return nil, nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, data_offsets %v give %d",
				k, *e.Shape, *e.DType, n*int64(size), off, off[1]-off[0])
		}
		infos[k] = TensorInfo{DType: *e.DType, Shape: *e.Shape, Begin: off[0], End: off[1]}
	}

	// The tensors must tile the data section exactly: no overlap, no gap,
	// nothing past its end and nothing left over.
	keys := make([]string, 0, len(infos))
	for k := range infos {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := infos[keys[i]], infos[keys[j]]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		if a.End != b.End {
			return a.End < b.End
		}
		return keys[i] < keys[j]
	})
	var pos int64
	prev := ""
	for _, k := range keys {
		ti := infos[k]
		switch {
		case ti.Begin < pos:
			return nil, nil, fmt.Errorf("tensors %q and %q overlap (bytes %d..%d and %d..%d)",
				prev, k, infos[prev].Begin, infos[prev].End, ti.Begin, ti.End)
		case ti.Begin > pos:
			return nil, nil, fmt.Errorf("gap in data: bytes %d..%d belong to no tensor (before %q)", pos, ti.Begin, k)
		}
		if ti.End > dataLen {
			return nil, nil, fmt.Errorf("truncated: tensor %q ends at data byte %d, data section has %d", k, ti.End, dataLen)
		}
		pos = ti.End
		prev = k
	}
	if pos != dataLen {
		return nil, nil, fmt.Errorf("data section has %d bytes, tensors cover %d: %d trailing bytes", dataLen, pos, dataLen-pos)
	}
	return infos, meta, nil
}
