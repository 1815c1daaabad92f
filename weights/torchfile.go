package weights

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// Tuple is a pickled Python tuple.
type Tuple []any

// Item is one key/value pair of a [Dict].
type Item struct {
	Key, Value any
}

// Dict is a pickled Python dict or OrderedDict, in insertion order. Keys
// are usually strings, but optimizer state dicts use integer keys.
type Dict []Item

// Get returns the value stored under key (compared by type and value:
// int64(3) and int(3) differ; integer keys are int64).
func (d Dict) Get(key any) (any, bool) {
	for _, it := range d {
		if equalKey(it.Key, key) {
			return it.Value, true
		}
	}
	return nil, false
}

// equalKey compares dict keys without panicking on uncomparable values.
func equalKey(a, b any) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	return a == b
}

// storageDTypes maps the storage classes a torch.save file may name to the
// dtype of their elements.
var storageDTypes = map[string]string{
	"FloatStorage":    F32,
	"DoubleStorage":   F64,
	"HalfStorage":     F16,
	"BFloat16Storage": BF16,
	"LongStorage":     I64,
	"IntStorage":      I32,
	"ByteStorage":     U8,
	"BoolStorage":     BOOL,
}

// dtypeSingletons are the torch.<dtype> globals a pickle may reference.
var dtypeSingletons = map[string]string{
	"float32": F32, "float64": F64, "float16": F16, "bfloat16": BF16,
	"int64": I64, "int32": I32, "uint8": U8, "bool": BOOL,
}

// ReadTorchFile reads a file written by PyTorch's torch.save (the zip
// format of torch >= 1.6) without executing any code: the pickle may only
// name OrderedDict, tensor and parameter rebuilding, storage classes and
// dtypes; any other global is refused.
//
// The result is made of nil, bool, int64 (*big.Int when larger), float64,
// string, []byte, []any (lists and sets), [Tuple], [Dict] and [Array]
// (tensors and parameters, contiguous; tensors that are the same view of a
// storage, as tied weights are, share their Data). torch.<dtype> globals
// come out as strings such as "torch.float32".
//
// A hostile or damaged file fails in bounded memory: the pickle may inflate
// to at most [MaxPickleBytes] and is checked before it runs (the unpickler's
// stack, memo and allocations are bounded); a storage is read only as far
// as the tensors viewing it reach, never beyond what the pickle and the
// archive member declare; and the tensors may not copy much more than the
// storages hold (overlapping or zero-stride views of a small storage).
func ReadTorchFile(path string) (any, error) {
	v, err := readTorchFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}

func readTorchFile(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return readTorchArchive(f, st.Size())
}

// readTorchArchive reads a torch.save archive of size bytes from r.
func readTorchArchive(r io.ReaderAt, size int64) (any, error) {
	var magic [4]byte
	n, _ := r.ReadAt(magic[:], 0)
	switch {
	case n >= 2 && magic[0] == 'P' && magic[1] == 'K':
	case n >= 1 && magic[0] == 0x80:
		return nil, errors.New("legacy (pre-1.6, non-zip) torch.save format not supported, re-save with torch>=1.6")
	default:
		return nil, errors.New("not a PyTorch checkpoint (neither a zip archive nor a pickle)")
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("bad zip archive: %w", err)
	}
	l := &torchLoader{files: map[string]*zip.File{}, storages: map[string]*storage{}}
	var pkl *zip.File
	for _, zf := range zr.File {
		if zf.CompressedSize64 > uint64(size) {
			return nil, fmt.Errorf("bad zip archive: member %s claims %d compressed bytes in a file of %d", zf.Name, zf.CompressedSize64, size)
		}
		l.files[zf.Name] = zf
		dir, base, ok := strings.Cut(zf.Name, "/")
		if !ok {
			continue
		}
		switch {
		case base == "data.pkl":
			if pkl != nil {
				return nil, fmt.Errorf("two pickles in the archive: %s and %s", pkl.Name, zf.Name)
			}
			pkl, l.prefix = zf, dir+"/"
		case strings.HasPrefix(base, "code/") || base == "constants.pkl":
			return nil, errors.New("a TorchScript archive (torch.jit.save), not a torch.save file")
		}
	}
	if pkl == nil {
		return nil, errors.New("zip archive without <name>/data.pkl: not a torch.save file")
	}
	if bo, ok := l.files[l.prefix+"byteorder"]; ok {
		b, err := readZipFile(bo, int64(min(bo.UncompressedSize64, 16)))
		if err != nil {
			return nil, fmt.Errorf("byteorder: %w", err)
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, fmt.Errorf("byte order %q not supported (only little-endian)", s)
		}
	}
	if pkl.UncompressedSize64 > MaxPickleBytes {
		// Refused before inflating anything: a checkpoint's pickle is a
		// few hundred KB, a larger one is damaged or hostile.
		return nil, fmt.Errorf("%s: the pickle inflates to %d bytes, more than the %d a checkpoint needs", pkl.Name, pkl.UncompressedSize64, MaxPickleBytes)
	}
	data, err := readZipFile(pkl, int64(pkl.UncompressedSize64))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	v, err := l.unpickle(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	return v, nil
}

// unpickle checks and runs the pickle data under the allowlist and converts
// the result to plain values.
func (l *torchLoader) unpickle(data []byte) (any, error) {
	if err := scanPickle(data); err != nil {
		return nil, fmt.Errorf("malformed pickle: %w", err)
	}
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = findClass
	u.PersistentLoad = l.persistentLoad
	v, err := loadPickle(&u)
	if err != nil {
		return nil, err
	}
	c := converter{done: map[any]any{}, busy: map[any]bool{}}
	return c.convert(v)
}

// loadPickle runs the unpickler, turning a panic on malformed input into an
// error.
func loadPickle(u *pickle.Unpickler) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	return u.Load()
}

