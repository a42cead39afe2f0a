// ovfast's example custom-node libraries through the C ABI: the six symbols, their declared inputs and
// outputs, params, and the top-k node; every input the server could pass wrongly gives an error code and
// leaves nothing allocated (ASan's leak check runs on this suite). Image nodes: custom_node_image_test.cpp.
#include <cmath>
#include <limits>
#include <random>
#include <thread>

#include "custom_node_helpers.hpp"

namespace ovfast::test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST(CustomNodeLibraries, ExportAllSixSymbols) {
    for (const char* name : {"crop_boxes", "topk", "text_boxes"}) {
        NodeLibrary lib(name);
        EXPECT_TRUE(lib.complete()) << name << ": " << dlerror();
    }
}

TEST(CustomNodeLibraries, DeclareInputsAndOutputs) {
    NodeLibrary topk("topk"), crop("crop_boxes"), text("text_boxes");
    ASSERT_TRUE(topk.complete() && crop.complete() && text.complete());
    EXPECT_EQ(query_info(topk, topk.getInputsInfo), (std::vector<Info>{{"scores", {0, 0}, FP32}}));
    EXPECT_EQ(query_info(topk, topk.getOutputsInfo, {{"k", "5"}}),
              (std::vector<Info>{{"indices", {0, 5}, I32}, {"values", {0, 5}, FP32}}));
    EXPECT_EQ(query_info(crop, crop.getInputsInfo, {{"image_layout", "NHWC"}, {"image_precision", "U8"}}),
              (std::vector<Info>{{"image", {1, 0, 0, 3}, U8}, {"boxes", {1, 0, 5}, FP32}}));
    EXPECT_EQ(query_info(crop, crop.getOutputsInfo, {{"target_image_width", "64"}, {"target_image_height", "32"}}),
              (std::vector<Info>{{"crops", {0, 1, 3, 32, 64}, FP32},
                                 {"coordinates", {0, 1, 4}, FP32},
                                 {"confidences", {0, 1, 1}, FP32}}));
    EXPECT_EQ(query_info(text, text.getInputsInfo),
              (std::vector<Info>{{"image", {1, 3, 0, 0}, FP32}, {"probability_map", {1, 1, 0, 0}, FP32}}));
    EXPECT_EQ(query_info(text, text.getOutputsInfo, {{"text_width", "160"}}),
              (std::vector<Info>{{"text_images", {0, 1, 3, 48, 160}, FP32}, {"text_coordinates", {0, 1, 4}, I32}}));
}

TEST(CustomNodeLibraries, RejectMalformedParams) {
    const std::vector<std::pair<const char*, std::vector<CustomNodeParam>>> cases = {
        {"topk", {{"k", "0"}}},
        {"topk", {{"k", "3x"}}},
        {"topk", {{"k", ""}}},
        {"topk", {{"input_rank", "0"}}},
        {"crop_boxes", {{"image_layout", "HWC"}}},
        {"crop_boxes", {{"target_image_width", "-4"}}},
        {"crop_boxes", {{"confidence_threshold", "nan"}}},
        {"text_boxes", {{"threshold", "1.5"}}},
        {"text_boxes", {{"image_precision", "FP16"}}},
    };
    for (const auto& [name, params] : cases) {
        NodeLibrary lib(name);
        ASSERT_TRUE(lib.complete());
        void* manager = reinterpret_cast<void*>(0x1);
        EXPECT_NE(lib.initialize(&manager, params.data(), static_cast<int>(params.size())), 0)
            << name << " " << params[0].key << "=" << params[0].value;
        EXPECT_EQ(manager, nullptr);
        int rc = 0;
        query_info(lib, lib.getOutputsInfo, params, &rc);
        EXPECT_NE(rc, 0);
        EXPECT_NE(execute(lib, {}, params).rc, 0);
    }
}

