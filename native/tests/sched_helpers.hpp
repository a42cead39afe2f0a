// Helpers shared by the suites that run real inferences (infer_pool_test,
// scheduler_test, dynamic_batcher_scheduler_test): tiny models built here with
// the OpenVINO API, a directory they are saved to (ModelInstance reads a
// path), float jobs, and a ResultSink that records every outcome.
#pragma once
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <openvino/core/model.hpp>
#include <openvino/op/add.hpp>
#include <openvino/op/constant.hpp>
#include <openvino/op/multiply.hpp>
#include <openvino/op/parameter.hpp>
#include <openvino/op/result.hpp>
#include <openvino/openvino.hpp>

#include "ovfast/clock.hpp"
#include "ovfast/exec/result_sink.hpp"
#include "ovfast/model/model_instance.hpp"
#include "ovfast/request.hpp"

namespace ovfast::testkit {

// Time as a busy machine shows it to a model of microseconds: each reading on
// the thread that made the clock is `owner_step_ns` later than the last (1 ns:
// the run alone; more: a run that thread was preempted in), one on any other
// thread `other_step_ns` later (the hop to an OpenVINO thread and back).
class ThreadStepClock final : public Clock {
 public:
  explicit ThreadStepClock(uint64_t other_step_ns) : other_step_ns_(other_step_ns), owner_(std::this_thread::get_id()) {}
  Reading read() override {
    const uint64_t step = std::this_thread::get_id() == owner_ ? owner_step_ns.load() : other_step_ns_;
    return {ns_.fetch_add(step) + step, 0};
  }
  void wait_until(std::unique_lock<std::mutex>& lock, Waiter& w, uint64_t, Reading) override {
    w.cv->wait_for(lock, std::chrono::milliseconds(1));
  }
  std::atomic<uint64_t> owner_step_ns{1};

 private:
  const uint64_t other_step_ns_;
  const std::thread::id owner_;
  std::atomic<uint64_t> ns_{1};
};

// x (f32, `shape`) -> y = 2x + 1 and z = 3x, in that output order.
inline std::shared_ptr<ov::Model> affine_model(const ov::PartialShape& shape) {
  auto x = std::make_shared<ov::op::v0::Parameter>(ov::element::f32, shape);
  x->output(0).get_tensor().set_names({"x"});
  auto two = ov::op::v0::Constant::create(ov::element::f32, ov::Shape{}, {2.0f});
  auto one = ov::op::v0::Constant::create(ov::element::f32, ov::Shape{}, {1.0f});
  auto three = ov::op::v0::Constant::create(ov::element::f32, ov::Shape{}, {3.0f});
  auto y = std::make_shared<ov::op::v1::Add>(std::make_shared<ov::op::v1::Multiply>(x, two), one);
  y->output(0).get_tensor().set_names({"y"});
  auto z = std::make_shared<ov::op::v1::Multiply>(x, three);
  z->output(0).get_tensor().set_names({"z"});
  return std::make_shared<ov::Model>(
      ov::ResultVector{std::make_shared<ov::op::v0::Result>(y), std::make_shared<ov::op::v0::Result>(z)},
      ov::ParameterVector{x}, "affine");
}

// x (f32, [1,10]) -> y = x + 1.
inline std::shared_ptr<ov::Model> add_one_model() {
  auto x = std::make_shared<ov::op::v0::Parameter>(ov::element::f32, ov::Shape{1, 10});
  x->output(0).get_tensor().set_names({"x"});
  auto one = ov::op::v0::Constant::create(ov::element::f32, ov::Shape{}, {1.0f});
  auto y = std::make_shared<ov::op::v1::Add>(x, one);
  y->output(0).get_tensor().set_names({"y"});
  return std::make_shared<ov::Model>(ov::ResultVector{std::make_shared<ov::op::v0::Result>(y)},
                                     ov::ParameterVector{x}, "add_one");
}

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ovfast-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Saves `model` as <dir>/<name>.xml (+ .bin, weights kept f32) and returns the .xml path.
  std::string save(const std::shared_ptr<ov::Model>& model, const std::string& name) const {
    const std::string xml = (path_ / (name + ".xml")).string();
    ov::save_model(model, xml, /*compress_to_fp16=*/false);
    return xml;
  }

 private:
  std::filesystem::path path_;
};

// A suite that compiles models it saves: one OpenVINO core and one temporary directory for the
// whole suite (a derived suite's SetUpTestSuite calls open_suite() and saves its models in dir_).
class ModelSuite : public ::testing::Test {
 protected:
  static void open_suite() {
    core_ = std::make_unique<ov::Core>();
    dir_ = std::make_unique<TempDir>();
  }
  static void TearDownTestSuite() {
    core_.reset();
    dir_.reset();
  }
  static inline std::unique_ptr<ov::Core> core_;
  static inline std::unique_ptr<TempDir> dir_;
};

// Options for the model at `path` on CPU with `nireq` infer requests, in f32
// everywhere (a CPU with bf16 support would otherwise default to it).
inline ModelOptions cpu_options(const std::string& path, int nireq) {
  ModelOptions o;
  o.model_path = path;
  o.device = "CPU";
  o.nireq = nireq;
  o.plugin_config["INFERENCE_PRECISION_HINT"] = "f32";
  return o;
}

