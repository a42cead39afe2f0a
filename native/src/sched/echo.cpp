#include "ovfast/sched/echo.hpp"

#include "ovfast/exec/result_sink.hpp"

namespace ovfast {

Status EchoScheduler::submit(std::unique_ptr<InferJob>& job) {
  const std::vector<TensorInfo>& outputs = model_.outputs();
  std::vector<OutputTensor> outs;
  for (size_t i = 0; i < job->inputs.size() && i < outputs.size(); ++i) {
    InputTensor& in = job->inputs[i];
    if (!job->requested_outputs.empty()) {
      bool wanted = false;
      for (const std::string& n : job->requested_outputs) wanted |= n == outputs[i].name;
      if (!wanted) continue;
    }
    OutputTensor o;
    o.name = outputs[i].name;
    o.dtype = in.dtype;
    o.shape = in.shape;
    ov::Shape shape(in.shape.begin(), in.shape.end());
    if (in.dtype == DataType::BYTES) {
      o.tensor = ov::Tensor(ov::element::string, shape);
      in.bytes.write_to(o.tensor.data<std::string>());
    } else if (in.size == 0) {
      o.tensor = ov::Tensor(datatype_info(in.dtype).element, shape);
    } else {
      o.tensor = ov::Tensor(datatype_info(in.dtype).element, shape, const_cast<uint8_t*>(in.data));
    }
    outs.push_back(std::move(o));
  }
  metrics_.job_done(job->metrics_route, job->received_ns, true, false, 0, 0, 1);
  metrics_.execution_done();
  job->sink->deliver(*job, Status::ok(), outs, {});
  job.reset();  // the contract: taken on OK
  return Status::ok();
}

}  // namespace ovfast
