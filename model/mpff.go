package model

import (
	"github.com/lvnet-go/lvnet/torch"
)

// padTo replicate-pads the last two dimensions of x up to a multiple of n,
// p/2 before and (p+1)/2 after, as the authors' MPFF and pad_max_pool.
func padTo(x *torch.Tensor, n int64) *torch.Tensor {
	h := x.Size(-1)
	if h < 0 {
		return x
	}
	p := (n - h%n) % n
	if p == 0 {
		return x
	}
	return x.ReplicationPad2d(p/2, (p+1)/2, p/2, (p+1)/2)
}

// MPFF is multi-scale patch feature fusion: a feature map fa (B x C x H x H)
// is compared with the top-level patch feature fb (B x C x G x G) window by
// window; each offset inside a window becomes one channel of the G x G result.
//
//	fa = replicate-pad fa to H' = w*G
//	m  = sum over channels of tanh(fa * upsample_nearest(fb, w))   B x 1 x H' x H'
//	return m split into w x w windows, offset (i,j) -> channel i*w+j  B x w² x G x G
func MPFF(fa, fb *torch.Tensor) *torch.Tensor {
	sb := fb.Shape()
	if len(sb) != 4 {
		return torch.Errorf("mpff", "fb must be 4-D, got %v", sb)
	}
	g := sb[2]
	fa = padTo(fa, g)
	s := fa.Shape()
	if len(s) != 4 {
		return torch.Errorf("mpff", "fa must be 4-D, got %v", s)
	}
	b, h := s[0], s[2]
	w := h / g
	if w > 1 {
		fb = fb.RepeatInterleave(w, 2).RepeatInterleave(w, 3)
	}
	m := fa.Mul(fb).Tanh().Sum(true, 1)
	if w == 1 {
		return m
	}
	k := torch.Sq(w)
	return m.Unfold(k, torch.Sq(1), torch.Sq(0), k).Reshape(b, -1, g, g)
}

// padMaxPool replicate-pads x to a multiple of n and max-pools it to n x n
// (kernel = stride = padded side / n): the verification branch's pooling.
func padMaxPool(x *torch.Tensor, n int64) *torch.Tensor {
	x = padTo(x, n)
	k := x.Size(-1) / n
	if k <= 1 {
		return x
	}
	return x.MaxPool2d(torch.Sq(k), torch.Sq(k), torch.Sq(0), false)
}
