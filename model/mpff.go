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
	if dt := x.DType(); dt != torch.Float32 && dt != torch.Float64 {
		// libtorch 1.13 has no replication pad for bfloat16 on the CPU.
		return replicatePad(x, p/2, (p+1)/2)
	}
	return x.ReplicationPad2d(p/2, (p+1)/2, p/2, (p+1)/2)
}

// replicatePad pads the last two dimensions by repeating the edge rows and
// columns (before, after on each), built from slices and concatenation.
func replicatePad(x *torch.Tensor, before, after int64) *torch.Tensor {
	for _, d := range []int64{2, 3} {
		n := x.Size(int(d))
		parts := []*torch.Tensor{}
		edge := func(at, k int64) *torch.Tensor {
			sh := x.Shape()
			sh[d] = k
			return x.Narrow(d, at, 1).Expand(sh...)
		}
		if before > 0 {
			parts = append(parts, edge(0, before))
		}
		parts = append(parts, x)
		if after > 0 {
			parts = append(parts, edge(n-1, after))
		}
		x = torch.Cat(d, parts...)
	}
	return x
}

// MPFF is multi-scale patch feature fusion: a feature map fa (B x C x H x H)
// is compared with the top-level patch feature fb (B x C x G x G) window by
// window; each offset inside a window becomes one channel of the G x G result.
//
//	fa = replicate-pad fa to H' = w*G
//	m  = sum over channels of tanh(fa * upsample_nearest(fb, w))   B x 1 x H' x H'
//	return m split into w x w windows, offset (i,j) -> channel i*w+j  B x w² x G x G
//
// The authors upsample fb with repeat_interleave and split the windows with
// unfold; here fa is viewed as B x C x G x w x G x w and fb broadcast over the
// window offsets, which computes the same sums without the upsampled copy.
func MPFF(fa, fb *torch.Tensor) *torch.Tensor {
	if err := fb.Err(); err != nil {
		return torch.Errorf("mpff", "%w", err)
	}
	sb := fb.Shape()
	if len(sb) != 4 {
		return torch.Errorf("mpff", "fb must be 4-D, got %v", sb)
	}
	g := sb[2]
	fa = padTo(fa, g)
	if err := fa.Err(); err != nil {
		return torch.Errorf("mpff", "%w", err)
	}
	s := fa.Shape()
	if len(s) != 4 {
		return torch.Errorf("mpff", "fa must be 4-D, got %v", s)
	}
	b, c, h := s[0], s[1], s[2]
	w := h / g
	if w == 1 {
		return fa.Mul(fb).Tanh().Sum(true, 1)
	}
	m := fa.Reshape(b, c, g, w, g, w).Mul(fb.Reshape(b, c, g, 1, g, 1)).Tanh().Sum(false, 1) // B x G x w x G x w
	return m.Permute(0, 2, 4, 1, 3).Reshape(b, w*w, g, g)
}

// padMaxPool replicate-pads x to a multiple of n and max-pools it to n x n
// (kernel = stride = padded side / n): the verification branch's pooling.
// Replicated edge values never change a maximum, so when the padding allows
// it this is one max pool with -inf padding of p/2 before and ceil mode (the
// window that reaches past the end is clipped): the same numbers without
// materialising the padded copy.
func padMaxPool(x *torch.Tensor, n int64) *torch.Tensor {
	h := x.Size(-1)
	if h < 0 {
		return x
	}
	p := (n - h%n) % n
	k := (h + p) / n
	if k <= 1 {
		return padTo(x, n)
	}
	if pt := p / 2; 2*pt <= k {
		return x.MaxPool2d(torch.Sq(k), torch.Sq(k), torch.Sq(pt), true)
	}
	x = padTo(x, n)
	return x.MaxPool2d(torch.Sq(k), torch.Sq(k), torch.Sq(0), false)
}
