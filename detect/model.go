package detect

import (
	"os"

	"github.com/lvnet-go/lvnet/shipped"
)

// ModelEnv names the environment variable that overrides the default model.
const ModelEnv = "LVNET_MODEL"

// DefaultModelPath returns the checkpoint that lvnet detect, eval, serve and
// demo use without --model: $LVNET_MODEL when set, else the shipped model
// (package shipped), written to the user's cache folder on first use.
func DefaultModelPath() (string, error) {
	if p := os.Getenv(ModelEnv); p != "" {
		return p, nil
	}
	return shipped.Path("")
}
