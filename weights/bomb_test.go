package weights

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lvnet-go/lvnet/internal/shared"
)

// Hostile torch.save files ("decompression bombs"): each must be refused,
// or read, in bounded memory and time.

// member is one archive member of a test file, written in a stream.
type member struct {
	name    string
	deflate bool
	write   func(w io.Writer)
	// declare, when not zero, is the uncompressed size the archive
	// declares for a deflated member (a lie, when it differs).
	declare uint64
}

// bombFile writes a torch.save style archive of members (prefix "archive/"
// added) to a temporary file, without holding the data in memory.
func bombFile(t testing.TB, members ...member) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bomb.pth")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed)
	})
	for _, m := range members {
		name := "archive/" + m.name
		switch {
		case m.declare != 0:
			// Deflate into memory (the test bombs compress well) and
			// write the raw member with the declared size.
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
			m.write(fw)
			fw.Close()
			w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate,
				CompressedSize64: uint64(buf.Len()), UncompressedSize64: m.declare, CRC32: crc32.ChecksumIEEE(nil)})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(buf.Bytes())
		default:
			method := zip.Store
			if m.deflate {
				method = zip.Deflate
			}
			w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
			if err != nil {
				t.Fatal(err)
			}
			m.write(w)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// repeated writes head, then pat n times (in chunks), then tail.
func repeated(head, pat string, n int, tail string) func(io.Writer) {
	return func(w io.Writer) {
		io.WriteString(w, head)
		chunk := strings.Repeat(pat, max(1, min(n, (1<<20)/len(pat))))
		per := len(chunk) / len(pat)
		for left := n; left > 0; left -= per {
			io.WriteString(w, chunk[:min(left, per)*len(pat)])
		}
		io.WriteString(w, tail)
	}
}

// zeros writes n zero bytes.
func zeros(n int64) func(io.Writer) {
	return func(w io.Writer) {
		z := make([]byte, 1<<20)
		for left := n; left > 0; left -= int64(len(z)) {
			w.Write(z[:min(left, int64(len(z)))])
		}
	}
}

func bytesOf(b []byte) func(io.Writer) { return func(w io.Writer) { w.Write(b) } }

// measure runs f and returns the bytes the Go heap allocated meanwhile
// (garbage included: an upper bound on the heap's growth) and the time.
func measure(f func()) (uint64, time.Duration) {
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	t0 := time.Now()
	f()
	d := time.Since(t0)
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc, d
}

// Sizes of the bombs.
const (
	pickleBomb  = 64 << 20 // inflated pickle (the issue's: 65 KB of zip)
	storageBomb = 1 << 30  // inflated storage (the issue's: 1 MB of zip)
)

// bombCase is a hostile file, what reading it must say, and how many bytes
// the Go heap may allocate meanwhile.
type bombCase struct {
	name     string
	file     func(t testing.TB) string
	want     string // error substring; "" when the file is read
	maxAlloc uint64
	check    func(t *testing.T, sd map[string]Array)
}

