// ONNX Runtime CPU kernels of the fused CAT nodes, domain ai.onnx.contrib (docs/plugin.md, "CPU operator").
//
//   channel, spatial = FusedCatPool(x[B, C, H, W], taps[C, k])   attribute gmp_filter: 0 none | 1 paper | 2 2d
//     channel [B, 3, C]    = mean, max of G_c(x), GEP of each channel over its H x W positions
//     spatial [B, 3, H, W] = mean, max of G_s(x), GEP of each position over the C channels
//   y = FusedCatGate(x[B, C, H, W], channel_logits[B, C], spatial_logits[B, 1, H, W], exterior[2])
//     attribute fusion: 0 y = x (cw sig(c) + sw sig(s))   1 y = x sig(cw c) + x sig(sw sig(s)),  (cw, sw) = exterior
//
// Exactly cat_deploy.layers.pooling.cat_pool(x, taps, gmp_filter, "stable"): GEP = log s - t/s with z = x - max x,
// s = sum e^z, t = sum z e^z. FP32 and FP16 tensors (one type for all inputs and outputs of a node); all
// arithmetic in FP32. Work is split over ONNX Runtime's own intra-op thread pool (KernelContext::ParallelFor).
//
// FusedCatPool reads x once for all six statistics: a task owns a group of channels of one sample and walks them
// plane by plane, four planes at a time. Per plane it forms the Gaussian-blurred planes (replicate padding) and
// folds the plane into running per-position statistics of its group (sum, max, and the GEP triple (m, s, t)
// rescaled online when the maximum grows) together with the channel sums and maxima; the channel GEP is a second
// pass over the plane, which is then in L1/L2. Maps of up to 64 x 64 positions are padded and blurred whole, as
// flat vector runs, and folded as one run of H W positions (pool_block_planes: few partial vectors when W is
// small); larger maps row by row (pool_block: k x 1 along H from the plane by clamped row indices, 1 x k along W
// from that row), so that the scratch stays in L1.
// A second parallel pass merges the groups' per-position triples with the same rule and writes `spatial`.
//
// Vector code uses GCC vector extensions (8 floats); every vector function is compiled twice (target_clones):
// for x86-64-v3 (AVX2, FMA, F16C), picked at load time when the CPU has it, and for the build's baseline.
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

