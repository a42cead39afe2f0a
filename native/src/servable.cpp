#include "ovfast/servable.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <set>

#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "ovfast/image_decode.hpp"
#include "ovfast/kserve_codec.hpp"
#include "ovfast/preprocess.hpp"
#include "ovfast/tfs_codec.hpp"

namespace ovfast {

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

namespace {

// Microseconds since `since_ns`; 0 if the stamp is in the future (a caller's clock that is not ours).
uint64_t elapsed_us(uint64_t since_ns) {
  uint64_t now = now_ns();
  return now > since_ns ? (now - since_ns) / 1000 : 0;
}

std::string partial_shape_to_string(const ov::PartialShape& ps) {
  if (ps.rank().is_dynamic()) return "(...)";
  std::string out = "(";
  for (size_t i = 0; i < ps.size(); ++i) {
    if (i) out += ",";
    const ov::Dimension& d = ps[i];
    if (d.is_static()) {
      out += std::to_string(d.get_length());
    } else if (d.get_min_length() > 0 || d.get_max_length() != -1) {
      out += std::to_string(d.get_min_length()) + ":" +
             (d.get_max_length() == -1 ? std::string("-1") : std::to_string(d.get_max_length()));
    } else {
      out += "-1";
    }
  }
  return out + ")";
}

// Parses one dimension: "N", "-1", "?" or "min:max".
bool parse_dim(const std::string& s, ov::Dimension* out) {
  try {
    auto colon = s.find(':');
    if (colon != std::string::npos) {
      int64_t lo = std::stoll(s.substr(0, colon));
      int64_t hi = std::stoll(s.substr(colon + 1));
      if (lo < 0 || (hi != -1 && hi < lo)) return false;
      *out = ov::Dimension(lo, hi);
      return true;
    }
    if (s == "?" || s == "-1") { *out = ov::Dimension::dynamic(); return true; }
    size_t used;
    int64_t v = std::stoll(s, &used);
    if (used != s.size() || v < 0) return false;
    *out = ov::Dimension(v);
    return true;
  } catch (...) {
    return false;
  }
}

Status parse_partial_shape(const std::string& text, ov::PartialShape* out) {
  std::string s;
  for (char c : text) if (c != ' ') s += c;
  if (s.size() < 2 || (s.front() != '(' && s.front() != '[') || (s.back() != ')' && s.back() != ']'))
    return invalid_argument("Invalid shape '" + text + "': expected a tuple such as (1,3,224,224)");
  s = s.substr(1, s.size() - 2);
  std::vector<ov::Dimension> dims;
  size_t start = 0;
  while (!s.empty() && start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string tok = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    ov::Dimension d;
    if (!parse_dim(tok, &d)) return invalid_argument("Invalid shape '" + text + "': bad dimension '" + tok + "'");
    dims.push_back(d);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  *out = ov::PartialShape(dims);
  return Status::ok();
}

std::string port_name(const ov::Output<const ov::Node>& port, size_t index, const char* kind) {
  const auto& names = port.get_names();
  if (!names.empty()) return port.get_any_name();
  return std::string(kind) + "_" + std::to_string(index);
}

// Renames the model's input (or output) tensors: from -> to. Every `from` must name a
// tensor of the model; the names afterwards must be distinct.
Status rename_tensors(const std::shared_ptr<ov::Model>& model, const std::map<std::string, std::string>& names,
                      bool inputs) {
  const char* kind = inputs ? "input" : "output";
  std::vector<ov::Output<ov::Node>> ports = inputs ? model->inputs() : model->outputs();
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

bool checked_count(const Shape& shape, size_t* out) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && n > std::numeric_limits<size_t>::max() / static_cast<size_t>(d)) return false;
    n *= static_cast<size_t>(d);
  }
  *out = n;
  return true;
}

ov::Tensor copy_tensor(const ov::Tensor& src) {
  ov::Tensor dst(src.get_element_type(), src.get_shape());
  if (src.get_element_type() == ov::element::string) {
    const std::string* s = src.data<std::string>();
    std::string* d = dst.data<std::string>();
    for (size_t i = 0; i < src.get_size(); ++i) d[i] = s[i];
  } else if (src.get_byte_size()) {
    std::memcpy(dst.data(), src.data(), src.get_byte_size());
  }
  return dst;
}

}  // namespace

