/* mpff_kernel.h: the MPFF kernels compiled with AVX2/FMA and libmvec
 * (mpff_kernel.cpp). mpff.cpp calls them only when the CPU has AVX2 and FMA,
 * and its portable loops compute the same. All tensors are float32 NHWC:
 * fa, gfa: B x H x W x C; fb, gfb: B x G x G x C; out, g: B x w*w x G x G
 * (NCHW). fa is replicate-padded by pad on the top and left to G*w. */
#ifndef LVSHIM_MPFF_KERNEL_H
#define LVSHIM_MPFF_KERNEL_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Forward, for the padded rows [yp0, yp1) of sample b:
 * out[b, i*w+j, gy, gx] = sum_c tanh(fa_pad[b, gy*w+i, gx*w+j, c] * fb[b, gy, gx, c]). */
void lvk_mpff_rows_avx2(const float *fa, const float *fb, float *out, int64_t C, int64_t H, int64_t W, int64_t G,
                        int64_t w, int64_t pad, int64_t b, int64_t yp0, int64_t yp1);

/* Backward for the channels [c0, c1) (disjoint between threads): adds into
 * gfa and gfb, which the caller zeroes. */
void lvk_mpff_backward_avx2(const float *fa, const float *fb, const float *g, float *gfa, float *gfb, int64_t B,
                            int64_t C, int64_t H, int64_t W, int64_t G, int64_t w, int64_t pad, int64_t c0,
                            int64_t c1);

#ifdef __cplusplus
}
#endif
#endif