func bombCases() []bombCase {
	store4M := member{name: "data/0", write: zeros(4 << 20)} // 1M floats, stored
	views := func(n int, view func(k int) string) string {
		var kv []string
		for k := range n {
			kv = append(kv, pStr(fmt.Sprint("w", k)), view(k))
		}
		return string(pk(opProto2, pDict(kv...), opStop))
	}
	pklMember := func(p string) member { return member{name: "data.pkl", write: bytesOf([]byte(p))} }
	return []bombCase{
		{name: "pickle inflating to 64 MiB",
			file: func(t testing.TB) string {
				return bombFile(t, member{name: "data.pkl", deflate: true, write: repeated(opProto2, opList, pickleBomb, opStop)})
			},
			want: "the pickle inflates to 67108867 bytes, more than the 4194304 a checkpoint needs", maxAlloc: 1 << 20},
		{name: "pickle inflating past its declared size",
			file: func(t testing.TB) string {
				return bombFile(t, member{name: "data.pkl", declare: 4 << 10, write: repeated(opProto2, opList, pickleBomb, opStop)})
			},
			want: "malformed pickle", maxAlloc: 1 << 20},
		{name: "4 MiB of EMPTY_LIST",
			file: func(t testing.TB) string {
				return bombFile(t, member{name: "data.pkl", deflate: true, write: repeated(opProto2, opList, MaxPickleBytes-3, opStop)})
			},
			want: "more than 65536 values on the stack", maxAlloc: 6 << 20},
		{name: "4 MiB of MARK",
			file: func(t testing.TB) string {
				return bombFile(t, member{name: "data.pkl", deflate: true, write: repeated(opProto2, opMark, MaxPickleBytes-3, opStop)})
			},
			want: "more than 1024 nested marks", maxAlloc: 6 << 20},
		{name: "4 MiB of MEMOIZE",
			file: func(t testing.TB) string {
				return bombFile(t, member{name: "data.pkl", deflate: true, write: repeated(opProto2+opNone, "\x94", MaxPickleBytes-4, opStop)})
			},
			want: "more than 262144 memo entries", maxAlloc: 6 << 20},
		{name: "tuples appended to a list",
			file: func(t testing.TB) string {
				return bombFile(t, member{name: "data.pkl", deflate: true, write: repeated(opProto2+opList, opMark+opTuple+"a", (MaxPickleBytes-4)/3, opStop)})
			},
			want: "unpickling would allocate more than 64 MiB", maxAlloc: 6 << 20},
		{name: "a 5000-digit integer",
			file: func(t testing.TB) string {
				return bombFile(t, pklMember(opProto2+"I"+strings.Repeat("9", 5000)+"\n"+opStop))
			},
			want: "an integer of 5000 digits", maxAlloc: 1 << 20},
		{name: "1 GiB storage, 4-element tensor",
			file: func(t testing.TB) string {
				return bombFile(t,
					pklMember(views(1, func(int) string { return pTensor("FloatStorage", "0", storageBomb/4, 0, []int32{4}, []int32{1}) })),
					member{name: "data/0", deflate: true, write: zeros(storageBomb)})
			},
			maxAlloc: 1 << 20,
			check: func(t *testing.T, sd map[string]Array) {
				if v, err := sd["w0"].Float32s(); err != nil || len(v) != 4 {
					t.Errorf("w0 = %v, %v", v, err)
				}
			}},
		{name: "zero-stride view of one element",
			file: func(t testing.TB) string {
				return bombFile(t,
					pklMember(views(1, func(int) string { return pTensor("FloatStorage", "0", 1, 0, []int32{1 << 28}, []int32{0}) })),
					member{name: "data/0", write: zeros(4)})
			},
			want: "the file's tensors would copy 1073741824 bytes out of the 4 its storages hold", maxAlloc: 1 << 20},
		{name: "64 overlapping views of a 4 MiB storage",
			file: func(t testing.TB) string {
				return bombFile(t, pklMember(views(64, func(k int) string {
					return pTensor("FloatStorage", "0", 1<<20, int32(k+1), []int32{1<<20 - 64}, []int32{1})
				})), store4M)
			},
			want: "overlapping or zero-stride views", maxAlloc: 48 << 20},
		{name: "64 tied views of a 4 MiB storage",
			file: func(t testing.TB) string {
				return bombFile(t, pklMember(views(64, func(int) string {
					return pTensor("FloatStorage", "0", 1<<20, 0, []int32{1 << 20}, []int32{1})
				})), store4M)
			},
			maxAlloc: 8 << 20,
			check: func(t *testing.T, sd map[string]Array) {
				if len(sd) != 64 || &sd["w0"].Data[0] != &sd["w63"].Data[0] || len(sd["w63"].Data) != 4<<20 {
					t.Errorf("tied views: %d tensors, not sharing their data", len(sd))
				}
			}},
	}
}

func TestReadTorchFileBombs(t *testing.T) {
	for _, tc := range bombCases() {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.file(t)
			var sd map[string]Array
			var err error
			alloc, d := measure(func() { sd, _, err = ReadStateDict(path) })
			t.Logf("%s: %.1f MiB allocated, %v: %v", tc.name, float64(alloc)/(1<<20), d.Round(time.Millisecond), err)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v, want the file read", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "read "+path+": ")):
				t.Fatalf("error %v\nwant one naming the file and saying %q", err, tc.want)
			}
			if alloc > tc.maxAlloc {
				t.Errorf("allocated %d bytes, the bound is %d", alloc, tc.maxAlloc)
			}
			if d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if tc.check != nil {
				tc.check(t, sd)
			}
		})
	}
}

// TestReadTorchFileStorageNotCopied: a tensor that is its whole storage
// takes the bytes read, without a copy (a 256 MiB storage costs 256 MiB,
// not twice that).
func TestReadTorchFileStorageNotCopied(t *testing.T) {
	const n = 256 << 20
	path := bombFile(t,
		member{name: "data.pkl", write: bytesOf(pk(opProto2, pDict(pStr("w"), pTensor("FloatStorage", "0", n/4, 0, []int32{1 << 12, n / 4 >> 12}, []int32{n / 4 >> 12, 1})), opStop))},
		member{name: "data/0", deflate: true, write: zeros(n)})
	var sd map[string]Array
	var err error
	alloc, _ := measure(func() { sd, _, err = ReadStateDict(path) })
	if err != nil {
		t.Fatal(err)
	}
	if len(sd["w"].Data) != n {
		t.Fatalf("w holds %d bytes", len(sd["w"].Data))
	}
	if alloc > n+zipChunk+(4<<20) { // the first chunk is read before the whole is allocated
		t.Errorf("reading a %d MiB tensor allocated %.0f MiB", n>>20, float64(alloc)/(1<<20))
	}
}

