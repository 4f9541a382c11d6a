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
// plane by plane. Per plane it computes the channel sums and maxima row by row together with the Gaussian rows
// (k x 1 along H from the plane, 1 x k along W from that row, replicate padding by clamped indices), and folds
// the plane into running per-position statistics of its group (sum, max, and the GEP triple (m, s, t) rescaled
// online when the maximum grows); the channel GEP is a second pass over the plane, which is then in L1/L2.
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
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
using half = _Float16;

#define CAT_INLINE inline __attribute__((always_inline))
#define CAT_DISPATCH __attribute__((target_clones("arch=x86-64-v3", "default")))

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

// e^x, Cephes expf: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-7 polynomial, 2^n through the exponent bits.
// Relative error <= 1.8e-7 (2^-22.4) over [-87, 88], measured against double exp; 0 below -87 (e^-87 = 1.6e-38).
CAT_INLINE v8f vexp(v8f x) {
  const v8i under = x < splat(-87.0f);
  x = vmin(vmax(x, splat(-87.0f)), splat(88.0f));
  const v8f n = (x * splat(1.44269504088896341f) + splat(12582912.0f)) - splat(12582912.0f);  // round(x / ln2)
  const v8f r = (x - n * splat(0.693359375f)) + n * splat(2.12194440e-4f);
  v8f p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  const v8f y = p * (r * r) + r + splat(1.0f);
  const v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
  return under ? splat(0.0f) : y * (v8f)bits;
}

// log x for normal x > 0, Cephes logf (relative error <= 2 ulp). Used for s >= 1.
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

// Gaussian k x 1 (along H) of row h of plane p [H, W] into out [W], rows clamped (replicate padding).
CAT_INLINE void blur_rows(const float* p, int64_t H, int64_t W, int64_t h, const float* tap, int64_t k, float* out) {
  const int64_t r = k / 2;
  int64_t w = 0;
  for (; w + kLanes <= W; w += kLanes) {
    v8f acc = splat(0.0f);
    for (int64_t j = 0; j < k; ++j) acc += splat(tap[j]) * load(p + std::clamp(h + j - r, int64_t{0}, H - 1) * W + w);
    store(out + w, acc);
  }
  for (; w < W; ++w) {
    float acc = 0.0f;
    for (int64_t j = 0; j < k; ++j) acc += tap[j] * p[std::clamp(h + j - r, int64_t{0}, H - 1) * W + w];
    out[w] = acc;
  }
}

// Gaussian 1 x k (along W) of a row padded by r replicated values on each side (padded [W + 2r]) into out [W].
CAT_INLINE void blur_cols(const float* padded, int64_t W, const float* tap, int64_t k, float* out) {
  int64_t w = 0;
  for (; w + kLanes <= W; w += kLanes) {
    v8f acc = splat(0.0f);
    for (int64_t j = 0; j < k; ++j) acc += splat(tap[j]) * load(padded + w + j);
    store(out + w, acc);
  }
  for (; w < W; ++w) {
    float acc = 0.0f;
    for (int64_t j = 0; j < k; ++j) acc += tap[j] * padded[w + j];
    out[w] = acc;
  }
}

