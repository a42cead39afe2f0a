// Loading ovfast's example custom-node libraries with dlopen and calling them only through the C ABI, as the
// DAG executor does. OVFAST_CUSTOM_NODE_DIR (set by CMake) is the directory the libraries are built in.
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ovfast/dag/custom_node_interface.h"

namespace ovfast::test {

using InitializeFn = int (*)(void**, const CustomNodeParam*, int);
using DeinitializeFn = int (*)(void*);
using ExecuteFn = int (*)(const CustomNodeTensor*, int, CustomNodeTensor**, int*, const CustomNodeParam*, int, void*);
using InfoFn = int (*)(CustomNodeTensorInfo**, int*, const CustomNodeParam*, int, void*);
using ReleaseFn = int (*)(void*, void*);

inline std::string node_library_path(const std::string& name) {
    return std::string(OVFAST_CUSTOM_NODE_DIR) + "/libovfast_" + name + ".so";
}

// One dlopen'ed library with its six symbols.
class NodeLibrary {
public:
    explicit NodeLibrary(const std::string& name) {
        handle_ = dlopen(node_library_path(name).c_str(), RTLD_LAZY | RTLD_LOCAL);
        if (handle_ == nullptr) return;
        initialize = reinterpret_cast<InitializeFn>(dlsym(handle_, "initialize"));
        deinitialize = reinterpret_cast<DeinitializeFn>(dlsym(handle_, "deinitialize"));
        execute = reinterpret_cast<ExecuteFn>(dlsym(handle_, "execute"));
        getInputsInfo = reinterpret_cast<InfoFn>(dlsym(handle_, "getInputsInfo"));
        getOutputsInfo = reinterpret_cast<InfoFn>(dlsym(handle_, "getOutputsInfo"));
        release = reinterpret_cast<ReleaseFn>(dlsym(handle_, "release"));
    }
    ~NodeLibrary() {
        if (handle_ != nullptr) dlclose(handle_);
    }
    NodeLibrary(const NodeLibrary&) = delete;
    NodeLibrary& operator=(const NodeLibrary&) = delete;

    bool complete() const {
        return handle_ != nullptr && initialize && deinitialize && execute && getInputsInfo && getOutputsInfo &&
               release;
    }

    InitializeFn initialize = nullptr;
    DeinitializeFn deinitialize = nullptr;
    ExecuteFn execute = nullptr;
    InfoFn getInputsInfo = nullptr;
    InfoFn getOutputsInfo = nullptr;
    ReleaseFn release = nullptr;

private:
    void* handle_ = nullptr;
};

// A tensor built by the test (the server side owns inputs).
struct InputTensor {
    std::string name;
    std::vector<uint8_t> bytes;
    std::vector<uint64_t> dims;
    CustomNodeTensorPrecision precision;

    template <typename T>
    static InputTensor of(std::string name, const std::vector<T>& values, std::vector<uint64_t> dims,
                          CustomNodeTensorPrecision precision) {
        InputTensor t{std::move(name), std::vector<uint8_t>(values.size() * sizeof(T)), std::move(dims), precision};
        if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
        return t;
    }

    CustomNodeTensor view() {
        return CustomNodeTensor{name.c_str(), bytes.data(), bytes.size(), dims.data(), dims.size(), precision};
    }
};

inline std::vector<CustomNodeTensor> views(std::vector<InputTensor>& inputs) {
    std::vector<CustomNodeTensor> out;
    for (auto& t : inputs) out.push_back(t.view());
    return out;
}

// The outputs of one successful execute(), copied out, everything released through the library's release().
struct OutputTensor {
    std::vector<uint64_t> dims;
    CustomNodeTensorPrecision precision;
    std::vector<uint8_t> bytes;

    template <typename T>
    std::vector<T> values() const {
        std::vector<T> out(bytes.size() / sizeof(T));
        if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
        return out;
    }
};

struct NodeRun {
    int rc = -1;
    std::vector<std::pair<std::string, OutputTensor>> outputs;

    const OutputTensor& operator[](const std::string& name) const {
        for (const auto& [n, t] : outputs)
            if (n == name) return t;
        throw std::out_of_range(name);
    }
};

inline NodeRun execute(const NodeLibrary& lib, std::vector<InputTensor> inputs, std::vector<CustomNodeParam> params = {},
                   void* manager = nullptr) {
    std::vector<CustomNodeTensor> in = views(inputs);
    CustomNodeTensor* out = nullptr;
    int count = 0;
    NodeRun run;
    run.rc = lib.execute(in.data(), static_cast<int>(in.size()), &out, &count, params.data(),
                         static_cast<int>(params.size()), manager);
    if (run.rc != 0) return run;
    for (int i = 0; i < count; ++i) {
        const CustomNodeTensor& t = out[i];
        OutputTensor copy{std::vector<uint64_t>(t.dims, t.dims + t.dimsCount), t.precision,
                          std::vector<uint8_t>(t.data, t.data + t.dataBytes)};
        EXPECT_NE(t.data, nullptr);
        run.outputs.emplace_back(t.name, std::move(copy));
        lib.release(t.dims, manager);
        lib.release(t.data, manager);
    }
    lib.release(out, manager);
    return run;
}

struct Info {
    std::string name;
    std::vector<uint64_t> dims;
    CustomNodeTensorPrecision precision;
    bool operator==(const Info& o) const { return name == o.name && dims == o.dims && precision == o.precision; }
};

inline std::ostream& operator<<(std::ostream& os, const Info& info) {
    os << info.name << " p" << info.precision << " [";
    for (uint64_t d : info.dims) os << d << ",";
    return os << "]";
}

// Calls getInputsInfo or getOutputsInfo; copies, then releases each dims and the array as the server does.
inline std::vector<Info> query_info(const NodeLibrary& lib, InfoFn fn, std::vector<CustomNodeParam> params = {},
                                    int* rc_out = nullptr) {
    CustomNodeTensorInfo* info = nullptr;
    int count = 0;
    const int rc = fn(&info, &count, params.data(), static_cast<int>(params.size()), nullptr);
    if (rc_out != nullptr) *rc_out = rc;
    std::vector<Info> out;
    if (rc != 0) return out;
    for (int i = 0; i < count; ++i) {
        out.push_back(Info{info[i].name, std::vector<uint64_t>(info[i].dims, info[i].dims + info[i].dimsCount),
                           info[i].precision});
        lib.release(info[i].dims, nullptr);
    }
    lib.release(info, nullptr);
    return out;
}

}  // namespace ovfast::test