// checkZipSize refuses to read n bytes of an archive member that cannot
// hold them: more than its declared size, or more than its compressed size
// can expand to (deflate expands at most about 1032:1), so that a damaged
// or hostile archive cannot make us allocate wildly.
func checkZipSize(zf *zip.File, n int64) error {
	if n < 0 || uint64(n) > zf.UncompressedSize64 {
		return fmt.Errorf("truncated: need %d bytes, archive member has %d", n, zf.UncompressedSize64)
	}
	limit := zf.CompressedSize64
	if zf.Method != zip.Store {
		limit = limit*1032 + 1<<10
	}
	if uint64(n) > limit {
		return fmt.Errorf("archive member declares %d bytes but stores only %d compressed", zf.UncompressedSize64, zf.CompressedSize64)
	}
	return nil
}

// zipChunk is how much of an archive member is read before the whole of
// what it declares is allocated: a member whose data falls short of its
// header fails having cost at most this much.
const zipChunk = 16 << 20

// readZipFile reads the first n bytes of an archive member (see
// checkZipSize). The zip reader itself refuses members that inflate to
// more than they declare.
func readZipFile(zf *zip.File, n int64) ([]byte, error) {
	if err := checkZipSize(zf, n); err != nil {
		return nil, err
	}
	r, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b := make([]byte, min(n, zipChunk))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	if n > int64(len(b)) {
		all := make([]byte, n)
		k := copy(all, b)
		b = nil
		if _, err := io.ReadFull(r, all[k:]); err != nil {
			return nil, err
		}
		b = all
	}
	return b, nil
}

// findClass is the allowlist of globals a checkpoint pickle may name.
func findClass(module, name string) (any, error) {
	switch module {
	case "torch._utils":
		switch name {
		case "_rebuild_tensor_v2":
			return rebuildTensor{}, nil
		case "_rebuild_parameter":
			return rebuildParameter{}, nil
		}
	case "torch":
		if dt, ok := storageDTypes[name]; ok {
			return storageType{name: name, dtype: dt}, nil
		}
		if _, ok := dtypeSingletons[name]; ok {
			return dtypeValue("torch." + name), nil
		}
	}
	return nil, fmt.Errorf("refusing to load global %s.%s: only tensors, storages and state dicts are allowed", module, name)
}

// storageType is a storage class such as torch.FloatStorage.
type storageType struct{ name, dtype string }

// dtypeValue is a torch.<dtype> singleton.
type dtypeValue string

// storage is one archive storage, read on demand: only as far as the
// tensors viewing it reach.
type storage struct {
	l     *torchLoader
	key   string
	name  string // storage class, for messages
	dtype string
	numel int64
	zf    *zip.File
	data  []byte // its first len(data)/DTypeSize(dtype) elements
	given bool   // data is held by a tensor made without a copy
	views map[string]*Array
}