Status Servable::create(ov::Core& core, const ServableOptions& opts, std::shared_ptr<CompletionQueue> cq,
                        std::unique_ptr<Servable>* out) {
  std::unique_ptr<Servable> s(new Servable());
  s->opts_ = opts;
  s->cq_ = std::move(cq);
  try {
    // NOTE: with nothing to change in the model, compile straight from the file: with CACHE_DIR
    // set, OpenVINO then finds the cached blob by file and skips reading and hashing the model.
    const bool from_file = opts.shapes.empty() && opts.batch_size.empty() && !opts.echo && opts.layouts.empty() &&
                           opts.mean.empty() && opts.scale.empty() && opts.input_names.empty() &&
                           opts.output_names.empty();
    std::shared_ptr<ov::Model> model = from_file ? nullptr : core.read_model(opts.model_path);
    if (model) {
      OVF_RETURN_IF_ERROR(rename_tensors(model, opts.input_names, true));
      OVF_RETURN_IF_ERROR(rename_tensors(model, opts.output_names, false));
    }
    // Reshape: an explicit shape wins over batch_size (as in OVMS).
    if (from_file) {
      // nothing to reshape
    } else if (!opts.shapes.empty()) {
      std::map<ov::Output<ov::Node>, ov::PartialShape> new_shapes;
      for (const auto& [name, text] : opts.shapes) {
        ov::PartialShape ps;
        OVF_RETURN_IF_ERROR(parse_partial_shape(text, &ps));
        if (name.empty()) {
          if (model->inputs().size() != 1)
            return invalid_argument("An anonymous shape is only allowed for models with one input");
          new_shapes[model->input()] = ps;
        } else {
          bool found = false;
          for (auto& in : model->inputs()) {
            if (in.get_names().count(name)) { new_shapes[in] = ps; found = true; }
          }
          if (!found) return invalid_argument("Shape given for input '" + name + "' which the model does not have");
        }
      }
      model->reshape(new_shapes);
    } else if (!opts.batch_size.empty()) {
      ov::Dimension b;
      if (!parse_dim(opts.batch_size, &b)) return invalid_argument("Invalid batch_size '" + opts.batch_size + "'");
      std::map<ov::Output<ov::Node>, ov::PartialShape> new_shapes;
      for (auto& in : model->inputs()) {
        ov::PartialShape ps = in.get_partial_shape();
        if (ps.rank().is_static() && ps.size() > 0) {
          ps[0] = b;
          new_shapes[in] = ps;
        }
      }
      model->reshape(new_shapes);
    }
    // Image inputs: layout/mean/scale built into the model; which inputs take NHWC images.
    ColorOrder order;
    if (!parse_color_order(opts.color_format, &order))
      return invalid_argument("Invalid color_format '" + opts.color_format + "': expected BGR or RGB");
    s->color_order_ = static_cast<int>(order);
    if (model) OVF_RETURN_IF_ERROR(apply_preprocessing(model, opts.layouts, opts.mean, opts.scale));
    if (!opts.echo) {
      s->compiled_ = from_file ? core.compile_model(opts.model_path, opts.device, opts.plugin_config)
                               : core.compile_model(model, opts.device, opts.plugin_config);
      for (size_t i = 0; i < s->compiled_.inputs().size(); ++i) {
        const auto& p = s->compiled_.inputs()[i];
        s->inputs_.push_back({port_name(p, i, "input"), datatype_from_element(p.get_element_type()), p.get_partial_shape()});
      }
      for (size_t i = 0; i < s->compiled_.outputs().size(); ++i) {
        const auto& p = s->compiled_.outputs()[i];
        s->outputs_.push_back({port_name(p, i, "output"), datatype_from_element(p.get_element_type()), p.get_partial_shape()});
      }
      for (const auto& port : s->compiled_.inputs()) s->image_nhwc_ok_.push_back(accepts_nhwc_images(port));
      int nireq = opts.nireq;
      if (nireq <= 0) {
        try {
          nireq = static_cast<int>(s->compiled_.get_property(ov::optimal_number_of_infer_requests));
        } catch (...) {
          nireq = 1;
        }
      }
      if (nireq <= 0) nireq = 1;
      try {
        s->streams_ = s->compiled_.get_property(ov::num_streams).num;
      } catch (...) {
        s->streams_ = 1;
      }
      for (int i = 0; i < nireq; ++i) {
        auto slot = std::make_unique<Slot>();
        slot->request = s->compiled_.create_infer_request();
        Servable* self = s.get();
        size_t index = static_cast<size_t>(i);
        slot->request.set_callback([self, index](std::exception_ptr err) { self->on_done(index, err); });
        s->slots_.push_back(std::move(slot));
        s->idle_.push_back(index);
      }
    } else {
      std::shared_ptr<const ov::Model> cmodel = model;
      for (const auto& port : cmodel->inputs()) s->image_nhwc_ok_.push_back(accepts_nhwc_images(port));
      for (size_t i = 0; i < model->inputs().size(); ++i) {
        auto p = model->inputs()[i];
        s->inputs_.push_back({p.get_names().empty() ? "input_" + std::to_string(i) : p.get_any_name(),
                              datatype_from_element(p.get_element_type()), p.get_partial_shape()});
      }
      for (size_t i = 0; i < model->outputs().size(); ++i) {
        auto p = model->outputs()[i];
        s->outputs_.push_back({p.get_names().empty() ? "output_" + std::to_string(i) : p.get_any_name(),
                               datatype_from_element(p.get_element_type()), p.get_partial_shape()});
      }
    }
    for (const auto& t : s->inputs_)
      if (t.dtype == DataType::INVALID)
        return {StatusCode::UNSUPPORTED, "Input '" + t.name + "' has an element type no API can carry"};
    if (opts.batching.enabled() && !opts.echo) OVF_RETURN_IF_ERROR(s->check_batchable());
  } catch (const Status& st) {
    return st;
  } catch (const std::exception& e) {
    return {StatusCode::FAILED_PRECONDITION, std::string("Cannot load model: ") + e.what()};
  }
  s->clock_ = opts.clock ? opts.clock : steady_clock();
  if (opts.batching.enabled() && !opts.echo) {
    Servable* self = s.get();
    s->waiter_ = s->clock_->subscribe(&s->mu_, &s->batch_cv_);
    s->batcher_ = std::thread([self] { self->batcher_loop(); });
  }
  *out = std::move(s);
  return Status::ok();
}

