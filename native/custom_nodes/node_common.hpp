// Shared by ovfast's example custom-node libraries (one .so each): parameter parsing, input checks, and
// allocation of everything a node hands to the server. Header-only; compiled with hidden visibility, so each
// library exports only the six functions of the C ABI.
//
// Every block given to the server comes from std::malloc and is freed by release() (std::free), whichever
// server thread calls it.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "ovfast/dag/custom_node_interface.h"

namespace ovfast_nodes {

// Return codes of the example nodes (0 is success). Any non-zero value fails the request or the load.
enum NodeError : int {
    kOk = 0,
    kBadParams = 1,        // a params value that does not parse or is out of range
    kMissingInput = 2,     // an input with the expected name is absent (or a null inputs array)
    kWrongPrecision = 3,   // an input of another element type
    kWrongShape = 4,       // wrong rank or dimension
    kBadBuffer = 5,        // null data/dims, or dataBytes that disagree with the dims
    kNoMemory = 6,         // allocation failed
    kTooManyResults = 7,   // more results than max_boxes allows
    kBadArguments = 8,     // null output pointers
};

inline size_t element_size(CustomNodeTensorPrecision p) {
    switch (p) {
        case FP64: case I64: return 8;
        case FP32: case I32: return 4;
        case FP16: case I16: case U16: return 2;
        case U8: case I8: return 1;
        default: return 0;
    }
}

// ---- params ------------------------------------------------------------------------------------------
inline const char* find_param(const CustomNodeParam* params, int count, const char* key) {
    if (params == nullptr) return nullptr;
    for (int i = 0; i < count; ++i)
        if (params[i].key != nullptr && std::strcmp(params[i].key, key) == 0) return params[i].value;
    return nullptr;
}

// Integer param in [lo, hi], `fallback` when absent; false when present but malformed or out of range.
inline bool int_param(const CustomNodeParam* params, int count, const char* key, long fallback, long lo, long hi,
                      long* out) {
    const char* text = find_param(params, count, key);
    if (text == nullptr) { *out = fallback; return true; }
    char* end = nullptr;
    errno = 0;
    long value = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < lo || value > hi) return false;
    *out = value;
    return true;
}

inline bool float_param(const CustomNodeParam* params, int count, const char* key, double fallback, double lo,
                        double hi, double* out) {
    const char* text = find_param(params, count, key);
    if (text == nullptr) { *out = fallback; return true; }
    char* end = nullptr;
    double value = std::strtod(text, &end);
    if (end == text || *end != '\0' || !std::isfinite(value) || value < lo || value > hi) return false;
    *out = value;
    return true;
}

// One of `choices` (exact match), index into them; `fallback` index when absent.
inline bool choice_param(const CustomNodeParam* params, int count, const char* key,
                         std::initializer_list<const char*> choices, int fallback, int* out) {
    const char* text = find_param(params, count, key);
    if (text == nullptr) { *out = fallback; return true; }
    int i = 0;
    for (const char* c : choices) {
        if (std::strcmp(c, text) == 0) { *out = i; return true; }
        ++i;
    }
    return false;
}

// The node's parsed params live in the manager that initialize() creates; a server that calls execute()
// without initialize() (manager == nullptr) gets them parsed per call. Config must have
// `static bool parse(const CustomNodeParam*, int, Config*)`.
template <typename Config>
int initialize_config(void** manager, const CustomNodeParam* params, int count) {
    if (manager == nullptr) return kBadArguments;
    Config* config = new (std::nothrow) Config();
    if (config == nullptr) return kNoMemory;
    if (!Config::parse(params, count, config)) {
        delete config;
        *manager = nullptr;
        return kBadParams;
    }
    *manager = config;
    return kOk;
}

template <typename Config>
bool resolve_config(void* manager, const CustomNodeParam* params, int count, Config* out) {
    if (manager != nullptr) { *out = *static_cast<const Config*>(manager); return true; }
    return Config::parse(params, count, out);
}