TEST(TopK, LargestFirstTiesByColumnNaNLast) {
    NodeLibrary lib("topk");
    ASSERT_TRUE(lib.complete());
    auto scores = InputTensor::of<float>("scores", {0.1f, 0.7f, 0.2f, 0.7f, kNaN, -1.0f, 3.0f, 2.0f}, {2, 4}, FP32);
    NodeRun run = execute(lib, {scores}, {{"k", "3"}});
    ASSERT_EQ(run.rc, 0);
    ASSERT_EQ(run.outputs.size(), 2u);
    EXPECT_EQ(run["indices"].dims, (std::vector<uint64_t>{2, 3}));
    EXPECT_EQ(run["indices"].precision, I32);
    EXPECT_EQ(run["indices"].values<int32_t>(), (std::vector<int32_t>{1, 3, 2, 2, 3, 1}));
    EXPECT_EQ(run["values"].values<float>(), (std::vector<float>{0.7f, 0.7f, 0.2f, 3.0f, 2.0f, -1.0f}));
}

TEST(TopK, ArgmaxByDefaultAndAnEmptyBatch) {
    NodeLibrary lib("topk");
    ASSERT_TRUE(lib.complete());
    NodeRun run = execute(lib, {InputTensor::of<float>("scores", {1, 5, 2, kNaN, 5, 7, 7, -1}, {2, 4}, FP32)});
    ASSERT_EQ(run.rc, 0);
    EXPECT_EQ(run["indices"].values<int32_t>(), (std::vector<int32_t>{1, 1}));  // ties: the first; NaN last
    EXPECT_EQ(run["values"].values<float>(), (std::vector<float>{5, 7}));
    NodeRun empty = execute(lib, {InputTensor::of<float>("scores", {}, {0, 3}, FP32)});
    ASSERT_EQ(empty.rc, 0);
    EXPECT_EQ(empty["indices"].dims, (std::vector<uint64_t>{0, 1}));
    EXPECT_TRUE(empty["indices"].bytes.empty());
}

TEST(TopK, ArgmaxOfLongRowsAsRankedOneByOne) {
    // Rows of many lengths (the vector steps and their tails), maxima anywhere, ties, NaN and infinities:
    // the node must answer as ranking one value at a time does (NaN lowest, ties to the first column).
    NodeLibrary lib("topk");
    ASSERT_TRUE(lib.complete());
    const float inf = std::numeric_limits<float>::infinity();
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uniform(-4.0f, 4.0f);
    std::vector<std::vector<float>> rows;
    for (size_t n : {1, 3, 15, 16, 17, 31, 33, 64, 100, 6625}) {
        std::vector<float> row(n);
        for (float& v : row) v = uniform(rng);
        rows.push_back(row);
        for (size_t i = 0; i < n; i += 5) row[i] = kNaN;
        rows.push_back(row);
        row.assign(n, 1.5f);  // all tied
        rows.push_back(row);
        row.assign(n, -inf);
        row[n / 2] = kNaN;
        rows.push_back(row);  // nothing above -inf: the first column
        row.assign(n, kNaN);
        rows.push_back(row);
        row.assign(n, -0.0f);
        row[n - 1] = 0.0f;
        rows.push_back(row);
        row.assign(n, -1.0f);
        row[n - 1] = inf;
        if (n > 2) row[n / 3] = inf;
        rows.push_back(row);
    }
    for (const std::vector<float>& row : rows) {
        size_t expected = 0;
        auto key = [](float v) { return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v; };
        for (size_t c = 1; c < row.size(); ++c)
            if (key(row[c]) > key(row[expected])) expected = c;
        NodeRun run = execute(lib, {InputTensor::of<float>("scores", row, {1, row.size()}, FP32)});
        ASSERT_EQ(run.rc, 0);
        EXPECT_EQ(run["indices"].values<int32_t>(), (std::vector<int32_t>{static_cast<int32_t>(expected)}))
            << "row of " << row.size();
    }
}

