package model_test

import (
	"testing"

	"github.com/lvnet-go/lvnet/internal/modeltest"
	"github.com/lvnet-go/lvnet/model"
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
		want := modeltest.Values(t, x.ReplicationPad2d(p[0], p[1], p[0], p[1]))
		got := modeltest.Values(t, model.ReplicatePad(x, p[0], p[1]))
		if modeltest.RelErr(got, want) != 0 {
			t.Errorf("pad %v: differs from libtorch", p)
		}
	}
}

// padMaxPool (one max pool with -inf padding and ceil mode) equals the
// authors' replicate pad followed by a max pool, for every level size of the
// network at several input sizes.
func TestPadMaxPoolMatchesPadThenPool(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g, _ := torch.NewGenerator(5)
	defer g.Close()
	for _, side := range []int64{150, 75, 38, 19, 10, 64, 32, 16, 8, 50, 25, 13, 7, 4} {
		for _, n := range []int64{10, 4, 2} {
			if n > side {
				continue
			}
			x := torch.Randn(s, g, 1, 3, side, side)
			p := (n - side%n) % n
			k := (side + p) / n
			want := x.ReplicationPad2d(p/2, (p+1)/2, p/2, (p+1)/2)
			if k > 1 {
				want = want.MaxPool2d(torch.Sq(k), torch.Sq(k), torch.Sq(0), false)
			}
			got := model.PadMaxPool(x, n)
			if w, g := want.Shape(), got.Shape(); len(g) != 4 || w[2] != g[2] || w[3] != g[3] {
				t.Fatalf("side %d, n %d: shape %v, want %v (%v)", side, n, g, w, got.Err())
			}
			if e := modeltest.RelErr(modeltest.Values(t, got), modeltest.Values(t, want)); e != 0 {
				t.Errorf("side %d, n %d: differs (%g)", side, n, e)
			}
		}
	}
}