// ---- inputs ------------------------------------------------------------------------------------------
inline const CustomNodeTensor* find_input(const CustomNodeTensor* inputs, int count, const char* name) {
    if (inputs == nullptr) return nullptr;
    for (int i = 0; i < count; ++i)
        if (inputs[i].name != nullptr && std::strcmp(inputs[i].name, name) == 0) return &inputs[i];
    return nullptr;
}

// The named input exists, has this precision and rank, non-null buffers and dataBytes == prod(dims) * size.
inline int check_input(const CustomNodeTensor* inputs, int count, const char* name, CustomNodeTensorPrecision precision,
                       uint64_t rank, const CustomNodeTensor** out) {
    const CustomNodeTensor* t = find_input(inputs, count, name);
    if (t == nullptr) return kMissingInput;
    if (t->precision != precision) return kWrongPrecision;
    if (t->dims == nullptr) return kBadBuffer;
    if (t->dimsCount != rank) return kWrongShape;
    uint64_t elements = 1;
    for (uint64_t i = 0; i < rank; ++i) {
        if (t->dims[i] != 0 && elements > std::numeric_limits<uint64_t>::max() / t->dims[i]) return kBadBuffer;
        elements *= t->dims[i];
    }
    if (elements > std::numeric_limits<uint64_t>::max() / element_size(precision)) return kBadBuffer;
    if (t->dataBytes != elements * element_size(precision)) return kBadBuffer;
    if (t->data == nullptr && elements != 0) return kBadBuffer;
    *out = t;
    return kOk;
}

// ---- what the node hands to the server ---------------------------------------------------------------
struct TensorSpec {
    const char* name;  // a string literal: the server copies names and never releases them
    CustomNodeTensorPrecision precision;
    std::vector<uint64_t> dims;
};

// getInputsInfo / getOutputsInfo: a malloc'd array, each with malloc'd dims.
inline int make_info(CustomNodeTensorInfo** info, int* count, const std::vector<TensorSpec>& specs) {
    if (info == nullptr || count == nullptr) return kBadArguments;
    auto* array = static_cast<CustomNodeTensorInfo*>(std::calloc(specs.size(), sizeof(CustomNodeTensorInfo)));
    if (array == nullptr) return kNoMemory;
    for (size_t i = 0; i < specs.size(); ++i) {
        const auto& s = specs[i];
        auto* dims = static_cast<uint64_t*>(std::malloc(s.dims.size() * sizeof(uint64_t)));
        if (dims == nullptr) {
            for (size_t j = 0; j < i; ++j) std::free(array[j].dims);
            std::free(array);
            return kNoMemory;
        }
        std::memcpy(dims, s.dims.data(), s.dims.size() * sizeof(uint64_t));
        array[i] = CustomNodeTensorInfo{s.name, dims, s.dims.size(), s.precision};
    }
    *info = array;
    *count = static_cast<int>(specs.size());
    return kOk;
}

// execute() outputs under construction: add() allocates each tensor's dims and data (zeroed; at least one byte,
// so an empty tensor still has a non-null buffer); commit() hands them over. Until commit(), the destructor
// frees everything, so a failing execute() leaves nothing behind.
class Outputs {
public:
    Outputs() = default;
    Outputs(const Outputs&) = delete;
    Outputs& operator=(const Outputs&) = delete;
    ~Outputs() {
        for (auto& t : tensors_) { std::free(t.data); std::free(t.dims); }
    }

    // nullptr when out of memory (or the size overflows).
    uint8_t* add(const char* name, CustomNodeTensorPrecision precision, const std::vector<uint64_t>& dims) {
        uint64_t elements = 1;
        for (uint64_t d : dims) {
            if (d != 0 && elements > (uint64_t{1} << 40) / d) return nullptr;
            elements *= d;
        }
        const uint64_t bytes = elements * element_size(precision);
        auto* shape = static_cast<uint64_t*>(std::malloc(dims.size() * sizeof(uint64_t)));
        auto* data = static_cast<uint8_t*>(std::calloc(bytes == 0 ? 1 : bytes, 1));
        if (shape == nullptr || data == nullptr) { std::free(shape); std::free(data); return nullptr; }
        std::copy(dims.begin(), dims.end(), shape);
        tensors_.push_back(CustomNodeTensor{name, data, bytes, shape, dims.size(), precision});
        return data;
    }

