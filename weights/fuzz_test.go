package weights

import (
	"archive/zip"
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
)

// The fuzz targets check that no input makes the parsers panic; under plain
// `go test` they run their seeds only.

func FuzzParseNpy(f *testing.F) {
	f.Add(npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", make([]byte, 8)))
	f.Add(npyBytes(3, "{'descr': '|b1', 'fortran_order': False, 'shape': (1L, 2), }", []byte{1, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := parseNpy(b); err == nil {
			if err := a.Validate(); err != nil {
				t.Fatalf("parseNpy returned an invalid array: %v", err)
			}
		}
	})
}

func FuzzParseSafetensorsHeader(f *testing.F) {
	f.Add([]byte(`{"__metadata__":{"a":"b"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), int64(8))
	f.Add([]byte(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`), int64(1))
	f.Fuzz(func(t *testing.T, header []byte, dataLen int64) {
		infos, _, err := parseSafetensorsHeader(header, dataLen)
		if err != nil {
			return
		}
		var total int64
		for k, ti := range infos {
			if ti.Begin < 0 || ti.End > dataLen || ti.End < ti.Begin {
				t.Fatalf("%s: accepted range %d..%d of %d", k, ti.Begin, ti.End, dataLen)
			}
			total += ti.End - ti.Begin
		}
		if total != dataLen {
			t.Fatalf("accepted tensors covering %d of %d bytes", total, dataLen)
		}
	})
}

func FuzzUnpickle(f *testing.F) {
	f.Add(pk(opProto2, pDict(pStr("w"), pTensor("FloatStorage", "0", 4, 0, []int32{2, 2}, []int32{1, 2})), opStop))
	f.Add(pk(opProto2, pDict(pStr("epoch"), pInt(3), pStr("l"), opList+opMark+pFloat(1.5)+opNone+opAppends), opStop))
	f.Add(pk("\x80\x04", "\x8c\x08builtins", "\x8c\x04eval", "\x93", opStop))
	f.Add(pk(opProto2, "]q\x00h\x00a", opStop))
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "a/data/0", Method: zip.Store})
	w.Write(f32s(1, 2, 3, 4))
	zw.Close()
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l := &torchLoader{prefix: "a/", files: map[string]*zip.File{"a/data/0": zr.File[0]}, storages: map[string]*storage{}}
		v, err := l.unpickle(data)
		if err != nil {
			return
		}
		if a, ok := v.(Array); ok {
			if err := a.Validate(); err != nil {
				t.Fatalf("unpickled an invalid array: %v", err)
			}
		}
	})
}

// torchZipBytes returns a torch.save style archive (prefix "a/") holding
// the pickle and the storages, with members stored or deflated.
func torchZipBytes(pkl []byte, storages map[string][]byte, method uint16) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, b []byte) {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: "a/" + name, Method: method})
		w.Write(b)
	}
	add("data.pkl", pkl)
	for _, k := range slices.Sorted(maps.Keys(storages)) {
		add("data/"+k, storages[k])
	}
	add("byteorder", []byte("little"))
	zw.Close()
	return buf.Bytes()
}

// FuzzReadTorchArchive feeds whole files to the torch.save reader: the zip
// archive, the pickle and the storages. It checks that nothing panics, that
// every tensor returned is valid, and (with the bomb tests) that hostile
// files are refused quickly.
func FuzzReadTorchArchive(f *testing.F) {
	pkl := pk(opProto2, pDict(
		pStr("w"), pTensor("FloatStorage", "0", 4, 0, []int32{2, 2}, []int32{1, 2}),
		pStr("b"), pTensor("FloatStorage", "0", 4, 1, []int32{3}, []int32{1}),
		pStr("n"), pTensor("LongStorage", "1", 1, 0, nil, nil),
		pStr("epoch"), pInt(3),
	), opStop)
	st := map[string][]byte{"0": f32s(1, 2, 3, 4), "1": FromInt64([]int64{1}, []int64{7}).Data}
	f.Add(torchZipBytes(pkl, st, zip.Store))
	f.Add(torchZipBytes(pkl, st, zip.Deflate))
	f.Add(torchZipBytes(pk(opProto2, pDict(pStr("w"), pTensor("FloatStorage", "0", 1, 0, []int32{1 << 20}, []int32{0})), opStop), st, zip.Store))
	f.Add(torchZipBytes(pk(opProto2, strings.Repeat(opList, 100), opStop), nil, zip.Deflate))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := readTorchArchive(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		budget := 1 << 16 // values may be shared (a DAG): visit a bounded number
		var walk func(v any)
		walk = func(v any) {
			if budget--; budget < 0 {
				return
			}
			switch x := v.(type) {
			case Array:
				if err := x.Validate(); err != nil {
					t.Fatalf("read an invalid array: %v", err)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			case Tuple:
				for _, e := range x {
					walk(e)
				}
			case Dict:
				for _, it := range x {
					walk(it.Key)
					walk(it.Value)
				}
			}
		}
		walk(v)
	})
}
