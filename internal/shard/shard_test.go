package shard

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// env returns a getenv over vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		env  map[string]string
		want Shard
		err  string // substring of the error; "" for none
	}{
		{"", nil, Shard{}, ""},
		{"0/1", nil, Shard{0, 1}, ""},
		{"2/3", nil, Shard{2, 3}, ""},
		{" 1 / 4 ", nil, Shard{1, 4}, ""},
		{"3/2", nil, Shard{}, "K=3 is outside 0 to 1"},
		{"2/2", nil, Shard{}, "K=2 is outside 0 to 1"},
		{"-1/2", nil, Shard{}, "K=-1 is outside"},
		{"x/2", nil, Shard{}, `K "x" is not a number`},
		{"1/y", nil, Shard{}, `N "y" is not a number`},
		{"0/0", nil, Shard{}, "N must be at least 1"},
		{"0/-3", nil, Shard{}, "N must be at least 1"},
		{"3", nil, Shard{}, "want K/N"},
		{"1/2/3", nil, Shard{}, "not a number"},
		// K from the environment.
		{"/4", map[string]string{EnvKubernetes: "3"}, Shard{3, 4}, ""},
		{"/4", map[string]string{EnvKubernetes: "0", EnvSlurm: "2"}, Shard{0, 4}, ""},
		{"/4", map[string]string{EnvKubernetes: "4"}, Shard{}, "K from $JOB_COMPLETION_INDEX=4"},
		{"/4", map[string]string{EnvKubernetes: "a"}, Shard{}, `$JOB_COMPLETION_INDEX="a" is not a number`},
		{"/4", map[string]string{EnvSlurm: "2"}, Shard{2, 4}, ""},
		{"/4", map[string]string{EnvSlurm: "4", EnvSlurmMin: "1", EnvSlurmStep: "1", EnvSlurmCount: "4"}, Shard{3, 4}, ""},
		{"/4", map[string]string{EnvSlurm: "6", EnvSlurmMin: "0", EnvSlurmStep: "2", EnvSlurmCount: "4"}, Shard{3, 4}, ""},
		{"/4", map[string]string{EnvSlurm: "5", EnvSlurmMin: "0", EnvSlurmStep: "2"}, Shard{}, "not on the array's steps"},
		{"/4", map[string]string{EnvSlurm: "1", EnvSlurmCount: "8"}, Shard{}, "has 8 tasks"},
		{"/4", map[string]string{EnvSlurm: "9"}, Shard{}, "K from $SLURM_ARRAY_TASK_ID=9"},
		{"/4", nil, Shard{}, "neither $JOB_COMPLETION_INDEX (Kubernetes indexed Job) nor $SLURM_ARRAY_TASK_ID"},
		{"/0", map[string]string{EnvKubernetes: "0"}, Shard{}, "N must be at least 1"},
	} {
		got, err := Parse(tc.in, env(tc.env))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("Parse(%q, %v): %v", tc.in, tc.env, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Parse(%q, %v): error %v, want one containing %q", tc.in, tc.env, err, tc.err)
		case got != tc.want:
			t.Errorf("Parse(%q, %v) = %+v, want %+v", tc.in, tc.env, got, tc.want)
		}
	}
}

// paths returns a few hundred paths like those of a dataset: nested
// folders, similar names, some non-ASCII.
func paths() []string {
	var out []string
	for i := range 300 {
		switch i % 4 {
		case 0:
			out = append(out, fmt.Sprintf("videos/%03d_%03d.mp4", i, (i*7)%1000))
		case 1:
			out = append(out, fmt.Sprintf("photos/2024-%02d/IMG_%04d.jpg", i%12+1, i))
		case 2:
			out = append(out, fmt.Sprintf("frames/clip%d/%04d.png", i/10, i))
		default:
			out = append(out, fmt.Sprintf("été/ünï cödé %d.webp", i))
		}
	}
	return out
}

// TestEveryInputInOneShard: for N = 1 to 7, each input is in exactly one
// of the N shards, and the shards are not wildly unbalanced.
func TestEveryInputInOneShard(t *testing.T) {
	keys := paths()
	for n := 1; n <= 7; n++ {
		count := make([]int, n)
		for _, key := range keys {
			in := 0
			for k := range n {
				if (Shard{K: k, N: n}).Has(key) {
					in++
					count[k]++
				}
			}
			if in != 1 {
				t.Fatalf("N=%d: %q is in %d shards", n, key, in)
			}
		}
		for k, c := range count {
			if want := len(keys) / n; c < want/2 {
				t.Errorf("N=%d: shard %d has %d of %d keys (want about %d)", n, k, c, len(keys), want)
			}
		}
	}
	if !(Shard{}).Has("anything") {
		t.Error("the zero Shard does not hold every key")
	}
}