// Bounds on the tensors made from storages: their copies may take at most
// maxViewCopies times the bytes read from the storages, plus viewSlack, so
// that a small file cannot expand a storage into many large tensors
// (overlapping views, zero strides). Real files copy at most once (a
// transposed view beside the tensor) and repeat a view only to tie
// weights, which share their bytes.
const (
	maxViewCopies = 2
	viewSlack     = 16 << 20
)

// torchLoader resolves persistent storage references against the archive.
type torchLoader struct {
	prefix   string
	files    map[string]*zip.File
	storages map[string]*storage
	loaded   int64 // bytes read from storages
	copied   int64 // bytes of tensors copied out of storages
}

// persistentLoad resolves ('storage', storage_type, key, location, numel).
// It checks the archive member against the declared size; the data is read
// when a tensor views it.
func (l *torchLoader) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() != 5 || t.Get(0) != "storage" {
		return nil, fmt.Errorf("unsupported persistent id %v", pid)
	}
	st, ok1 := t.Get(1).(storageType)
	key, ok2 := t.Get(2).(string)
	n, ok3 := toInt64(t.Get(4))
	if !ok1 || !ok2 || !ok3 || n < 0 {
		return nil, fmt.Errorf("malformed storage reference %v", *t)
	}
	if s, ok := l.storages[key]; ok {
		if s.dtype != st.dtype || s.numel != n {
			return nil, fmt.Errorf("storage %s referenced as %d x %s and %d x %s", key, s.numel, s.dtype, n, st.dtype)
		}
		return s, nil
	}
	zf, ok := l.files[l.prefix+"data/"+key]
	if !ok {
		return nil, fmt.Errorf("storage %s: archive member %sdata/%s missing", key, l.prefix, key)
	}
	size := int64(DTypeSize(st.dtype))
	if n > (1<<62)/size {
		return nil, fmt.Errorf("storage %s: %d elements is too many", key, n)
	}
	if err := checkZipSize(zf, n*size); err != nil {
		return nil, fmt.Errorf("storage %s (%d x %s): %w", key, n, st.name, err)
	}
	s := &storage{l: l, key: key, name: st.name, dtype: st.dtype, numel: n, zf: zf, views: map[string]*Array{}}
	l.storages[key] = s
	return s, nil
}

// load makes sure the first n elements of s are read. A storage grows at
// least twofold each time it is read again.
func (s *storage) load(n int64) error {
	es := int64(DTypeSize(s.dtype))
	have := int64(len(s.data)) / es
	if n <= have {
		return nil
	}
	want := min(max(n, 2*have), s.numel)
	b, err := readZipFile(s.zf, want*es)
	if err != nil {
		return fmt.Errorf("storage %s (%d x %s): %w", s.key, s.numel, s.name, err)
	}
	s.l.loaded += int64(len(b) - len(s.data))
	s.data, s.given = b, false
	return nil
}

// toInt64 converts a pickled integer.
func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), true
		}
	}
	return 0, false
}

// intTuple converts a pickled tuple of integers (a size or a stride).
func intTuple(v any) ([]int64, bool) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, false
	}
	out := make([]int64, t.Len())
	for i := range out {
		if out[i], ok = toInt64(t.Get(i)); !ok {
			return nil, false
		}
	}
	return out, true
}

// rebuildTensor implements torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
type rebuildTensor struct{}

// Call makes the tensor the arguments describe (see storage.view).
func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want at least 4", len(args))
	}
	s, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: first argument is %T, not a storage", args[0])
	}
	off, ok1 := toInt64(args[1])
	size, ok2 := intTuple(args[2])
	stride, ok3 := intTuple(args[3])
	if !ok1 || !ok2 || !ok3 || len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: malformed offset, size or stride")
	}
	a, err := s.view(off, size, stride)
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %w", err)
	}
	return a, nil
}

