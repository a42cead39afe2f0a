// Request decoding limits (ovfast/codec/limits.hpp) in both wire codecs, and
// what a parse allocates: counts are bounded before anything is allocated
// for them, and what is allocated is proportional to the request's bytes.
// Allocation is measured by replacing the global operator new in this
// executable (the codecs allocate through std containers only).
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "codec_helpers.hpp"
#include "ovfast/codec/kserve.hpp"
#include "ovfast/codec/tfs.hpp"

namespace {
std::atomic<size_t> g_live{0}, g_peak{0};
void* counted(size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  size_t live = g_live.fetch_add(malloc_usable_size(p)) + malloc_usable_size(p);
  size_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {}
  return p;
}
void uncounted(void* p) {
  if (!p) return;
  g_live.fetch_sub(malloc_usable_size(p));
  std::free(p);
}
}  // namespace

void* operator new(size_t n) { return counted(n); }
void* operator new[](size_t n) { return counted(n); }
void operator delete(void* p) noexcept { uncounted(p); }
void operator delete[](void* p) noexcept { uncounted(p); }
void operator delete(void* p, size_t) noexcept { uncounted(p); }
void operator delete[](void* p, size_t) noexcept { uncounted(p); }

namespace ovfast {
namespace {

using namespace testkit;

// Peak bytes held by operator new while fn runs, above what was live before.
template <typename Fn>
size_t peak_during(Fn&& fn) {
  const size_t base = g_live.load();
  g_peak.store(base);
  fn();
  return g_peak.load() - base;
}

// A request of `count` copies of one top-level field (built without Msg, whose growth would be counted).
std::string repeated(uint32_t field, const std::string& payload, size_t count) {
  std::string one;
  put_varint(one, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(one, payload.size());
  one += payload;
  std::string out;
  out.reserve(one.size() * count);
  for (size_t i = 0; i < count; ++i) out += one;
  return out;
}

Status kserve(const std::string& m, const DecodeLimits& l = DecodeLimits{}) {
  InferJob job;
  return parse_kserve_request(reinterpret_cast<const uint8_t*>(m.data()), m.size(), &job, l);
}
Status tfs(const std::string& m, const DecodeLimits& l = DecodeLimits{}) {
  InferJob job;
  TfsModelSpec spec;
  return parse_tfs_predict_request(reinterpret_cast<const uint8_t*>(m.data()), m.size(), &spec, &job, l);
}

DecodeLimits small() {
  DecodeLimits l;
  l.max_inputs = 2;
  l.max_outputs = 2;
  l.max_dims = 3;
  l.max_parameters = 2;
  return l;
}

Msg kinput(const std::string& name, std::vector<uint64_t> shape) {
  return Msg().bytes(1, name).bytes(2, "FP32").packed_varints(3, shape);
}

TEST(DecodeLimits, DefaultsAreFarAboveRealModels) {
  DecodeLimits l = decode_limits();
  EXPECT_GE(l.max_inputs, 1024u);
  EXPECT_GE(l.max_outputs, 1024u);
  EXPECT_GE(l.max_dims, 32u);
  EXPECT_GE(l.max_parameters, 256u);
}

TEST(DecodeLimits, ProcessWideLimitsApplyWhenNoneArePassed) {
  const DecodeLimits saved = decode_limits();
  set_decode_limits(small());
  std::string three = repeated(5, kinput("x", {1}).str(), 3);
  InferJob job;
  Status st = parse_kserve_request(reinterpret_cast<const uint8_t*>(three.data()), three.size(), &job);
  set_decode_limits(saved);
  expect_invalid(st, "more than 2 inputs");
  EXPECT_EQ(decode_limits().max_inputs, saved.max_inputs);
}

TEST(DecodeLimits, KServeCountsAtTheLimitPassAndOneMoreIsRefused) {
  const DecodeLimits l = small();
  EXPECT_TRUE(kserve(repeated(5, kinput("x", {1, 2, 3}).str(), 2), l).is_ok());
  expect_invalid(kserve(repeated(5, kinput("x", {1}).str(), 3), l), "more than 2 inputs (the server's limit, --max_request_inputs)");
  expect_invalid(kserve(repeated(7, "", 3), l), "more than 2 raw_input_contents");
  EXPECT_TRUE(kserve(repeated(6, Msg().bytes(1, "o").str(), 2), l).is_ok());
  expect_invalid(kserve(repeated(6, Msg().bytes(1, "o").str(), 3), l), "more than 2 outputs (the server's limit, --max_request_outputs)");
  expect_invalid(kserve(Msg().msg(5, kinput("deep", {1, 2, 3, 4})).str(), l),
                 "more than 3 dimensions in the shape of input deep (the server's limit, --max_tensor_dims)");
  // unpacked dims count too
  Msg unpacked = Msg().bytes(1, "u").bytes(2, "FP32").varint(3, 1).varint(3, 1).packed_varints(3, {1}).varint(3, 1);
  expect_invalid(kserve(Msg().msg(5, unpacked).str(), l), "more than 3 dimensions in the shape of input u");
}

TEST(DecodeLimits, KServeParametersAreCountedAcrossRequestInputsAndOutputs) {
  const DecodeLimits l = small();
  Msg param = Msg().bytes(1, "k").msg(2, Msg().varint(1, 1));
  Msg two = Msg().msg(4, param).msg(5, kinput("x", {1}).msg(4, param));
  EXPECT_TRUE(kserve(two.str(), l).is_ok());
  Msg three = Msg(two).msg(6, Msg().bytes(1, "o").msg(2, param));
  expect_invalid(kserve(three.str(), l), "more than 2 parameters (the server's limit, --max_request_parameters)");
  expect_invalid(kserve(repeated(4, param.str(), 3), l), "more than 2 parameters");
}

TEST(DecodeLimits, TfsEntriesAndDimsAreBounded) {
  const DecodeLimits l = small();
  auto entry = [](const std::string& key, size_t dims) {
    Msg shape;
    for (size_t i = 0; i < dims; ++i) shape.msg(2, Msg().varint(1, 1));
    return Msg().bytes(1, key).msg(2, Msg().varint(1, 1).msg(2, shape));
  };
  EXPECT_TRUE(tfs(Msg().msg(2, entry("a", 3)).msg(2, entry("b", 1)).str(), l).is_ok());
  expect_invalid(tfs(Msg().msg(2, entry("a", 1)).msg(2, entry("b", 1)).msg(2, entry("c", 1)).str(), l),
                 "more than 2 inputs (the server's limit, --max_request_inputs)");
  expect_invalid(tfs(Msg().msg(2, entry("wide", 4)).str(), l),
                 "more than 3 dimensions in the shape of input wide (the server's limit, --max_tensor_dims)");
}

// The case: 20 MB of empty `inputs` entries cost 3.2 GB. Here 2 MB of
// them (a million entries) must be refused without allocating per entry.
TEST(DecodeMemory, ManyEmptyEntriesAreRefusedBeforeAllocating) {
  const std::string inputs = repeated(5, "", 1 << 20);
  const std::string outputs = repeated(6, "", 1 << 20);
  const std::string raws = repeated(7, "", 1 << 20);
  const std::string params = repeated(4, "", 1 << 20);
  const std::string tfs_entries = repeated(2, "", 1 << 20);
  for (const std::string* m : {&inputs, &outputs, &raws, &params}) {
    Status st;
    size_t peak = peak_during([&] { st = kserve(*m); });
    EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT) << st.message();
    EXPECT_LT(peak, 64u * 1024) << "bytes allocated to refuse a " << m->size() << "-byte request";
  }
  Status st;
  size_t peak = peak_during([&] { st = tfs(tfs_entries); });
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT) << st.message();
  EXPECT_LT(peak, 64u * 1024);
}

// Within the limits, the entries a request may carry cost a bounded amount
// (reserved exactly, no growth by doubling), and a long shape field cannot
// allocate more than max_dims.
TEST(DecodeMemory, EntriesWithinTheLimitsCostABoundedAmount) {
  const std::string m = repeated(5, Msg().bytes(2, "FP32").str(), DecodeLimits{}.max_inputs);
  Status st;
  size_t peak = peak_during([&] { st = kserve(m); });
  EXPECT_TRUE(st.is_ok()) << st.message();
  EXPECT_LT(peak, DecodeLimits{}.max_inputs * 2 * (sizeof(InputTensor) + 64));
  std::string dims(1 << 20, '\x01');  // a million packed dims of 1
  Msg in = Msg().bytes(1, "x").bytes(2, "FP32").bytes(3, dims);
  const std::string many_dims = Msg().msg(5, in).str();
  peak = peak_during([&] { st = kserve(many_dims); });
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(peak, 64u * 1024);
}

// Unpacked typed contents (one tag per value) used to cost a bookkeeping
// record per value; now only the decoded tensor is allocated, exactly once.
TEST(DecodeMemory, UnpackedTypedContentsCostOnlyTheirTensor) {
  const size_t n = 1 << 19;
  std::string contents;
  contents.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) { contents.push_back(static_cast<char>(2 << 3)); contents.push_back('\x05'); }
  Msg in = Msg().bytes(1, "x").bytes(2, "INT32").packed_varints(3, {n}).bytes(5, contents);
  const std::string m = Msg().msg(5, in).str();
  InferJob job;
  Status st;
  size_t peak = peak_during([&] {
    st = parse_kserve_request(reinterpret_cast<const uint8_t*>(m.data()), m.size(), &job, DecodeLimits{});
  });
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(job.inputs[0].typed_count, n);
  EXPECT_EQ(values_of<int32_t>(job.inputs[0]).back(), 5);
  EXPECT_LT(peak, n * sizeof(int32_t) + 64 * 1024) << "request of " << m.size() << " bytes";

