// mpff.h: LVNet's MPFF as one autograd op (lt_mpff in lvshim.h).
#ifndef LVSHIM_MPFF_H
#define LVSHIM_MPFF_H
#include <ATen/ATen.h>

namespace lvshim {

// mpff computes out[b, i*w+j, gy, gx] = sum_c tanh(fa_pad[b, c, gy*w+i, gx*w+j] *
// fb[b, c, gy, gx]) with a backward that recomputes tanh (see lt_mpff).
at::Tensor mpff(const at::Tensor &fa, const at::Tensor &fb);

}  // namespace lvshim
#endif
