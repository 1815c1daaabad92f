// Package shard splits a batch of inputs into N stable parts, so that N jobs
// (a Kubernetes indexed Job, a Slurm job array) each take one: `--shard K/N`
// keeps the inputs whose key hashes to K.
//
// Shards are numbered from 0, like $JOB_COMPLETION_INDEX and the usual
// `--array=0-N-1` of Slurm. An input's shard depends on its key only, never
// on the other inputs, so a rerun, or a run with files added, keeps every
// input in its shard. The key (Key) is the input's path relative to the
// folder argument it was found under, with forward slashes (a file named
// directly: its path as given, cleaned), so that the same tree shards the
// same under another mount point. The shard of a key is the first 8 bytes
// of its SHA-256, big-endian, modulo N; in Python:
//
//	int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % n
//
// `--shard /N` leaves K out: it comes from the environment (FromEnv).
package shard

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Environment variables that give K for `--shard /N`.
const (
	// EnvKubernetes is set in the pods of a Kubernetes indexed Job
	// (completionMode: Indexed): 0 to completions-1.
	EnvKubernetes = "JOB_COMPLETION_INDEX"
	// EnvSlurm is the task's id in a Slurm job array; EnvSlurmMin,
	// EnvSlurmStep and EnvSlurmCount describe the array.
	EnvSlurm      = "SLURM_ARRAY_TASK_ID"
	EnvSlurmMin   = "SLURM_ARRAY_TASK_MIN"
	EnvSlurmStep  = "SLURM_ARRAY_TASK_STEP"
	EnvSlurmCount = "SLURM_ARRAY_TASK_COUNT"
)

// Shard is part K (0-based) of N. The zero value, N = 0, is no sharding:
// every key belongs to it.
type Shard struct {
	K, N int
}

// Enabled reports whether s is a shard (N > 0) rather than the whole.
func (s Shard) Enabled() bool { return s.N > 0 }

// Has reports whether key belongs to s.
func (s Shard) Has(key string) bool { return s.N <= 0 || Of(key, s.N) == s.K }

// String writes s as on the command line, "K/N" ("" for no sharding).
func (s Shard) String() string {
	if !s.Enabled() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.K, s.N)
}

// Tag writes s for file names, "K-of-N".
func (s Shard) Tag() string { return fmt.Sprintf("%d-of-%d", s.K, s.N) }

// FileName returns prefix + "K-of-N" + suffix ("shard-" + "2-of-8" +
// ".jsonl").
func (s Shard) FileName(prefix, suffix string) string { return prefix + s.Tag() + suffix }

// ParseFileName is the inverse of FileName: the shard of a file name made
// with prefix and suffix, false when name is not one.
func ParseFileName(name, prefix, suffix string) (Shard, bool) {
	tag, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return Shard{}, false
	}
	if tag, ok = strings.CutSuffix(tag, suffix); !ok {
		return Shard{}, false
	}
	ks, ns, ok := strings.Cut(tag, "-of-")
	if !ok {
		return Shard{}, false
	}
	k, kerr := strconv.Atoi(ks)
	n, nerr := strconv.Atoi(ns)
	s := Shard{K: k, N: n}
	if kerr != nil || nerr != nil || s.check() != nil || s.Tag() != tag {
		return Shard{}, false
	}
	return s, true
}

// Of returns the shard, 0 to n-1, of key among n (see the package comment).
func Of(key string, n int) int {
	if n <= 1 {
		return 0
	}
	sum := sha256.Sum256([]byte(key))
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(n))
}