// TestOfStable pins the hash: reruns and other builds put a key in the same
// shard (the package comment's Python line gives these too).
func TestOfStable(t *testing.T) {
	for _, tc := range []struct {
		key  string
		n    int
		want int
	}{
		{"a.jpg", 1, 0},
		{"a.jpg", 2, 0},
		{"a.jpg", 3, 1},
		{"a.jpg", 4, 2},
		{"a.jpg", 7, 4},
		{"a.jpg", 1000003, 826654},
	} {
		if got := Of(tc.key, tc.n); got != tc.want {
			t.Errorf("Of(%q, %d) = %d, want %d", tc.key, tc.n, got, tc.want)
		}
	}
}

func TestKey(t *testing.T) {
	for _, tc := range []struct{ root, path, want string }{
		{"photos", filepath.Join("photos", "sub", "a.jpg"), "sub/a.jpg"},
		{"/mnt/a/photos", "/mnt/a/photos/sub/a.jpg", "sub/a.jpg"},
		{"/data/photos/", "/data/photos/sub/a.jpg", "sub/a.jpg"},
		{"", "./x/../a.jpg", "a.jpg"},
		{"a.jpg", "a.jpg", "a.jpg"},
		{"photos", "other/b.jpg", "other/b.jpg"},
		{"photos", "photos", "photos"},
	} {
		if got := Key(tc.root, tc.path); got != tc.want {
			t.Errorf("Key(%q, %q) = %q, want %q", tc.root, tc.path, got, tc.want)
		}
	}
	// The same tree under two mount points shards the same.
	for _, p := range paths() {
		a := Key("/mnt/one/data", "/mnt/one/data/"+p)
		b := Key("/srv/data", "/srv/data/"+p)
		if a != b || Of(a, 5) != Of(b, 5) {
			t.Fatalf("%s: keys %q and %q", p, a, b)
		}
	}
}

func TestFileName(t *testing.T) {
	s := Shard{K: 2, N: 8}
	name := s.FileName("shard-", ".jsonl")
	if name != "shard-2-of-8.jsonl" || s.String() != "2/8" {
		t.Fatalf("FileName %q, String %q", name, s.String())
	}
	if got, ok := ParseFileName(name, "shard-", ".jsonl"); !ok || got != s {
		t.Errorf("ParseFileName(%q) = %v, %v", name, got, ok)
	}
	for _, bad := range []string{"shard-2-of-8.json", "index-2-of-8.jsonl", "shard-8-of-8.jsonl", "shard-02-of-8.jsonl",
		"shard-x-of-8.jsonl", "shard-2-of-0.jsonl", "shard-2.jsonl"} {
		if _, ok := ParseFileName(bad, "shard-", ".jsonl"); ok {
			t.Errorf("ParseFileName(%q) accepted", bad)
		}
	}
}

func TestCheckSet(t *testing.T) {
	name := func(s Shard) string { return s.FileName("shard-", ".jsonl") }
	n, missing, err := CheckSet([]Shard{{2, 4}, {0, 4}}, name)
	if err != nil || n != 4 || fmt.Sprint(missing) != "[1/4 3/4]" {
		t.Errorf("CheckSet: %d, %v, %v", n, missing, err)
	}
	if _, _, err := CheckSet([]Shard{{0, 2}, {1, 3}, {1, 2}}, name); err == nil ||
		!strings.Contains(err.Error(), "N=2 (shard-0-of-2.jsonl, shard-1-of-2.jsonl); N=3 (shard-1-of-3.jsonl)") {
		t.Errorf("mixed N: %v", err)
	}
	if _, _, err := CheckSet([]Shard{{0, 2}, {0, 2}}, name); err == nil || !strings.Contains(err.Error(), "shard 0/2 given twice") {
		t.Errorf("twice: %v", err)
	}
	if _, _, err := CheckSet(nil, name); err == nil {
		t.Error("no shards accepted")
	}
}
