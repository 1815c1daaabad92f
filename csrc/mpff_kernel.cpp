// mpff_kernel.cpp: MPFF's forward and backward kernels, compiled with AVX2/FMA
// and glibc's vector math (libmvec) so that the channel loop of tanh(a*b) runs
// 8 lanes at a time. mpff.cpp calls them only when the CPU has AVX2 and FMA.
#include "mpff_kernel.h"

#include <math.h>
#include <stdint.h>

void lvk_mpff_rows_avx2(const float *fa, const float *fb, float *out, int64_t C, int64_t H,
                        int64_t W, int64_t G, int64_t w, int64_t pad, int64_t b, int64_t yp0,
                        int64_t yp1) {
  const int64_t Hp = G * w;
  for (int64_t yp = yp0; yp < yp1; yp++) {
    int64_t y = yp - pad;
    y = y < 0 ? 0 : (y >= H ? H - 1 : y);
    const int64_t gy = yp / w, i = yp % w;
    for (int64_t xp = 0; xp < Hp; xp++) {
      int64_t x = xp - pad;
      x = x < 0 ? 0 : (x >= W ? W - 1 : x);
      const int64_t gx = xp / w, j = xp % w;
      const float *a = fa + ((b * H + y) * W + x) * C;
      const float *f = fb + ((b * G + gy) * G + gx) * C;
      float acc = 0.f;
#pragma omp simd reduction(+ : acc)
      for (int64_t c = 0; c < C; c++) acc += tanhf(a[c] * f[c]);
      out[((b * w * w + i * w + j) * G + gy) * G + gx] = acc;
    }
  }
}

// Backward of MPFF for the channels [c0, c1): with t = tanh(a*f) at every
// padded pixel, d = g*(1 - t*t); gfa at the (clamped) source pixel += d*f and
// gfb at the window's cell += d*a. Channel ranges are disjoint between
// threads, so there are no write races. fa, gfa: B x H x W x C; fb, gfb:
// B x G x G x C (NHWC); g: B x w*w x G x G.
void lvk_mpff_backward_avx2(const float *fa, const float *fb, const float *g, float *gfa, float *gfb,
                            int64_t B, int64_t C, int64_t H, int64_t W, int64_t G, int64_t w,
                            int64_t pad, int64_t c0, int64_t c1) {
  const int64_t Hp = G * w;
  for (int64_t b = 0; b < B; b++) {
    for (int64_t yp = 0; yp < Hp; yp++) {
      int64_t y = yp - pad;
      y = y < 0 ? 0 : (y >= H ? H - 1 : y);
      const int64_t gy = yp / w, i = yp % w;
      for (int64_t xp = 0; xp < Hp; xp++) {
        int64_t x = xp - pad;
        x = x < 0 ? 0 : (x >= W ? W - 1 : x);
        const int64_t gx = xp / w, j = xp % w;
        const float gv = g[((b * w * w + i * w + j) * G + gy) * G + gx];
        const int64_t ia = ((b * H + y) * W + x) * C, ib = ((b * G + gy) * G + gx) * C;
        const float *a = fa + ia, *f = fb + ib;
        float *ga = gfa + ia, *gb = gfb + ib;
#pragma omp simd
        for (int64_t c = c0; c < c1; c++) {
          const float t = tanhf(a[c] * f[c]);
          const float d = gv * (1.f - t * t);
          ga[c] += d * f[c];
          gb[c] += d * a[c];
        }
      }
    }
  }
}
