#include "ovfast/transport/grpc_server.hpp"

#include <grpc/grpc.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <absl/synchronization/mutex.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>

#include "grpc_server_impl.hpp"

namespace ovfast {
namespace {

constexpr int kUnavailable = 14;

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

}  // namespace

bool GrpcServer::Impl::authorized(const grpc::GenericCallbackServerContext* ctx) const {
  if (opts.api_key.empty() || is_health(ctx->method())) return true;
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  return it != md.end() && bearer_matches(it->second, opts.api_key);
}

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
// "host:port" with its port replaced ("[::1]:0" -> "[::1]:5001"); a Unix socket as it is.
std::string with_port(const std::string& address, int port) {
  if (address.rfind("unix:", 0) == 0) return address;  // a socket path has no port
  return address.substr(0, address.rfind(':') + 1) + std::to_string(port);
}
}  // namespace

Status GrpcServer::start(std::vector<int>* ports) {
  const GrpcServerOptions& o = impl_->opts;
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex (grpc core's locks) tracks lock
  // ordering in a global graph: GraphCycles::GetId / RemoveNode took ~2 % of the server's CPU at 10,000
  // small requests/s (perf). ovfast's own locks are std::mutex, covered by the TSan build instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
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
    impl_->services.push_back(std::make_unique<detail::Service>(impl_.get()));
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