  // TFS int_val, unpacked
  std::string vals;
  for (size_t i = 0; i < n; ++i) { vals.push_back(static_cast<char>(7 << 3)); vals.push_back('\x05'); }
  Msg shape = Msg().msg(2, Msg().varint(1, n));
  Msg tensor = Msg().varint(1, 3 /* DT_INT32 */).msg(2, shape).raw(vals);
  const std::string t = Msg().msg(2, Msg().bytes(1, "x").msg(2, tensor)).str();
  InferJob tjob;
  TfsModelSpec spec;
  peak = peak_during([&] {
    st = parse_tfs_predict_request(reinterpret_cast<const uint8_t*>(t.data()), t.size(), &spec, &tjob, DecodeLimits{});
  });
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(tjob.inputs[0].typed_count, n);
  EXPECT_LT(peak, n * sizeof(int32_t) + 64 * 1024);
}

// A million empty BYTES elements (raw, bytes_contents, TFS string_val) are
// located and counted, not copied: the parse allocates nothing per element
// (it used to hold a 32-byte std::string each before validation could refuse them).
TEST(DecodeMemory, BytesElementsCostNothingPerElementAtParse) {
  const size_t n = 1 << 20;
  Msg in = Msg().bytes(1, "s").bytes(2, "BYTES").packed_varints(3, {n});
  const std::string raw = Msg().msg(5, in).bytes(7, std::string(4 * n, '\0')).str();
  std::string empties;
  empties.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) empties.append("\x42\x00", 2);  // bytes_contents (8), empty
  const std::string typed = Msg().msg(5, Msg(in).bytes(5, empties)).str();
  Msg shape = Msg().msg(2, Msg().varint(1, n));
  Msg tensor = Msg().varint(1, 7 /* DT_STRING */).msg(2, shape).raw(empties);  // string_val is field 8 too
  const std::string tfs_req = Msg().msg(2, Msg().bytes(1, "s").msg(2, tensor)).str();

  for (const std::string* m : {&raw, &typed}) {
    InferJob job;
    Status st;
    const size_t peak = peak_during([&] {
      st = parse_kserve_request(reinterpret_cast<const uint8_t*>(m->data()), m->size(), &job);
    });
    ASSERT_TRUE(st.is_ok()) << st.message();
    ASSERT_EQ(job.inputs[0].bytes.count(), n);
    EXPECT_EQ(job.inputs[0].bytes.string_tensor_bytes(), n * sizeof(std::string));
    EXPECT_LT(peak, 64u * 1024) << "request of " << m->size() << " bytes";
  }
  InferJob tjob;
  TfsModelSpec spec;
  Status st;
  const size_t peak = peak_during([&] {
    st = parse_tfs_predict_request(reinterpret_cast<const uint8_t*>(tfs_req.data()), tfs_req.size(), &spec, &tjob);
  });
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(tjob.inputs[0].bytes.count(), n);
  EXPECT_LT(peak, 64u * 1024);
}

}  // namespace
}  // namespace ovfast
