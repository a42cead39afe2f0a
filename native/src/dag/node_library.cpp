#include "ovfast/dag/node_library.hpp"

#include <dlfcn.h>

#include <limits>

#include "ovfast/dag/custom_node_interface.h"

namespace ovfast {

struct NodeLibraryApi {
  decltype(&::initialize) initialize = nullptr;
  decltype(&::deinitialize) deinitialize = nullptr;
  decltype(&::execute) execute = nullptr;
  decltype(&::getInputsInfo) inputs_info = nullptr;
  decltype(&::getOutputsInfo) outputs_info = nullptr;
  decltype(&::release) release = nullptr;
};

namespace {

static_assert(sizeof(CustomNodeParam) == 2 * sizeof(const char*), "CustomNodeParam is two pointers");

constexpr std::pair<CustomNodeTensorPrecision, DataType> kPrecisions[] = {
    {FP32, DataType::FP32}, {FP16, DataType::FP16}, {U8, DataType::UINT8},  {I8, DataType::INT8},
    {I16, DataType::INT16}, {U16, DataType::UINT16}, {I32, DataType::INT32}, {FP64, DataType::FP64},
    {I64, DataType::INT64}};

const CustomNodeParam* param_array(const std::vector<const char*>& flat) {
  // NOTE: key/value pointer pairs laid out as CustomNodeParam (static_assert above).
  return flat.empty() ? nullptr : reinterpret_cast<const CustomNodeParam*>(flat.data());
}

Status corrupted(const std::string& what) {
  return {StatusCode::FAILED_PRECONDITION, "Custom node failed on metadata call - corrupted " + what};
}

// Copies and releases an info array the library returned (getInputsInfo / getOutputsInfo).
Status take_info(const NodeLibraryApi& api, void* manager, CustomNodeTensorInfo* info, int count,
                 std::vector<NodeTensorInfo>* out) {
  if (info == nullptr) return corrupted("tensor info (null)");
  Status st;
  if (count <= 0) st = corrupted("tensor info count " + std::to_string(count));
  for (int i = 0; st.is_ok() && i < count; ++i) {
    const CustomNodeTensorInfo& t = info[i];
    NodeTensorInfo n;
    n.dtype = node_precision_to_dtype(t.precision);
    if (t.name == nullptr) st = corrupted("tensor info: an entry without a name");
    else if (n.dtype == DataType::INVALID) st = corrupted(std::string("tensor info: invalid precision of ") + t.name);
    else if (t.dimsCount > 0 && t.dims == nullptr) st = corrupted(std::string("tensor info: null dims of ") + t.name);
    if (!st.is_ok()) break;
    n.name = t.name;
    for (uint64_t d = 0; d < t.dimsCount; ++d)
      n.dims.push_back(t.dims[d] == 0 || t.dims[d] > uint64_t(std::numeric_limits<int64_t>::max())
                           ? -1 : static_cast<int64_t>(t.dims[d]));
    out->push_back(std::move(n));
  }
  for (int i = 0; i < count; ++i)
    if (info[i].dims) api.release(info[i].dims, manager);
  api.release(info, manager);
  return st;
}

// An output against what the library declared for it (getOutputsInfo; -1 dims are any size).
Status check_declared(const std::vector<NodeTensorInfo>& declared, const char* name, DataType dt,
                      const ov::Shape& shape) {
  for (const NodeTensorInfo& want : declared) {
    if (want.name != name) continue;
    if (want.dtype != dt)
      return internal_error(std::string("Custom node has produced tensor with not matching precision - output: ") +
                            name);
    bool same = want.dims.size() == shape.size();
    for (size_t d = 0; same && d < shape.size(); ++d)
      same = want.dims[d] < 0 || static_cast<size_t>(want.dims[d]) == shape[d];
    if (!same)
      return internal_error(std::string("Custom node has produced tensor with not matching shape - output: ") + name +
                            " shape: " + shape.to_string());
  }
  return Status::ok();
}

}  // namespace

DataType node_precision_to_dtype(int precision) {
  for (const auto& [p, dt] : kPrecisions)
    if (p == precision) return dt;
  return DataType::INVALID;
}

int dtype_to_node_precision(DataType dt) {
  for (const auto& [p, d] : kPrecisions)
    if (d == dt) return p;
  return UNSPECIFIED;
}

Status NodeLibrary::load(const std::string& path, std::shared_ptr<NodeLibrary>* out) {
  std::shared_ptr<NodeLibrary> lib(new NodeLibrary());
  lib->path_ = path;
  lib->handle_ = dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (!lib->handle_) {
    const char* err = dlerror();
    return {StatusCode::FAILED_PRECONDITION,
            "Custom node library failed to open - " + path + ": " + (err ? err : "dlopen failed")};
  }
  lib->api_ = std::make_unique<NodeLibraryApi>();
  NodeLibraryApi& a = *lib->api_;
  auto sym = [&](const char* name, auto* fn) -> Status {
    void* p = dlsym(lib->handle_, name);
    if (!p) return {StatusCode::FAILED_PRECONDITION, "Custom node library failed to load symbol - " + std::string(name) +
                                                     " in " + path};
    *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(p);
    return Status::ok();
  };
  OVF_RETURN_IF_ERROR(sym("initialize", &a.initialize));
  OVF_RETURN_IF_ERROR(sym("deinitialize", &a.deinitialize));
  OVF_RETURN_IF_ERROR(sym("execute", &a.execute));
  OVF_RETURN_IF_ERROR(sym("getInputsInfo", &a.inputs_info));
  OVF_RETURN_IF_ERROR(sym("getOutputsInfo", &a.outputs_info));
  OVF_RETURN_IF_ERROR(sym("release", &a.release));
  *out = std::move(lib);
  return Status::ok();
}

NodeLibrary::~NodeLibrary() {
  if (handle_) dlclose(handle_);
}

Status CustomNode::create(std::shared_ptr<NodeLibrary> library, std::map<std::string, std::string> params,
                          std::shared_ptr<CustomNode>* out) {
  std::shared_ptr<CustomNode> node(new CustomNode());
  node->library_ = std::move(library);
  node->params_map_ = std::move(params);
  for (const auto& [k, v] : node->params_map_) {
    node->params_.push_back(k.c_str());
    node->params_.push_back(v.c_str());
  }
  const NodeLibraryApi& api = node->library_->api();
  const int nparams = static_cast<int>(node->params_map_.size());
  const CustomNodeParam* p = param_array(node->params_);
  if (api.initialize(&node->manager_, p, nparams) != 0)
    return {StatusCode::FAILED_PRECONDITION,
            "Failure during custom node library initialization - " + node->library_->path()};
  node->initialized_ = true;
  CustomNodeTensorInfo* info = nullptr;
  int count = 0;
  if (api.inputs_info(&info, &count, p, nparams, node->manager_) != 0)
    return {StatusCode::FAILED_PRECONDITION, "Custom node failed on metadata call - getInputsInfo"};
  OVF_RETURN_IF_ERROR(take_info(api, node->manager_, info, count, &node->inputs_));
  info = nullptr;
  count = 0;
  if (api.outputs_info(&info, &count, p, nparams, node->manager_) != 0)
    return {StatusCode::FAILED_PRECONDITION, "Custom node failed on metadata call - getOutputsInfo"};
  OVF_RETURN_IF_ERROR(take_info(api, node->manager_, info, count, &node->outputs_));
  *out = std::move(node);
  return Status::ok();
}

CustomNode::~CustomNode() {
  if (initialized_) library_->api().deinitialize(manager_);
}

Status CustomNode::execute(const std::vector<std::pair<std::string, ov::Tensor>>& inputs,
                           std::map<std::string, NodeTensor>* out) const {
  const NodeLibraryApi& api = library_->api();
  std::vector<CustomNodeTensor> in(inputs.size());
  std::vector<std::vector<uint64_t>> dims(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ov::Tensor& t = inputs[i].second;
    const DataType dt = datatype_from_element(t.get_element_type());
    const int precision = dtype_to_node_precision(dt);
    if (precision == UNSPECIFIED)
      return invalid_argument("Custom node input " + inputs[i].first + " has a precision the custom node API lacks: " +
                              t.get_element_type().get_type_name());
    for (size_t d : t.get_shape()) dims[i].push_back(d);
    in[i].name = inputs[i].first.c_str();
    // NOTE: the API takes non-const data; libraries are bound not to write inputs (OVMS contract).
    in[i].data = static_cast<uint8_t*>(const_cast<void*>(static_cast<const void*>(t.data())));
    in[i].dataBytes = t.get_byte_size();
    in[i].dims = dims[i].data();
    in[i].dimsCount = dims[i].size();
    in[i].precision = static_cast<CustomNodeTensorPrecision>(precision);
  }
  CustomNodeTensor* outs = nullptr;
  int count = 0;
  const int nparams = static_cast<int>(params_map_.size());
  if (api.execute(in.data(), static_cast<int>(in.size()), &outs, &count, param_array(params_), nparams, manager_) != 0)
    return internal_error("Custom node failed during execution");
  if (outs == nullptr) return internal_error("Custom node library has returned corrupted outputs handle");
  void* manager = manager_;
  std::shared_ptr<const CustomNode> self = shared_from_this();
  Status st;
  if (count <= 0)
    st = internal_error("Custom node library has produced corrupted number of outputs - " + std::to_string(count));
  for (int i = 0; i < count; ++i) {
    CustomNodeTensor& o = outs[i];
    // Whatever happens below, the data is released exactly once: by its owner, or here.
    std::shared_ptr<void> owner;
    if (o.data) owner = std::shared_ptr<void>(o.data, [self, manager](void* p) { self->library_->api().release(p, manager); });
    const DataType dt = node_precision_to_dtype(o.precision);
    if (st.is_ok() && o.name == nullptr) st = internal_error("Custom node output is missing name");
    if (st.is_ok() && dt == DataType::INVALID)
      st = internal_error(std::string("Custom node has produced tensor with unspecified precision - output: ") + o.name);
    ov::Shape shape;
    size_t bytes = datatype_size(dt);
    if (st.is_ok() && o.dimsCount > 0 && o.dims == nullptr)
      st = internal_error(std::string("Custom node has produced tensor with not matching shape - null dims; output: ") +
                          o.name);
    for (uint64_t d = 0; st.is_ok() && d < o.dimsCount; ++d) {
      shape.push_back(static_cast<size_t>(o.dims[d]));
      if (o.dims[d] != 0 && bytes > (uint64_t{1} << 40) / o.dims[d]) st = internal_error("Custom node output too large");
      bytes *= static_cast<size_t>(o.dims[d]);
    }
    if (st.is_ok() && ((o.data == nullptr && bytes > 0) || o.dataBytes != bytes))
      st = internal_error("Custom node output has invalid content size - Expected: " + std::to_string(bytes) +
                          " bytes; Actual: " + std::to_string(o.dataBytes) + (o.data ? " bytes" : " bytes (null data)") +
                          "; output: " + o.name);
    if (st.is_ok()) st = check_declared(outputs_, o.name, dt, shape);
    if (st.is_ok()) {
      ov::Tensor t(datatype_info(dt).element, shape, o.data);
      (*out)[o.name] = NodeTensor{t, std::move(owner)};
    }
    if (o.dims) api.release(o.dims, manager_);
  }
  api.release(outs, manager_);
  for (const NodeTensorInfo& want : outputs_) {
    if (!st.is_ok()) break;
    if (!out->count(want.name)) st = internal_error("Custom node output is missing - " + want.name);
  }
  if (!st.is_ok()) out->clear();
  return st;
}

}  // namespace ovfast