Status Servable::check_batchable() const {
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

Servable::~Servable() {
  drain();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    batch_cv_.notify_all();
  }
  if (batcher_.joinable()) batcher_.join();
  if (waiter_) clock_->unsubscribe(waiter_);
}

int Servable::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(pending_.size());
}

void Servable::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  ++flushing_;
  batch_cv_.notify_all();
  cv_.wait(lock, [&] { return pending_.empty() && idle_.size() == slots_.size(); });
  --flushing_;
}

void Servable::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  flush_all_ = true;
  batch_cv_.notify_all();
}

bool Servable::next_launch_locked(uint64_t now, Launch* out, uint64_t* deadline_ns) {
  *deadline_ns = kNever;
  if (pending_.empty() || idle_.empty() || stopping_) return false;
  BatchPlan plan = plan_batch(pending_, opts_.batching, now, flushing_ > 0 || flush_all_);
  if (!plan.dispatch) {
    *deadline_ns = plan.deadline_ns;
    return false;
  }
  out->jobs.clear();
  out->jobs.reserve(plan.take.size());
  for (size_t i : plan.take) out->jobs.push_back(std::move(pending_[i]));
  // take is ascending: erase from the back so earlier indices stay put
  for (size_t k = plan.take.size(); k-- > 0;) pending_.erase(pending_.begin() + static_cast<long>(plan.take[k]));
  out->slot = idle_.back();
  idle_.pop_back();
  return true;
}

void Servable::batcher_loop() {
#ifdef __linux__
  // NOTE: Linux rounds timed waits up by the thread's timer slack (50 µs by default);
  // the queue delay is a budget in microseconds, so this thread asks for none.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    Clock::Reading r = clock_->read();
    Launch launch;
    uint64_t deadline;
    if (next_launch_locked(r.ns, &launch, &deadline)) {
      lock.unlock();
      start(launch.slot, std::move(launch.jobs));
      lock.lock();
      continue;
    }
    clock_->wait_until(lock, *waiter_, deadline, r);
  }
}