// view returns the tensor of the strided view (offset, size, stride) of s,
// checking that it lies inside the storage and reading the storage as far
// as it reaches. The first tensor that covers exactly what was read of the
// storage takes those bytes; other views are contiguous copies, except that
// the same view asked again (tied weights) shares its bytes.
func (s *storage) view(off int64, size, stride []int64) (*Array, error) {
	key := fmt.Sprint(off, size, stride)
	if a, ok := s.views[key]; ok {
		return a, nil
	}
	last, err := viewLast(s.numel, off, size, stride)
	if err != nil {
		return nil, err
	}
	n, _ := numel(size) // checked by viewLast
	es := int64(DTypeSize(s.dtype))
	a := &Array{DType: s.dtype, Shape: size}
	switch {
	case n == 0:
		a.Data = []byte{}
	default:
		if err := s.load(last + 1); err != nil {
			return nil, err
		}
		if !s.given && off == 0 && n*es == int64(len(s.data)) && contiguous(size, stride) {
			a.Data, s.given = s.data, true
			break
		}
		l := s.l
		if l.copied+n*es > maxViewCopies*l.loaded+viewSlack {
			return nil, fmt.Errorf("view (offset %d, size %v, stride %v) of storage %s: the file's tensors would copy %d bytes out of the %d its storages hold (overlapping or zero-stride views)",
				off, size, stride, s.key, l.copied+n*es, l.loaded)
		}
		l.copied += n * es
		a.Data = make([]byte, n*es)
		copyView(a.Data, s.data, es, off, size, stride)
	}
	s.views[key] = a
	return a, nil
}

// viewLast returns the last storage element of the strided view (offset,
// size, stride) of a storage of numel elements, checking that the view lies
// inside the storage (0 for an empty view).
func viewLast(numel_, off int64, size, stride []int64) (int64, error) {
	n, ok := numel(size)
	if !ok {
		return 0, fmt.Errorf("invalid size %v", size)
	}
	if off < 0 {
		return 0, fmt.Errorf("negative storage offset %d", off)
	}
	if n == 0 {
		return 0, nil
	}
	last := off
	for i, d := range size {
		if stride[i] < 0 {
			return 0, fmt.Errorf("negative stride %v", stride)
		}
		if stride[i] > 0 && d-1 > (numel_-last)/stride[i] {
			return 0, fmt.Errorf("view (offset %d, size %v, stride %v) exceeds storage of %d elements", off, size, stride, numel_)
		}
		last += (d - 1) * stride[i]
	}
	if last >= numel_ {
		return 0, fmt.Errorf("view (offset %d, size %v, stride %v) exceeds storage of %d elements", off, size, stride, numel_)
	}
	return last, nil
}

// contiguous reports whether strides are the row-major ones of size.
func contiguous(size, stride []int64) bool {
	want := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] != 1 && stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}

// copyView copies the strided view (offset, size, stride) of data, whose
// elements take es bytes, into dst, row-major; the view lies inside data
// (viewLast) and is not empty.
func copyView(dst, data []byte, es, off int64, size, stride []int64) {
	// Copy runs of the innermost dimension when it is contiguous.
	inner, innerStride := int64(1), int64(1)
	if len(size) > 0 {
		inner, innerStride = size[len(size)-1], stride[len(size)-1]
	}
	outer := size
	if len(size) > 0 {
		outer = size[:len(size)-1]
	}
	idx := make([]int64, len(outer))
	for {
		base := off
		for i, j := range idx {
			base += j * stride[i]
		}
		if innerStride == 1 {
			k := copy(dst, data[base*es:(base+inner)*es])
			dst = dst[k:]
		} else {
			for j := int64(0); j < inner; j++ {
				p := (base + j*innerStride) * es
				k := copy(dst, data[p:p+es])
				dst = dst[k:]
			}
		}
		// Advance the odometer over the outer dimensions.
		i := len(idx) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < outer[i] {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			break
		}
	}
}

// rebuildParameter implements torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks): a parameter is its tensor.
type rebuildParameter struct{}

// Call returns the parameter's tensor.
func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, errors.New("_rebuild_parameter: no arguments")
	}
	a, ok := args[0].(*Array)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: argument is %T, not a tensor", args[0])
	}
	return a, nil
}

// maxNesting bounds how deeply containers may nest in a pickle.
const maxNesting = 10000

// converter turns gopickle values into this package's plain values,
// preserving sharing and refusing cycles.
type converter struct {
	done map[any]any
	busy map[any]bool
}

