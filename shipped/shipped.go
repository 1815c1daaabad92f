// Package shipped holds the default LVNet detector: the checkpoint trained
// and calibrated for this release (docs/MODEL.md is its model card),
// embedded in every binary so that lvnet detect, eval, serve and demo work
// on a fresh clone with no --model, no ../shared and no network.
//
// The checkpoint is written once to the user's cache folder (named by its
// SHA-256, so a new release never reads an old file) and loaded from there
// like any other checkpoint.
package shipped

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// File is the name of the shipped checkpoint in this folder.
const File = "lvnet-default.safetensors"

//go:embed lvnet-default.safetensors
var model []byte

// Bytes returns the shipped checkpoint file (callers must not modify it).
func Bytes() []byte { return model }

// SHA256 returns the hex SHA-256 of the shipped checkpoint.
func SHA256() string {
	h := sha256.Sum256(model)
	return hex.EncodeToString(h[:])
}

// Name is how results and logs name the shipped model.
func Name() string { return "shipped:" + SHA256()[:12] }

// Path returns a file holding the shipped checkpoint, writing it when
// missing or different: dir/lvnet-default-<sha12>.safetensors, written
// atomically (temporary file, fsync, rename). An empty dir means the user's
// cache folder (lvnet/models), or the system's temporary folder when there
// is none.
func Path(dir string) (string, error) {
	if dir == "" {
		if c, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(c, "lvnet", "models")
		} else {
			dir = filepath.Join(os.TempDir(), "lvnet-models")
		}
	}
	name := filepath.Join(dir, fmt.Sprintf("lvnet-default-%s.safetensors", SHA256()[:12]))
	if b, err := os.ReadFile(name); err == nil && bytes.Equal(b, model) {
		return name, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("shipped model: %w", err)
	}
	f, err := os.CreateTemp(dir, ".lvnet-default-*.tmp")
	if err != nil {
		return "", fmt.Errorf("shipped model: %w", err)
	}
	_, err = f.Write(model)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("shipped model: write %s: %w", name, err)
	}
	return name, nil
}