// One FP32 input; `values` are owned by the input (InputTensor::owned).
inline InputTensor f32_input(const std::string& name, const Shape& shape, const std::vector<float>& values) {
  InputTensor in;
  in.name = name;
  in.dtype = DataType::FP32;
  in.datatype_name = "FP32";
  in.shape = shape;
  in.owned.resize(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(in.owned.data(), values.data(), in.owned.size());
  in.data = in.owned.data();
  in.size = in.owned.size();
  return in;
}

// A job with one FP32 input "x" of `shape`, whose outcome goes to `sink`.
inline std::unique_ptr<InferJob> f32_job(const std::string& id, const Shape& shape, const std::vector<float>& values,
                                         std::shared_ptr<ResultSink> sink) {
  auto job = std::make_unique<InferJob>();
  job->model_name = "m";
  job->id = id;
  job->inputs.push_back(f32_input("x", shape, values));
  job->sink = std::move(sink);
  return job;
}

// `n` distinct values starting at `first`, 0.5 apart.
inline std::vector<float> ramp(size_t n, float first) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = first + 0.5f * static_cast<float>(i);
  return v;
}

inline std::vector<float> affine(const std::vector<float>& x, float a, float b) {
  std::vector<float> out;
  for (float v : x) out.push_back(a * v + b);
  return out;
}

// An output copied out of deliver() (its tensor may view an infer request's buffer).
struct SeenOutput {
  std::string name;
  DataType dtype = DataType::INVALID;
  Shape shape;
  std::vector<float> values;  // FP32 outputs only
  std::vector<std::string> strings;  // BYTES outputs only
};

struct Outcome {
  Status status;
  std::vector<SeenOutput> outputs;
  int deliveries = 0;  // more than 1 is a bug
};

// Records on which thread each job was delivered (ok: successes with two outputs, the affine model's).
class ThreadSink final : public ResultSink {
 public:
  void deliver(InferJob& job, Status status, std::vector<OutputTensor>& outputs, const JobTiming&) override {
    std::lock_guard<std::mutex> lock(mu);
    ok += status.is_ok() && outputs.size() == 2 ? 1 : 0;
    threads[job.id] = std::this_thread::get_id();
  }
  std::mutex mu;
  int ok = 0;
  std::map<std::string, std::thread::id> threads;
};

// Records every job's outcome by job id, thread-safely. deliver() may be held
// (hold()) to keep the delivering thread — an OpenVINO callback — busy, which
// keeps its infer request leased.
class RecordingSink final : public ResultSink {
 public:
  void deliver(InferJob& job, Status status, std::vector<OutputTensor>& outputs, const JobTiming&) override {
    Outcome seen;
    seen.status = std::move(status);
    for (const OutputTensor& o : outputs) {
      SeenOutput s{o.name, o.dtype, o.shape, {}, {}};
      if (o.tensor.get_element_type() == ov::element::f32)
        s.values.assign(o.tensor.data<const float>(), o.tensor.data<const float>() + o.tensor.get_size());
      if (o.tensor.get_element_type() == ov::element::string)
        s.strings.assign(o.tensor.data<const std::string>(), o.tensor.data<const std::string>() + o.tensor.get_size());
      seen.outputs.push_back(std::move(s));
    }
    std::unique_lock<std::mutex> lock(mu_);
    Outcome& slot = outcomes_[job.id];
    const int deliveries = slot.deliveries + 1;
    slot = std::move(seen);
    slot.deliveries = deliveries;
    ++total_;
    ++in_deliver_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !held_; });
    --in_deliver_;
  }

  // Blocks every deliver() after it has recorded its outcome, until release().
  void hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
    cv_.notify_all();
  }
  // Waits (at most 60 s) until `n` deliveries happened in all; false on timeout.
  bool wait_for(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return total_ >= n; });
  }
  // Waits (at most 60 s) until a deliver() is held.
  bool wait_held() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return in_deliver_ > 0; });
  }
  int total() {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }
  std::map<std::string, Outcome> outcomes() {
    std::lock_guard<std::mutex> lock(mu_);
    return outcomes_;
  }
  Outcome outcome(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = outcomes_.find(id);
    return it == outcomes_.end() ? Outcome{} : it->second;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Outcome> outcomes_;  // guarded by mu_
  int total_ = 0;                            // guarded by mu_
  int in_deliver_ = 0;                       // guarded by mu_
  bool held_ = false;                        // guarded by mu_
};

// Checks that `id` was delivered once, OK, with y = 2x + 1 (and z = 3x when
// `with_z`) for input `x` of `shape`.
inline void expect_affine(RecordingSink& sink, const std::string& id, const Shape& shape, const std::vector<float>& x,
                          bool with_z = true) {
  Outcome o = sink.outcome(id);
  EXPECT_EQ(o.deliveries, 1) << id;
  ASSERT_TRUE(o.status.is_ok()) << id << ": " << o.status.message();
  ASSERT_EQ(o.outputs.size(), with_z ? 2u : 1u) << id;
  EXPECT_EQ(o.outputs[0].name, "y") << id;
  EXPECT_EQ(o.outputs[0].shape, shape) << id;
  EXPECT_EQ(o.outputs[0].values, affine(x, 2, 1)) << id;
  if (with_z) {
    EXPECT_EQ(o.outputs[1].name, "z") << id;
    EXPECT_EQ(o.outputs[1].values, affine(x, 3, 0)) << id;
  }
}

}  // namespace ovfast::testkit