namespace {

constexpr const char* kDomain = "ai.onnx.contrib";
constexpr int kLanes = 8;
constexpr int64_t kMaxTaps = 31;  // Gaussian kernel sizes the kernels hold on the stack
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
using half = _Float16;

#define CAT_INLINE inline __attribute__((always_inline))
#if defined(__x86_64__)
#define CAT_DISPATCH __attribute__((target_clones("arch=x86-64-v3", "default")))
#else  // other CPUs: the build's own instruction set only
#define CAT_DISPATCH
#endif

// ----------------------------------------------------------------------------------------------- vector helpers
CAT_INLINE v8f splat(float v) { return v8f{} + v; }
CAT_INLINE v8f load(const float* p) { v8f v; std::memcpy(&v, p, sizeof v); return v; }
CAT_INLINE void store(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }
// the first n < 8 lanes from p, the others `fill`
CAT_INLINE v8f load_n(const float* p, int n, float fill) {
  v8f v = splat(fill);
  for (int i = 0; i < n; ++i) v[i] = p[i];
  return v;
}
CAT_INLINE v8f load_any(const float* p, int n, float fill) { return n == kLanes ? load(p) : load_n(p, n, fill); }
CAT_INLINE void store_any(float* p, v8f v, int n) {
  if (n == kLanes) {
    store(p, v);
  } else {
    for (int i = 0; i < n; ++i) p[i] = v[i];
  }
}
template <typename T>
CAT_INLINE void store_out(T* p, v8f v, int n) {
  if constexpr (std::is_same_v<T, float>) {
    store_any(p, v, n);
  } else {
    for (int i = 0; i < n; ++i) p[i] = static_cast<T>(v[i]);
  }
}
CAT_INLINE v8f vmax(v8f a, v8f b) { return a > b ? a : b; }
CAT_INLINE v8f vmin(v8f a, v8f b) { return a < b ? a : b; }
CAT_INLINE v8f vabs(v8f a) { return (v8f)((v8i)a & 0x7fffffff); }
CAT_INLINE v8i lanes_below(int n) { return v8i{0, 1, 2, 3, 4, 5, 6, 7} < n; }
CAT_INLINE float hsum(v8f v) {
  float s = 0.f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}
CAT_INLINE float hmax(v8f v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = std::max(m, v[i]);
  return m;
}

// e^x for x <= 0 (shifted exponents), the hot path. Cephes expf: x = n ln2 + r with |r| <= ln2/2, e^r by a
// degree-7 polynomial, 2^n through the exponent bits; relative error 8.4e-8 at worst on a dense grid over
// [-87, 88] against double exp (AVX2 and SSE clones); e^-87 (1.6e-38: nothing next to s >= 1) below -87.
CAT_INLINE v8f vexp_neg(v8f x) {
  x = vmax(x, splat(-87.0f));
  const v8f n = (x * splat(1.44269504088896341f) + splat(12582912.0f)) - splat(12582912.0f);  // round(x / ln2)
  const v8f r = (x - n * splat(0.693359375f)) + n * splat(2.12194440e-4f);
  v8f p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  const v8f y = p * (r * r) + r + splat(1.0f);
  return y * (v8f)((__builtin_convertvector(n, v8i) + 127) << 23);
}

// e^x for any x: the same polynomial with x clamped to 88, and 0 below -87.
CAT_INLINE v8f vexp(v8f x) {
  return x < splat(-87.0f) ? splat(0.0f) : vexp_neg(vmin(x, splat(88.0f)));
}

// log x for normal x > 0, Cephes logf (relative error 8.1e-8 at worst on a grid over (1, 1e6)). Used for s >= 1.
CAT_INLINE v8f vlog(v8f x) {
  const v8i bits = (v8i)x;
  v8f e = __builtin_convertvector(((bits >> 23) & 0xff) - 126, v8f);  // x = m 2^e, m in [0.5, 1)
  v8f m = (v8f)((bits & 0x007fffff) | 0x3f000000);
  const v8i small = m < splat(0.707106781186547524f);
  e = small ? e - splat(1.0f) : e;
  m = small ? m + m - splat(1.0f) : m - splat(1.0f);
  const v8f z = m * m;
  v8f y = splat(7.0376836292e-2f);
  y = y * m + splat(-1.1514610310e-1f);
  y = y * m + splat(1.1676998740e-1f);
  y = y * m + splat(-1.2420140846e-1f);
  y = y * m + splat(1.4249322787e-1f);
  y = y * m + splat(-1.6668057665e-1f);
  y = y * m + splat(2.0000714765e-1f);
  y = y * m + splat(-2.4999993993e-1f);
  y = y * m + splat(3.3333331174e-1f);
  y = y * m * z + e * splat(-2.12194440e-4f) - splat(0.5f) * z;
  return m + y + e * splat(0.693359375f);
}

CAT_INLINE v8f vsigmoid(v8f v) { return splat(1.0f) / (splat(1.0f) + vexp(-v)); }
inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// ------------------------------------------------------------------------------------------------- FusedCatPool
enum Filter : int64_t { kNone = 0, kPaper = 1, k2d = 2 };

struct PoolShape {
  int64_t B, C, H, W, k;
  int64_t groups, per_group;  // channel groups of a sample, channels per group
  int64_t chunk;              // positions per merge task
  int64_t filter;
};

template <typename T>
struct PoolArgs {
  const T* x;
  const T* taps;
  T* channel;
  T* spatial;
  float* partial;  // [B, groups, 5, H, W]: sum, max, m, s, t of each group
  PoolShape s;
};

// Gaussian k x 1 (along H) of one row into out [W]: rows[j] is the input row h + j - k/2, clamped to the map
// (replicate padding), tap[j] its weight. K > 0: k = K, the loop over taps unrolled.
template <int K>
CAT_INLINE void blur_rows_k(const float* const* rows, const float* tap, int64_t k_any, int64_t W, float* out) {
  const int64_t k = K > 0 ? K : k_any;
  v8f tv[K > 0 ? K : kMaxTaps];  // in registers: `out` might alias `tap` for all the compiler knows
  for (int64_t j = 0; j < k; ++j) tv[j] = splat(tap[j]);
  int64_t w = 0;
  for (; w + kLanes <= W; w += kLanes) {
    v8f acc = tv[0] * load(rows[0] + w);
    for (int64_t j = 1; j < k; ++j) acc += tv[j] * load(rows[j] + w);
    store(out + w, acc);
  }
  for (; w < W; ++w) {
    float acc = tap[0] * rows[0][w];
    for (int64_t j = 1; j < k; ++j) acc += tap[j] * rows[j][w];
    out[w] = acc;
  }
}

// Gaussian 1 x k (along W) of a row padded by k/2 replicated values on each side (padded [W + k - 1]) into out [W].
template <int K>
CAT_INLINE void blur_cols_k(const float* padded, const float* tap, int64_t k_any, int64_t W, float* out) {
  const int64_t k = K > 0 ? K : k_any;
  v8f tv[K > 0 ? K : kMaxTaps];
  for (int64_t j = 0; j < k; ++j) tv[j] = splat(tap[j]);
  int64_t w = 0;
  for (; w + kLanes <= W; w += kLanes) {
    v8f acc = tv[0] * load(padded + w);
    for (int64_t j = 1; j < k; ++j) acc += tv[j] * load(padded + w + j);
    store(out + w, acc);
  }
  for (; w < W; ++w) {
    float acc = tap[0] * padded[w];
    for (int64_t j = 1; j < k; ++j) acc += tap[j] * padded[w + j];
    out[w] = acc;
  }
}

// Called once per row, so not inlined into the pooling loops (one copy per instruction set, not per caller).
CAT_DISPATCH void blur_rows(const float* const* rows, const float* tap, int64_t k, int64_t W, float* out) {
  switch (k) {
    case 3: return blur_rows_k<3>(rows, tap, k, W, out);
    case 5: return blur_rows_k<5>(rows, tap, k, W, out);
    case 7: return blur_rows_k<7>(rows, tap, k, W, out);
    default: return blur_rows_k<0>(rows, tap, k, W, out);
  }
}

CAT_DISPATCH void blur_cols(const float* padded, const float* tap, int64_t k, int64_t W, float* out) {
  switch (k) {
    case 3: return blur_cols_k<3>(padded, tap, k, W, out);
    case 5: return blur_cols_k<5>(padded, tap, k, W, out);
    case 7: return blur_cols_k<7>(padded, tap, k, W, out);
    default: return blur_cols_k<0>(padded, tap, k, W, out);
  }
}

// out[p] = sum_j tap[j] in[p + j step] for p in [0, n) in whole vectors: reads up to (k - 1) step + 7 past n, and
// writes up to 7 past n (the caller's scratch has that slack). The Gaussian of a whole padded plane at once.
template <int K>
CAT_INLINE void blur_flat_k(const float* in, int64_t step, const float* tap, int64_t k_any, int64_t n, float* out) {
  const int64_t k = K > 0 ? K : k_any;
  v8f tv[K > 0 ? K : kMaxTaps];  // in registers: `out` might alias `tap` for all the compiler knows
  for (int64_t j = 0; j < k; ++j) tv[j] = splat(tap[j]);
  for (int64_t p = 0; p < n; p += kLanes) {
    v8f acc = tv[0] * load(in + p);
    for (int64_t j = 1; j < k; ++j) acc += tv[j] * load(in + p + j * step);
    store(out + p, acc);
  }
}

CAT_DISPATCH void blur_flat(const float* in, int64_t step, const float* tap, int64_t k, int64_t n, float* out) {
  switch (k) {
    case 3: return blur_flat_k<3>(in, step, tap, k, n, out);
    case 5: return blur_flat_k<5>(in, step, tap, k, n, out);
    case 7: return blur_flat_k<7>(in, step, tap, k, n, out);
    default: return blur_flat_k<0>(in, step, tap, k, n, out);
  }
}

// Running statistics of one position chunk: over the positions' channels (spatial) and per channel (over positions).
struct ChannelAcc {
  v8f sum, max, gmp;
};

// The CB channels' rows h of one chunk of n <= 8 positions: folds them into the group's per-position statistics
// (registers) and into each channel's sums and maxima. `first`: the group's statistics start here.
template <int CB>
CAT_INLINE void fold_chunk(const float* const* xrow, const float* const* gmp_c, const float* const* gmp_s, int64_t w,
                           int n, bool first, float* acc, int64_t HW, ChannelAcc* ch) {
  const v8f ninf = splat(-std::numeric_limits<float>::infinity());
  const v8i valid = lanes_below(n);
  v8f sum, mx, m, s, t;
  int q0 = 0;
  if (first) {
    const v8f x0 = load_any(xrow[0] + w, n, 0.0f);
    sum = x0, mx = load_any(gmp_s[0] + w, n, 0.0f), m = x0, s = splat(1.0f), t = splat(0.0f);
    ch[0].sum += x0;
    ch[0].max = vmax(ch[0].max, valid ? x0 : ninf);
    ch[0].gmp = vmax(ch[0].gmp, valid ? load_any(gmp_c[0] + w, n, 0.0f) : ninf);
    q0 = 1;
  } else {
    sum = load_any(acc, n, 0.0f), mx = load_any(acc + HW, n, 0.0f), m = load_any(acc + 2 * HW, n, 0.0f);
    s = load_any(acc + 3 * HW, n, 1.0f), t = load_any(acc + 4 * HW, n, 0.0f);
  }
  for (int q = q0; q < CB; ++q) {
    const v8f xv = load_any(xrow[q] + w, n, 0.0f);
    ch[q].sum += xv;
    ch[q].max = vmax(ch[q].max, valid ? xv : ninf);
    ch[q].gmp = vmax(ch[q].gmp, valid ? load_any(gmp_c[q] + w, n, 0.0f) : ninf);
    sum += xv;
    mx = vmax(mx, load_any(gmp_s[q] + w, n, 0.0f));
    // online GEP over channels: one exponential, of -|x - m|, whichever of x and m is larger
    const v8f d = xv - m, e = vexp_neg(-vabs(d));
    const v8i grows = d > splat(0.0f);
    t = grows ? e * (t - d * s) : t + d * e;
    s = grows ? s * e + splat(1.0f) : s + e;
    m = grows ? xv : m;
  }
  store_any(acc, sum, n);
  store_any(acc + HW, mx, n);
  store_any(acc + 2 * HW, m, n);
  store_any(acc + 3 * HW, s, n);
  store_any(acc + 4 * HW, t, n);
}

// The channel statistics of channels [c, c + CB) of sample b from their folded sums and maxima `ch`: mean, GMP,
// and GEP by a second pass over each plane xp[q] (now in L1/L2), shifted by its maximum.
template <typename T, int CB>
CAT_INLINE void channel_stats(const PoolArgs<T>& a, int64_t b, int64_t c, const float* const* xp,
                              const ChannelAcc* ch) {
  const PoolShape& s = a.s;
  const int64_t HW = s.H * s.W;
  for (int q = 0; q < CB; ++q) {
    const float mc = hmax(ch[q].max);
    v8f es = splat(0.0f), et = splat(0.0f);
    int64_t i = 0;
    for (; i + kLanes <= HW; i += kLanes) {
      const v8f z = load(xp[q] + i) - splat(mc), e = vexp_neg(z);
      es += e;
      et += z * e;
    }
    if (i < HW) {
      const int n = static_cast<int>(HW - i);
      const v8f z = load_n(xp[q] + i, n, mc) - splat(mc), e = lanes_below(n) ? vexp(z) : splat(0.0f);
      es += e;
      et += z * e;
    }
    const float es_c = hsum(es), et_c = hsum(et);
    T* out = a.channel + b * 3 * s.C + c + q;
    out[0] = static_cast<T>(hsum(ch[q].sum) / static_cast<float>(HW));
    out[s.C] = static_cast<T>(hmax(ch[q].gmp));
    out[2 * s.C] = static_cast<T>(std::log(es_c) - et_c / es_c);
  }
}

// Channels [c, c + CB) of sample b (a block of a task's group): their channel statistics, and their rows folded
// into the group's per-position statistics `acc` [5, H, W]. `buf` holds the block's scratch rows.
template <typename T, int CB>
CAT_INLINE void pool_block(const PoolArgs<T>& a, int64_t b, int64_t c, bool first, float* acc, float* buf) {
  const PoolShape& s = a.s;
  const int64_t H = s.H, W = s.W, HW = H * W, k = s.k, r = k / 2;
  const float* xp[CB];
  float tap[CB][kMaxTaps];
  float *padded[CB], *row2[CB];
  for (int q = 0; q < CB; ++q) {
    const T* xin = a.x + (b * s.C + c + q) * HW;
    float* rows = buf + q * (2 * W + 2 * r);
    padded[q] = rows;
    row2[q] = rows + W + 2 * r;
    if constexpr (std::is_same_v<T, float>) {
      xp[q] = xin;
    } else {
      float* plane = buf + CB * (2 * W + 2 * r) + q * HW;
      for (int64_t i = 0; i < HW; ++i) plane[i] = static_cast<float>(xin[i]);
      xp[q] = plane;
    }
    for (int64_t j = 0; j < k; ++j) tap[q][j] = static_cast<float>(a.taps[(c + q) * k + j]);
  }
  ChannelAcc ch[CB];
  for (int q = 0; q < CB; ++q) {
    ch[q].sum = splat(0.0f);
    ch[q].max = ch[q].gmp = splat(-std::numeric_limits<float>::infinity());
  }
  for (int64_t h = 0; h < H; ++h) {
    const float *xrow[CB], *gmp_c[CB], *gmp_s[CB];  // rows whose maxima are channel and spatial GMP
    for (int q = 0; q < CB; ++q) {
      xrow[q] = gmp_c[q] = gmp_s[q] = xp[q] + h * W;
      if (s.filter == kNone) continue;
      const float* rows[kMaxTaps];
      for (int64_t j = 0; j < k; ++j) rows[j] = xp[q] + std::clamp(h + j - r, int64_t{0}, H - 1) * W;
      float* row1 = padded[q] + r;
      blur_rows(rows, tap[q], k, W, row1);
      for (int64_t j = 0; j < r; ++j) {
        padded[q][j] = row1[0];
        row1[W + j] = row1[W - 1];
      }
      blur_cols(padded[q], tap[q], k, W, row2[q]);
      gmp_c[q] = s.filter == kPaper ? row1 : row2[q];
      gmp_s[q] = row2[q];
    }
    int64_t w = 0;
    for (; w + kLanes <= W; w += kLanes) fold_chunk<CB>(xrow, gmp_c, gmp_s, w, kLanes, first, acc + h * W + w, HW, ch);
    if (w < W) fold_chunk<CB>(xrow, gmp_c, gmp_s, w, static_cast<int>(W - w), first, acc + h * W + w, HW, ch);
  }
  channel_stats<T, CB>(a, b, c, xp, ch);
}

// dst[0, n) = src[0, n) in whole vectors, the last one overlapping the one before (n >= 8)
CAT_INLINE void copy_row(float* dst, const float* src, int64_t n) {
  if (n < kLanes) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  for (int64_t w = 0; w + kLanes < n; w += kLanes) store(dst + w, load(src + w));
  store(dst + n - kLanes, load(src + n - kLanes));
}

// x plane [H, W] into P [H + 2r, W + 2r], replicate padding (np.pad mode "edge"). The rows of x are written in
// whole vectors, in order (up to 7 past each row's end, into the next row, which is written after it; P has 8
// floats of slack); x is read in whole vectors except at its last 7 floats.
CAT_INLINE void pad_plane(const float* x, int64_t H, int64_t W, int64_t r, float* P) {
  const int64_t Wp = W + 2 * r, HW = H * W;
  for (int64_t h = 0; h < H; ++h) {
    const float* src = x + h * W;
    float* dst = P + (h + r) * Wp;
    const v8f left = splat(src[0]), right = splat(src[W - 1]);
    for (int64_t j = 0; j < r; j += kLanes) store(dst + j, left);
    for (int64_t w = 0; w < W; w += kLanes) {
      const int64_t off = h * W + w;
      store(dst + r + w, off + kLanes <= HW ? load(src + w) : load_n(src + w, static_cast<int>(HW - off), 0.0f));
    }
    for (int64_t j = 0; j < r; j += kLanes) store(dst + r + W + j, right);
  }
  for (int64_t j = 0; j < r; ++j) {
    copy_row(P + j * Wp, P + r * Wp, Wp);
    copy_row(P + (H + r + j) * Wp, P + (H + r - 1) * Wp, Wp);
  }
}

// rows [H, W] of a plane with row stride Wp into out [H, W], in whole vectors (out has 8 floats of slack)
CAT_INLINE void compact_rows(const float* in, int64_t H, int64_t W, int64_t Wp, float* out) {
  for (int64_t h = 0; h < H; ++h)
    for (int64_t w = 0; w < W; w += kLanes) store(out + h * W + w, load(in + h * Wp + w));
}

// pool_block for maps of up to kPlanesMaxHW positions: per channel the whole plane is padded once and blurred as
// flat vectors (k x 1 along H over rows of the padded plane, then 1 x k along W over the flat run), then all
// positions are folded as one flat run of H W, so only the plane's last chunk is a partial vector.
// `buf`: the padded plane and its two blurs, then per channel of the block its GMP planes (and x in FP32 for FP16).
template <typename T, int CB>
CAT_INLINE void pool_block_planes(const PoolArgs<T>& a, int64_t b, int64_t c, bool first, float* acc, float* buf) {
  const PoolShape& s = a.s;
  const int64_t H = s.H, W = s.W, HW = H * W, k = s.k, r = k / 2, Wp = W + 2 * r;
  float* P = buf;                                // [H + 2r, Wp] + slack, the padded plane
  float* Q = P + (H + 2 * r) * Wp + kLanes;      // [H, Wp] + slack, its k x 1 blur (padded along W)
  float* G = Q + H * Wp + kLanes;                // [H, Wp] + slack, the k x k blur (first W of each row)
  float* planes = G + H * Wp + kLanes;           // per channel: gmp_c, gmp_s [HW] + slack, x [HW] + slack (FP16)
  const int64_t plane = HW + kLanes;
  const float *xp[CB], *gmp_c[CB], *gmp_s[CB];
  float tap[kMaxTaps];
  for (int q = 0; q < CB; ++q) {
    const T* xin = a.x + (b * s.C + c + q) * HW;
    float* own = planes + q * 3 * plane;
    if constexpr (std::is_same_v<T, float>) {
      xp[q] = xin;
    } else {
      float* xf = own + 2 * plane;
      for (int64_t i = 0; i < HW; ++i) xf[i] = static_cast<float>(xin[i]);
      xp[q] = xf;
    }
    gmp_c[q] = gmp_s[q] = xp[q];
    if (s.filter == kNone) continue;
    for (int64_t j = 0; j < k; ++j) tap[j] = static_cast<float>(a.taps[(c + q) * k + j]);
    pad_plane(xp[q], H, W, r, P);
    blur_flat(P, Wp, tap, k, H * Wp, Q);
    blur_flat(Q, 1, tap, k, H * Wp - 2 * r, G);
    float* gs = own + plane;
    compact_rows(G, H, W, Wp, gs);
    gmp_s[q] = gs;
    if (s.filter == kPaper) {
      compact_rows(Q + r, H, W, Wp, own);
      gmp_c[q] = own;
    } else {
      gmp_c[q] = gs;
    }
  }
  ChannelAcc ch[CB];
  for (int q = 0; q < CB; ++q) {
    ch[q].sum = splat(0.0f);
    ch[q].max = ch[q].gmp = splat(-std::numeric_limits<float>::infinity());
  }
  int64_t i = 0;
  for (; i + kLanes <= HW; i += kLanes) fold_chunk<CB>(xp, gmp_c, gmp_s, i, kLanes, first, acc + i, HW, ch);
  if (i < HW) fold_chunk<CB>(xp, gmp_c, gmp_s, i, static_cast<int>(HW - i), first, acc + i, HW, ch);
  channel_stats<T, CB>(a, b, c, xp, ch);
}

constexpr int kBlock = 4;  // channels folded together into the per-position statistics
// maps of at most this many positions take pool_block_planes (its scratch planes stay in L2); larger ones
// pool_block, whose rows stay in L1
constexpr int64_t kPlanesMaxHW = 64 * 64;

// One task: the channels of group g of sample b. Writes their channel statistics and the group's partial
// spatial statistics (sum, max, m, s, t) [5, H, W].
template <typename T>
CAT_INLINE void pool_group(const PoolArgs<T>& a, size_t task) {
  const PoolShape& s = a.s;
  const int64_t b = static_cast<int64_t>(task) / s.groups, g = static_cast<int64_t>(task) % s.groups;
  const int64_t HW = s.H * s.W, c0 = g * s.per_group, c1 = std::min(s.C, c0 + s.per_group);
  float* acc = a.partial + static_cast<int64_t>(task) * 5 * HW;
  const int64_t r = s.k / 2, Wp = s.W + 2 * r;
  const bool planes = HW <= kPlanesMaxHW;
  thread_local std::vector<float> buf;
  const int64_t floats = planes ? (s.H + 2 * r) * Wp + 2 * s.H * Wp + 3 * kLanes + kBlock * 3 * (HW + kLanes)
                                : kBlock * ((std::is_same_v<T, float> ? 0 : HW) + 2 * s.W + s.k);
  if (buf.size() < static_cast<size_t>(floats)) buf.resize(static_cast<size_t>(floats));
  int64_t c = c0;
  if (planes) {
    for (; c + kBlock <= c1; c += kBlock) pool_block_planes<T, kBlock>(a, b, c, c == c0, acc, buf.data());
    for (; c < c1; ++c) pool_block_planes<T, 1>(a, b, c, c == c0, acc, buf.data());
  } else {
    for (; c + kBlock <= c1; c += kBlock) pool_block<T, kBlock>(a, b, c, c == c0, acc, buf.data());
    for (; c < c1; ++c) pool_block<T, 1>(a, b, c, c == c0, acc, buf.data());
  }
}

// One merge task: positions [i0, i0 + chunk) of sample b, over the groups' partial statistics.
template <typename T>
CAT_INLINE void pool_merge(const PoolArgs<T>& a, size_t task) {
  const PoolShape& s = a.s;
  const int64_t HW = s.H * s.W, chunks = (HW + s.chunk - 1) / s.chunk;
  const int64_t b = static_cast<int64_t>(task) / chunks, i0 = (static_cast<int64_t>(task) % chunks) * s.chunk;
  const int64_t i1 = std::min(HW, i0 + s.chunk);
  const float* part = a.partial + b * s.groups * 5 * HW;
  T* out = a.spatial + b * 3 * HW;
  for (int64_t i = i0; i < i1; i += kLanes) {
    const int n = static_cast<int>(std::min<int64_t>(kLanes, i1 - i));
    v8f m = load_any(part + 2 * HW + i, n, 0.0f);
    for (int64_t g = 1; g < s.groups; ++g) m = vmax(m, load_any(part + (g * 5 + 2) * HW + i, n, 0.0f));
    v8f sum = splat(0.0f), mx = splat(-std::numeric_limits<float>::infinity()), es = splat(0.0f), et = splat(0.0f);
    for (int64_t g = 0; g < s.groups; ++g) {
      const float* q = part + g * 5 * HW + i;
      const v8f d = load_any(q + 2 * HW, n, 0.0f) - m, sg = load_any(q + 3 * HW, n, 1.0f);
      const v8f e = vexp_neg(d);
      sum += load_any(q, n, 0.0f);
      mx = vmax(mx, load_any(q + HW, n, 0.0f));
      es += sg * e;
      et += e * (load_any(q + 4 * HW, n, 0.0f) + d * sg);
    }
    store_out(out + i, sum / splat(static_cast<float>(s.C)), n);
    store_out(out + HW + i, mx, n);
    store_out(out + 2 * HW + i, vlog(es) - et / es, n);
  }
}

CAT_DISPATCH void pool_group_f32(const PoolArgs<float>& a, size_t task) { pool_group(a, task); }
CAT_DISPATCH void pool_group_f16(const PoolArgs<half>& a, size_t task) { pool_group(a, task); }
CAT_DISPATCH void pool_merge_f32(const PoolArgs<float>& a, size_t task) { pool_merge(a, task); }
CAT_DISPATCH void pool_merge_f16(const PoolArgs<half>& a, size_t task) { pool_merge(a, task); }

template <typename T>
void pool_group_any(const PoolArgs<T>& a, size_t task) {
  if constexpr (std::is_same_v<T, float>) pool_group_f32(a, task); else pool_group_f16(a, task);
}
template <typename T>
void pool_merge_any(const PoolArgs<T>& a, size_t task) {
  if constexpr (std::is_same_v<T, float>) pool_merge_f32(a, task); else pool_merge_f16(a, task);
}

// ------------------------------------------------------------------------------------------------- FusedCatGate
template <typename T>
struct GateArgs {
  const T* x;
  const T* channel_logits;
  T* y;
  const float* gate_s;  // [B, H, W]: sw sig(s) (fusion 0) or sig(sw sig(s)) (fusion 1)
  int64_t C, HW, planes_per_task, planes;
  float cw;
  int64_t fusion;
};

// y = x (a + gate_s) for the planes of one task, a = cw sig(c) (fusion 0) or sig(cw c) (fusion 1)
template <typename T>
CAT_INLINE void gate_planes(const GateArgs<T>& a, size_t task) {
  const int64_t p0 = static_cast<int64_t>(task) * a.planes_per_task, p1 = std::min(a.planes, p0 + a.planes_per_task);
  for (int64_t plane = p0; plane < p1; ++plane) {
    const float c = static_cast<float>(a.channel_logits[plane]);
    const v8f cg = splat(a.fusion == 0 ? a.cw * sigmoid(c) : sigmoid(a.cw * c));
    const T* x = a.x + plane * a.HW;
    const float* gs = a.gate_s + (plane / a.C) * a.HW;
    T* y = a.y + plane * a.HW;
    for (int64_t i = 0; i < a.HW; i += kLanes) {
      const int n = static_cast<int>(std::min<int64_t>(kLanes, a.HW - i));
      v8f xv;
      if constexpr (std::is_same_v<T, float>) {
        xv = load_any(x + i, n, 0.0f);
      } else {
        xv = splat(0.0f);
        for (int l = 0; l < n; ++l) xv[l] = static_cast<float>(x[i + l]);
      }
      store_out(y + i, xv * (cg + load_any(gs + i, n, 0.0f)), n);
    }
  }
}

// gate_s [n] from spatial logits [n]: sw sig(s) (fusion 0) or sig(sw sig(s)) (fusion 1)
template <typename T>
CAT_INLINE void gate_spatial(const T* s, int64_t n_all, float sw, int64_t fusion, float* out) {
  for (int64_t i = 0; i < n_all; i += kLanes) {
    const int n = static_cast<int>(std::min<int64_t>(kLanes, n_all - i));
    v8f v = splat(0.0f);
    for (int l = 0; l < n; ++l) v[l] = static_cast<float>(s[i + l]);
    const v8f g = vsigmoid(v);
    store_any(out + i, fusion == 0 ? splat(sw) * g : vsigmoid(splat(sw) * g), n);
  }
}

CAT_DISPATCH void gate_planes_f32(const GateArgs<float>& a, size_t task) { gate_planes(a, task); }
CAT_DISPATCH void gate_planes_f16(const GateArgs<half>& a, size_t task) { gate_planes(a, task); }
CAT_DISPATCH void gate_spatial_f32(const float* s, int64_t n, float sw, int64_t fusion, float* out) {
  gate_spatial(s, n, sw, fusion, out);
}
CAT_DISPATCH void gate_spatial_f16(const half* s, int64_t n, float sw, int64_t fusion, float* out) {
  gate_spatial(s, n, sw, fusion, out);
}

// ------------------------------------------------------------------------------------------------ ORT plumbing
template <typename T>
constexpr ONNXTensorElementDataType onnx_type() {
  return std::is_same_v<T, float> ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

[[noreturn]] void fail(const std::string& msg) { throw Ort::Exception(std::string(msg), ORT_INVALID_ARGUMENT); }

int64_t int_attribute(const OrtKernelInfo* info, const char* name, int64_t fallback) {
  int64_t value = fallback;
  OrtStatus* status = Ort::GetApi().KernelInfoGetAttribute_int64(info, name, &value);
  if (status != nullptr) {  // absent: the default
    Ort::GetApi().ReleaseStatus(status);
    return fallback;
  }
  return value;
}

// fn(i) for i in [0, n) on ONNX Runtime's intra-op thread pool (inline when it has one thread)
template <typename F>
void parallel_for(const Ort::KernelContext& ctx, size_t n, F& fn) {
  if (n == 1) {
    fn(0);
    return;
  }
  ctx.ParallelFor([](void* user, size_t i) { (*static_cast<F*>(user))(i); }, n, 0, &fn);
}

// FP32 scratch memory from the session's CPU allocator, freed at scope exit
class Scratch {
 public:
  Scratch(const Ort::KernelContext& ctx, size_t floats)
      : info_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)),
        alloc_(ctx.GetAllocator(*info_)),
        data_(static_cast<float*>(alloc_->Alloc(alloc_, std::max<size_t>(floats, 1) * sizeof(float)))) {}
  ~Scratch() { alloc_->Free(alloc_, data_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* get() const { return data_; }

 private:
  Ort::MemoryInfo info_;
  OrtAllocator* alloc_;
  float* data_;
};

template <typename T>
struct PoolKernel {
  int64_t filter;

  explicit PoolKernel(const OrtKernelInfo* info) : filter(int_attribute(info, "gmp_filter", kPaper)) {
    if (filter < kNone || filter > k2d)
      fail("FusedCatPool: gmp_filter must be 0 (none), 1 (paper) or 2 (2d), got " + std::to_string(filter));
  }

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const auto x = ctx.GetInput(0), taps = ctx.GetInput(1);
    const auto xs = x.GetTensorTypeAndShapeInfo().GetShape(), ts = taps.GetTensorTypeAndShapeInfo().GetShape();
    if (xs.size() != 4) fail("FusedCatPool: x must be 4-D [B, C, H, W], got rank " + std::to_string(xs.size()));
    const int64_t B = xs[0], C = xs[1], H = xs[2], W = xs[3];
    if (C < 1 || H < 1 || W < 1) fail("FusedCatPool: x must have C, H, W >= 1, got " + shape_str(xs));
    if (ts.size() != 2 || ts[0] != C || ts[1] < 1 || ts[1] % 2 == 0 || ts[1] > kMaxTaps)
      fail("FusedCatPool: taps must be [C, k] = [" + std::to_string(C) + ", k] with k odd and <= " +
           std::to_string(kMaxTaps) + ", got " + shape_str(ts));
    PoolShape s{B, C, H, W, ts[1], 0, 0, 0, filter};
    s.per_group = std::max<int64_t>(32, (C + 15) / 16);  // at most 16 groups: the merge reads 5 values per group
    s.groups = (C + s.per_group - 1) / s.per_group;
    s.chunk = 512;
    auto channel = ctx.GetOutput(0, {B, 3, C}), spatial = ctx.GetOutput(1, {B, 3, H, W});
    if (B == 0) return;
    Scratch partial(ctx, static_cast<size_t>(B * s.groups * 5 * H * W));
    PoolArgs<T> args{reinterpret_cast<const T*>(x.GetTensorRawData()), reinterpret_cast<const T*>(taps.GetTensorRawData()),
                     reinterpret_cast<T*>(channel.GetTensorMutableRawData()),
                     reinterpret_cast<T*>(spatial.GetTensorMutableRawData()), partial.get(), s};
    auto groups = [&args](size_t task) { pool_group_any(args, task); };
    parallel_for(ctx, static_cast<size_t>(B * s.groups), groups);
    auto merge = [&args](size_t task) { pool_merge_any(args, task); };
    parallel_for(ctx, static_cast<size_t>(B * ((H * W + s.chunk - 1) / s.chunk)), merge);
  }
};

template <typename T>
struct GateKernel {
  int64_t fusion;

