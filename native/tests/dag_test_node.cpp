// A custom-node library for dag_executor_test, built as its own shared object
// against the C API only. Input "x" (FP32, any shape); output "out" (FP32,
// [rows] + shape of x): row i is x * (i + 1). Params:
//   rows   — how many rows (default 1; 0 gives an empty output)
//   mode   — "ok" (default), "fail" (execute returns 1), "null" (null data),
//            "size" (dataBytes off by 4), "noname", "precision" (UNSPECIFIED),
//            "missing" (returns no output at all: an empty array), "rank" (one
//            row without its dimension: rank 2 where rank 3 is declared)
// Every allocation is counted; release() takes them back, and the test reads
// the count through the exported dag_test_node_live() to prove nothing leaks.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ovfast/dag/custom_node_interface.h"

namespace {
std::atomic<int> g_live{0};

void* take(size_t n) {
  ++g_live;
  return std::malloc(n ? n : 1);
}

std::string param(const CustomNodeParam* params, int count, const char* key, const char* fallback) {
  for (int i = 0; i < count; ++i)
    if (std::strcmp(params[i].key, key) == 0) return params[i].value;
  return fallback;
}

int info(CustomNodeTensorInfo** out, int* count, const char* name, uint64_t dims) {
  *out = static_cast<CustomNodeTensorInfo*>(take(sizeof(CustomNodeTensorInfo)));
  (*out)->name = name;
  (*out)->dimsCount = dims;
  (*out)->dims = static_cast<uint64_t*>(take(dims * sizeof(uint64_t)));
  for (uint64_t i = 0; i < dims; ++i) (*out)->dims[i] = 0;
  (*out)->precision = FP32;
  *count = 1;
  return 0;
}
}  // namespace

extern "C" {

OVFAST_CUSTOM_NODE_API int dag_test_node_live() { return g_live.load(); }

int initialize(void** manager, const CustomNodeParam* params, int count) {
  *manager = nullptr;
  return param(params, count, "mode", "ok") == "init" ? 1 : 0;
}

int deinitialize(void*) { return 0; }

int getInputsInfo(CustomNodeTensorInfo** out, int* count, const CustomNodeParam*, int, void*) {
  return info(out, count, "x", 2);
}

int getOutputsInfo(CustomNodeTensorInfo** out, int* count, const CustomNodeParam*, int, void*) {
  return info(out, count, "out", 3);
}

int execute(const CustomNodeTensor* inputs, int inputsCount, CustomNodeTensor** outputs, int* outputsCount,
            const CustomNodeParam* params, int paramsCount, void*) {
  const std::string mode = param(params, paramsCount, "mode", "ok");
  if (mode == "fail" || inputsCount != 1 || inputs[0].precision != FP32) return 1;
  if (mode == "missing") {
    *outputs = static_cast<CustomNodeTensor*>(take(sizeof(CustomNodeTensor)));
    *outputsCount = 0;
    return 0;
  }
  const uint64_t rows = mode == "rank" ? 1 : std::strtoull(param(params, paramsCount, "rows", "1").c_str(), nullptr, 10);
  const CustomNodeTensor& x = inputs[0];
  const uint64_t n = x.dataBytes / sizeof(float);
  CustomNodeTensor* o = static_cast<CustomNodeTensor*>(take(sizeof(CustomNodeTensor)));
  o->name = mode == "noname" ? nullptr : "out";
  o->precision = mode == "precision" ? UNSPECIFIED : FP32;
  const uint64_t lead = mode == "rank" ? 0 : 1;  // "rank": no rows dimension
  o->dimsCount = x.dimsCount + lead;
  o->dims = static_cast<uint64_t*>(take(o->dimsCount * sizeof(uint64_t)));
  if (lead) o->dims[0] = rows;
  for (uint64_t d = 0; d < x.dimsCount; ++d) o->dims[d + lead] = x.dims[d];
  o->dataBytes = rows * n * sizeof(float) + (mode == "size" ? 4 : 0);
  o->data = nullptr;
  if (mode != "null" && rows * n > 0) {
    auto* out = static_cast<float*>(take(rows * n * sizeof(float)));
    const auto* in = reinterpret_cast<const float*>(x.data);
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t i = 0; i < n; ++i) out[r * n + i] = in[i] * static_cast<float>(r + 1);
    o->data = reinterpret_cast<uint8_t*>(out);
  }
  *outputs = o;
  *outputsCount = 1;
  return 0;
}

int release(void* ptr, void*) {
  --g_live;
  std::free(ptr);
  return 0;
}

}  // extern "C"
