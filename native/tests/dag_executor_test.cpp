// DagScheduler and custom-node libraries, with real models (sched_helpers.hpp)
// and a real node library (dag_test_node.cpp, loaded with dlopen):
// parallel branches, chains, demultiplexing with gathering at a node and at
// the response, dynamic counts, OVMS's answer to zero results, and every
// library failure turned into a request error with nothing leaked.
#include <dlfcn.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "codec_helpers.hpp"
#include "ovfast/bytes_elements.hpp"
#include "ovfast/dag/dag_executor.hpp"
#include "ovfast/exec/worker_pool.hpp"
#include "ovfast/servable.hpp"
#include "sched_helpers.hpp"

namespace ovfast {
namespace {

using testkit::affine;
using testkit::f32_input;
using testkit::RecordingSink;
using testkit::TempDir;

class DagExecutorTest : public ::testing::Test {
 protected:
  // The affine model (y = 2x + 1, z = 3x) over `shape`, as a Servable.
  std::shared_ptr<Servable> model(const ov::PartialShape& shape, int nireq = 2) {
    std::unique_ptr<Servable> s;
    Status st = Servable::create(core_, testkit::cpu_options(dir_.save(testkit::affine_model(shape), name()), nireq),
                                 nullptr, &s);
    EXPECT_TRUE(st.is_ok()) << st.message();
    return std::shared_ptr<Servable>(std::move(s));
  }
  std::shared_ptr<CustomNode> custom(std::map<std::string, std::string> params) {
    std::shared_ptr<NodeLibrary> lib;
    Status st = NodeLibrary::load(OVFAST_DAG_TEST_NODE, &lib);
    EXPECT_TRUE(st.is_ok()) << st.message();
    std::shared_ptr<CustomNode> node;
    st = CustomNode::create(lib, std::move(params), &node);
    EXPECT_TRUE(st.is_ok()) << st.message();
    return node;
  }
  // Library allocations not yet released. A request's last tensors may go a moment after its
  // outcome is delivered (on the thread that finished its last node): waits (at most 60 s) for 0.
  static int live_allocations() {
    for (int i = 0; i < 6000 && live_now() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return live_now();
  }
  static int live_now() {
    void* h = dlopen(OVFAST_DAG_TEST_NODE, RTLD_LAZY | RTLD_LOCAL);
    auto fn = reinterpret_cast<int (*)()>(dlsym(h, "dag_test_node_live"));
    int n = fn ? fn() : -1;
    dlclose(h);
    return n;
  }
  // A pipeline servable over `spec` (entry node added first by the caller).
  std::shared_ptr<Servable> pipeline(DagSpec spec) {
    std::shared_ptr<const DagGraph> graph;
    Status st = DagGraph::create(std::move(spec), &graph);
    EXPECT_TRUE(st.is_ok()) << st.message();
    if (!graph) return nullptr;
    return Servable::create_pipeline(graph->spec().inputs_info, graph->spec().outputs_info,
                                     [&](ServableMetrics& m) { return std::make_unique<DagScheduler>(graph, m); });
  }
  // Runs one request with input x and waits for its outcome.
  testkit::Outcome run(Servable& p, const Shape& shape, const std::vector<float>& x) {
    auto job = std::make_unique<InferJob>();
    job->id = "r" + std::to_string(++ids_);
    job->inputs.push_back(f32_input("x", shape, x));
    job->sink = sink_;
    const std::string id = job->id;
    Status st = p.submit(std::move(job));
    if (!st.is_ok()) return testkit::Outcome{st, {}, 0};
    EXPECT_TRUE(sink_->wait_for(ids_submitted_ + 1));
    ++ids_submitted_;
    return sink_->outcome(id);
  }
  std::string name() { return "m" + std::to_string(++models_); }

  static DagNodeSpec entry() {
    DagNodeSpec e;
    e.name = "request";
    return e;
  }
  static DagNodeSpec model_node(const std::string& name, std::shared_ptr<Servable> m, int src, const std::string& out) {
    DagNodeSpec n;
    n.name = name;
    n.model = std::move(m);
    n.inputs.push_back({src, out, "x"});
    return n;
  }
  static TensorInfo f32(const std::string& name, const ov::PartialShape& shape) {
    return {name, DataType::FP32, shape};
  }

  ov::Core core_;
  TempDir dir_;
  std::shared_ptr<RecordingSink> sink_ = std::make_shared<RecordingSink>();
  int ids_ = 0, ids_submitted_ = 0, models_ = 0;
};

const testkit::SeenOutput* find(const testkit::Outcome& o, const std::string& name) {
  for (const auto& s : o.outputs)
    if (s.name == name) return &s;
  return nullptr;
}

TEST_F(DagExecutorTest, ParallelBranchesAndAChain) {
  auto a = model({1, 4});
  auto b = model({1, 4});
  auto c = model({1, 4});
  DagSpec spec;
  spec.name = "p";
  spec.nodes = {entry(), model_node("a", a, 0, "x"), model_node("b", b, 0, "x"), model_node("c", c, 1, "y")};
  spec.outputs = {{"a_z", 1, "z"}, {"b_y", 2, "y"}, {"c_y", 3, "y"}};
  spec.inputs_info = {f32("x", {1, 4})};
  spec.outputs_info = {f32("a_z", {1, 4}), f32("b_y", {1, 4}), f32("c_y", {1, 4})};
  auto p = pipeline(std::move(spec));
  ASSERT_TRUE(p);
  for (int i = 0; i < 20; ++i) {
    std::vector<float> x = testkit::ramp(4, float(i));
    testkit::Outcome o = run(*p, {1, 4}, x);
    ASSERT_TRUE(o.status.is_ok()) << o.status.message();
    ASSERT_EQ(o.outputs.size(), 3u);
    EXPECT_EQ(find(o, "a_z")->values, affine(x, 3, 0));
    EXPECT_EQ(find(o, "b_y")->values, affine(x, 2, 1));
    EXPECT_EQ(find(o, "c_y")->values, affine(affine(x, 2, 1), 2, 1));
    EXPECT_EQ(find(o, "c_y")->shape, (Shape{1, 4}));
  }
  EXPECT_EQ(p->metrics().stats.success_count.load(), 20u);
  EXPECT_EQ(a->metrics().stats.success_count.load(), 20u) << "model nodes count their own jobs";
}

TEST_F(DagExecutorTest, RequestChecksUseThePipelineSignature) {
  auto a = model({1, 4});
  DagSpec spec;
  spec.name = "p";
  spec.nodes = {entry(), model_node("a", a, 0, "x")};
  spec.outputs = {{"out", 1, "y"}};
  spec.inputs_info = {f32("x", {1, 4})};
  spec.outputs_info = {f32("out", {1, 4})};
  auto p = pipeline(std::move(spec));
  testkit::Outcome o = run(*p, {1, 5}, testkit::ramp(5, 0));
  EXPECT_EQ(o.status.code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(o.status.message(), "Invalid input shape - Expected: (1,4); Actual: (1,5); input name: x");
}

TEST_F(DagExecutorTest, DemultiplexedRowsGatheredAtTheResponseAndAtANode) {
  auto rows = model({3, 1, 2});     // its outputs split into 3 rows of [1, 2]
  auto per_row = model({1, 2});     // runs once per row
  auto gathered = model({3, 1, 2});  // takes the rows back, stacked
  DagSpec spec;
  spec.name = "demux";
  DagNodeSpec split = model_node("split", rows, 0, "x");
  split.demultiplex = true;
  split.demultiply_count = 3;
  DagNodeSpec join = model_node("join", gathered, 2, "y");
  join.gather_from = 1;
  spec.nodes = {entry(), split, model_node("row", per_row, 1, "y"), join};
  spec.outputs = {{"rows", 2, "z"}, {"joined", 3, "y"}};
  spec.inputs_info = {f32("x", {3, 1, 2})};
  spec.outputs_info = {f32("rows", {3, 1, 2}), f32("joined", {3, 1, 2})};
  auto p = pipeline(std::move(spec));
  ASSERT_TRUE(p);
  std::vector<float> x = testkit::ramp(6, 1);
  testkit::Outcome o = run(*p, {3, 1, 2}, x);
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  std::vector<float> y1 = affine(x, 2, 1);
  EXPECT_EQ(find(o, "rows")->shape, (Shape{3, 1, 2})) << "gathered at the response: a leading dim of 3";
  EXPECT_EQ(find(o, "rows")->values, affine(y1, 3, 0)) << "rows come back in order";
  EXPECT_EQ(find(o, "joined")->shape, (Shape{3, 1, 2})) << "gathered before `join`: no extra dim";
  EXPECT_EQ(find(o, "joined")->values, affine(affine(y1, 2, 1), 2, 1));
  EXPECT_EQ(per_row->metrics().stats.success_count.load(), 3u);
}

TEST_F(DagExecutorTest, CustomNodeDynamicDemultiplexing) {
  auto per_row = model({1, 2});
  for (int rows : {1, 4}) {
    DagSpec spec;
    spec.name = "custom";
    DagNodeSpec lib;
    lib.name = "lib";
    lib.custom = custom({{"rows", std::to_string(rows)}});
    lib.inputs.push_back({0, "x", "x"});
    lib.demultiplex = true;  // count 0: as many as come
    spec.nodes = {entry(), lib, model_node("row", per_row, 1, "out")};
    spec.outputs = {{"y", 2, "y"}};
    spec.inputs_info = {f32("x", {1, 2})};
    spec.outputs_info = {f32("y", {-1, 1, 2})};
    auto p = pipeline(std::move(spec));
    std::vector<float> x{1, 2};
    testkit::Outcome o = run(*p, {1, 2}, x);
    ASSERT_TRUE(o.status.is_ok()) << o.status.message();
    std::vector<float> want;
    for (int r = 0; r < rows; ++r)
      for (float v : x) want.push_back(2 * v * float(r + 1) + 1);
    EXPECT_EQ(find(o, "y")->shape, (Shape{rows, 1, 2}));
    EXPECT_EQ(find(o, "y")->values, want);
  }
  EXPECT_EQ(live_allocations(), 0) << "every output went back through release()";
}

TEST_F(DagExecutorTest, AShortCustomNodeRunsWhereItsInputWasFinished) {
  // model -> custom: once the library's runs are measured short, the custom node runs on the thread that
  // delivered the model's result, not on a worker. With every worker held, the request still completes.
  auto a = model({1, 2});
  DagSpec spec;
  spec.name = "continue";
  DagNodeSpec lib;
  lib.name = "lib";
  lib.custom = custom({});
  lib.inputs.push_back({1, "y", "x"});
  spec.nodes = {entry(), model_node("a", a, 0, "x"), lib};
  spec.outputs = {{"out", 2, "out"}};
  spec.inputs_info = {f32("x", {1, 2})};
  spec.outputs_info = {f32("out", {1, 1, 2})};
  auto p = pipeline(std::move(spec));
  ASSERT_TRUE(p);
  testkit::Outcome first = run(*p, {1, 2}, {1, 2});  // measures the library (on a worker)
  ASSERT_TRUE(first.status.is_ok()) << first.status.message();

  struct Hold {
    std::mutex mu;
    std::condition_variable cv;
    unsigned held = 0;
    bool release = false;
  };
  auto hold = std::make_shared<Hold>();
  WorkerPool& workers = WorkerPool::shared();
  for (unsigned i = 0; i < workers.size(); ++i)
    workers.post([hold] {
      std::unique_lock<std::mutex> lock(hold->mu);
      ++hold->held;
      hold->cv.notify_all();
      hold->cv.wait(lock, [&] { return hold->release; });
    });
  struct Release {  // whatever the test's outcome
    std::shared_ptr<Hold> h;
    ~Release() {
      std::lock_guard<std::mutex> lock(h->mu);
      h->release = true;
      h->cv.notify_all();
    }
  } release{hold};
  {
    std::unique_lock<std::mutex> lock(hold->mu);
    ASSERT_TRUE(hold->cv.wait_for(lock, std::chrono::seconds(60), [&] { return hold->held == workers.size(); }));
  }
  testkit::Outcome o = run(*p, {1, 2}, {3, 4});
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  EXPECT_EQ(find(o, "out")->values, (std::vector<float>{7, 9}));
  EXPECT_EQ(find(o, "out")->shape, (Shape{1, 1, 2}));
}

TEST_F(DagExecutorTest, LibraryFailuresAreRequestErrorsAndReleaseEverything) {
  auto per_row = model({1, 2});
  const std::vector<std::pair<std::map<std::string, std::string>, StatusCode>> cases = {
      {{{"mode", "fail"}}, StatusCode::INTERNAL},      {{{"mode", "null"}}, StatusCode::INTERNAL},
      {{{"mode", "size"}}, StatusCode::INTERNAL},      {{{"mode", "noname"}}, StatusCode::INTERNAL},
      {{{"mode", "precision"}}, StatusCode::INTERNAL}, {{{"mode", "missing"}}, StatusCode::INTERNAL},
      {{{"mode", "rank"}}, StatusCode::INTERNAL},      {{{"rows", "0"}}, StatusCode::ABORTED},
  };
  for (const auto& [params, code] : cases) {
    DagSpec spec;
    spec.name = "bad";
    DagNodeSpec lib;
    lib.name = "lib";
    lib.custom = custom(params);
    lib.inputs.push_back({0, "x", "x"});
    lib.demultiplex = true;
    spec.nodes = {entry(), lib, model_node("row", per_row, 1, "out")};
    spec.outputs = {{"y", 2, "y"}};
    spec.inputs_info = {f32("x", {1, 2})};
    spec.outputs_info = {f32("y", {-1, 1, 2})};
    auto p = pipeline(std::move(spec));
    testkit::Outcome o = run(*p, {1, 2}, {1, 2});
    EXPECT_EQ(o.status.code(), code) << params.begin()->second << ": " << o.status.message();
    EXPECT_EQ(o.deliveries, 1);
    if (code == StatusCode::ABORTED) {
      EXPECT_EQ(o.status.message(), "Pipeline execution aborted due to no content from custom node");
    }
  }
  EXPECT_EQ(live_allocations(), 0);
  std::shared_ptr<NodeLibrary> lib;
  Status st = NodeLibrary::load("/nonexistent/libnothing.so", &lib);
  EXPECT_EQ(st.code(), StatusCode::FAILED_PRECONDITION);
  st = NodeLibrary::load(OVFAST_DAG_TEST_NODE, &lib);
  ASSERT_TRUE(st.is_ok());
  std::shared_ptr<CustomNode> node;
  st = CustomNode::create(lib, {{"mode", "init"}}, &node);
  EXPECT_EQ(st.code(), StatusCode::FAILED_PRECONDITION);
}

TEST_F(DagExecutorTest, LibraryDeclaresItsTensors) {
  auto node = custom({});
  ASSERT_EQ(node->inputs().size(), 1u);
  EXPECT_EQ(node->inputs()[0].name, "x");
  EXPECT_EQ(node->inputs()[0].dtype, DataType::FP32);
  EXPECT_EQ(node->inputs()[0].dims, (Shape{-1, -1}));
  ASSERT_EQ(node->outputs().size(), 1u);
  EXPECT_EQ(node->outputs()[0].dims, (Shape{-1, -1, -1}));
  EXPECT_EQ(live_allocations(), 0) << "info arrays released";
}

TEST_F(DagExecutorTest, AFailingModelNodeFailsTheRequestOnly) {
  auto a = model({1, 4});
  auto wrong = model({1, 3});  // fed a [1, 4]: its own validation refuses the job
  DagSpec spec;
  spec.name = "p";
  spec.nodes = {entry(), model_node("a", a, 0, "x"), model_node("w", wrong, 1, "y")};
  spec.outputs = {{"a", 1, "y"}, {"w", 2, "y"}};
  spec.inputs_info = {f32("x", {1, 4})};
  spec.outputs_info = {f32("a", {1, 4}), f32("w", {1, 3})};
  auto p = pipeline(std::move(spec));
  for (int i = 0; i < 3; ++i) {
    testkit::Outcome o = run(*p, {1, 4}, testkit::ramp(4, 0));
    EXPECT_EQ(o.status.code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(o.status.message().find("Node w: "), std::string::npos) << o.status.message();
  }
  EXPECT_EQ(p->metrics().stats.fail_count.load(), 3u);
  p->drain();
}

// A 2x2 RGB PNG: (10,20,30) (200,5,7) / (0,0,255) (90,91,92).
const unsigned char kPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
    0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a, 0x73, 0x00, 0x00, 0x00,
    0x16, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xe0, 0x12, 0x91, 0x3b, 0xc1, 0xca, 0xce, 0xfc, 0xfb, 0xdb,
    0x87, 0x6f, 0x91, 0x37, 0x01, 0x1d, 0xf1, 0x06, 0x1d, 0x3c, 0x0c, 0xf6, 0xf2, 0x00, 0x00, 0x00, 0x00, 0x49,
    0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

TEST_F(DagExecutorTest, EncodedImagesAreDecodedOnceForModelAndCustomNodes) {
  // img FP32 [1,2,2,3] feeds a model node (y = 2x + 1) and ovfast's topk library (argmax over channels).
  auto m = model({1, 2, 2, 3});
  std::shared_ptr<NodeLibrary> lib;
  ASSERT_TRUE(NodeLibrary::load(std::string(OVFAST_CUSTOM_NODE_DIR) + "/libovfast_topk.so", &lib).is_ok());
  DagNodeSpec topk;
  topk.name = "topk";
  ASSERT_TRUE(CustomNode::create(lib, {{"k", "1"}, {"input_rank", "4"}}, &topk.custom).is_ok());
  topk.inputs.push_back({0, "img", "scores"});
  DagSpec spec;
  spec.name = "images";
  spec.nodes = {entry(), model_node("m", m, 0, "img"), topk};
  spec.outputs = {{"y", 1, "y"}, {"channel", 2, "indices"}};
  spec.inputs_info = {f32("img", {1, 2, 2, 3})};
  spec.outputs_info = {f32("y", {1, 2, 2, 3}), {"channel", DataType::INT32, {1, 2, 2, 1}}};
  auto p = pipeline(std::move(spec));
  ASSERT_TRUE(p);
  auto submit = [&](std::vector<std::string> images) {
    auto job = std::make_unique<InferJob>();
    job->id = "r" + std::to_string(++ids_);
    InputTensor in;
    in.name = "img";
    in.dtype = DataType::BYTES;
    in.shape = {static_cast<int64_t>(images.size())};
    // The elements stay where the "request" holds them; it outlives the job (waited for below).
    const std::string request = testkit::framed(images);
    EXPECT_TRUE(BytesElements::prefixed(reinterpret_cast<const uint8_t*>(request.data()), request.size(), "img",
                                        &in.bytes).is_ok());
    job->inputs.push_back(std::move(in));
    job->sink = sink_;
    const std::string id = job->id;
    EXPECT_TRUE(p->submit(std::move(job)).is_ok()) << "decoded after submit: errors come through the sink";
    EXPECT_TRUE(sink_->wait_for(++ids_submitted_));
    return sink_->outcome(id);
  };
  const std::string png(reinterpret_cast<const char*>(kPng), sizeof(kPng));
  testkit::Outcome o = submit({png});
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  const std::vector<float> bgr{30, 20, 10, 7, 5, 200, 255, 0, 0, 92, 91, 90};  // decoded as OVMS: BGR
  EXPECT_EQ(find(o, "y")->values, affine(bgr, 2, 1));
  ASSERT_EQ(find(o, "channel")->shape, (Shape{1, 2, 2, 1}));
  EXPECT_EQ(m->metrics().stats.success_count.load(), 1u);
  o = submit({png.substr(0, 40)});
  EXPECT_EQ(o.status.code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(o.status.message().find("Image parsing failed"), std::string::npos) << o.status.message();
  o = submit({png, png});
  EXPECT_EQ(o.status.message(), "Invalid input batch size - Expected: 1; Actual: 2; input name: img");
  EXPECT_EQ(m->metrics().stats.success_count.load(), 1u) << "no node ran for a request whose images failed";
  EXPECT_EQ(p->metrics().stats.fail_count.load(), 2u);
}

TEST(DagGraph, RefusesWhatExecutionCannotRun) {
  DagSpec spec;
  spec.name = "p";
  DagNodeSpec e;
  DagNodeSpec n;
  n.name = "n";
  n.inputs.push_back({2, "y", "x"});  // reads from a node after it
  spec.nodes = {e, n};
  spec.outputs = {{"o", 1, "y"}};
  std::shared_ptr<const DagGraph> g;
  EXPECT_EQ(DagGraph::create(spec, &g).code(), StatusCode::INVALID_ARGUMENT);
  spec.nodes[1].inputs[0].src = 0;
  EXPECT_EQ(DagGraph::create(spec, &g).code(), StatusCode::INVALID_ARGUMENT) << "no model or library";
}

}  // namespace
}  // namespace ovfast
