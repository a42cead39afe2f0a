// GrpcServer's insides, shared by grpc_server.cpp (start, shutdown, options)
// and grpc_call.cpp (one call: read, serve or forward, answer). Not a public
// header: nothing outside native/src/transport includes it.
#pragma once
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/server.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "ovfast/exec/result_sink.hpp"
#include "ovfast/transport/grpc_server.hpp"

namespace ovfast {
namespace detail {

inline constexpr char kModelInfer[] = "/inference.GRPCInferenceService/ModelInfer";
inline constexpr char kPredict[] = "/tensorflow.serving.PredictionService/Predict";

// What a call is, by its method path.
enum class Kind { KSERVE, TFS, FORWARD, UNKNOWN };

// Finishes the call a served job belongs to (InferJob::context) with the
// encoded response, or with the job's error. Defined in grpc_call.cpp.
class CallSink final : public ResultSink {
 public:
  explicit CallSink(Kind kind) : kind_(kind) {}
  void deliver(InferJob& job, Status status, std::vector<OutputTensor>& outputs, const JobTiming& t) override;

 private:
  Kind kind_;
};

// The generic service of one server instance: every method path reaches it.
class Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(GrpcServer::Impl* server) : server_(server) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  GrpcServer::Impl* server_;
};

}  // namespace detail

struct GrpcServer::Impl {
  GrpcServerOptions opts;
  std::shared_ptr<RouteTable> routes;
  std::shared_ptr<ForwardQueue> forward;
  std::unordered_set<std::string> forwarded;
  std::shared_ptr<ResultSink> kserve_sink = std::make_shared<detail::CallSink>(detail::Kind::KSERVE);
  std::shared_ptr<ResultSink> tfs_sink = std::make_shared<detail::CallSink>(detail::Kind::TFS);
  std::vector<std::unique_ptr<detail::Service>> services;  // one per instance (a service serves one server)
  std::vector<std::unique_ptr<grpc::Server>> servers;      // the --grpc_workers instances

  std::mutex mu;
  std::condition_variable idle_cv;
  int64_t live_calls = 0;  // guarded by mu: reactors created and not done
  bool stopped = false;    // guarded by mu

  std::atomic<uint64_t> native_calls{0}, forwarded_calls{0}, joined_messages{0}, joined_bytes{0};

  // Whether the call may proceed under opts.api_key (grpc_server.cpp).
  bool authorized(const grpc::GenericCallbackServerContext* ctx) const;
  detail::Kind kind_of(const std::string& method) const {
    if (opts.serve_inference && method == detail::kModelInfer) return detail::Kind::KSERVE;
    if (opts.serve_inference && method == detail::kPredict) return detail::Kind::TFS;
    return forwarded.count(method) ? detail::Kind::FORWARD : detail::Kind::UNKNOWN;
  }
  void call_started() {
    std::lock_guard<std::mutex> lock(mu);
    ++live_calls;
  }
  void call_done() {
    std::lock_guard<std::mutex> lock(mu);
    if (--live_calls == 0) idle_cv.notify_all();
  }
};

}  // namespace ovfast
