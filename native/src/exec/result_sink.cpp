#include "ovfast/exec/result_sink.hpp"

#include <cstring>

#include "ovfast/codec/kserve.hpp"
#include "ovfast/codec/tfs.hpp"

namespace ovfast {
namespace {

ov::Tensor copy_tensor(const ov::Tensor& src) {
  ov::Tensor dst(src.get_element_type(), src.get_shape());
  if (src.get_element_type() == ov::element::string) {
    const std::string* s = src.data<std::string>();
    std::string* d = dst.data<std::string>();
    for (size_t i = 0; i < src.get_size(); ++i) d[i] = s[i];
  } else if (src.get_byte_size()) {
    std::memcpy(dst.data(), src.data(), src.get_byte_size());
  }
  return dst;
}

enum class Form { KSERVE, TFS, TENSORS };

class QueueSink final : public ResultSink {
 public:
  QueueSink(std::shared_ptr<CompletionQueue> queue, Form form) : queue_(std::move(queue)), form_(form) {}

  void deliver(InferJob& job, Status status, std::vector<OutputTensor>& outputs, const JobTiming& t) override {
    Completion c;
    c.keepalive = job.keepalive;
    c.context = job.context;
    job.keepalive = job.context = nullptr;
    c.infer_us = t.infer_us;
    c.wait_us = t.wait_us;
    if (status.is_ok()) {
      switch (form_) {
        case Form::KSERVE:
          c.payload = encode_kserve_response(job.model_name, job.model_version, job.id, outputs);
          break;
        case Form::TFS:
          c.payload = encode_tfs_response(job.model_name, job.model_version, outputs);
          break;
        case Form::TENSORS:
          // The infer request's buffers are reused once this returns: Python gets its own copy.
          for (OutputTensor& o : outputs) o.tensor = copy_tensor(o.tensor);
          c.outputs = std::move(outputs);
          break;
      }
    }
    c.status = std::move(status);
    queue_->push(std::move(c));
  }

 private:
  std::shared_ptr<CompletionQueue> queue_;
  Form form_;
};

}  // namespace

std::shared_ptr<ResultSink> make_kserve_sink(std::shared_ptr<CompletionQueue> queue) {
  return std::make_shared<QueueSink>(std::move(queue), Form::KSERVE);
}
std::shared_ptr<ResultSink> make_tfs_sink(std::shared_ptr<CompletionQueue> queue) {
  return std::make_shared<QueueSink>(std::move(queue), Form::TFS);
}
std::shared_ptr<ResultSink> make_tensor_sink(std::shared_ptr<CompletionQueue> queue) {
  return std::make_shared<QueueSink>(std::move(queue), Form::TENSORS);
}

}  // namespace ovfast
