package model

// Unexported functions that the external tests (package model_test, which
// may import internal/modeltest) check.
var (
	ReplicatePad = replicatePad
	PadMaxPool   = padMaxPool
)
