#include "ovfast/transport/grpc_server.hpp"

#include <grpc/grpc.h>
#include <malloc.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/byte_buffer.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "ovfast/codec/inflate.hpp"
#include "ovfast/codec/kserve.hpp"
#include "ovfast/codec/tfs.hpp"
#include "ovfast/exec/result_sink.hpp"
#include "ovfast/transport/grpc_status.hpp"

// NOTE: grpc++ declares this friend of ByteBuffer for its own tests and ships
// no definition; it is the one way to read whether a received message is
// still compressed (per-message decompression is off: see start()).
namespace grpc::internal {
class GrpcByteBufferPeer {
 public:
  explicit GrpcByteBufferPeer(ByteBuffer* b) : b_(b) {}
  grpc_byte_buffer* c_buffer() { return b_->c_buffer(); }

 private:
  ByteBuffer* b_;
};
}  // namespace grpc::internal

namespace ovfast {
namespace {

constexpr char kModelInfer[] = "/inference.GRPCInferenceService/ModelInfer";
constexpr char kPredict[] = "/tensorflow.serving.PredictionService/Predict";
// A failed call whose request was at least this big hands the freed memory
// back to the OS when it is done (malloc_trim): glibc otherwise keeps the
// request's many small gRPC slices in its arenas, hundreds of MB per request.
constexpr size_t kTrimAfterBytes = 16 << 20;
constexpr int kResourceExhausted = 8;
constexpr int kUnimplemented = 12;
constexpr int kInternal = 13;
constexpr int kUnavailable = 14;
constexpr int kUnauthenticated = 16;

// The calls a load balancer or an orchestrator's probe makes: never behind the
// API key (api/access.py HEALTH_RPCS; REST exempts /v2/health/live and /ready).
bool is_health(const std::string& method) {
  return method == "/inference.GRPCInferenceService/ServerLive" ||
         method == "/inference.GRPCInferenceService/ServerReady";
}

// a == b, in a time that depends on their lengths only.
bool same_secret(const char* a, size_t a_size, const std::string& b) {
  unsigned char diff = a_size == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i) diff |= static_cast<unsigned char>(b[i] ^ (i < a_size ? a[i] : 0));
  return diff == 0;
}

// Whether an authorization value is "Bearer <key>" (the scheme in any case, as REST accepts it).
bool bearer_matches(grpc::string_ref value, const std::string& key) {
  static constexpr char kScheme[] = "bearer ";
  constexpr size_t n = sizeof(kScheme) - 1;
  if (value.size() < n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(value.data()[i])) != kScheme[i]) return false;
  return same_secret(value.data() + n, value.size() - n, key);
}

std::shared_ptr<grpc::ServerCredentials> credentials(const GrpcServerOptions& o) {
  if (o.tls_cert_pem.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(o.tls_ca_pem.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = o.tls_ca_pem;
  ssl.pem_key_cert_pairs.push_back({o.tls_key_pem, o.tls_cert_pem});
  return grpc::SslServerCredentials(ssl);
}

// What a call is, by its method path.
enum class Kind { KSERVE, TFS, FORWARD, UNKNOWN };

class Call;

// Finishes the call a served job belongs to (InferJob::context) with the
// encoded response, or with the job's error.
class CallSink final : public ResultSink {
 public:
  explicit CallSink(Kind kind) : kind_(kind) {}
  void deliver(InferJob& job, Status status, std::vector<OutputTensor>& outputs, const JobTiming& t) override;

 private:
  Kind kind_;
};

class Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(GrpcServer::Impl* server) : server_(server) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  GrpcServer::Impl* server_;
};

}  // namespace

struct GrpcServer::Impl {
  GrpcServerOptions opts;
  std::shared_ptr<RouteTable> routes;
  std::shared_ptr<ForwardQueue> forward;
  std::unordered_set<std::string> forwarded;
  std::shared_ptr<ResultSink> kserve_sink = std::make_shared<CallSink>(Kind::KSERVE);
  std::shared_ptr<ResultSink> tfs_sink = std::make_shared<CallSink>(Kind::TFS);
  std::vector<std::unique_ptr<Service>> services;      // one per instance (a service serves one server)
  std::vector<std::unique_ptr<grpc::Server>> servers;  // the --grpc_workers instances

