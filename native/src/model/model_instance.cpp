#include "ovfast/model/model_instance.hpp"

#include <openvino/pass/low_latency.hpp>
#include <openvino/pass/manager.hpp>

#include <algorithm>
#include <limits>
#include <set>

#include "ovfast/codec/image.hpp"
#include "ovfast/model/preprocess.hpp"

namespace ovfast {
namespace {

std::string port_name(const ov::Output<const ov::Node>& port, size_t index, const char* kind) {
  if (!port.get_names().empty()) return port.get_any_name();
  return std::string(kind) + "_" + std::to_string(index);
}

// The name a configured key refers to once mapping_config.json renamed the tensors.
std::string served_name(const std::map<std::string, std::string>& mapping, const std::string& name) {
  auto it = mapping.find(name);
  return it == mapping.end() ? name : it->second;
}

// mapping_config.json: every API sees the mapped names, so the tensors carry them. Every
// `from` must name a tensor of the model; the names afterwards must be distinct.
Status rename_tensors(ov::Model& model, const std::map<std::string, std::string>& names, bool inputs) {
  if (names.empty()) return Status::ok();
  const char* kind = inputs ? "input" : "output";
  std::vector<ov::Output<ov::Node>> ports = inputs ? model.inputs() : model.outputs();
  // NOTE: find every port first, then rename, so that a swap (a -> b, b -> a) renames the right ports.
  std::vector<std::pair<ov::Output<ov::Node>, std::string>> todo;
  for (const auto& [from, to] : names) {
    auto it = std::find_if(ports.begin(), ports.end(), [&](const auto& p) { return p.get_names().count(from) > 0; });
    if (it == ports.end())
      return invalid_argument(std::string("mapping_config.json maps ") + kind + " '" + from +
                              "' which the model does not have");
    todo.emplace_back(*it, to);
  }
  for (auto& [port, to] : todo) port.get_tensor().set_names({to});
  std::set<std::string> seen;
  for (const auto& p : ports)
    if (!p.get_names().empty() && !seen.insert(p.get_any_name()).second)
      return invalid_argument(std::string("mapping_config.json gives two ") + kind + "s the name '" +
                              p.get_any_name() + "'");
  return Status::ok();
}

Status reshape(ov::Model& model, const ModelOptions& opts) {
  std::map<ov::Output<ov::Node>, ov::PartialShape> new_shapes;
  if (!opts.shapes.empty()) {  // an explicit shape wins over batch_size (as in OVMS)
    for (const auto& [key, spec] : opts.shapes) {
      const ov::PartialShape ps = to_partial_shape(spec);
      if (key.empty()) {
        if (model.inputs().size() != 1)
          return invalid_argument("An anonymous shape is only allowed for models with one input");
        new_shapes[model.input()] = ps;
        continue;
      }
      const std::string name = served_name(opts.input_names, key);
      bool found = false;
      for (auto& in : model.inputs())
        if (in.get_names().count(name)) { new_shapes[in] = ps; found = true; }
      if (!found) return invalid_argument("Shape given for input '" + key + "' which the model does not have");
    }
  } else if (opts.batch_size) {
    const ov::Dimension b = to_dimension(*opts.batch_size);
    for (auto& in : model.inputs()) {
      ov::PartialShape ps = in.get_partial_shape();
      if (ps.rank().is_static() && ps.size() > 0) {
        ps[0] = b;
        new_shapes[in] = ps;
      }
    }
  }
  if (!new_shapes.empty()) model.reshape(new_shapes);
  return Status::ok();
}

}  // namespace

Status ModelInstance::create(ov::Core& core, const ModelOptions& opts, std::unique_ptr<ModelInstance>* out) {
  std::unique_ptr<ModelInstance> m(new ModelInstance());
  m->opts_ = opts;
  try {
    OVF_RETURN_IF_ERROR(m->build(core));
  } catch (const std::exception& e) {
    return {StatusCode::FAILED_PRECONDITION, std::string("Cannot load model: ") + e.what()};
  }
  *out = std::move(m);
  return Status::ok();
}

Status ModelInstance::build(ov::Core& core) {
  const ModelOptions& o = opts_;
  ColorOrder order;
  if (!parse_color_order(o.color_format, &order))
    return invalid_argument("Invalid color_format '" + o.color_format + "': expected BGR or RGB");
  color_order_ = static_cast<int>(order);
  // NOTE: with nothing to change in the model, compile straight from the file: with CACHE_DIR
  // set, OpenVINO then finds the cached blob by file and skips reading and hashing the model.
  const bool from_file = o.shapes.empty() && !o.batch_size && !o.echo && o.layouts.empty() && o.mean.empty() &&
                         o.scale.empty() && o.input_names.empty() && o.output_names.empty() &&
                         !o.low_latency_transformation && !o.stateful;
  std::shared_ptr<ov::Model> model;
  if (!from_file) {
    model = core.read_model(o.model_path);
    if (o.low_latency_transformation) {
      // OVMS: LowLatency2 at load turns TensorIterator/Loop recurrences into state variables.
      ov::pass::Manager passes;
      passes.register_pass<ov::pass::LowLatency2>();
      passes.run_passes(model);
    }
    OVF_RETURN_IF_ERROR(rename_tensors(*model, o.input_names, true));
    OVF_RETURN_IF_ERROR(rename_tensors(*model, o.output_names, false));
    OVF_RETURN_IF_ERROR(reshape(*model, o));
    std::map<std::string, std::string> layouts;
    for (const auto& [key, layout] : o.layouts) {
      std::string name = served_name(o.input_names, key);
      if (name == key) name = served_name(o.output_names, key);
      layouts[name] = layout;
    }
    OVF_RETURN_IF_ERROR(apply_preprocessing(model, layouts, o.mean, o.scale));
  }
  std::vector<ov::Output<const ov::Node>> ins, outs;
  if (o.echo) {
    std::shared_ptr<const ov::Model> cmodel = model;
    ins = cmodel->inputs();
    outs = cmodel->outputs();
  } else {
    ov::AnyMap plugin;
    for (const auto& [k, v] : o.plugin_config) plugin[k] = v;
    // NOTE: on the CPU, OpenVINO pins its stream threads by default, and a
    // synchronous infer() (an inline run, sched/pool_scheduler.cpp) pins and
    // unpins the calling gRPC thread around every run: two sched_setaffinity
    // calls and a migration per request. The server's own threads share the
    // cores with the streams, so it does not pin unless plugin_config asks.
    if (o.device == "CPU" && plugin.count(ov::hint::enable_cpu_pinning.name()) == 0)
      plugin[ov::hint::enable_cpu_pinning.name()] = false;
    compiled_ = from_file ? core.compile_model(o.model_path, o.device, plugin)
                          : core.compile_model(model, o.device, plugin);
    ins = compiled_.inputs();
    outs = compiled_.outputs();
  }
  // NOTE: a stateful model serves the names of the model as read: compiling may add the names of
  // fused nodes to a port (Silero VAD's inlined If does), and the first of those would win.
  std::shared_ptr<const ov::Model> named = o.stateful ? model : nullptr;
  for (size_t i = 0; i < ins.size(); ++i) {
    inputs_.push_back({port_name(named ? named->input(i) : ins[i], i, "input"), datatype_from_element(ins[i].get_element_type()),
                       ins[i].get_partial_shape()});
    image_nhwc_ok_.push_back(accepts_nhwc_images(ins[i]));
  }
  for (size_t i = 0; i < outs.size(); ++i)
    outputs_.push_back({port_name(named ? named->output(i) : outs[i], i, "output"), datatype_from_element(outs[i].get_element_type()),
                        outs[i].get_partial_shape()});
  for (const auto& t : inputs_)
    if (t.dtype == DataType::INVALID)
      return {StatusCode::UNSUPPORTED, "Input '" + t.name + "' has an element type no API can carry"};
  if (o.echo) return Status::ok();
  pool_size_ = o.nireq;
  if (pool_size_ <= 0) {
    try {
      pool_size_ = static_cast<int>(compiled_.get_property(ov::optimal_number_of_infer_requests));
    } catch (...) {
      pool_size_ = 1;
    }
  }
  if (pool_size_ <= 0) pool_size_ = 1;
  try {
    streams_ = compiled_.get_property(ov::num_streams).num;
  } catch (...) {
    streams_ = 1;
  }
  if (o.batching.enabled()) OVF_RETURN_IF_ERROR(check_batchable());
  return Status::ok();
}

Status ModelInstance::check_batchable() const {
  const BatchingOptions& b = opts_.batching;
  for (int p : b.preferred_batch_sizes)
    if (p < 1 || p > b.max_batch_size)
      return invalid_argument("preferred_batch_sizes: " + std::to_string(p) + " is not in 1.." +
                              std::to_string(b.max_batch_size) + " (max_batch_size)");
  const std::string fix =
      "; let it vary at load (batch_size \"1:" + std::to_string(b.max_batch_size) +
      "\" or -1, or a shape whose first dimension is a range or -1)";
  for (const TensorInfo& t : inputs_) {
    const ov::PartialShape& ps = t.shape;
    if (ps.rank().is_dynamic() || ps.size() == 0)
      return {StatusCode::FAILED_PRECONDITION, "dynamic_batching needs a batch dimension: input '" + t.name +
                                                   "' has shape " + partial_shape_to_string(ps)};
    const ov::Dimension& d = ps[0];
    if (d.is_static())
      return {StatusCode::FAILED_PRECONDITION,
              "dynamic_batching needs a model whose batch dimension can vary: input '" + t.name + "' has shape " +
                  partial_shape_to_string(ps) + fix};
    if (d.get_max_length() != -1 && d.get_max_length() < b.max_batch_size)
      return {StatusCode::FAILED_PRECONDITION,
              "dynamic_batching needs the batch dimension to hold max_batch_size " +
                  std::to_string(b.max_batch_size) + " rows: input '" + t.name + "' has shape " +
                  partial_shape_to_string(ps) + fix};
  }
  for (const TensorInfo& t : outputs_) {
    const ov::PartialShape& ps = t.shape;
    if (ps.rank().is_static() && (ps.size() == 0 || ps[0].is_static()))
      return {StatusCode::FAILED_PRECONDITION,
              "dynamic_batching needs every output to carry the batch dimension first: output '" + t.name +
                  "' has shape " + partial_shape_to_string(ps)};
  }
  return Status::ok();
}

const TensorInfo* ModelInstance::find_input(const std::string& name, size_t* index) const {
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (inputs_[i].name == name) {
      *index = i;
      return &inputs_[i];
    }
  return nullptr;
}

int ModelInstance::output_index(const std::string& name) const {
  for (size_t i = 0; i < outputs_.size(); ++i)
    if (outputs_[i].name == name) return static_cast<int>(i);
  return -1;
}

bool ModelInstance::image_input(const std::string& name, int* order) const {
  size_t i;
  *order = color_order_;
  return find_input(name, &i) && image_nhwc_ok_[i];
}

bool ModelInstance::needs_decode(const InferJob& job) const {
  for (const InputTensor& in : job.inputs) {
    if (in.dtype != DataType::BYTES) continue;
    size_t i;
    const TensorInfo* info = find_input(in.name, &i);
    if (info && info->dtype != DataType::BYTES && info->shape.rank().is_static() && info->shape.size() == 4)
      return true;
  }
  return false;
}

Status ModelInstance::decode_images(InferJob& job) const {
  for (InputTensor& in : job.inputs) {
    if (in.dtype != DataType::BYTES) continue;
    size_t i;
    const TensorInfo* info = find_input(in.name, &i);
    if (!info || info->dtype == DataType::BYTES || info->shape.rank().is_dynamic() || info->shape.size() != 4)
      continue;
    // The decoded batch replaces the input; validate() then sees an ordinary tensor.
    OVF_RETURN_IF_ERROR(decode_image_input(in, info->shape, info->dtype, image_nhwc_ok_[i],
                                           static_cast<ColorOrder>(color_order_), info->name));
  }
  return Status::ok();
}

}  // namespace ovfast
