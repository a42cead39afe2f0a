// Servable with the SequenceScheduler on a stateful model built here (an
// accumulator: y = acc + x, acc <- y, in a ReadValue/Assign variable): each
// sequence sees its own running sum however its jobs interleave with other
// sequences' and whichever infer request they land on; OVMS's sequence rules
// (start / none / end, server-assigned ids, max_sequence_number, the special
// inputs and their errors) hold; the idle cleaner removes a sequence on its
// second pass; the saved state is counted.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <openvino/op/assign.hpp>
#include <openvino/op/read_value.hpp>
#include <openvino/op/util/variable.hpp>

#include "ovfast/sched/sequence.hpp"
#include "ovfast/servable.hpp"
#include "sched_helpers.hpp"

namespace ovfast {
namespace {

using testkit::f32_input;
using testkit::RecordingSink;
namespace msg = sequence_messages;

constexpr size_t kWidth = 4;

// x (f32 [1,4]) -> y = acc + x, and acc <- y (acc starts at zero).
std::shared_ptr<ov::Model> accumulator_model() {
  auto x = std::make_shared<ov::op::v0::Parameter>(ov::element::f32, ov::Shape{1, kWidth});
  x->output(0).get_tensor().set_names({"x"});
  auto var = std::make_shared<ov::op::util::Variable>(
      ov::op::util::VariableInfo{ov::PartialShape{1, kWidth}, ov::element::f32, "acc"});
  auto zeros = ov::op::v0::Constant::create(ov::element::f32, ov::Shape{1, kWidth}, std::vector<float>(kWidth, 0.f));
  auto read = std::make_shared<ov::op::v6::ReadValue>(zeros, var);
  auto y = std::make_shared<ov::op::v1::Add>(read, x);
  y->output(0).get_tensor().set_names({"y"});
  auto assign = std::make_shared<ov::op::v6::Assign>(y, var);
  return std::make_shared<ov::Model>(ov::ResultVector{std::make_shared<ov::op::v0::Result>(y)},
                                     ov::SinkVector{assign}, ov::ParameterVector{x}, "accumulator");
}

// A special input as the TFS codec leaves it: a typed value list (uint64_val / uint32_val).
InputTensor special(const std::string& name, DataType dtype, uint64_t value, Shape shape = {1}) {
  InputTensor in;
  in.name = name;
  in.dtype = dtype;
  in.datatype_name = datatype_info(dtype).kserve_name;
  in.shape = std::move(shape);
  const size_t size = dtype == DataType::UINT64 ? 8 : 4;
  in.owned.resize(size);
  std::memcpy(in.owned.data(), &value, size);  // little-endian: the low bytes
  in.data = in.owned.data();
  in.size = size;
  in.has_typed_contents = true;
  in.typed_count = 1;
  return in;
}

enum Control : uint64_t { kNone = 0, kStart = 1, kEnd = 2 };

// Passes outcomes on to a RecordingSink, keeping the sequence id each job was answered with.
class IdSink final : public ResultSink {
 public:
  explicit IdSink(std::shared_ptr<RecordingSink> next) : next_(std::move(next)) {}
  void deliver(InferJob& job, Status status, std::vector<OutputTensor>& outputs, const JobTiming& t) override {
    for (const OutputTensor& o : outputs) {
      if (!o.sequence_id) continue;
      std::lock_guard<std::mutex> lock(mu_);
      if (o.dtype == DataType::UINT64) ids_[job.id] = std::to_string(o.tensor.data<const uint64_t>()[0]);
      else ids_[job.id] = "'" + o.tensor.data<const std::string>()[0] + "'";
    }
    next_->deliver(job, std::move(status), outputs, t);
  }
  std::string id_of(const std::string& job) {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_[job];
  }

 private:
  std::shared_ptr<RecordingSink> next_;
  std::mutex mu_;
  std::map<std::string, std::string> ids_;  // guarded by mu_
};

class SequenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    core_ = std::make_unique<ov::Core>();
    dir_ = std::make_unique<testkit::TempDir>();
    path_ = dir_->save(accumulator_model(), "accumulator");
  }
  static void TearDownTestSuite() {
    core_.reset();
    dir_.reset();
  }