// One task: the channels of group g of sample b. Writes their channel statistics and the group's partial
// spatial statistics.
template <typename T>
CAT_INLINE void pool_group(const PoolArgs<T>& a, size_t task) {
  const PoolShape& s = a.s;
  const int64_t b = static_cast<int64_t>(task) / s.groups, g = static_cast<int64_t>(task) % s.groups;
  const int64_t H = s.H, W = s.W, HW = H * W, k = s.k, r = k / 2;
  const int64_t c0 = g * s.per_group, c1 = std::min(s.C, c0 + s.per_group);
  float* acc_sum = a.partial + static_cast<int64_t>(task) * 5 * HW;
  float *acc_max = acc_sum + HW, *acc_m = acc_max + HW, *acc_s = acc_m + HW, *acc_t = acc_s + HW;

  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>((std::is_same_v<T, float> ? 0 : HW) + 3 * W + 2 * r + k));
  float* tap = buf.data();
  float* padded = tap + k;           // [W + 2r]: the k x 1 row with its replicated border
  float* row2 = padded + W + 2 * r;  // [W]: the k x k row
  float* plane = row2 + W;           // [HW]: FP32 copy of an FP16 plane
  const v8f ninf = splat(-std::numeric_limits<float>::infinity());

  for (int64_t c = c0; c < c1; ++c) {
    const T* xin = a.x + (b * s.C + c) * HW;
    const float* xp;
    if constexpr (std::is_same_v<T, float>) {
      xp = xin;
    } else {
      for (int64_t i = 0; i < HW; ++i) plane[i] = static_cast<float>(xin[i]);
      xp = plane;
    }
    for (int64_t j = 0; j < k; ++j) tap[j] = static_cast<float>(a.taps[c * k + j]);
    const bool first = c == c0;
    v8f csum = splat(0.0f), cmax = ninf, cgmp = ninf;

    for (int64_t h = 0; h < H; ++h) {
      const float* xrow = xp + h * W;
      const float *gmp_c = xrow, *gmp_s = xrow;  // rows whose maxima are channel and spatial GMP
      if (s.filter != kNone) {
        float* row1 = padded + r;
        blur_rows(xp, H, W, h, tap, k, row1);
        for (int64_t j = 0; j < r; ++j) {
          padded[j] = row1[0];
          row1[W + j] = row1[W - 1];
        }
        blur_cols(padded, W, tap, k, row2);
        gmp_c = s.filter == kPaper ? row1 : row2;
        gmp_s = row2;
      }
      v8f rsum = splat(0.0f);
      for (int64_t w = 0; w < W; w += kLanes) {
        const int n = static_cast<int>(std::min<int64_t>(kLanes, W - w));
        const v8i valid = lanes_below(n);
        const v8f xv = load_any(xrow + w, n, 0.0f);
        rsum += xv;
        cmax = vmax(cmax, valid ? xv : ninf);
        cgmp = vmax(cgmp, valid ? load_any(gmp_c + w, n, 0.0f) : ninf);
        const v8f sv = load_any(gmp_s + w, n, 0.0f);
        const int64_t p = h * W + w;
        v8f sum = xv, mx = sv, m = xv, es = splat(1.0f), et = splat(0.0f);
        if (!first) {
          // online GEP over channels: one exponential, of -|x - m|, whichever of x and m is larger
          const v8f m0 = load_any(acc_m + p, n, 0.0f), s0 = load_any(acc_s + p, n, 1.0f);
          const v8f t0 = load_any(acc_t + p, n, 0.0f);
          const v8f d = xv - m0, e = vexp(-vabs(d));
          const v8i grows = d > splat(0.0f);
          sum = load_any(acc_sum + p, n, 0.0f) + xv;
          mx = vmax(load_any(acc_max + p, n, 0.0f), sv);
          m = grows ? xv : m0;
          es = grows ? s0 * e + splat(1.0f) : s0 + e;
          et = grows ? e * (t0 - d * s0) : t0 + d * e;
        }
        store_any(acc_sum + p, sum, n);
        store_any(acc_max + p, mx, n);
        store_any(acc_m + p, m, n);
        store_any(acc_s + p, es, n);
        store_any(acc_t + p, et, n);
      }
      csum += rsum;
    }

    // channel GEP: a second pass over the plane, shifted by its maximum
    const float mc = hmax(cmax);
    v8f es = splat(0.0f), et = splat(0.0f);
    for (int64_t i = 0; i < HW; i += kLanes) {
      const int n = static_cast<int>(std::min<int64_t>(kLanes, HW - i));
      const v8f z = load_any(xp + i, n, mc) - splat(mc);
      const v8f e = lanes_below(n) ? vexp(z) : splat(0.0f);
      es += e;
      et += z * e;
    }
    const float es_c = hsum(es), et_c = hsum(et);
    T* ch = a.channel + b * 3 * s.C + c;
    ch[0] = static_cast<T>(hsum(csum) / static_cast<float>(HW));
    ch[s.C] = static_cast<T>(hmax(cgmp));
    ch[2 * s.C] = static_cast<T>(std::log(es_c) - et_c / es_c);
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
      const v8f e = vexp(d);
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
    if (ts.size() != 2 || ts[0] != C || ts[1] < 1 || ts[1] % 2 == 0)
      fail("FusedCatPool: taps must be [C, k] = [" + std::to_string(C) + ", k] with k odd, got " + shape_str(ts));
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