TEST(TopK, RanksTheLastDimensionOfAnyRank) {
    NodeLibrary lib("topk");
    ASSERT_TRUE(lib.complete());
    const std::vector<CustomNodeParam> rank3 = {{"input_rank", "3"}, {"k", "2"}};
    EXPECT_EQ(query_info(lib, lib.getInputsInfo, rank3), (std::vector<Info>{{"scores", {0, 0, 0}, FP32}}));
    EXPECT_EQ(query_info(lib, lib.getOutputsInfo, rank3),
              (std::vector<Info>{{"indices", {0, 0, 2}, I32}, {"values", {0, 0, 2}, FP32}}));
    NodeRun run = execute(lib, {InputTensor::of<float>("scores", {1, 3, 2, 9, 8, 7}, {1, 2, 3}, FP32)}, rank3);
    ASSERT_EQ(run.rc, 0);
    EXPECT_EQ(run["indices"].dims, (std::vector<uint64_t>{1, 2, 2}));
    EXPECT_EQ(run["indices"].values<int32_t>(), (std::vector<int32_t>{1, 2, 0, 1}));
    EXPECT_NE(execute(lib, {InputTensor::of<float>("scores", {1, 3}, {1, 2}, FP32)}, rank3).rc, 0);  // rank 2
}

TEST(TopK, WrongInputsGiveErrorCodes) {
    NodeLibrary lib("topk");
    ASSERT_TRUE(lib.complete());
    const auto good = InputTensor::of<float>("scores", {1, 2, 3, 4}, {2, 2}, FP32);
    EXPECT_EQ(execute(lib, {good}).rc, 0);
    EXPECT_NE(execute(lib, {}).rc, 0);                                                          // missing
    EXPECT_NE(execute(lib, {InputTensor::of<float>("other", {1, 2}, {1, 2}, FP32)}).rc, 0);     // other name
    EXPECT_NE(execute(lib, {InputTensor::of<int32_t>("scores", {1, 2}, {1, 2}, I32)}).rc, 0);   // precision
    EXPECT_NE(execute(lib, {InputTensor::of<float>("scores", {1, 2, 3, 4}, {4}, FP32)}).rc, 0); // rank
    EXPECT_NE(execute(lib, {InputTensor::of<float>("scores", {1, 2, 3}, {2, 2}, FP32)}).rc, 0); // bytes vs dims
    EXPECT_NE(execute(lib, {good}, {{"k", "3"}}).rc, 0);                                        // k > columns

    auto in = good;
    CustomNodeTensor view = in.view();
    CustomNodeTensor* out = nullptr;
    int count = 0;
    view.data = nullptr;  // null buffer
    EXPECT_NE(lib.execute(&view, 1, &out, &count, nullptr, 0, nullptr), 0);
    view = in.view();
    view.dims = nullptr;  // null dims
    EXPECT_NE(lib.execute(&view, 1, &out, &count, nullptr, 0, nullptr), 0);
    view = in.view();
    EXPECT_NE(lib.execute(nullptr, 1, &out, &count, nullptr, 0, nullptr), 0);  // null inputs array
    EXPECT_NE(lib.execute(&view, 1, nullptr, &count, nullptr, 0, nullptr), 0); // null outputs pointer
    EXPECT_NE(lib.execute(&view, 1, &out, nullptr, nullptr, 0, nullptr), 0);
    EXPECT_EQ(out, nullptr);
}

// The params given to initialize() live in its manager; execute() with that manager and no params uses them,
// from many threads at once (TSan runs this suite).
TEST(TopK, ManagerFromInitializeSharedByThreads) {
    NodeLibrary lib("topk");
    ASSERT_TRUE(lib.complete());
    const std::vector<CustomNodeParam> params = {{"k", "2"}};
    void* manager = nullptr;
    ASSERT_EQ(lib.initialize(&manager, params.data(), 1), 0);
    ASSERT_NE(manager, nullptr);
    std::vector<std::thread> threads;
    std::vector<int> wrong(4, 0);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                const float top = static_cast<float>(10 + t * 100 + i);
                NodeRun run = execute(lib, {InputTensor::of<float>("scores", {0, top, 1, top - 1}, {1, 4}, FP32)}, {},
                                  manager);
                if (run.rc != 0 || run["indices"].values<int32_t>() != std::vector<int32_t>{1, 3}) ++wrong[t];
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong, (std::vector<int>{0, 0, 0, 0}));
    EXPECT_EQ(lib.deinitialize(manager), 0);
    EXPECT_EQ(lib.deinitialize(nullptr), 0);
}

}  // namespace
}  // namespace ovfast::test
