// libovfast_topk.so — the k largest scores of each row, e.g. a classifier's class ids.
//
// input   scores   FP32 [B, C]
// outputs indices  I32  [B, k]   column of each value, largest first (ties: lower column first)
//         values   FP32 [B, k]   the values (NaN ranks below every number)
// params  k (1..C, default 1)
#include <algorithm>
#include <numeric>

#include "node_common.hpp"

using namespace ovfast_nodes;

namespace {

struct Config {
    long k = 1;
    static bool parse(const CustomNodeParam* params, int count, Config* out) {
        return int_param(params, count, "k", 1, 1, 1 << 20, &out->k);
    }
};

float rank_key(float v) { return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v; }

int run(const CustomNodeTensor* inputs, int inputs_count, CustomNodeTensor** outputs, int* outputs_count,
        const Config& config) {
    const CustomNodeTensor* scores = nullptr;
    if (int rc = check_input(inputs, inputs_count, "scores", FP32, 2, &scores); rc != kOk) return rc;
    const uint64_t rows = scores->dims[0], columns = scores->dims[1], k = static_cast<uint64_t>(config.k);
    if (columns < k) return kWrongShape;
    Outputs out;
    auto* indices = reinterpret_cast<int32_t*>(out.add("indices", I32, {rows, k}));
    auto* values = reinterpret_cast<float*>(out.add("values", FP32, {rows, k}));
    if (indices == nullptr || values == nullptr) return kNoMemory;
    const auto* data = reinterpret_cast<const float*>(scores->data);
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

std::vector<TensorSpec> input_specs(const Config&) { return {{"scores", FP32, {0, 0}}}; }

std::vector<TensorSpec> output_specs(const Config& config) {
    const uint64_t k = static_cast<uint64_t>(config.k);
    return {{"indices", I32, {0, k}}, {"values", FP32, {0, k}}};
}

}  // namespace

OVFAST_NODE_DEFINE_ABI(Config, run, input_specs, output_specs)