Status Servable::validate(InferJob& job) const {
  if (job.inputs.size() != inputs_.size())
    return invalid_argument("Invalid number of inputs - Expected: " + std::to_string(inputs_.size()) +
                            "; Actual: " + std::to_string(job.inputs.size()));
  std::vector<InputTensor> ordered;
  ordered.reserve(inputs_.size());
  for (const TensorInfo& info : inputs_) {
    InputTensor* in = nullptr;
    for (auto& cand : job.inputs)
      if (cand.name == info.name) { in = &cand; break; }
    if (!in) return invalid_argument("Missing input with specific name - Required input: " + info.name);
    const std::string suffix = "; input name: " + info.name;
    const size_t index = ordered.size();
    if (in->dtype == DataType::BYTES && info.dtype != DataType::BYTES && info.shape.rank().is_static() &&
        info.shape.size() == 4) {
      // JPEG/PNG elements for an image input: decoded here (GIL released) into
      // an owned NHWC batch; the checks below then see an ordinary tensor.
      OVF_RETURN_IF_ERROR(decode_image_input(*in, info.shape, info.dtype, image_nhwc_ok_[index],
                                             static_cast<ColorOrder>(color_order_), info.name));
    }
    if (in->dtype != info.dtype)
      return invalid_argument("Invalid input precision - Expected: " +
                              std::string(datatype_info(info.dtype).kserve_name) + "; Actual: " +
                              (in->datatype_name.empty() ? std::string(datatype_info(in->dtype).kserve_name)
                                                         : in->datatype_name) + suffix);
    for (int64_t d : in->shape)
      if (d < 0)
        return invalid_argument("Invalid input shape - negative dimension in " + shape_to_string(in->shape) + suffix);
    const ov::PartialShape& ps = info.shape;
    if (ps.rank().is_static()) {
      if (in->shape.size() != ps.size())
        return invalid_argument("Invalid number of shape dimensions - Expected: " + partial_shape_to_string(ps) +
                                "; Actual: " + shape_to_string(in->shape) + suffix);
      for (size_t d = 0; d < ps.size(); ++d) {
        if (!ps[d].compatible(ov::Dimension(in->shape[d]))) {
          if (d == 0) {
            std::string expected = partial_shape_to_string(ov::PartialShape({ps[0]}));
            return invalid_argument("Invalid input batch size - Expected: " + expected.substr(1, expected.size() - 2) +
                                    "; Actual: " + std::to_string(in->shape[0]) + suffix);
          }
          return invalid_argument("Invalid input shape - Expected: " + partial_shape_to_string(ps) +
                                  "; Actual: " + shape_to_string(in->shape) + suffix);
        }
      }
    }
    size_t count;
    if (!checked_count(in->shape, &count))
      return invalid_argument("Invalid input shape - too many elements in " + shape_to_string(in->shape) + suffix);
    if (in->dtype == DataType::BYTES) {
      if (in->strings.size() != count)
        return invalid_argument("Invalid number of values in tensor proto container - Expected: " +
                                std::to_string(count) + " values; Actual: " + std::to_string(in->strings.size()) +
                                " values" + suffix);
    } else if (in->has_typed_contents) {
      if (in->typed_count != count)
        return invalid_argument("Invalid number of values in tensor proto container - Expected: " +
                                std::to_string(count) + " values; Actual: " + std::to_string(in->typed_count) +
                                " values" + suffix);
    } else {
      size_t elsize = datatype_size(in->dtype);
      if (count > std::numeric_limits<size_t>::max() / elsize || in->size != count * elsize)
        return invalid_argument("Invalid content size of tensor proto - Expected: " +
                                std::to_string(count * elsize) + " bytes; Actual: " + std::to_string(in->size) +
                                " bytes" + suffix);
    }
    ordered.push_back(std::move(*in));
  }
  job.inputs.swap(ordered);
  for (size_t k = 0; k < job.requested_outputs.size(); ++k) {
    const std::string& name = job.requested_outputs[k];
    bool found = false;
    for (const auto& o : outputs_) if (o.name == name) { found = true; break; }
    if (!found) return invalid_argument("Invalid output name - the model has no output named: " + name);
    for (size_t j = 0; j < k; ++j)
      if (job.requested_outputs[j] == name)
        return invalid_argument("Invalid output name - output requested more than once: " + name);
  }
  return Status::ok();
}