  std::mutex mu;
  std::condition_variable idle_cv;
  int64_t live_calls = 0;  // guarded by mu: reactors created and not done
  bool stopped = false;    // guarded by mu

  std::atomic<uint64_t> native_calls{0}, forwarded_calls{0}, joined_messages{0}, joined_bytes{0};
  bool authorized(const grpc::GenericCallbackServerContext* ctx) const {
    if (opts.api_key.empty() || is_health(ctx->method())) return true;
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    return it != md.end() && bearer_matches(it->second, opts.api_key);
  }

  Kind kind_of(const std::string& method) const {
    if (method == kModelInfer) return Kind::KSERVE;
    if (method == kPredict) return Kind::TFS;
    return forwarded.count(method) ? Kind::FORWARD : Kind::UNKNOWN;
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

namespace {

// One RPC: a unary call carried by the generic (bidi) reactor — one request
// read, then exactly one answer(): a response message, or a status.
// Lifetime: created by gRPC, deleted in OnDone(), which gRPC calls only after
// the answer; until then whoever holds the call (a job's context, a pending
// forwarded call) may answer it from any thread.
class Call final : public grpc::ServerGenericBidiReactor {
 public:
  Call(GrpcServer::Impl* server, const grpc::GenericCallbackServerContext* ctx)
      : server_(server), ctx_(ctx), kind_(server->kind_of(ctx->method())) {
    server_->call_started();
    if (!server_->authorized(ctx)) {
      // api/access.py MISSING_KEY: the same words on both ports
      Finish(grpc::Status(static_cast<grpc::StatusCode>(kUnauthenticated),
                          "Missing or invalid API key: send 'Authorization: Bearer <key>'"));
      return;
    }
    if (kind_ == Kind::UNKNOWN) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "Method not found!"));  // grpcio's words
      return;
    }
    StartRead(&request_);
  }

  void answer(std::string&& response) {
    grpc::Slice slice;
    if (!response.empty()) {
      // NOTE: the slice takes the string over; it is freed when gRPC has sent it.
      auto* owned = new std::string(std::move(response));
      slice = grpc::Slice(owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
    }
    response_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }
  void fail(int grpc_code, const std::string& message) {
    failed_ = true;
    Finish(grpc::Status(static_cast<grpc::StatusCode>(grpc_code), message));
  }
  // A served request that failed (refused at submit, or its job failed).
  void fail_served(const Status& st) {
    std::string message = printable_message(st.message());
    if (server_->opts.report_failures) server_->forward->report({model_, version_, message});
    fail(grpc_status_code(st.code()), message);
  }

 private:
  void OnReadDone(bool ok) override {
    if (!ok) {
      fail(kInternal, "No request message received");
      return;
    }
    received_ns_ = now_ns();
    received_bytes_ = request_.Length();
    if (!reserve(received_bytes_)) return;
    if (!inflate_compressed()) return;
    if (!request_.Dump(&slices_).ok()) {
      fail(kInternal, "Cannot read the request message");
      return;
    }
    const uint8_t* data = nullptr;
    size_t size = 0;
    if (slices_.size() == 1) {
      data = slices_[0].begin();
      size = slices_[0].size();
    } else if (slices_.size() > 1) {
      // The one copy a received request may cost: its slices joined.
      joined_.reserve(request_.Length());
      for (const grpc::Slice& s : slices_) joined_.append(reinterpret_cast<const char*>(s.begin()), s.size());
      slices_.clear();
      data = reinterpret_cast<const uint8_t*>(joined_.data());
      size = joined_.size();
      server_->joined_messages.fetch_add(1, std::memory_order_relaxed);
      server_->joined_bytes.fetch_add(size, std::memory_order_relaxed);
    }
    request_.Clear();  // the slices (or the joined copy) hold the bytes now
    if (kind_ == Kind::FORWARD) forward(data, size);
    else serve(data, size);
  }

  // Counts the request's `bytes` against --max_request_memory (what is held
  // already by this call included). False when refused: the call was
  // answered RESOURCE_EXHAUSTED and its buffers are freed.
  bool reserve(size_t bytes) {
    RequestMemory* budget = server_->opts.request_memory.get();
    const auto want = static_cast<int64_t>(bytes);
    if (budget == nullptr || want <= reserved_) return true;
    if (budget->try_reserve(want - reserved_)) {
      reserved_ = want;
      return true;
    }
    request_.Clear();  // its memory goes back now, not when the call is done
    joined_ = std::string();
    fail(kResourceExhausted, "Server is overloaded: requests in flight hold " + std::to_string(budget->in_use()) +
                                 " bytes; this one needs " + std::to_string(want - reserved_) +
                                 " more (max_request_memory " + std::to_string(budget->limit()) + "); retry later");
    return false;
  }

  // The client cancelled, or the call's deadline passed: a job still queued is dropped (never run).
  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }

