// GrpcServer: the gRPC port, served by grpc++'s callback API through one
// generic service (every method path reaches it, as bytes).
//
// KServe ModelInfer and TFS Predict are served here when the route table has
// a route for them: the received slices (joined with one counted copy when a
// message spans several) are parsed by the native codecs into a job that
// views them, submitted to the route's Servable, and its sink encodes the
// response and finishes the call. Every other call, and those two when the
// route is absent or the request is anything but well-formed, goes through
// the ForwardQueue to the Python control plane, whose handlers answer it;
// methods it does not serve are answered UNIMPLEMENTED here. With header
// routing on, the model a call's metadata names (ModelMesh's mm-model-id,
// model_id.hpp) is the one it runs on, natively or in the control plane.
// Sources: grpc_server.cpp (start, shutdown), grpc_call.cpp (one call).
//
// Threads: reactions (a call's request read, its completion) run on gRPC's
// own callback threads; parse and submit happen there, never blocking. A
// served call is finished by its sink on whichever thread finishes the job
// (an OpenVINO callback, a decode worker); a forwarded one by respond() on
// the asyncio loop. No gRPC or OpenVINO thread takes the GIL.
// Ownership: the server shares the route table and the forward queue with
// the control plane; every call it accepted is finished before shutdown()
// returns, so nothing outlives the server.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ovfast/status.hpp"
#include "ovfast/transport/forward_queue.hpp"
#include "ovfast/transport/request_memory.hpp"
#include "ovfast/transport/route_table.hpp"

namespace ovfast {

struct GrpcServerOptions {
  // "host:port" / "[v6]:port" (port 0 picks a free one), or "unix:/path" (a Unix socket)
  std::vector<std::string> addresses;
  int max_message_bytes = 1 << 30;      // send and receive (OVMS: 1 GiB)
  int64_t memory_quota = 0;             // grpc::ResourceQuota::Resize, bytes; 0 = unlimited
  int max_threads = 0;                  // grpc::ResourceQuota::SetMaxThreads; 0 = gRPC's default
  // Server instances sharing the addresses (SO_REUSEPORT; the kernel spreads
  // connections over them), as OVMS's --grpc_workers.
  int workers = 1;
  std::map<std::string, int> int_args;  // channel arguments (--grpc_channel_arguments)
  std::map<std::string, std::string> string_args;
  // Metrics route (metrics.hpp) native jobs are counted under; -1 = not counted.
  int kserve_route = -1;
  int tfs_route = -1;
  // Report the ModelInfer / Predict calls answered here with an error to the
  // control plane (ForwardQueue::report), which logs them.
  bool report_failures = false;
  // The method paths the control plane serves; any other path that is not
  // served natively is answered UNIMPLEMENTED without reaching Python.
  std::vector<std::string> forwarded_methods;
  // TLS: a PEM certificate chain and its private key turn it on (no
  // plaintext port then); a PEM CA bundle as well requires every client to
  // present a certificate it signed (mutual TLS). The caller checks that the
  // files are readable and the key matches before start().
  std::string tls_cert_pem, tls_key_pem, tls_ca_pem;
  // When not empty, every call but the health ones (ServerLive, ServerReady)
  // must carry the metadata `authorization: Bearer <api_key>` (the scheme in
  // any case; the key compared in constant time), or is answered UNAUTHENTICATED.
  std::string api_key;
  // ModelInfer / Predict run natively (and are counted) on this server; false
  // for a server that only answers forwarded methods (ModelMesh's management
  // endpoint), where they are UNIMPLEMENTED unless forwarded_methods lists them.
  bool serve_inference = true;
  // Header routing (model_id.hpp): a call whose metadata carries mm-model-id
  // (or mm-vmodel-id) runs on that model; forwarded, the id is put into its message.
  bool model_id_headers = false;
  // The server-wide bound on bytes held by requests in flight; null: none.
  // A received message is counted from OnReadDone until its call is done.
  std::shared_ptr<RequestMemory> request_memory;
};

struct GrpcServerStats {
  uint64_t native_calls = 0;     // ModelInfer / Predict submitted to a Servable here
  uint64_t forwarded_calls = 0;  // handed to the control plane
  uint64_t joined_messages = 0;  // requests that arrived in several slices (copied once to join)
  uint64_t joined_bytes = 0;     // bytes those copies moved
};

class GrpcServer {
 public:
  GrpcServer(GrpcServerOptions options, std::shared_ptr<RouteTable> routes, std::shared_ptr<ForwardQueue> forward);
  ~GrpcServer();  // shutdown(0) if still running
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Binds every address and starts serving; `ports` gets the port bound for
  // each address. UNAVAILABLE "cannot bind gRPC server to <addr> (address in
  // use or not available)" when one cannot be bound (nothing is served then).
  // Blocking (briefly); call once.
  Status start(std::vector<int>* ports);
  // Stops accepting calls, gives those in progress up to `grace_s` seconds,
  // then cancels what remains, answers calls still waiting for the control
  // plane UNAVAILABLE and returns once every call is finished. Blocking: the
  // control plane must keep answering forwarded calls meanwhile (call it off
  // the asyncio loop). Idempotent.
  void shutdown(double grace_s);
  GrpcServerStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ovfast