Status Servable::submit(std::unique_ptr<InferJob> job) {
  // NOTE: validate() reads only immutable members, so it runs outside the lock.
  // A job without a metrics route does no metrics work at all (metrics disabled).
  const bool counted = job->metrics_route >= 0;
  if (counted && job->received_ns == 0) job->received_ns = now_ns();
  Status valid = validate(*job);
  if (!valid.is_ok()) {
    metrics_.record_request(job->metrics_route, false, 0);
    return valid;
  }
  if (counted) metrics_.current_requests.fetch_add(1, std::memory_order_relaxed);
  if (opts_.echo) {
    complete_echo(std::move(job));
    return Status::ok();
  }
  const bool batching = opts_.batching.enabled();
  const int64_t rows = batching ? job_rows(*job) : 1;
  const uint64_t t0 = clock_->now_ns();
  Launch launch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      if (counted) {
        metrics_.current_requests.fetch_sub(1, std::memory_order_relaxed);
        metrics_.record_request(job->metrics_route, false, 0);
      }
      return {StatusCode::UNAVAILABLE, "Model is being unloaded"};
    }
    if (batching) {
      pending_.push_back({std::move(job), t0, rows});
      uint64_t deadline;
      // A batch that is due starts on this thread; the batcher thread only keeps time.
      if (!next_launch_locked(t0, &launch, &deadline)) {
        // NOTE: the batcher needs waking only for a new deadline: this job heads the queue and an
        // infer request is free. Otherwise its deadline (the head's) stands, or on_done() re-plans
        // when a request frees; a deadline left stale by an inline launch is early, never late.
        if (pending_.size() == 1 && !idle_.empty()) batch_cv_.notify_one();
        return Status::ok();
      }
    } else {
      if (idle_.empty()) {
        pending_.push_back({std::move(job), t0, rows});
        return Status::ok();
      }
      launch.slot = idle_.back();
      idle_.pop_back();
      launch.jobs.push_back({std::move(job), t0, rows});
    }
  }
  start(launch.slot, std::move(launch.jobs));
  return Status::ok();
}

void Servable::bind_inputs(Slot& slot) {
  slot.gathered = slot.jobs.size() > 1;
  if (!slot.gathered) {
    InferJob& job = *slot.jobs.front().job;
    for (size_t i = 0; i < job.inputs.size(); ++i) {
      InputTensor& in = job.inputs[i];
      ov::Shape shape(in.shape.begin(), in.shape.end());
      ov::element::Type et = datatype_info(in.dtype).element;
      ov::Tensor t;
      if (in.dtype == DataType::BYTES) {
        t = ov::Tensor(ov::element::string, shape);
        std::string* dst = t.data<std::string>();
        for (size_t k = 0; k < in.strings.size(); ++k) dst[k] = std::move(in.strings[k]);
      } else if (in.size == 0) {
        t = ov::Tensor(et, shape);
      } else {
        // Zero-copy: the tensor views the request's memory (kept alive by the job).
        t = ov::Tensor(et, shape, const_cast<uint8_t*>(in.data));
      }
      slot.request.set_input_tensor(i, t);
    }
    return;
  }
  // A batch: each input's rows are copied once, job after job, into one tensor.
  std::vector<QueuedJob*> jobs;
  slot.row0.clear();
  int64_t row = 0;
  for (QueuedJob& q : slot.jobs) {
    jobs.push_back(&q);
    slot.row0.push_back(row);
    row += q.rows;
  }
  const InferJob& first = *slot.jobs.front().job;
  slot.batch_inputs.resize(first.inputs.size());
  for (size_t i = 0; i < first.inputs.size(); ++i) {
    const InputTensor& in = first.inputs[i];
    ov::Shape shape(in.shape.begin(), in.shape.end());
    shape[0] = static_cast<size_t>(slot.rows);
    const ov::element::Type et = datatype_info(in.dtype).element;  // BYTES: string
    ov::Tensor& t = slot.batch_inputs[i];
    // NOTE: reused while the element type holds; set_shape reallocates only to grow.
    if (!t || t.get_element_type() != et) t = ov::Tensor(et, shape);
    else t.set_shape(shape);
    gather_input(jobs, i, t);
    if (et != ov::element::string) metrics_.batch_copied_bytes.fetch_add(t.get_byte_size(), std::memory_order_relaxed);
    slot.request.set_input_tensor(i, t);
  }
}

