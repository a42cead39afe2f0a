// memory_usage: the readings a load's measured size comes from.
#include "ovfast/memory_usage.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

namespace ovfast {
namespace {

constexpr int64_t kMiB = 1 << 20;

// Sanitizer runtimes replace the allocator, and their mallinfo2 reports nothing.
bool heap_readable() { return sample_memory().heap_bytes > 0; }

TEST(MemoryUsage, SampleReadsTheProcess) {
  MemorySample s = sample_memory();
  EXPECT_GT(s.rss_bytes, 0);
  if (!heap_readable()) GTEST_SKIP() << "allocator statistics unavailable (sanitizer build)";
  EXPECT_GT(s.heap_bytes, 0);
}

TEST(MemoryUsage, AnAllocationTouchedIsCounted) {
  const size_t size = 64 * kMiB;
  MemorySample before = sample_memory();
  std::unique_ptr<char[]> block(new char[size]);
  std::memset(block.get(), 1, size);  // resident, not only reserved
  MemorySample after = sample_memory();
  EXPECT_GE(after.rss_bytes - before.rss_bytes, static_cast<int64_t>(size) - kMiB);
  EXPECT_GE(load_cost(before, after), static_cast<int64_t>(size) - kMiB);
  EXPECT_EQ(block[size - 1], 1);
  if (heap_readable()) EXPECT_GE(after.heap_bytes - before.heap_bytes, static_cast<int64_t>(size));
}

TEST(MemoryUsage, CostIsTheLargerDeltaAndNeverNegative) {
  MemorySample a{100 * kMiB, 50 * kMiB};
  EXPECT_EQ(load_cost(a, MemorySample{110 * kMiB, 52 * kMiB}), 10 * kMiB);  // a file mapping: RSS only
  EXPECT_EQ(load_cost(a, MemorySample{100 * kMiB, 58 * kMiB}), 8 * kMiB);   // reused pages: heap only
  EXPECT_EQ(load_cost(a, MemorySample{90 * kMiB, 40 * kMiB}), 0);           // something else freed meanwhile
}

TEST(MemoryUsage, ReleasingFreeMemoryLowersTheHeapNotBelowWhatIsInUse) {
  if (!heap_readable()) GTEST_SKIP() << "allocator statistics unavailable (sanitizer build)";
  MemorySample before = sample_memory();
  {
    std::unique_ptr<char[]> block(new char[32 * kMiB]);
    std::memset(block.get(), 2, 32 * kMiB);
  }
  release_free_memory();
  MemorySample after = sample_memory();
  // The block went back: in-use bytes are where they were (within allocator noise).
  EXPECT_LT(after.heap_bytes - before.heap_bytes, kMiB);
}

}  // namespace
}  // namespace ovfast
