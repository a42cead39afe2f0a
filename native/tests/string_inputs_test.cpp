// String (BYTES) inputs through a Servable on a real CPU model (s: string [-1] -> out: the same
// strings): the elements a codec located in the request are written once, in order, into the bound
// string tensor — one job, a dynamic batch of several, echo — and string_tensor_bytes counts what they
// will hold for the model's string inputs only (what a transport reserves before submitting).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <openvino/op/reshape.hpp>

#include "codec_helpers.hpp"
#include "ovfast/servable.hpp"
#include "sched_helpers.hpp"

namespace ovfast {
namespace {

using testkit::RecordingSink;

std::shared_ptr<ov::Model> string_model() {
  auto s = std::make_shared<ov::op::v0::Parameter>(ov::element::string, ov::PartialShape{-1});
  s->output(0).get_tensor().set_names({"s"});
  auto flat = ov::op::v0::Constant::create(ov::element::i64, ov::Shape{1}, {-1});
  auto out = std::make_shared<ov::op::v1::Reshape>(s, flat, false);
  out->output(0).get_tensor().set_names({"out"});
  return std::make_shared<ov::Model>(ov::ResultVector{std::make_shared<ov::op::v0::Result>(out)},
                                     ov::ParameterVector{s}, "string");
}

// A job whose input `name` carries the elements framed in `request` (kept alive by the caller).
std::unique_ptr<InferJob> string_job(const std::string& id, const std::string& name, const std::string& request,
                                     int64_t count, std::shared_ptr<ResultSink> sink) {
  auto job = std::make_unique<InferJob>();
  job->id = id;
  job->sink = std::move(sink);
  InputTensor in;
  in.name = name;
  in.dtype = DataType::BYTES;
  in.datatype_name = "BYTES";
  in.shape = {count};
  EXPECT_TRUE(BytesElements::prefixed(reinterpret_cast<const uint8_t*>(request.data()), request.size(), name,
                                      &in.bytes).is_ok());
  job->inputs.push_back(std::move(in));
  return job;
}

class StringInputs : public testkit::ModelSuite {
 protected:
  static void SetUpTestSuite() {
    open_suite();
    string_path_ = dir_->save(string_model(), "string");
    affine_path_ = dir_->save(testkit::affine_model(ov::PartialShape{-1, 4}), "affine");
  }
  static std::unique_ptr<Servable> servable(const std::string& path, int max_batch_size = 0, bool echo = false) {
    ModelOptions o = testkit::cpu_options(path, 1);
    o.echo = echo;
    o.batching.max_batch_size = max_batch_size;
    o.batching.max_queue_delay_us = 60'000'000;  // a batch goes when full, never by the clock
    std::unique_ptr<Servable> s;
    Status st = Servable::create(*core_, o, nullptr, &s);
    EXPECT_TRUE(st.is_ok()) << st.message();
    return s;
  }

  static inline std::string string_path_, affine_path_;
};

const std::vector<std::string> kElements = {"a", "", std::string(100, 'q'), std::string("\0\xff", 2)};

TEST_F(StringInputs, OneJobsElementsReachTheModelInOrder) {
  std::unique_ptr<Servable> s = servable(string_path_);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  const std::string request = testkit::framed(kElements);
  ASSERT_TRUE(s->submit(string_job("a", "s", request, 4, sink)).is_ok());
  ASSERT_TRUE(sink->wait_for(1));
  testkit::Outcome o = sink->outcome("a");
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  ASSERT_EQ(o.outputs.size(), 1u);
  EXPECT_EQ(o.outputs[0].dtype, DataType::BYTES);
  EXPECT_EQ(o.outputs[0].strings, kElements);
}

TEST_F(StringInputs, ABatchGathersEachJobsElementsAndAnswersEachItsOwn) {
  std::unique_ptr<Servable> s = servable(string_path_, /*max_batch_size=*/3);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  const std::vector<std::vector<std::string>> rows = {{"x"}, {std::string(40, 'y')}, {""}};
  std::vector<std::string> requests;
  for (const auto& r : rows) requests.push_back(testkit::framed(r));
  for (size_t i = 0; i < rows.size(); ++i)
    ASSERT_TRUE(s->submit(string_job(std::to_string(i), "s", requests[i], 1, sink)).is_ok());
  ASSERT_TRUE(sink->wait_for(3));
  for (size_t i = 0; i < rows.size(); ++i) {
    testkit::Outcome o = sink->outcome(std::to_string(i));
    ASSERT_TRUE(o.status.is_ok()) << o.status.message();
    ASSERT_EQ(o.outputs.size(), 1u);
    EXPECT_EQ(o.outputs[0].strings, rows[i]);
  }
}

TEST_F(StringInputs, EchoAnswersTheElements) {
  std::unique_ptr<Servable> s = servable(string_path_, 0, /*echo=*/true);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  const std::string request = testkit::framed(kElements);
  ASSERT_TRUE(s->submit(string_job("e", "s", request, 4, sink)).is_ok());
  ASSERT_EQ(sink->outcome("e").outputs.size(), 1u);
  EXPECT_EQ(sink->outcome("e").outputs[0].strings, kElements);
}

TEST_F(StringInputs, ACountThatIsNotTheShapesIsRefusedBeforeAnyStringIsMade) {
  std::unique_ptr<Servable> s = servable(string_path_);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  const std::string request = testkit::framed(kElements);
  Status st = s->submit(string_job("n", "s", request, 5, sink));
  testkit::expect_invalid(st, "Expected: 5 values; Actual: 4 values");
  EXPECT_EQ(sink->total(), 0);
}

TEST_F(StringInputs, StringTensorBytesCountsTheModelsStringInputsOnly) {
  const std::string request = testkit::framed(kElements);
  std::unique_ptr<Servable> strings = servable(string_path_);
  ASSERT_TRUE(strings);
  // four std::strings; the 100-byte element is copied to the heap with its terminator
  EXPECT_EQ(strings->string_tensor_bytes(*string_job("c", "s", request, 4, nullptr)), 4 * sizeof(std::string) + 101);
  EXPECT_EQ(strings->string_tensor_bytes(*string_job("c", "other", request, 4, nullptr)), 0u) << "no such input";
  std::unique_ptr<Servable> affine = servable(affine_path_);
  ASSERT_TRUE(affine);
  EXPECT_EQ(affine->string_tensor_bytes(*string_job("c", "x", request, 4, nullptr)), 0u)
      << "BYTES for an FP32 input: refused by validation, never made into strings";
}

}  // namespace
}  // namespace ovfast