  // A compressed message is inflated here, bounded by the message limit while
  // inflating (a bomb is refused before its size is ever allocated), into
  // joined_, which the request then views. False when the call was answered.
  bool inflate_compressed() {
    grpc_byte_buffer* raw = grpc::internal::GrpcByteBufferPeer(&request_).c_buffer();
    if (!raw || raw->type != GRPC_BB_RAW || raw->data.raw.compression == GRPC_COMPRESS_NONE) return true;
    const grpc_compression_algorithm algo = raw->data.raw.compression;
    if (algo != GRPC_COMPRESS_GZIP && algo != GRPC_COMPRESS_DEFLATE) {
      fail(kUnimplemented, "Unsupported message compression algorithm");
      return false;
    }
    std::vector<ByteRange> pieces;
    const grpc_slice_buffer& sb = raw->data.raw.slice_buffer;
    for (size_t i = 0; i < sb.count; ++i)
      pieces.push_back({GRPC_SLICE_START_PTR(sb.slices[i]), GRPC_SLICE_LENGTH(sb.slices[i])});
    Status st = inflate_message(pieces, algo == GRPC_COMPRESS_GZIP ? MessageCompression::GZIP : MessageCompression::DEFLATE,
                                static_cast<size_t>(server_->opts.max_message_bytes), &joined_);
    request_.Clear();  // the compressed bytes are not needed any more
    received_bytes_ = std::max(received_bytes_, joined_.size());
    if (!st.is_ok()) {
      joined_ = std::string();
      fail(grpc_status_code(st.code()), st.message());
      return false;
    }
    if (!reserve(joined_.size())) return false;
    const auto* data = reinterpret_cast<const uint8_t*>(joined_.data());
    if (kind_ == Kind::FORWARD) forward(data, joined_.size());
    else serve(data, joined_.size());
    return false;
  }

  void OnDone() override {
    GrpcServer::Impl* server = server_;
    if (reserved_ > 0) server->opts.request_memory->release(reserved_);
    const bool trim = failed_ && received_bytes_ >= kTrimAfterBytes;
    delete this;
    if (trim) malloc_trim(0);
    server->call_done();
  }

  // ModelInfer / Predict: runs natively when the request is well-formed and routed.
  void serve(const uint8_t* data, size_t size) {
    auto job = std::make_unique<InferJob>();
    job->received_ns = received_ns_;
    int64_t version = 0;
    bool routable;
    if (kind_ == Kind::KSERVE) {
      routable = parse_kserve_request(data, size, job.get()).is_ok() &&
                 parse_version_label(job->model_version, &version);
    } else {
      TfsModelSpec spec;
      routable = parse_tfs_predict_request(data, size, &spec, job.get()).is_ok() && spec.present && spec.version >= 0;
      version = spec.version;
    }
    // NOTE: a request that is malformed or not routed here goes to the control
    // plane as it came: its answer (an error, a wait for a loading version, an
    // "auto" reshape) is worded exactly as clients always got it.
    std::shared_ptr<Servable> servable;
    if (routable) {
      std::shared_ptr<const RouteSnapshot> routes = server_->routes->snapshot();
      if (const VersionRoute* r = routes->find(job->model_name, version)) {
        servable = r->servable;
        job->model_version = r->label;
        model_ = job->model_name;
        version_ = r->label;
      }
    }
    if (!servable) {
      job.reset();
      forward(data, size);
      return;
    }
    const bool kserve = kind_ == Kind::KSERVE;
    job->metrics_route = kserve ? server_->opts.kserve_route : server_->opts.tfs_route;
    job->sink = kserve ? server_->kserve_sink : server_->tfs_sink;
    job->context = this;
    job->cancelled = &cancelled_;
    job->deadline_ns = deadline_ns(received_ns_);
    server_->native_calls.fetch_add(1, std::memory_order_relaxed);
    Status st = servable->submit(std::move(job));
    // On OK the sink answers, maybe already on another thread: `this` may be gone.
    if (!st.is_ok()) fail_served(st);
    // NOTE: if the control plane dropped this version meanwhile, `servable` is
    // the last reference and ~Servable runs here, waiting for the job just submitted.
  }

