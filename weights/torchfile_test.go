package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
)

// Pickle opcodes used to hand-build test pickles.
const (
	opMark     = "("
	opTuple    = "t"
	opEmptyTup = ")"
	opDict     = "}"
	opSetItems = "u"
	opList     = "]"
	opAppends  = "e"
	opReduce   = "R"
	opPersid   = "Q"
	opNone     = "N"
	opFalse    = "\x89"
	opTrue     = "\x88"
	opStop     = "."
	opProto2   = "\x80\x02"
)

// pk concatenates pickle fragments.
func pk(parts ...string) []byte { return []byte(strings.Join(parts, "")) }

func pGlobal(module, name string) string { return "c" + module + "\n" + name + "\n" }

func pStr(s string) string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(len(s)))
	return "X" + string(b[:]) + s
}

func pInt(v int32) string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return "J" + string(b[:])
}

func pFloat(v float64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], math.Float64bits(v))
	return "G" + string(b[:])
}

func pInts(v ...int32) string {
	s := opMark
	for _, x := range v {
		s += pInt(x)
	}
	return s + opTuple
}

// pTensor pickles a tensor view of storage key (numel elements of class
// stype) as torch.save does.
func pTensor(stype, key string, numel, offset int32, size, stride []int32) string {
	return pGlobal("torch._utils", "_rebuild_tensor_v2") + opMark +
		opMark + pStr("storage") + pGlobal("torch", stype) + pStr(key) + pStr("cpu") + pInt(numel) + opTuple + opPersid +
		pInt(offset) + pInts(size...) + pInts(stride...) + opFalse +
		pGlobal("collections", "OrderedDict") + opEmptyTup + opReduce +
		opTuple + opReduce
}

// pDict pickles a dict from alternating key and value fragments.
func pDict(kv ...string) string { return opDict + opMark + strings.Join(kv, "") + opSetItems }

// f32s returns the little-endian bytes of v.
func f32s(v ...float32) []byte { return FromFloat32([]int64{int64(len(v))}, v).Data }

// writeTorchZip writes a torch.save style archive under prefix "archive".
func writeTorchZip(t *testing.T, pkl []byte, files map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, b []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	add("archive/data.pkl", pkl)
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		add("archive/"+k, files[k])
	}
	add("archive/version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "ckpt.pth", buf.Bytes())
}

func TestReadTorchFileViews(t *testing.T) {
	// Storage "0": 0..9; storage "1": int64 7, 8.
	s0 := f32s(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	s1 := FromInt64([]int64{2}, []int64{7, 8}).Data
	tests := []struct {
		name   string
		tensor string
		shape  []int64
		want   []float32
	}{
		{"contiguous", pTensor("FloatStorage", "0", 10, 0, []int32{2, 3}, []int32{3, 1}), []int64{2, 3}, []float32{0, 1, 2, 3, 4, 5}},
		{"offset", pTensor("FloatStorage", "0", 10, 7, []int32{3}, []int32{1}), []int64{3}, []float32{7, 8, 9}},
		{"transposed", pTensor("FloatStorage", "0", 10, 0, []int32{3, 2}, []int32{1, 3}), []int64{3, 2}, []float32{0, 3, 1, 4, 2, 5}},
		{"offset and row stride", pTensor("FloatStorage", "0", 10, 2, []int32{2, 2}, []int32{4, 1}), []int64{2, 2}, []float32{2, 3, 6, 7}},
		{"every other element", pTensor("FloatStorage", "0", 10, 1, []int32{2, 2}, []int32{4, 2}), []int64{2, 2}, []float32{1, 3, 5, 7}},
		{"expanded (stride 0)", pTensor("FloatStorage", "0", 10, 4, []int32{2, 3}, []int32{0, 1}), []int64{2, 3}, []float32{4, 5, 6, 4, 5, 6}},
		{"scalar", pTensor("FloatStorage", "0", 10, 9, nil, nil), []int64{}, []float32{9}},
		{"empty", pTensor("FloatStorage", "0", 10, 0, []int32{0, 5}, []int32{5, 1}), []int64{0, 5}, []float32{}},
		{"int64", pTensor("LongStorage", "1", 2, 0, []int32{2}, []int32{1}), []int64{2}, []float32{7, 8}},
		{"parameter", pGlobal("torch._utils", "_rebuild_parameter") + opMark +
			pTensor("FloatStorage", "0", 10, 0, []int32{2}, []int32{1}) + opTrue +
			pGlobal("collections", "OrderedDict") + opEmptyTup + opReduce + opTuple + opReduce,
			[]int64{2}, []float32{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTorchZip(t, pk(opProto2, pDict(pStr("x"), tt.tensor), opStop),
				map[string][]byte{"data/0": s0, "data/1": s1})
			sd, other, err := ReadStateDict(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(other) != 0 {
				t.Errorf("plain state dict gave other entries %v", other)
			}
			a := sd["x"]
			got, err := a.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.Shape, tt.shape) || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v %v, want %v %v", a.Shape, got, tt.shape, tt.want)
			}
		})
	}
}