  void make(int nireq, uint32_t max_sequences = 500) {
    ModelOptions o = testkit::cpu_options(path_, nireq);
    o.stateful = true;
    o.max_sequence_number = max_sequences;
    Status st = Servable::create(*core_, o, nullptr, &servable_);
    ASSERT_TRUE(st.is_ok()) << st.message();
  }

  // A TFS-style job: x = `value` everywhere, and the special inputs.
  std::unique_ptr<InferJob> job(const std::string& id, uint64_t seq, uint64_t control, float value) {
    auto j = std::make_unique<InferJob>();
    j->model_name = "m";
    j->id = id;
    j->inputs.push_back(f32_input("x", {1, kWidth}, std::vector<float>(kWidth, value)));
    j->inputs.push_back(special("sequence_id", DataType::UINT64, seq));
    j->inputs.push_back(special("sequence_control_input", DataType::UINT32, control));
    j->sink = sink_;
    return j;
  }
  Status submit(std::unique_ptr<InferJob> j) {
    Status st = servable_->submit(std::move(j));
    if (st.is_ok()) ++expected_;
    return st;
  }
  Status submit(const std::string& id, uint64_t seq, uint64_t control, float value) {
    return submit(job(id, seq, control, value));
  }
  // y[0] of a job that was delivered OK (NaN otherwise).
  float result(const std::string& id) {
    EXPECT_TRUE(recorded_->wait_for(expected_));
    testkit::Outcome o = recorded_->outcome(id);
    EXPECT_TRUE(o.status.is_ok()) << id << ": " << o.status.message();
    if (!o.status.is_ok() || o.outputs.size() != 2) return std::nanf("");
    EXPECT_EQ(o.outputs[1].name, "sequence_id");
    EXPECT_EQ(o.outputs[1].shape, Shape({1}));
    return o.outputs[0].values.at(0);
  }
  // Submits, waits, returns y[0].
  float run(const std::string& id, uint64_t seq, uint64_t control, float value) {
    Status st = submit(id, seq, control, value);
    EXPECT_TRUE(st.is_ok()) << id << ": " << st.message();
    return st.is_ok() ? result(id) : std::nanf("");
  }
  void expect_error(Status st, StatusCode code, const std::string& message) {
    EXPECT_EQ(st.code(), code) << st.message();
    EXPECT_EQ(st.message(), message);
  }

  static std::unique_ptr<ov::Core> core_;
  static std::unique_ptr<testkit::TempDir> dir_;
  static std::string path_;
  std::shared_ptr<RecordingSink> recorded_ = std::make_shared<RecordingSink>();
  std::shared_ptr<IdSink> sink_ = std::make_shared<IdSink>(recorded_);
  std::unique_ptr<Servable> servable_;
  int expected_ = 0;
};
std::unique_ptr<ov::Core> SequenceTest::core_;
std::unique_ptr<testkit::TempDir> SequenceTest::dir_;
std::string SequenceTest::path_;

TEST_F(SequenceTest, EachSequenceKeepsItsOwnStateAcrossInferRequests) {
  make(3);
  EXPECT_EQ(run("a0", 7, kStart, 1), 1);
  EXPECT_EQ(run("b0", 9, kStart, 100), 100);
  EXPECT_EQ(run("a1", 7, kNone, 2), 3);
  EXPECT_EQ(run("b1", 9, kNone, 10), 110);
  EXPECT_EQ(run("a2", 7, kNone, 4), 7);
  EXPECT_EQ(sink_->id_of("a2"), "7");
  EXPECT_EQ(sink_->id_of("b1"), "9");
  EXPECT_EQ(run("b2", 9, kEnd, 1), 111);
  // b is gone: a new b starts from zero
  expect_error(submit("b3", 9, kNone, 1), StatusCode::NOT_FOUND, msg::kMissing);
  EXPECT_EQ(run("b4", 9, kStart, 5), 5);
}