  // The client's deadline on the steady clock of `now` (0: none).
  uint64_t deadline_ns(uint64_t now) const {
    const auto left = ctx_->deadline() - std::chrono::system_clock::now();
    if (left > std::chrono::hours(24 * 365)) return 0;  // no deadline: gRPC reports the infinite future
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    return ns <= 0 ? now : now + static_cast<uint64_t>(ns);
  }

  void forward(const uint8_t* data, size_t size) {
    std::string body = joined_.empty() ? std::string(reinterpret_cast<const char*>(data), size) : std::move(joined_);
    slices_.clear();
    joined_.clear();
    server_->forwarded_calls.fetch_add(1, std::memory_order_relaxed);
    bool queued = server_->forward->push(ctx_->method(), std::move(body), [this](ForwardReply&& reply) {
      if (reply.grpc_code == 0) answer(std::move(reply.response));
      else fail(reply.grpc_code, reply.message);
    });
    if (!queued) fail(kUnavailable, "Server is shutting down");
  }

  GrpcServer::Impl* server_;
  const grpc::GenericCallbackServerContext* ctx_;  // valid until OnDone
  const Kind kind_;
  grpc::ByteBuffer request_, response_;
  std::vector<grpc::Slice> slices_;  // the request's bytes, when they came in one slice
  std::string joined_;               // ... or joined, when they came in several
  uint64_t received_ns_ = 0;
  size_t received_bytes_ = 0;        // the request's size (inflated size when it came compressed)
  std::atomic<bool> failed_{false};  // answered with an error status
  std::atomic<bool> cancelled_{false};  // set by OnCancel; InferJob::cancelled points here
  int64_t reserved_ = 0;                // bytes taken from opts.request_memory until OnDone
  std::string model_, version_;      // where a served request was routed
};

void CallSink::deliver(InferJob& job, Status status, std::vector<OutputTensor>& outputs, const JobTiming&) {
  Call* call = static_cast<Call*>(job.context);
  job.context = nullptr;
  if (!status.is_ok()) {
    call->fail_served(status);
    return;
  }
  std::string body;
  try {
    body = kind_ == Kind::KSERVE ? encode_kserve_response(job.model_name, job.model_version, job.id, outputs)
                                 : encode_tfs_response(job.model_name, job.model_version, outputs);
  } catch (const std::exception& e) {
    call->fail_served(internal_error(std::string("Internal server error - cannot encode the response: ") + e.what()));
    return;
  }
  call->answer(std::move(body));
}

grpc::ServerGenericBidiReactor* Service::CreateReactor(grpc::GenericCallbackServerContext* ctx) {
  return new Call(server_, ctx);
}

}  // namespace

GrpcServer::GrpcServer(GrpcServerOptions options, std::shared_ptr<RouteTable> routes,
                       std::shared_ptr<ForwardQueue> forward)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  impl_->routes = std::move(routes);
  impl_->forward = std::move(forward);
  impl_->forwarded.insert(impl_->opts.forwarded_methods.begin(), impl_->opts.forwarded_methods.end());
}

GrpcServer::~GrpcServer() { shutdown(0); }

