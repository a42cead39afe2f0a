#include "ovfast/memory_usage.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace ovfast {

int64_t resident_bytes() {
  int64_t rss = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    long long size = 0, resident = 0;
    if (std::fscanf(f, "%lld %lld", &size, &resident) == 2) rss = resident * sysconf(_SC_PAGESIZE);
    std::fclose(f);
  }
  return rss;
}

MemorySample sample_memory() {
  MemorySample s;
  s.rss_bytes = resident_bytes();
  // NOTE: mallinfo2 walks every arena under its lock: microseconds, fine around
  // a load that takes milliseconds. hblkhd counts the large blocks malloc mmaps.
  struct mallinfo2 mi = mallinfo2();
  s.heap_bytes = static_cast<int64_t>(mi.uordblks + mi.hblkhd);
  return s;
}

int64_t load_cost(const MemorySample& before, const MemorySample& after) {
  return std::max<int64_t>({0, after.rss_bytes - before.rss_bytes, after.heap_bytes - before.heap_bytes});
}

void release_free_memory() { malloc_trim(0); }

}  // namespace ovfast