  explicit GateKernel(const OrtKernelInfo* info) : fusion(int_attribute(info, "fusion", 0)) {
    if (fusion != 0 && fusion != 1)
      fail("FusedCatGate: fusion must be 0 (algorithm1) or 1 (eq1), got " + std::to_string(fusion));
  }

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const auto x = ctx.GetInput(0), cl = ctx.GetInput(1), sl = ctx.GetInput(2), ext = ctx.GetInput(3);
    const auto xs = x.GetTensorTypeAndShapeInfo().GetShape(), cs = cl.GetTensorTypeAndShapeInfo().GetShape();
    const auto ss = sl.GetTensorTypeAndShapeInfo().GetShape();
    if (xs.size() != 4) fail("FusedCatGate: x must be 4-D [B, C, H, W], got rank " + std::to_string(xs.size()));
    const int64_t B = xs[0], C = xs[1], H = xs[2], W = xs[3];
    const bool c_ok = (cs.size() == 2 || (cs.size() == 4 && cs[2] == 1 && cs[3] == 1)) && cs[0] == B && cs[1] == C;
    if (!c_ok) fail("FusedCatGate: channel_logits must be [B, C] = " + shape_str({B, C}) + ", got " + shape_str(cs));
    if (ss != std::vector<int64_t>{B, 1, H, W})
      fail("FusedCatGate: spatial_logits must be [B, 1, H, W] = " + shape_str({B, 1, H, W}) + ", got " + shape_str(ss));
    if (ext.GetTensorTypeAndShapeInfo().GetElementCount() != 2)
      fail("FusedCatGate: exterior must hold 2 values (cw, sw), got " +
           shape_str(ext.GetTensorTypeAndShapeInfo().GetShape()));
    auto y = ctx.GetOutput(0, xs);
    const int64_t HW = H * W;
    if (B * C * HW == 0) return;
    const T* e = reinterpret_cast<const T*>(ext.GetTensorRawData());
    const float cw = static_cast<float>(e[0]), sw = static_cast<float>(e[1]);
    Scratch gate_s(ctx, static_cast<size_t>(B * HW));
    const T* s = reinterpret_cast<const T*>(sl.GetTensorRawData());
    if constexpr (std::is_same_v<T, float>) gate_spatial_f32(s, B * HW, sw, fusion, gate_s.get());
    else gate_spatial_f16(s, B * HW, sw, fusion, gate_s.get());
    const int64_t per_task = std::max<int64_t>(1, 16384 / HW);
    GateArgs<T> args{reinterpret_cast<const T*>(x.GetTensorRawData()), reinterpret_cast<const T*>(cl.GetTensorRawData()),
                     reinterpret_cast<T*>(y.GetTensorMutableRawData()), gate_s.get(), C, HW, per_task, B * C, cw, fusion};
    auto planes = [&args](size_t task) {
      if constexpr (std::is_same_v<T, float>) gate_planes_f32(args, task); else gate_planes_f16(args, task);
    };
    parallel_for(ctx, static_cast<size_t>((B * C + per_task - 1) / per_task), planes);
  }
};