func TestReadTorchFileSharedStorage(t *testing.T) {
	// Two tensors viewing one storage come out as independent copies.
	pkl := pk(opProto2, pDict(
		pStr("a"), pTensor("FloatStorage", "0", 4, 0, []int32{2}, []int32{1}),
		pStr("b"), pTensor("FloatStorage", "0", 4, 1, []int32{3}, []int32{1}),
	), opStop)
	sd, _, err := ReadStateDict(writeTorchZip(t, pkl, map[string][]byte{"data/0": f32s(1, 2, 3, 4)}))
	if err != nil {
		t.Fatal(err)
	}
	a := sd["a"]
	copy(a.Data, f32s(-1, -1))
	if b, _ := sd["b"].Float32s(); !slices.Equal(b, []float32{2, 3, 4}) {
		t.Fatalf("b = %v after writing a, want [2 3 4]", b)
	}
}

func TestReadTorchFileValues(t *testing.T) {
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	longOp := func(b *big.Int) string { // LONG1 little-endian two's complement
		be := b.Bytes()
		le := make([]byte, len(be)+1)
		for i, c := range be {
			le[len(be)-1-i] = c
		}
		return "\x8a" + string([]byte{byte(len(le))}) + string(le)
	}
	pkl := pk(opProto2, pDict(
		pStr("epoch"), pInt(13),
		pStr("lr"), pFloat(0.000125),
		pStr("none"), opNone,
		pStr("flag"), opTrue,
		pStr("big"), longOp(huge),
		pStr("bytes"), "C\x03abc",
		pStr("list"), opList+opMark+pInt(1)+pStr("two")+opAppends,
		pStr("tuple"), pInts(4, 5),
		pStr("state"), pDict(pInt(0), pDict(pStr("step"), pInt(3)), pInt(1), pDict()),
		pStr("dtype"), pGlobal("torch", "float32"),
		pStr("state_dict"), pGlobal("collections", "OrderedDict")+opEmptyTup+opReduce+opMark+
			pStr("w")+pTensor("FloatStorage", "0", 1, 0, []int32{1}, []int32{1})+opSetItems,
	), opStop)
	path := writeTorchZip(t, pkl, map[string][]byte{"data/0": f32s(2.5)})
	sd, other, err := ReadStateDict(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := sd["w"].Float32s(); len(sd) != 1 || !slices.Equal(v, []float32{2.5}) {
		t.Fatalf("state dict %v", sd)
	}
	want := map[string]any{
		"epoch": int64(13),
		"lr":    0.000125,
		"none":  nil,
		"flag":  true,
		"big":   huge,
		"bytes": []byte("abc"),
		"list":  []any{int64(1), "two"},
		"tuple": Tuple{int64(4), int64(5)},
		"state": Dict{{int64(0), Dict{{"step", int64(3)}}}, {int64(1), Dict{}}},
		"dtype": "torch.float32",
	}
	if !reflect.DeepEqual(other, want) {
		t.Fatalf("other entries\n%#v\nwant\n%#v", other, want)
	}
	st := other["state"].(Dict)
	if v, ok := st.Get(int64(0)); !ok || !reflect.DeepEqual(v, Dict{{"step", int64(3)}}) {
		t.Errorf("Dict.Get(0) = %v, %v", v, ok)
	}
	if _, ok := st.Get(Tuple{int64(1)}); ok { // uncomparable key: no panic, no match
		t.Error("Dict.Get found a tuple key")
	}
	top, err := ReadTorchFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := top.(Dict); !ok || len(d) != 11 || d[0].Key != "epoch" || d[10].Key != "state_dict" {
		t.Fatalf("ReadTorchFile top level %T %v", top, top)
	}
}

func TestReadTorchFileRefusesCode(t *testing.T) {
	tests := []struct {
		name string
		pkl  []byte
		want string
	}{
		{"GLOBAL os.system", pk(opProto2, pGlobal("os", "system"), opMark, pStr("ls"), opTuple, opReduce, opStop), "os.system"},
		{"STACK_GLOBAL builtins.eval", pk("\x80\x04", "\x8c\x08builtins", "\x8c\x04eval", "\x93", opMark, pStr("1"), opTuple, opReduce, opStop), "builtins.eval"},
		{"INST subprocess.call", pk(opMark, pStr("ls"), "isubprocess\ncall\n", opStop), "subprocess.call"},
		{"torch function", pk(opProto2, pGlobal("torch", "load"), opStop), "torch.load"},
		// gopickle resolves these two itself; they still cannot reach the
		// result.
		{"builtin object", pk(opProto2, pGlobal("__builtin__", "object"), opStop), "unsupported pickled value"},
		{"storage class as value", pk(opProto2, pGlobal("torch", "FloatStorage"), opStop), "unsupported pickled value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTorchZip(t, tt.pkl, nil)
			_, err := ReadTorchFile(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming the file and containing %q", err, tt.want)
			}
			if tt.want == "os.system" && !strings.Contains(err.Error(), "refusing to load global os.system") {
				t.Fatalf("error %v does not say the global was refused", err)
			}
		})
	}
}