TEST_F(SequenceTest, JobsOfOneSequenceRunInOrderWhenSubmittedTogether) {
  make(3);
  // 3 sequences x 20 jobs, all queued at once, interleaved: each keeps its order and its state.
  for (uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(submit("s" + std::to_string(s) + "-0", s, kStart, 0).is_ok());
  for (int k = 1; k < 20; ++k)
    for (uint64_t s = 1; s <= 3; ++s)
      ASSERT_TRUE(submit("s" + std::to_string(s) + "-" + std::to_string(k), s, kNone, float(k) * float(s)).is_ok());
  for (uint64_t s = 1; s <= 3; ++s) {
    float sum = 0;
    for (int k = 1; k < 20; ++k) {
      sum += float(k) * float(s);
      EXPECT_EQ(result("s" + std::to_string(s) + "-" + std::to_string(k)), sum) << s << " " << k;
    }
  }
}

TEST_F(SequenceTest, StartWithoutIdGetsTheNextFreeId) {
  make(1);
  ASSERT_EQ(run("explicit", 2, kStart, 0), 0);
  run("first", 0, kStart, 0);
  run("second", 0, kStart, 0);
  EXPECT_EQ(sink_->id_of("first"), "1");
  EXPECT_EQ(sink_->id_of("second"), "3");  // 2 is taken
}

TEST_F(SequenceTest, SequenceErrorsAreOvmsErrors) {
  make(1, 2);
  expect_error(submit("none", 5, kNone, 1), StatusCode::NOT_FOUND, msg::kMissing);
  expect_error(submit("end", 5, kEnd, 1), StatusCode::NOT_FOUND, msg::kMissing);
  run("s5", 5, kStart, 1);
  expect_error(submit("again", 5, kStart, 1), StatusCode::ALREADY_EXISTS, msg::kAlreadyExists);
  run("s6", 6, kStart, 1);
  expect_error(submit("third", 8, kStart, 1), StatusCode::UNAVAILABLE, msg::kMaxReached);
  expect_error(submit("assigned", 0, kStart, 1), StatusCode::UNAVAILABLE, msg::kMaxReached);
  expect_error(submit("no id", 0, kNone, 1), StatusCode::INVALID_ARGUMENT, msg::kIdNotProvided);
  expect_error(submit("end no id", 0, kEnd, 1), StatusCode::INVALID_ARGUMENT, msg::kIdNotProvided);
  expect_error(submit("bad control", 5, 3, 1), StatusCode::INVALID_ARGUMENT, msg::kBadControl);
  // the refused jobs left the sequences as they were
  EXPECT_EQ(run("s5 end", 5, kEnd, 1), 2);
  EXPECT_EQ(servable_->sequence_stats().sequences, 1u);
}

TEST_F(SequenceTest, SpecialInputsAreValidatedAsOvmsDoes) {
  make(1);
  auto with = [&](const std::string& which, InputTensor in) {
    auto j = job("j", 1, kStart, 1);
    for (InputTensor& t : j->inputs)
      if (t.name == which) t = std::move(in);
    return servable_->submit(std::move(j));
  };
  InputTensor no_shape = special("sequence_id", DataType::UINT64, 1);
  no_shape.has_shape = false;
  expect_error(with("sequence_id", no_shape), StatusCode::INVALID_ARGUMENT, msg::kNoShape);
  expect_error(with("sequence_id", special("sequence_id", DataType::UINT64, 1, {1, 1})), StatusCode::INVALID_ARGUMENT,
               "Invalid number of shape dimensions - Required shape for sequence_id is: (1)");
  expect_error(with("sequence_control_input", special("sequence_control_input", DataType::UINT32, 1, {2})),
               StatusCode::INVALID_ARGUMENT, "Invalid input shape - Required shape for sequence_control_input is: (1)");
  InputTensor raw = special("sequence_id", DataType::UINT64, 1);
  raw.has_typed_contents = false;  // tensor_content, not uint64_val
  expect_error(with("sequence_id", raw), StatusCode::INVALID_ARGUMENT, msg::kIdBadType);
  expect_error(with("sequence_control_input", special("sequence_control_input", DataType::INT32, 1)),
               StatusCode::INVALID_ARGUMENT, msg::kControlBadType);
  // without any special input a job has no sequence
  auto bare = job("bare", 1, kStart, 1);
  bare->inputs.resize(1);
  expect_error(servable_->submit(std::move(bare)), StatusCode::INVALID_ARGUMENT, msg::kIdNotProvided);
}

TEST_F(SequenceTest, StartOfASequenceStillEndingIsRefused) {
  make(1);
  run("a", 1, kStart, 1);
  run("b", 2, kStart, 1);
  recorded_->hold();  // the next delivery keeps the only infer request leased
  ASSERT_TRUE(submit("a busy", 1, kNone, 1).is_ok());
  ASSERT_TRUE(recorded_->wait_held());
  ASSERT_TRUE(submit("b end", 2, kEnd, 1).is_ok());  // queued behind it: b is ending
  expect_error(submit("b restart", 2, kStart, 1), StatusCode::FAILED_PRECONDITION, msg::kTerminated);
  expect_error(submit("b more", 2, kNone, 1), StatusCode::FAILED_PRECONDITION, msg::kTerminated);
  expect_error(submit("b end again", 2, kEnd, 1), StatusCode::FAILED_PRECONDITION, msg::kTerminated);
  recorded_->release();
  EXPECT_EQ(result("b end"), 2);
  EXPECT_EQ(run("b restarted", 2, kStart, 1), 1);
}

TEST_F(SequenceTest, IdleCleanerRemovesOnItsSecondPass) {
  make(1);
  run("a", 1, kStart, 1);
  run("b", 2, kStart, 1);
  EXPECT_EQ(servable_->sweep_idle_sequences(), 0u);  // both flagged
  run("a again", 1, kNone, 1);                        // a request clears the flag
  EXPECT_EQ(servable_->sweep_idle_sequences(), 1u);  // b goes
  expect_error(submit("b gone", 2, kNone, 1), StatusCode::NOT_FOUND, msg::kMissing);
  EXPECT_EQ(servable_->sequence_stats().sequences, 1u);
  EXPECT_EQ(servable_->sweep_idle_sequences(), 1u);  // a, flagged by the last pass
  EXPECT_EQ(servable_->sequence_stats().sequences, 0u);
}

TEST_F(SequenceTest, SavedStateIsCounted) {
  make(2);
  run("a", 1, kStart, 1);
  run("b", 2, kStart, 1);
  SequenceStats st = servable_->sequence_stats();
  EXPECT_EQ(st.sequences, 2u);
  EXPECT_EQ(st.state_bytes, 2 * kWidth * sizeof(float));
  run("a end", 1, kEnd, 1);
  st = servable_->sequence_stats();
  EXPECT_EQ(st.sequences, 1u);
  EXPECT_EQ(st.state_bytes, kWidth * sizeof(float));
}

TEST_F(SequenceTest, KServeParametersAndStringIds) {
  make(2);
  auto kjob = [&](const std::string& id, SequenceRequest seq, float value) {
    auto j = std::make_unique<InferJob>();
    j->id = id;
    j->inputs.push_back(f32_input("x", {1, kWidth}, std::vector<float>(kWidth, value)));
    j->sequence = std::move(seq);
    j->sequence.given = true;
    j->sink = sink_;
    return j;
  };
  SequenceRequest start;
  start.id_string = "call-1";
  start.start = true;
  ASSERT_TRUE(submit(kjob("s0", start, 2)).is_ok());
  EXPECT_EQ(result("s0"), 2);
  EXPECT_EQ(sink_->id_of("s0"), "'call-1'");
  SequenceRequest next;
  next.id_string = "call-1";
  ASSERT_TRUE(submit(kjob("s1", next, 3)).is_ok());
  EXPECT_EQ(result("s1"), 5);
  SequenceRequest both;  // start and end at once: a one-request sequence
  both.id = 42;
  both.start = both.end = true;
  ASSERT_TRUE(submit(kjob("single", both, 7)).is_ok());
  EXPECT_EQ(result("single"), 7);
  EXPECT_EQ(sink_->id_of("single"), "42");
  EXPECT_EQ(servable_->sequence_stats().sequences, 1u);
}

}  // namespace
}  // namespace ovfast