// Key returns the canonical key of path, found under the folder root: its
// path relative to root with forward slashes. A path that is root itself
// (a file named directly) or not below it gives its own path, cleaned,
// with forward slashes.
func Key(root, path string) string {
	if root != "" {
		if rel, err := filepath.Rel(root, path); err == nil && rel != "." && rel != ".." &&
			!strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.ToSlash(filepath.Clean(path))
}

// syntax is the help appended to parse errors.
const syntax = "want K/N with 0 <= K < N (shards are numbered from 0), or /N to take K from $" +
	EnvKubernetes + " or $" + EnvSlurm

// Parse reads a --shard value: "K/N", or "/N" with K from the environment
// (FromEnv, reading variables with getenv, os.Getenv in programs). "" is
// no sharding.
func Parse(v string, getenv func(string) string) (Shard, error) {
	if v == "" {
		return Shard{}, nil
	}
	ks, ns, ok := strings.Cut(v, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: %s", v, syntax)
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil {
		return Shard{}, fmt.Errorf("shard %q: N %q is not a number; %s", v, ns, syntax)
	}
	if n < 1 {
		return Shard{}, fmt.Errorf("shard %q: the number of shards N must be at least 1; %s", v, syntax)
	}
	if strings.TrimSpace(ks) == "" {
		return FromEnv(n, getenv)
	}
	k, err := strconv.Atoi(strings.TrimSpace(ks))
	if err != nil {
		return Shard{}, fmt.Errorf("shard %q: K %q is not a number; %s", v, ks, syntax)
	}
	s := Shard{K: k, N: n}
	if err := s.check(); err != nil {
		return Shard{}, fmt.Errorf("shard %q: %w", v, err)
	}
	return s, nil
}

// check validates K and N.
func (s Shard) check() error {
	switch {
	case s.N < 1:
		return fmt.Errorf("the number of shards N must be at least 1; %s", syntax)
	case s.K < 0 || s.K >= s.N:
		return fmt.Errorf("the shard number K=%d is outside 0 to %d; %s", s.K, s.N-1, syntax)
	}
	return nil
}

// FromEnv returns shard K of n, K taken from the environment:
// $JOB_COMPLETION_INDEX when set (a Kubernetes indexed Job's pods are
// numbered 0 to completions-1), else the task's position in a Slurm job
// array, ($SLURM_ARRAY_TASK_ID - $SLURM_ARRAY_TASK_MIN) /
// $SLURM_ARRAY_TASK_STEP (so --array=0-7 and --array=1-8 both give 0 to 7;
// a missing MIN counts as 0, a missing STEP as 1). A Slurm array whose
// $SLURM_ARRAY_TASK_COUNT is not n is an error, as is no variable set.
func FromEnv(n int, getenv func(string) string) (Shard, error) {
	num := func(name string) (int, bool, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return 0, false, nil
		}
		x, err := strconv.Atoi(v)
		if err != nil {
			return 0, true, fmt.Errorf("shard /%d: $%s=%q is not a number", n, name, v)
		}
		return x, true, nil
	}
	var s Shard
	var from string
	if k, ok, err := num(EnvKubernetes); err != nil {
		return Shard{}, err
	} else if ok {
		s, from = Shard{K: k, N: n}, fmt.Sprintf("$%s=%d", EnvKubernetes, k)
	} else {
		id, ok, err := num(EnvSlurm)
		if err != nil {
			return Shard{}, err
		}
		if !ok {
			return Shard{}, fmt.Errorf("shard /%d: K is not given and neither $%s (Kubernetes indexed Job) nor $%s (Slurm job array) is set; give --shard K/%d", n, EnvKubernetes, EnvSlurm, n)
		}
		lo, _, err := num(EnvSlurmMin)
		if err != nil {
			return Shard{}, err
		}
		step, hasStep, err := num(EnvSlurmStep)
		if err != nil {
			return Shard{}, err
		}
		if !hasStep || step < 1 {
			step = 1
		}
		count, hasCount, err := num(EnvSlurmCount)
		if err != nil {
			return Shard{}, err
		}
		if hasCount && count != n {
			return Shard{}, fmt.Errorf("shard /%d: the Slurm job array has %d tasks ($%s), not %d: make --array and /N agree", n, count, EnvSlurmCount, n)
		}
		from = fmt.Sprintf("$%s=%d", EnvSlurm, id)
		if lo != 0 || step != 1 {
			from += fmt.Sprintf(", $%s=%d, $%s=%d", EnvSlurmMin, lo, EnvSlurmStep, step)
		}
		if (id-lo)%step != 0 {
			return Shard{}, fmt.Errorf("shard /%d: task %s is not on the array's steps", n, from)
		}
		s = Shard{K: (id - lo) / step, N: n}
	}
	if err := s.check(); err != nil {
		return Shard{}, fmt.Errorf("shard %d/%d (K from %s): %w", s.K, n, from, err)
	}
	return s, nil
}

// CheckSet checks that found holds one complete set of shards: one N, each
// K from 0 to N-1 once. It returns N and the shards missing; the error is
// for shards of different N (name(s) names each in the message) or a shard
// found twice.
func CheckSet(found []Shard, name func(Shard) string) (n int, missing []Shard, err error) {
	if len(found) == 0 {
		return 0, nil, fmt.Errorf("no shards")
	}
	byN := map[int][]string{}
	for _, s := range found {
		byN[s.N] = append(byN[s.N], name(s))
	}
	if len(byN) > 1 {
		ns := make([]int, 0, len(byN))
		for n := range byN {
			ns = append(ns, n)
		}
		sort.Ints(ns)
		parts := make([]string, len(ns))
		for i, n := range ns {
			parts[i] = fmt.Sprintf("N=%d (%s)", n, strings.Join(byN[n], ", "))
		}
		return 0, nil, fmt.Errorf("shards of different runs: %s; merge the shards of one run", strings.Join(parts, "; "))
	}
	n = found[0].N
	seen := make([]bool, n)
	for _, s := range found {
		if seen[s.K] {
			return 0, nil, fmt.Errorf("shard %s given twice", s)
		}
		seen[s.K] = true
	}
	for k, ok := range seen {
		if !ok {
			missing = append(missing, Shard{K: k, N: n})
		}
	}
	return n, missing, nil
}