func (c *converter) convert(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, float64:
		return x, nil
	case int:
		return int64(x), nil
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), nil
		}
		return x, nil
	case []byte:
		return x, nil
	case *types.ByteArray:
		return []byte(*x), nil
	case *Array:
		return *x, nil
	case *storage: // a storage pickled as a value: all of it
		a, err := x.view(0, []int64{x.numel}, []int64{1})
		if err != nil {
			return nil, err
		}
		return *a, nil
	case dtypeValue:
		return string(x), nil
	case *types.List, *types.Tuple, *types.Dict, *types.OrderedDict, *types.Set, *types.FrozenSet:
		if r, ok := c.done[v]; ok {
			return r, nil
		}
		if c.busy[v] {
			return nil, errors.New("pickle holds a cyclic structure")
		}
		if len(c.busy) >= maxNesting {
			return nil, fmt.Errorf("pickle nests containers more than %d deep", maxNesting)
		}
		c.busy[v] = true
		r, err := c.container(v)
		delete(c.busy, v)
		if err != nil {
			return nil, err
		}
		c.done[v] = r
		return r, nil
	}
	return nil, fmt.Errorf("unsupported pickled value of type %T", v)
}

// container converts the elements of a list, tuple, dict or set.
func (c *converter) container(v any) (any, error) {
	var err error
	items := func(in []any) []any {
		out := make([]any, len(in))
		for i, e := range in {
			if err != nil {
				break
			}
			out[i], err = c.convert(e)
		}
		return out
	}
	switch x := v.(type) {
	case *types.List:
		out := items(*x)
		return out, err
	case *types.Tuple:
		out := items(*x)
		return Tuple(out), err
	case *types.Dict:
		d := make(Dict, len(*x))
		for i, e := range *x {
			kv := items([]any{e.Key, e.Value})
			d[i] = Item{Key: kv[0], Value: kv[1]}
		}
		return d, err
	case *types.OrderedDict:
		d := make(Dict, 0, x.Len())
		for el := x.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			kv := items([]any{e.Key, e.Value})
			d = append(d, Item{Key: kv[0], Value: kv[1]})
		}
		return d, err
	case *types.Set:
		var in []any
		for k := range *x {
			in = append(in, k)
		}
		return items(in), err
	case *types.FrozenSet:
		var in []any
		for k := range *x {
			in = append(in, k)
		}
		return items(in), err
	}
	return nil, fmt.Errorf("unsupported pickled value of type %T", v)
}

// ReadStateDict reads a torch.save file holding either a plain state dict
// (a dict of tensors) or a training checkpoint with a "state_dict" entry,
// such as the authors' {"epoch", "state_dict", "optimizer"}. It returns the
// tensors by key and the checkpoint's other top-level entries (empty for a
// plain state dict), with values as described at [ReadTorchFile].
func ReadStateDict(path string) (map[string]Array, map[string]any, error) {
	v, err := ReadTorchFile(path)
	if err != nil {
		return nil, nil, err
	}
	sd, other, err := splitCheckpoint(v)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return sd, other, nil
}

// splitCheckpoint extracts the state dict from a loaded checkpoint.
func splitCheckpoint(v any) (map[string]Array, map[string]any, error) {
	top, ok := v.(Dict)
	if !ok {
		return nil, nil, fmt.Errorf("top level is %s, not a dict", typeName(v))
	}
	other := map[string]any{}
	wrapped := false
	if inner, ok := top.Get("state_dict"); ok {
		wrapped = true
		d, ok := inner.(Dict)
		if !ok {
			return nil, nil, fmt.Errorf("state_dict entry is %s, not a dict", typeName(inner))
		}
		for _, it := range top {
			if k, ok := it.Key.(string); ok && k != "state_dict" {
				other[k] = it.Value
			} else if !ok {
				other[fmt.Sprint(it.Key)] = it.Value
			}
		}
		top = d
	}
	sd := make(map[string]Array, len(top))
	for _, it := range top {
		k, ok := it.Key.(string)
		if !ok {
			return nil, nil, fmt.Errorf("state dict key %v is %s, not a string", it.Key, typeName(it.Key))
		}
		a, ok := it.Value.(Array)
		if !ok && wrapped {
			return nil, nil, fmt.Errorf("state_dict entry %q is %s, not a tensor", k, typeName(it.Value))
		}
		if !ok {
			return nil, nil, fmt.Errorf("entry %q is %s, not a tensor, and there is no \"state_dict\" entry", k, typeName(it.Value))
		}
		sd[k] = a
	}
	return sd, other, nil
}

// typeName names the Python-level kind of a converted value.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "a bool"
	case int64, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a string"
	case []byte:
		return "bytes"
	case []any:
		return "a list"
	case Tuple:
		return "a tuple"
	case Dict:
		return "a dict"
	case Array:
		return "a tensor"
	}
	return fmt.Sprintf("%T", v)
}
