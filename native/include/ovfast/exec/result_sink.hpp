// ResultSink: where a finished job goes. Schedulers run jobs; sinks turn their
// outcome into what the caller needs (a serialized KServe or TFS response,
// owned tensors for Python) and hand it on. Encoding is no scheduler's business.
//
// Threading: deliver() is called exactly once per job, on whichever thread
// finished it (an OpenVINO callback thread, a decode worker, the submitting
// thread in echo mode); it must not block or touch Python. Sinks hold no
// per-job state and may be shared by any number of servables.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "ovfast/completion.hpp"
#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

struct JobTiming {
  uint64_t infer_us = 0;  // inside OpenVINO
  uint64_t wait_us = 0;   // queued for an infer request (or a batch)
};

class ResultSink {
 public:
  virtual ~ResultSink() = default;
  // `outputs` (empty unless status is OK) may view an infer request's buffers:
  // they are valid only during this call. The job's keepalive/context move on
  // with the result.
  virtual void deliver(InferJob& job, Status status, std::vector<OutputTensor>& outputs, const JobTiming& t) = 0;
};

// Each pushes a Completion onto `queue`:
// a serialized inference.ModelInferResponse in Completion::payload;
std::shared_ptr<ResultSink> make_kserve_sink(std::shared_ptr<CompletionQueue> queue);
// a serialized tensorflow.serving.PredictResponse in Completion::payload;
std::shared_ptr<ResultSink> make_tfs_sink(std::shared_ptr<CompletionQueue> queue);
// owned copies of the outputs in Completion::outputs (REST, tests).
std::shared_ptr<ResultSink> make_tensor_sink(std::shared_ptr<CompletionQueue> queue);

}  // namespace ovfast