// TestReadTorchFileBombsRSS reads the bombs in a child process and bounds
// its peak resident memory (the whole test binary's).
func TestReadTorchFileBombsRSS(t *testing.T) {
	if path := os.Getenv("LVNET_READ_TORCH_FILE"); path != "" {
		_, _, err := ReadStateDict(path)
		status, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				fmt.Println(line)
			}
		}
		fmt.Println(err)
		return
	}
	if testing.Short() {
		t.Skip("-short")
	}
	const bound = 100 << 20
	for _, tc := range bombCases() {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.file(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestReadTorchFileBombsRSS$")
			cmd.Env = append(os.Environ(), "LVNET_READ_TORCH_FILE="+path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			// The child's own high-water mark (its rusage would count the
			// parent's memory, which it shared until exec).
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimPrefix(string(out), "VmHWM:"), "%d kB", &kb); err != nil {
				t.Skipf("no VmHWM in /proc/self/status: %s", out)
			}
			rss := kb << 10
			t.Logf("%s: peak RSS %.1f MiB", tc.name, float64(rss)/(1<<20))
			if rss > bound {
				t.Errorf("peak RSS %d bytes, the bound is %d\n%s", rss, bound, out)
			}
		})
	}
}

// TestPickleCostEstimate runs pickles made of one pattern repeated as often
// as scanPickle accepts, and checks that unpickling and converting them
// allocates less than scanPickle's estimate, which maxPickleAlloc bounds.
func TestPickleCostEstimate(t *testing.T) {
	od := pGlobal("collections", "OrderedDict") + opEmptyTup + opReduce
	for _, p := range []struct{ name, head, pat, tail string }{
		{"tuples appended", opProto2 + opList, opMark + opTuple + "a", opStop},
		{"lists appended", opProto2 + opList, opList + "a", opStop},
		{"dicts appended", opProto2 + opList, opDict + "a", opStop},
		{"1-tuples appended", opProto2 + opList, opNone + "\x85a", opStop},
		{"memoized values", opProto2 + opList, opNone + "\x94a", opStop},
		{"strings", opProto2 + opList, pStr("abcdefghijklmnop") + "a", opStop},
		{"ints", opProto2 + opList, pInt(256) + "a", opStop},
		{"one APPENDS", opProto2 + opList + opMark, opNone, opAppends + opStop},
		{"dict SETITEMS", opProto2 + opDict + opMark, pInt(256) + pInt(256), opSetItems + opStop},
		{"OrderedDict SETITEMS", opProto2 + od + opMark, pStr("k") + pInt(256), opSetItems + opStop},
	} {
		t.Run(p.name, func(t *testing.T) {
			build := func(n int) []byte { return []byte(p.head + strings.Repeat(p.pat, n) + p.tail) }
			lo, hi := 1, MaxPickleBytes/len(p.pat)
			for lo < hi { // the most repetitions scanPickle accepts
				mid := (lo + hi + 1) / 2
				if _, err := scanPickleStats(build(mid)); err == nil {
					lo = mid
				} else {
					hi = mid - 1
				}
			}
			data := build(lo)
			st, err := scanPickleStats(data)
			if err != nil {
				t.Fatal(err)
			}
			l := &torchLoader{storages: map[string]*storage{}}
			alloc, d := measure(func() { _, err = l.unpickle(data) })
			t.Logf("%d repetitions, %d bytes: estimated %.1f MiB, allocated %.1f MiB in %v (%v)",
				lo, len(data), float64(st.alloc)/(1<<20), float64(alloc)/(1<<20), d.Round(time.Millisecond), err)
			if alloc > uint64(st.alloc) {
				t.Errorf("allocated %d bytes, more than the estimate %d", alloc, st.alloc)
			}
		})
	}
}

// TestPickleBoundsLeaveRoom: the golden checkpoints' pickles are far inside
// the bounds (30 times as much stays inside: a whole LVNet checkpoint).
func TestPickleBoundsLeaveRoom(t *testing.T) {
	for _, name := range []string{"lvnet_partial_checkpoint.pth.tar", "xception_imagenet_partial.pth"} {
		zr, err := zip.OpenReader(shared.Path(t, "golden", name))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, zf := range zr.File {
			if !strings.HasSuffix(zf.Name, "/data.pkl") {
				continue
			}
			b, err := readZipFile(zf, int64(zf.UncompressedSize64))
			if err != nil {
				t.Fatal(err)
			}
			st, err := scanPickleStats(b)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d bytes, %+v", name, len(b), st)
			if 30*len(b) > MaxPickleBytes || 30*st.memo > maxPickleMemo || 30*st.alloc > maxPickleAlloc || st.marks > 10 || st.stack > 1000 {
				t.Errorf("%s: %d bytes, %+v: too close to the bounds", name, len(b), st)
			}
		}
	}
}