void Servable::start(size_t slot_index, std::vector<QueuedJob> jobs) {
  Slot& slot = *slots_[slot_index];
  slot.jobs = std::move(jobs);
  active_.fetch_add(1, std::memory_order_relaxed);
  try {
    slot.start_ns = clock_->now_ns();
    if (opts_.batching.enabled()) {
      slot.rows = 0;
      for (const QueuedJob& q : slot.jobs) {
        slot.rows += std::max<int64_t>(q.rows, 0);
        metrics_.batch_queue_delay_us.observe(slot.start_ns > q.enqueue_ns ? (slot.start_ns - q.enqueue_ns) / 1000 : 0);
      }
      metrics_.batch_size.observe(static_cast<uint64_t>(slot.rows));
    }
    bind_inputs(slot);
    slot.request.start_async();
  } catch (const std::exception& e) {
    // Treat as a completed failure so the slot goes back to the pool.
    on_done(slot_index, std::make_exception_ptr(e));
  }
}

void Servable::on_done(size_t slot_index, std::exception_ptr err) {
  Slot& slot = *slots_[slot_index];
  std::vector<QueuedJob> jobs = std::move(slot.jobs);
  slot.jobs.clear();
  const uint64_t end = clock_->now_ns();
  const uint64_t infer_us = end > slot.start_ns ? (end - slot.start_ns) / 1000 : 0;
  Status batch_status;
  std::vector<ov::Tensor> results;  // the request's own output buffers, read once
  if (err) {
    try {
      std::rethrow_exception(err);
    } catch (const std::exception& e) {
      batch_status = internal_error(std::string("Internal inference error - ") + e.what());
    } catch (...) {
      batch_status = internal_error("Internal inference error");
    }
  } else {
    try {
      for (size_t i = 0; i < outputs_.size(); ++i) {
        results.push_back(slot.request.get_output_tensor(i));
        if (outputs_[i].dtype == DataType::INVALID)
          throw std::runtime_error("output " + outputs_[i].name + " has an element type no API can carry");
        const ov::Shape& sh = results.back().get_shape();
        if (slot.gathered && (sh.empty() || static_cast<int64_t>(sh[0]) != slot.rows))
          throw std::runtime_error("output " + outputs_[i].name + " has shape " +
                                   shape_to_string(Shape(sh.begin(), sh.end())) + " for a batch of " +
                                   std::to_string(slot.rows) + " rows");
      }
    } catch (const std::exception& e) {
      batch_status = internal_error(std::string("Internal server error - cannot read outputs: ") + e.what());
      results.clear();
    }
  }
  for (size_t k = 0; k < jobs.size(); ++k) {
    std::unique_ptr<InferJob> job = std::move(jobs[k].job);
    Status st = batch_status;
    std::vector<OutputTensor> outs;
    if (st.is_ok()) {
      try {
        auto collect = [&](size_t idx) {
          // Batched: this job's rows, a view into the batch output (zero-copy).
          ov::Tensor t = slot.gathered ? slice_rows(results[idx], slot.row0[k], jobs[k].rows) : results[idx];
          OutputTensor o;
          o.name = outputs_[idx].name;
          o.dtype = outputs_[idx].dtype;
          const ov::Shape& sh = t.get_shape();
          o.shape.assign(sh.begin(), sh.end());
          // KSERVE_PROTO / TFS_PROTO serialize straight from the request's buffer below;
          // TENSORS hands data to another thread, so it gets its own copy.
          o.tensor = job->mode == ResponseMode::TENSORS ? copy_tensor(t) : t;
          outs.push_back(std::move(o));
        };
        if (job->requested_outputs.empty()) {
          for (size_t i = 0; i < outputs_.size(); ++i) collect(i);
        } else {
          for (const std::string& name : job->requested_outputs)
            for (size_t i = 0; i < outputs_.size(); ++i)
              if (outputs_[i].name == name) { collect(i); break; }
        }
      } catch (const std::exception& e) {
        st = internal_error(std::string("Internal server error - cannot read outputs: ") + e.what());
        outs.clear();
      }
    }
    std::string payload;
    if (st.is_ok() && job->mode == ResponseMode::KSERVE_PROTO) {
      payload = encode_kserve_response(job->model_name, job->model_version, job->id, outs);
      outs.clear();
    }
    if (st.is_ok() && job->mode == ResponseMode::TFS_PROTO) {
      payload = encode_tfs_response(job->model_name, job->model_version, outs);
      outs.clear();
    }
    const uint64_t wait_us = slot.start_ns > jobs[k].enqueue_ns ? (slot.start_ns - jobs[k].enqueue_ns) / 1000 : 0;
    // NOTE: metrics are updated before the slot is handed on, so a drain()
    // that waits for idle slots also waits for these writes.
    if (job->metrics_route >= 0) {
      metrics_.inference_us.observe(infer_us);
      metrics_.wait_us.observe(wait_us);
      metrics_.record_request(job->metrics_route, st.is_ok(), elapsed_us(job->received_ns));
      metrics_.current_requests.fetch_sub(1, std::memory_order_relaxed);
    }
    Completion c;
    c.keepalive = job->keepalive;
    c.context = job->context;
    c.status = std::move(st);
    c.payload = std::move(payload);
    c.outputs = std::move(outs);
    c.infer_us = infer_us;
    c.wait_us = wait_us;
    job.reset();
    cq_->push(std::move(c));
  }
  results.clear();
  // Hand the slot on. NOTE: OpenVINO allows start_async() on the same request
  // from inside its callback, so queued work starts here with no thread hop.
  Launch next;
  bool go = false;
  {
    // NOTE: notify under the lock: once the slot is idle, drain() (and then
    // the destructor) may proceed, so nothing of `this` is touched after.
    std::lock_guard<std::mutex> lock(mu_);
    active_.fetch_sub(1, std::memory_order_relaxed);
    if (opts_.batching.enabled()) {
      idle_.push_back(slot_index);
      uint64_t deadline;
      go = next_launch_locked(clock_->now_ns(), &next, &deadline);
      if (!go) {
        if (!pending_.empty()) batch_cv_.notify_one();  // its deadline is the batcher's to keep
        cv_.notify_all();
      }
    } else if (!pending_.empty() && !stopping_) {
      next.slot = slot_index;
      next.jobs.push_back(std::move(pending_.front()));
      pending_.pop_front();
      go = true;
    } else {
      idle_.push_back(slot_index);
      cv_.notify_all();
    }
  }
  if (go) start(next.slot, std::move(next.jobs));
}