    int commit(CustomNodeTensor** outputs, int* count) {
        auto* array = static_cast<CustomNodeTensor*>(std::malloc(tensors_.size() * sizeof(CustomNodeTensor)));
        if (array == nullptr) return kNoMemory;
        std::copy(tensors_.begin(), tensors_.end(), array);
        *outputs = array;
        *count = static_cast<int>(tensors_.size());
        tensors_.clear();
        return kOk;
    }

private:
    std::vector<CustomNodeTensor> tensors_;
};

}  // namespace ovfast_nodes

// The six entry points of an example library, from its Config (see initialize_config) and three functions:
//   int run(const CustomNodeTensor* inputs, int count, CustomNodeTensor** outputs, int* outputs_count, const Config&)
//   std::vector<TensorSpec> input_specs(const Config&), output_specs(const Config&)
// Params come from the manager when initialize() made one. No exception crosses the C ABI. Every block the
// library hands out comes from malloc, so release() is free().
#define OVFAST_NODE_DEFINE_ABI(Config, run, input_specs, output_specs)                                           \
    namespace {                                                                                                  \
    template <typename Specs>                                                                                    \
    int ovfast_node_info(CustomNodeTensorInfo** info, int* count, const CustomNodeParam* params, int params_count, \
                         void* manager, Specs specs) {                                                           \
        Config config;                                                                                           \
        if (!ovfast_nodes::resolve_config(manager, params, params_count, &config)) return ovfast_nodes::kBadParams; \
        try {                                                                                                    \
            return ovfast_nodes::make_info(info, count, specs(config));                                          \
        } catch (const std::bad_alloc&) {                                                                        \
            return ovfast_nodes::kNoMemory;                                                                      \
        }                                                                                                        \
    }                                                                                                            \
    }                                                                                                            \
    extern "C" {                                                                                                 \
    int initialize(void** manager, const CustomNodeParam* params, int params_count) {                            \
        return ovfast_nodes::initialize_config<Config>(manager, params, params_count);                           \
    }                                                                                                            \
    int deinitialize(void* manager) {                                                                            \
        delete static_cast<Config*>(manager);                                                                    \
        return 0;                                                                                                \
    }                                                                                                            \
    int execute(const CustomNodeTensor* inputs, int inputs_count, CustomNodeTensor** outputs, int* outputs_count, \
                const CustomNodeParam* params, int params_count, void* manager) {                                \
        if (outputs == nullptr || outputs_count == nullptr) return ovfast_nodes::kBadArguments;                  \
        Config config;                                                                                           \
        if (!ovfast_nodes::resolve_config(manager, params, params_count, &config)) return ovfast_nodes::kBadParams; \
        try {                                                                                                    \
            return run(inputs, inputs_count, outputs, outputs_count, config);                                    \
        } catch (const std::bad_alloc&) {                                                                        \
            return ovfast_nodes::kNoMemory;                                                                      \
        }                                                                                                        \
    }                                                                                                            \
    int getInputsInfo(CustomNodeTensorInfo** info, int* count, const CustomNodeParam* params, int params_count,  \
                      void* manager) {                                                                           \
        return ovfast_node_info(info, count, params, params_count, manager, input_specs);                        \
    }                                                                                                            \
    int getOutputsInfo(CustomNodeTensorInfo** info, int* count, const CustomNodeParam* params, int params_count, \
                       void* manager) {                                                                          \
        return ovfast_node_info(info, count, params, params_count, manager, output_specs);                       \
    }                                                                                                            \
    int release(void* ptr, void* /*manager*/) {                                                                  \
        std::free(ptr);                                                                                          \
        return 0;                                                                                                \
    }                                                                                                            \
    }