func TestReadTorchFileBad(t *testing.T) {
	okTensor := pTensor("FloatStorage", "0", 4, 0, []int32{4}, []int32{1})
	okPkl := pk(opProto2, pDict(pStr("w"), okTensor), opStop)
	zipOf := func(files map[string][]byte) func(t *testing.T) string {
		return func(t *testing.T) string {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			for name, b := range files {
				w, _ := zw.Create(name)
				w.Write(b)
			}
			zw.Close()
			return writeTemp(t, "x.pth", buf.Bytes())
		}
	}
	torchZip := func(pkl []byte, files map[string][]byte) func(t *testing.T) string {
		return func(t *testing.T) string { return writeTorchZip(t, pkl, files) }
	}
	raw := func(b []byte) func(t *testing.T) string {
		return func(t *testing.T) string { return writeTemp(t, "x.pth", b) }
	}
	full := map[string][]byte{"data/0": f32s(1, 2, 3, 4)}
	tests := []struct {
		name string
		file func(t *testing.T) string
		want string
	}{
		{"legacy format", raw([]byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")), "legacy (pre-1.6, non-zip) torch.save format not supported, re-save with torch>=1.6"},
		{"png", raw([]byte("\x89PNG\r\n\x1a\n")), "not a PyTorch checkpoint"},
		{"empty", raw(nil), "not a PyTorch checkpoint"},
		{"broken zip", raw([]byte("PK\x03\x04garbage")), "bad zip archive"},
		{"zip without pickle", zipOf(map[string][]byte{"a/readme.txt": []byte("hi")}), "without <name>/data.pkl"},
		{"torchscript", zipOf(map[string][]byte{"m/data.pkl": okPkl, "m/code/m.py": nil}), "TorchScript"},
		{"big endian", torchZip(okPkl, map[string][]byte{"data/0": f32s(1, 2, 3, 4), "byteorder": []byte("big")}), `byte order "big"`},
		{"missing storage", torchZip(okPkl, nil), "archive member archive/data/0 missing"},
		{"short storage", torchZip(okPkl, map[string][]byte{"data/0": f32s(1, 2)}), "storage 0 (4 x FloatStorage): truncated: need 16 bytes, archive member has 8"},
		{"view past storage", torchZip(pk(opProto2, pDict(pStr("w"), pTensor("FloatStorage", "0", 4, 2, []int32{3}, []int32{1})), opStop), full), "exceeds storage of 4 elements"},
		{"strided view past storage", torchZip(pk(opProto2, pDict(pStr("w"), pTensor("FloatStorage", "0", 4, 0, []int32{2, 2}, []int32{3, 1})), opStop), full), "exceeds storage"},
		{"storage retyped", torchZip(pk(opProto2, pDict(pStr("a"), okTensor, pStr("b"), pTensor("LongStorage", "0", 2, 0, []int32{2}, []int32{1})), opStop), full), "referenced as 4 x F32 and 2 x I64"},
		{"text persistent id", torchZip(pk("P0\n", opStop), nil), "unsupported persistent id"},
		{"truncated pickle", torchZip(okPkl[:len(okPkl)-5], full), "malformed pickle"},
		{"unknown opcode", torchZip(pk(opProto2, "\xff", opStop), nil), "unknown opcode 0xff"},
		{"huge length", torchZip(pk(opProto2, "\x8e\xff\xff\xff\xff\xff\xff\xff\x7f", opStop), nil), "exceeds the"},
		{"odd dict items", torchZip(pk(opMark, pInt(1), "d", opStop), nil), "malformed pickle"},
		{"cyclic list", torchZip(pk(opProto2, "]q\x00h\x00a", opStop), nil), "cyclic"},
		{"deep nesting", torchZip(pk(opProto2, strings.Repeat("]", maxNesting+1), strings.Repeat("a", maxNesting), opStop), nil), "nests containers more than 10000 deep"},
		{"top level not a dict", torchZip(pk(opProto2, pInts(1), opStop), nil), "top level is a tuple, not a dict"},
		{"entry not a tensor", torchZip(pk(opProto2, pDict(pStr("w"), okTensor, pStr("epoch"), pInt(1)), opStop), full), `entry "epoch" is an int, not a tensor, and there is no "state_dict" entry`},
		{"state_dict entry not a tensor", torchZip(pk(opProto2, pDict(pStr("state_dict"), pDict(pStr("w"), pInt(1))), opStop), nil), `state_dict entry "w" is an int, not a tensor`},
		{"state_dict not a dict", torchZip(pk(opProto2, pDict(pStr("state_dict"), opNone), opStop), nil), "state_dict entry is None, not a dict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.file(t)
			_, _, err := ReadStateDict(path)
			if err == nil || !strings.HasPrefix(err.Error(), "read "+path+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant one naming %s and containing %q", err, path, tt.want)
			}
		})
	}
}

func TestReadStateDictGoldenCheckpoint(t *testing.T) {
	sd, other, err := ReadStateDict(shared.Path(t, "golden", "lvnet_partial_checkpoint.pth.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if other["epoch"] != int64(13) {
		t.Errorf("epoch = %#v, want 13", other["epoch"])
	}
	opt, ok := other["optimizer"].(Dict)
	if !ok {
		t.Fatalf("optimizer is %T", other["optimizer"])
	}
	groups, _ := opt.Get("param_groups")
	if g, ok := groups.([]any); !ok || len(g) != 1 {
		t.Fatalf("param_groups = %#v", groups)
	} else if lr, _ := g[0].(Dict).Get("lr"); lr != 0.000125 {
		t.Errorf("lr = %v, want 0.000125", lr)
	}
	for k := range sd {
		if !strings.HasPrefix(k, "module.") {
			t.Errorf("key %q lacks the DDP prefix", k)
		}
	}
	lv := FromOfficial(sd)
	keys, err := LoadKeyList(shared.Path(t, "golden", "state_dict_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := Check(keys, lv)
	if len(r.Unexpected) != 0 || len(r.Mismatched) != 0 || r.Present != len(sd) {
		t.Fatalf("checkpoint vs key list: %s", r)
	}
	for _, p := range []string{"cmc0.", "lfe0.", "score0.", "seg_header.", "xception_rgb.model.block1."} {
		found := false
		for k := range lv {
			found = found || strings.HasPrefix(k, p)
		}
		if !found {
			t.Errorf("no %s* entries", p)
		}
	}
	if n := checkDeterministic(t, lv, func(k string) string { return k }); n < len(lv)/2 {
		t.Errorf("compared only %d of %d entries with the rule", n, len(lv))
	}
}

func TestReadStateDictGoldenXception(t *testing.T) {
	sd, other, err := ReadStateDict(shared.Path(t, "golden", "xception_imagenet_partial.pth"))
	if err != nil {
		t.Fatal(err)
	}
	if len(other) != 0 {
		t.Errorf("plain state dict gave other entries %v", other)
	}
	if s := sd["block1.rep.0.pointwise.weight"].Shape; !slices.Equal(s, []int64{128, 64}) {
		t.Errorf("pointwise weight stored as %v, want 2-D [128 64]", s)
	}
	lv, err := FromXceptionImageNet(sd)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeyList(shared.Path(t, "golden", "state_dict_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := Check(keys, lv)
	if len(r.Unexpected) != 0 || len(r.Mismatched) != 0 || r.Present != 2*len(sd) {
		t.Fatalf("converted ImageNet Xception vs key list: %s", r)
	}
	// The file holds the rule's values of the RGB backbone's keys; the SRM
	// backbone gets the same values.
	rgb := map[string]Array{}
	for k, a := range lv {
		if strings.HasPrefix(k, RGBPrefix) {
			rgb[k] = a
		}
		if rest, ok := strings.CutPrefix(k, SRMPrefix); ok {
			if b := lv[RGBPrefix+rest]; !bytes.Equal(a.Data, b.Data) || !slices.Equal(a.Shape, b.Shape) {
				t.Errorf("%s differs from the RGB copy", k)
			}
		}
	}
	if n := checkDeterministic(t, rgb, func(k string) string { return k }); n < len(rgb)/2 {
		t.Errorf("compared only %d of %d entries with the rule", n, len(rgb))
	}
}
