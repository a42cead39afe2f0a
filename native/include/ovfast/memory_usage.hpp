// Process memory readings, for measuring what loading a model version costs.
//
// A load's cost is read around it: sample_memory() before and after, and
// load_cost() of the two. Two readings are kept because neither alone is right:
// the resident set (RSS) misses memory the allocator reuses from an earlier
// unload, and the allocator's in-use count misses file mappings (weights
// OpenVINO keeps mapped from the .bin). The cost is the larger delta.
// NOTE: both are process-wide. Allocations made by other threads during the
// load are counted too, so a caller that wants a clean figure runs one load at
// a time (the control plane's residency does).
// Threading: every function may be called from any thread.
#pragma once
#include <cstdint>

namespace ovfast {

struct MemorySample {
  int64_t rss_bytes = 0;   // resident set size (/proc/self/statm), 0 when unreadable
  int64_t heap_bytes = 0;  // bytes the C allocator has handed out and not got back (mallinfo2)
};

MemorySample sample_memory();

// The resident set size alone (/proc/self/statm; 0 when unreadable): no allocator lock is taken,
// unlike sample_memory()'s mallinfo2, which walks every arena under its lock.
int64_t resident_bytes();

// max(RSS delta, heap delta), never below 0.
int64_t load_cost(const MemorySample& before, const MemorySample& after);

// Returns free allocator memory to the system (malloc_trim), so that the RSS
// follows unloads. Milliseconds with a large heap: not for a hot path.
void release_free_memory();

}  // namespace ovfast
