// mpff.cpp: LVNet's MPFF as one fused autograd op: the forward and backward
// kernels (AVX2 in mpff_kernel.cpp, portable loops here) and the autograd
// function that ties them together.
#include "mpff.h"

#include "mpff_kernel.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

namespace {

// mpff_rows is the portable version of lvk_mpff_rows_avx2 (mpff_kernel.cpp).
void mpff_rows(const float *fa, const float *fb, float *out, int64_t C, int64_t H, int64_t W, int64_t G,
               int64_t w, int64_t pad, int64_t b, int64_t yp0, int64_t yp1) {
  const int64_t Hp = G * w;
  for (int64_t yp = yp0; yp < yp1; yp++) {
    int64_t y = std::min(std::max(yp - pad, int64_t(0)), H - 1);
    for (int64_t xp = 0; xp < Hp; xp++) {
      int64_t x = std::min(std::max(xp - pad, int64_t(0)), W - 1);
      const float *a = fa + ((b * H + y) * W + x) * C;
      const float *f = fb + ((b * G + yp / w) * G + xp / w) * C;
      float acc = 0.f;
      for (int64_t c = 0; c < C; c++) acc += std::tanh(a[c] * f[c]);
      out[((b * w * w + (yp % w) * w + xp % w) * G + yp / w) * G + xp / w] = acc;
    }
  }
}

// mpff_backward_portable is the portable version of lvk_mpff_backward_avx2.
void mpff_backward_portable(const float *fa, const float *fb, const float *g, float *gfa, float *gfb, int64_t B,
                            int64_t C, int64_t H, int64_t W, int64_t G, int64_t w, int64_t pad, int64_t c0,
                            int64_t c1) {
  const int64_t Hp = G * w;
  for (int64_t b = 0; b < B; b++)
    for (int64_t yp = 0; yp < Hp; yp++) {
      const int64_t y = std::min(std::max(yp - pad, int64_t(0)), H - 1);
      for (int64_t xp = 0; xp < Hp; xp++) {
        const int64_t x = std::min(std::max(xp - pad, int64_t(0)), W - 1);
        const float gv = g[((b * w * w + (yp % w) * w + xp % w) * G + yp / w) * G + xp / w];
        const int64_t ia = ((b * H + y) * W + x) * C, ib = ((b * G + yp / w) * G + xp / w) * C;
        for (int64_t c = c0; c < c1; c++) {
          const float t = std::tanh(fa[ia + c] * fb[ib + c]);
          const float d = gv * (1.f - t * t);
          gfa[ia + c] += d * fb[ib + c];
          gfb[ib + c] += d * fa[ia + c];
        }
      }
    }
}

bool cpu_has_avx2() {
  static const bool v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return v;
}

struct MPFFGeom {
  int64_t B, C, H, W, G, w, pad;
};

MPFFGeom mpff_check(const at::Tensor &fa, const at::Tensor &fb) {
  TORCH_CHECK(fa.dim() == 4 && fb.dim() == 4, "mpff: want 4-D fa and fb, got ", fa.sizes(), " and ", fb.sizes());
  TORCH_CHECK(fa.scalar_type() == at::kFloat && fb.scalar_type() == at::kFloat, "mpff: want float32 tensors");
  TORCH_CHECK(fa.device().is_cpu() && fb.device().is_cpu(), "mpff: the fused kernel runs on the CPU");
  MPFFGeom g{fa.size(0), fa.size(1), fa.size(2), fa.size(3), fb.size(2), 0, 0};
  TORCH_CHECK(fb.size(0) == g.B && fb.size(1) == g.C && fb.size(3) == g.G, "mpff: fb ", fb.sizes(),
              " does not match fa ", fa.sizes());
  TORCH_CHECK(g.H == g.W && g.G > 0, "mpff: want square maps, got ", fa.sizes());
  const int64_t p = (g.G - g.H % g.G) % g.G;
  g.pad = p / 2;
  g.w = (g.H + p) / g.G;
  return g;
}

at::Tensor mpff_forward(const at::Tensor &fa0, const at::Tensor &fb0) {
  const MPFFGeom m = mpff_check(fa0, fb0);
  at::Tensor fa = fa0.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor fb = fb0.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor o = at::empty({m.B, m.w * m.w, m.G, m.G}, fa0.options().memory_format(at::MemoryFormat::Contiguous));
  const float *pa = fa.data_ptr<float>(), *pb = fb.data_ptr<float>();
  float *po = o.data_ptr<float>();
  const bool avx2 = cpu_has_avx2();
  const int64_t Hp = m.G * m.w;
  at::parallel_for(0, m.B * Hp, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end;) {
      const int64_t b = r / Hp, yp0 = r % Hp, yp1 = std::min(Hp, yp0 + (end - r));
      if (avx2)
        lvk_mpff_rows_avx2(pa, pb, po, m.C, m.H, m.W, m.G, m.w, m.pad, b, yp0, yp1);
      else
        mpff_rows(pa, pb, po, m.C, m.H, m.W, m.G, m.w, m.pad, b, yp0, yp1);
      r += yp1 - yp0;
    }
  });
  return o;
}

// MPFFFunction is MPFF as one autograd node: the forward kernel above, and a
// backward that recomputes tanh instead of keeping the B x C x H' x H'
// product and its tanh alive.
struct MPFFFunction : public torch::autograd::Function<MPFFFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &fa, const at::Tensor &fb) {
    ctx->save_for_backward({fa, fb});
    return mpff_forward(fa, fb);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext *ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const MPFFGeom m = mpff_check(saved[0], saved[1]);
    at::Tensor fa = saved[0].contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor fb = saved[1].contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor g = grads[0].contiguous();
    at::Tensor gfa = at::zeros_like(fa, at::MemoryFormat::ChannelsLast);
    at::Tensor gfb = at::zeros_like(fb, at::MemoryFormat::ChannelsLast);
    const float *pa = fa.data_ptr<float>(), *pb = fb.data_ptr<float>(), *pg = g.data_ptr<float>();
    float *qa = gfa.data_ptr<float>(), *qb = gfb.data_ptr<float>();
    const bool avx2 = cpu_has_avx2();
    // Disjoint channel ranges per thread (at least 16 channels each).
    at::parallel_for(0, m.C, 16, [&](int64_t c0, int64_t c1) {
      if (avx2)
        lvk_mpff_backward_avx2(pa, pb, pg, qa, qb, m.B, m.C, m.H, m.W, m.G, m.w, m.pad, c0, c1);
      else
        mpff_backward_portable(pa, pb, pg, qa, qb, m.B, m.C, m.H, m.W, m.G, m.w, m.pad, c0, c1);
    });
    return {gfa, gfb};
  }
};


}  // namespace

namespace lvshim {

at::Tensor mpff(const at::Tensor &fa, const at::Tensor &fb) { return MPFFFunction::apply(fa, fb); }

}  // namespace lvshim
