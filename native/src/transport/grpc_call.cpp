// One gRPC call of the native front-end (grpc_server.hpp): its request read,
// then served natively (ModelInfer / Predict with a route) or forwarded to the
// control plane, and answered exactly once.
#include <grpc/grpc.h>
#include <malloc.h>
#include <grpcpp/support/byte_buffer.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "grpc_server_impl.hpp"
#include "ovfast/codec/inflate.hpp"
#include "ovfast/codec/kserve.hpp"
#include "ovfast/codec/tfs.hpp"
#include "ovfast/transport/grpc_status.hpp"
#include "ovfast/transport/model_id.hpp"

// NOTE: grpc++ declares this friend of ByteBuffer for its own tests and ships
// no definition; it is the one way to read whether a received message is
// still compressed (per-message decompression is off: see GrpcServer::start()).
namespace grpc::internal {
class GrpcByteBufferPeer {
 public:
  explicit GrpcByteBufferPeer(ByteBuffer* b) : b_(b) {}
  grpc_byte_buffer* c_buffer() { return b_->c_buffer(); }

 private:
  ByteBuffer* b_;
};
}  // namespace grpc::internal

namespace ovfast::detail {
namespace {

// A failed call whose request was at least this big hands the freed memory
// back to the OS when it is done (malloc_trim): glibc otherwise keeps the
// request's many small gRPC slices in its arenas, hundreds of MB per request.
constexpr size_t kTrimAfterBytes = 16 << 20;
constexpr int kResourceExhausted = 8;
constexpr int kUnimplemented = 12;
constexpr int kInternal = 13;
constexpr int kUnavailable = 14;
constexpr int kUnauthenticated = 16;

// The model a call's metadata names (model_id.hpp), "" when none.
std::string header_model_id(const grpc::GenericCallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  return model_id_from_metadata([&md](std::string_view key) -> std::optional<std::string_view> {
    auto it = md.find(grpc::string_ref(key.data(), key.size()));
    if (it == md.end()) return std::nullopt;
    return std::string_view(it->second.data(), it->second.size());
  });
}

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
    if (server_->opts.model_id_headers) header_model_ = header_model_id(ctx);
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
  // answered RESOURCE_EXHAUSTED and its buffers are freed. `why`: what the
  // bytes are, when more than the message.
  bool reserve(size_t bytes, const std::string& why = std::string()) {
    RequestMemory* budget = server_->opts.request_memory.get();
    const auto want = static_cast<int64_t>(bytes);
    if (budget == nullptr || want <= reserved_) return true;
    if (budget->try_reserve(want - reserved_)) {
      reserved_ = want;
      return true;
    }
    request_.Clear();  // its memory goes back now, not when the call is done
    slices_.clear();
    joined_ = std::string();
    fail(kResourceExhausted, "Server is overloaded: requests in flight hold " + std::to_string(budget->in_use()) +
                                 " bytes; this one needs " + std::to_string(want - reserved_) + " more" + why +
                                 " (max_request_memory " + std::to_string(budget->limit()) + "); retry later");
    return false;
  }

  // The client cancelled, or the call's deadline passed: a job still queued is dropped (never run);
  // a call waiting for the control plane is cancelled there (it stops working on it, then answers).
  // NOTE: seq_cst, flag before id: see CancelLink.
  void OnCancel() override {
    cancelled_.store(true);
    if (const uint64_t id = forward_id_.load()) server_->forward->cancel(id);
  }

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
    // NOTE: a model named by the metadata (ModelMesh's mm-model-id) wins over the message's.
    if (!header_model_.empty()) job->model_name = header_model_;
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
    // NOTE: string inputs cost more in memory than on the wire (a std::string per element):
    // that cost is reserved too, before the job is validated and anything is allocated for it.
    // On refusal the job (views only) goes with this frame; the request's bytes are freed by reserve().
    if (const size_t strings = servable->string_tensor_bytes(*job)) {
      const std::string why = " to hold its BYTES elements as strings (" + std::to_string(strings) + " bytes)";
      if (!reserve(received_bytes_ + strings, why)) return;
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
    if (!header_model_.empty()) {
      // The control plane reads the model from the message: the metadata's id goes into it.
      if (const std::vector<uint32_t>* path = model_name_path(ctx_->method()))
        body += inject_model_id(*path, header_model_);
    }
    server_->forwarded_calls.fetch_add(1, std::memory_order_relaxed);
    const uint64_t id = server_->forward->push(ctx_->method(), std::move(body), [this](ForwardReply&& reply) {
      if (reply.grpc_code == 0) answer(std::move(reply.response));
      else fail(reply.grpc_code, reply.message);
    }, CancelLink{&forward_id_, &cancelled_});
    // On a queued call the control plane answers, maybe already: `this` may be gone.
    if (id == 0) fail(kUnavailable, "Server is shutting down");
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
  std::atomic<uint64_t> forward_id_{0};  // the ForwardQueue's id of this call once forwarded (0: not)
  int64_t reserved_ = 0;                // bytes taken from opts.request_memory until OnDone
  std::string model_, version_;      // where a served request was routed
  std::string header_model_;         // the model the metadata names (model_id.hpp); "" = none
};

}  // namespace

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

}  // namespace ovfast::detail
