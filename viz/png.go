package viz

import (
	"fmt"
	"image"
	"image/png"
	"io"

	"github.com/lvnet-go/lvnet/internal/fsutil"
)

// WritePNG encodes img as PNG into path atomically (see package fsutil): it
// writes a temporary file in the same directory, syncs it and renames it
// over path, so readers never see a partial file. It favours speed over the
// smallest file.
func WritePNG(path string, img image.Image) error {
	err := fsutil.Write(path, 0o644, func(w io.Writer) error {
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		return enc.Encode(w, img)
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