template <typename T>
struct PoolOp : Ort::CustomOpBase<PoolOp<T>, PoolKernel<T>> {
  void* CreateKernel(const OrtApi&, const OrtKernelInfo* info) const { return new PoolKernel<T>(info); }
  const char* GetName() const { return "FusedCatPool"; }
  size_t GetInputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetInputType(size_t) const { return onnx_type<T>(); }
  size_t GetOutputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return onnx_type<T>(); }
};

template <typename T>
struct GateOp : Ort::CustomOpBase<GateOp<T>, GateKernel<T>> {
  void* CreateKernel(const OrtApi&, const OrtKernelInfo* info) const { return new GateKernel<T>(info); }
  const char* GetName() const { return "FusedCatGate"; }
  size_t GetInputTypeCount() const { return 4; }
  ONNXTensorElementDataType GetInputType(size_t) const { return onnx_type<T>(); }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return onnx_type<T>(); }
};

// the domains must outlive every session that registered them
void keep(Ort::CustomOpDomain&& domain) {
  static std::vector<Ort::CustomOpDomain> domains;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  domains.push_back(std::move(domain));
}

}  // namespace

extern "C" __attribute__((visibility("default"))) OrtStatus* ORT_API_CALL
RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) return nullptr;  // an ONNX Runtime older than the headers: it reports the missing ops itself
  Ort::InitApi(api);
  static const PoolOp<float> pool_f32;
  static const PoolOp<half> pool_f16;
  static const GateOp<float> gate_f32;
  static const GateOp<half> gate_f16;
  try {
    Ort::CustomOpDomain domain{kDomain};
    domain.Add(&pool_f32);
    domain.Add(&pool_f16);
    domain.Add(&gate_f32);
    domain.Add(&gate_f16);
    Ort::UnownedSessionOptions(options).Add(domain);
    keep(std::move(domain));
  } catch (const std::exception& e) {
    return api->CreateStatus(ORT_FAIL, e.what());
  }
  return nullptr;
}
