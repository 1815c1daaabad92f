package detect

import (
	"os"
	"path/filepath"

	"github.com/lvnet-go/lvnet/face"
)

// ModelEnv names the environment variable that overrides DefaultModelPath.
const ModelEnv = "LVNET_MODEL"

// DefaultModelName is the file name of the default LVNet checkpoint in the
// model folder (face.DefaultModelDir).
const DefaultModelName = "lvnet-default.safetensors"

// DefaultModelPath returns the checkpoint that lvnet detect and lvnet serve
// use without --model: $LVNET_MODEL, else lvnet-default.safetensors in
// face.DefaultModelDir() (~/.cache/lvnet/models unless $LVNET_MODELS says
// otherwise). make demo installs one there.
func DefaultModelPath() string {
	if p := os.Getenv(ModelEnv); p != "" {
		return p
	}
	return filepath.Join(face.DefaultModelDir(), DefaultModelName)
}
