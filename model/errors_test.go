package model

import (
	"errors"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// Blocks given a failed input wrap its error (errors.Is finds it, the message
// keeps it) instead of replacing it with a shape complaint.
func TestBlocksWrapUpstreamErrors(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	st := nn.NewStore(1)
	defer st.Free()
	lfga := newLFGA(st.Root().Sub("lfga"), 8)
	up := torch.Errorf("upstream", "boom")
	ok := torch.Zeros(s, 1, 8, 4, 4)
	tests := []struct {
		name string
		got  *torch.Tensor
	}{
		{"lfga fa", lfga.Forward(up, ok)},
		{"lfga fb", lfga.Forward(ok, up)},
		{"mpff fa", MPFF(up, torch.Zeros(s, 1, 8, 2, 2))},
		{"mpff fb", MPFF(ok, up)},
	}
	for _, tc := range tests {
		err := tc.got.Err()
		if !errors.Is(err, up.Err()) || !strings.Contains(fmtErr(err), "boom") {
			t.Errorf("%s: error %v, want one wrapping %v", tc.name, err, up.Err())
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