void Servable::complete_echo(std::unique_ptr<InferJob> job) {
  std::vector<OutputTensor> outs;
  for (size_t i = 0; i < job->inputs.size() && i < outputs_.size(); ++i) {
    InputTensor& in = job->inputs[i];
    if (!job->requested_outputs.empty()) {
      bool wanted = false;
      for (auto& n : job->requested_outputs) wanted |= n == outputs_[i].name;
      if (!wanted) continue;
    }
    OutputTensor o;
    o.name = outputs_[i].name;
    o.dtype = in.dtype;
    o.shape = in.shape;
    ov::Shape shape(in.shape.begin(), in.shape.end());
    if (in.dtype == DataType::BYTES) {
      o.tensor = ov::Tensor(ov::element::string, shape);
      for (size_t k = 0; k < in.strings.size(); ++k) o.tensor.data<std::string>()[k] = in.strings[k];
    } else if (job->mode == ResponseMode::TENSORS || in.size == 0) {
      o.tensor = ov::Tensor(datatype_info(in.dtype).element, shape);
      if (in.size) std::memcpy(o.tensor.data(), in.data, in.size);
    } else {
      o.tensor = ov::Tensor(datatype_info(in.dtype).element, shape, const_cast<uint8_t*>(in.data));
    }
    outs.push_back(std::move(o));
  }
  Completion c;
  c.keepalive = job->keepalive;
  c.context = job->context;
  if (job->mode == ResponseMode::KSERVE_PROTO) {
    c.payload = encode_kserve_response(job->model_name, job->model_version, job->id, outs);
  } else if (job->mode == ResponseMode::TFS_PROTO) {
    c.payload = encode_tfs_response(job->model_name, job->model_version, outs);
  } else {
    c.outputs = std::move(outs);
  }
  if (job->metrics_route >= 0) {
    metrics_.record_request(job->metrics_route, true, elapsed_us(job->received_ns));
    metrics_.current_requests.fetch_sub(1, std::memory_order_relaxed);
  }
  cq_->push(std::move(c));
}

}  // namespace ovfast
