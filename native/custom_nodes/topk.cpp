// libovfast_topk.so — the k largest scores of each row, e.g. a classifier's class ids.
//
// input   scores   FP32 [..., C] of rank input_rank (each row of the last dimension ranked on its own)
// outputs indices  I32  [..., k]   column of each value, largest first (ties: lower column first)
//         values   FP32 [..., k]   the values (NaN ranks below every number)
// params  k (1..C, default 1: argmax), input_rank (1..8, default 2)
#include <algorithm>
#include <numeric>

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
            uint64_t best = 0;
            for (uint64_t c = 1; c < columns; ++c)
                if (rank_key(row[c]) > rank_key(row[best])) best = c;
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