namespace {
// "host:port" with its port replaced ("[::1]:0" -> "[::1]:5001").
std::string with_port(const std::string& address, int port) {
  return address.substr(0, address.rfind(':') + 1) + std::to_string(port);
}
}  // namespace

Status GrpcServer::start(std::vector<int>* ports) {
  const GrpcServerOptions& o = impl_->opts;
  const int workers = std::max(1, o.workers);
  std::shared_ptr<grpc::ServerCredentials> creds = credentials(o);
  grpc::ResourceQuota quota("ovfast");  // one quota for every instance
  if (o.memory_quota > 0) quota.Resize(static_cast<size_t>(o.memory_quota));
  if (o.max_threads > 0) quota.SetMaxThreads(o.max_threads);
  std::vector<int> bound(o.addresses.size(), 0);
  for (int w = 0; w < workers; ++w) {
    grpc::ServerBuilder builder;
    std::vector<int> got(o.addresses.size(), 0);
    // Instances after the first bind the ports the first one got (an ephemeral port 0 included).
    for (size_t i = 0; i < o.addresses.size(); ++i)
      builder.AddListeningPort(w == 0 ? o.addresses[i] : with_port(o.addresses[i], bound[i]), creds, &got[i]);
    builder.SetMaxReceiveMessageSize(o.max_message_bytes);
    builder.SetMaxSendMessageSize(o.max_message_bytes);
    // One instance: a port another process holds is an error, not a shared port.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, workers > 1 ? 1 : 0);
    for (const auto& [k, v] : o.int_args) builder.AddChannelArgument(k, v);
    for (const auto& [k, v] : o.string_args) builder.AddChannelArgument(k, v);
    // Compressed requests reach us as they came and are inflated with the
    // message limit applied while inflating (Call::inflate_compressed); grpc
    // core 1.51 would inflate them whole first, then compare.
    builder.AddChannelArgument(GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, 0);
    if (o.memory_quota > 0 || o.max_threads > 0) builder.SetResourceQuota(quota);
    impl_->services.push_back(std::make_unique<Service>(impl_.get()));
    builder.RegisterCallbackGenericService(impl_->services.back().get());
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server) {
      for (auto& s : impl_->servers) s->Shutdown(std::chrono::system_clock::now());
      for (auto& s : impl_->servers) s->Wait();
      impl_->servers.clear();
      // BuildAndStart stops at the first address it cannot bind; those before it got their port.
      for (size_t i = 0; i < got.size(); ++i)
        if (got[i] == 0)
          return {StatusCode::UNAVAILABLE,
                  "cannot bind gRPC server to " + o.addresses[i] + " (address in use or not available)"};
      return {StatusCode::UNAVAILABLE, "cannot start the gRPC server"};
    }
    impl_->servers.push_back(std::move(server));
    if (w == 0) bound = got;
  }
  *ports = std::move(bound);
  return Status::ok();
}

void GrpcServer::shutdown(double grace_s) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  if (impl_->servers.empty()) return;
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::duration_cast<std::chrono::system_clock::duration>(
                            std::chrono::duration<double>(std::max(0.0, grace_s)));
  // NOTE: grpc::Server::Shutdown returns only when every call is finished, but
  // a forwarded call is finished by the control plane: past the grace period
  // the ones still waiting for it are answered here instead.
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  std::thread closer([&] {
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait_until(lock, deadline, [&] { return done; });
    lock.unlock();
    impl_->forward->close({kUnavailable, "Server is shutting down", {}});
  });
  for (auto& s : impl_->servers) s->Shutdown(deadline);
  {
    std::lock_guard<std::mutex> lock(done_mu);
    done = true;
  }
  done_cv.notify_all();
  closer.join();
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle_cv.wait(lock, [&] { return impl_->live_calls == 0; });
  lock.unlock();
  for (auto& s : impl_->servers) s->Wait();
  impl_->servers.clear();
}

GrpcServerStats GrpcServer::stats() const {
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return {get(impl_->native_calls), get(impl_->forwarded_calls), get(impl_->joined_messages),
          get(impl_->joined_bytes)};
}

}  // namespace ovfast
