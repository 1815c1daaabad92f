package model

import (
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

// The generic replicate pad (used for bfloat16) equals libtorch's.
func TestReplicatePadMatchesLibtorch(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g, _ := torch.NewGenerator(3)
	defer g.Close()
	x := torch.Randn(s, g, 2, 3, 5, 5)
	for _, p := range [][2]int64{{0, 1}, {1, 1}, {1, 2}, {3, 4}} {
		want := values(t, x.ReplicationPad2d(p[0], p[1], p[0], p[1]))
		got := values(t, replicatePad(x, p[0], p[1]))
		if relErr(got, want) != 0 {
			t.Errorf("pad %v: differs from libtorch", p)
		}
	}
}
