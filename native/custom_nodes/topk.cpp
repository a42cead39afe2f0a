// libovfast_topk.so — the k largest scores of each row, e.g. a classifier's class ids.
//
// input   scores   FP32 [..., C] of rank input_rank (each row of the last dimension ranked on its own)
// outputs indices  I32  [..., k]   column of each value, largest first (ties: lower column first)
//         values   FP32 [..., k]   the values (NaN ranks below every number)
// params  k (1..C, default 1: argmax), input_rank (1..8, default 2)
#include <algorithm>
#include <numeric>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "node_common.hpp"

using namespace ovfast_nodes;

namespace {

struct Config {
    long k = 1, rank = 2;
    static bool parse(const CustomNodeParam* params, int count, Config* out) {
        return int_param(params, count, "k", 1, 1, 1 << 20, &out->k) &&
               int_param(params, count, "input_rank", 2, 1, 8, &out->rank);
    }
};

float rank_key(float v) { return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v; }

// The column of a row's largest value, NaN ranking below every number and ties going to the first column:
// two branch-free passes (the maximum, then its first column), 16 floats a step. One rank_key comparison per
// column cost ~1 ms for an OCR recogniser's [40, 6625] scores, more than the server's other work per line.
uint64_t argmax(const float* row, uint64_t n) {
    const float lowest = -std::numeric_limits<float>::infinity();
    float top = lowest;
    uint64_t c = 0;
#if defined(__SSE2__)
    __m128 m0 = _mm_set1_ps(lowest), m1 = m0, m2 = m0, m3 = m0;
    for (; c + 16 <= n; c += 16) {  // _mm_max_ps(x, m) is m when x is NaN
        m0 = _mm_max_ps(_mm_loadu_ps(row + c), m0);
        m1 = _mm_max_ps(_mm_loadu_ps(row + c + 4), m1);
        m2 = _mm_max_ps(_mm_loadu_ps(row + c + 8), m2);
        m3 = _mm_max_ps(_mm_loadu_ps(row + c + 12), m3);
    }
    float lanes[4];
    _mm_storeu_ps(lanes, _mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3)));
    for (float v : lanes) top = std::max(top, v);
#endif
    for (; c < n; ++c)
        if (row[c] > top) top = row[c];  // false for NaN
    if (top == lowest) return 0;  // only -inf and NaN: all rank the same, the first wins
    c = 0;
#if defined(__SSE2__)
    const __m128 t = _mm_set1_ps(top);
    for (; c + 16 <= n; c += 16) {
        const int hits = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(row + c), t)) |
                         _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(row + c + 4), t)) << 4 |
                         _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(row + c + 8), t)) << 8 |
                         _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(row + c + 12), t)) << 12;
        if (hits) return c + static_cast<uint64_t>(__builtin_ctz(static_cast<unsigned>(hits)));
    }
#endif
    for (; c < n; ++c)
        if (row[c] == top) return c;
    return 0;  // not reached: top is one of the row's values
}

int run(const CustomNodeTensor* inputs, int inputs_count, CustomNodeTensor** outputs, int* outputs_count,
        const Config& config) {
    const CustomNodeTensor* scores = nullptr;
    const uint64_t rank = static_cast<uint64_t>(config.rank), k = static_cast<uint64_t>(config.k);
    if (int rc = check_input(inputs, inputs_count, "scores", FP32, rank, &scores); rc != kOk) return rc;
    const uint64_t columns = scores->dims[rank - 1];
    if (columns < k) return kWrongShape;
    std::vector<uint64_t> dims(scores->dims, scores->dims + rank);
    dims.back() = k;
    uint64_t rows = 1;
    for (uint64_t i = 0; i + 1 < rank; ++i) rows *= dims[i];
    Outputs out;
    auto* indices = reinterpret_cast<int32_t*>(out.add("indices", I32, dims));
    auto* values = reinterpret_cast<float*>(out.add("values", FP32, dims));
    if (indices == nullptr || values == nullptr) return kNoMemory;
    const auto* data = reinterpret_cast<const float*>(scores->data);
    if (k == 1) {  // argmax: one pass per row
        for (uint64_t r = 0; r < rows; ++r) {
            const float* row = data + r * columns;
            const uint64_t best = argmax(row, columns);
            indices[r] = static_cast<int32_t>(best);
            values[r] = row[best];
        }
        return out.commit(outputs, outputs_count);
    }
    std::vector<int32_t> order(columns);
    for (uint64_t r = 0; r < rows; ++r) {
        const float* row = data + r * columns;
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                          [row](int32_t a, int32_t b) {
                              const float ka = rank_key(row[a]), kb = rank_key(row[b]);
                              return ka > kb || (ka == kb && a < b);
                          });
        for (uint64_t i = 0; i < k; ++i) {
            indices[r * k + i] = order[i];
            values[r * k + i] = row[order[i]];
        }
    }
    return out.commit(outputs, outputs_count);
}

std::vector<TensorSpec> input_specs(const Config& config) {
    return {{"scores", FP32, std::vector<uint64_t>(static_cast<size_t>(config.rank), 0)}};
}

std::vector<TensorSpec> output_specs(const Config& config) {
    std::vector<uint64_t> dims(static_cast<size_t>(config.rank), 0);
    dims.back() = static_cast<uint64_t>(config.k);
    return {{"indices", I32, dims}, {"values", FP32, dims}};
}

}  // namespace

OVFAST_NODE_DEFINE_ABI(Config, run, input_specs, output_specs)

