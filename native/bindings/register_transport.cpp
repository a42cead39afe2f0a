// Transport bindings: the route table the control plane publishes into, the
// queue of calls forwarded to it, and the native gRPC server over both.
// Every call that may block or drop a servable reference releases the GIL.
#include "py_common.hpp"

#include "ovfast/transport/forward_queue.hpp"
#include "ovfast/transport/grpc_server.hpp"
#include "ovfast/transport/grpc_status.hpp"
#include "ovfast/transport/model_id.hpp"
#include "ovfast/transport/route_table.hpp"

namespace py = pybind11;

namespace ovfast::bindings {
namespace {

void publish(RouteTable& table, const std::string& name, bool needs_control_plane, int64_t default_version,
             const py::list& versions) {
  ModelRoute route;
  route.name = name;
  route.needs_control_plane = needs_control_plane;
  route.default_version = default_version;
  for (auto item : versions) {
    py::tuple t = item.cast<py::tuple>();
    if (t.size() != 2) throw py::value_error("a version route is (version, Servable)");
    const int64_t v = t[0].cast<int64_t>();
    route.versions.push_back({v, std::to_string(v), t[1].cast<PyServable&>().shared()});
  }
  Status st;
  {
    // NOTE: the snapshot replaced may hold the last reference to a servable.
    py::gil_scoped_release release;
    st = table.publish(std::move(route));
  }
  throw_if_error(st);
}

py::tuple drain_forwarded(ForwardQueue& q) {
  ForwardBatch batch;
  {
    py::gil_scoped_release release;
    batch = q.drain();
  }
  py::list calls, failures;
  for (const ForwardedCall& c : batch.calls)
    calls.append(py::make_tuple(c.id, c.method, py::bytes(c.request.data(), c.request.size())));
  for (const FailureNotice& f : batch.failures) failures.append(py::make_tuple(f.model, f.version, f.message));
  py::list cancelled;
  for (uint64_t id : batch.cancelled) cancelled.append(id);
  return py::make_tuple(calls, failures, cancelled);
}

std::unique_ptr<GrpcServer> make_server(std::vector<std::string> addresses, std::shared_ptr<RouteTable> routes,
                                        std::shared_ptr<ForwardQueue> forward,
                                        std::vector<std::string> forwarded_methods, int kserve_route, int tfs_route,
                                        bool report_failures,
                                        int max_message_bytes, int64_t memory_quota,
                                        std::map<std::string, int> int_args,
                                        std::map<std::string, std::string> string_args, std::string tls_cert,
                                        std::string tls_key, std::string tls_ca, std::string api_key,
                                        std::shared_ptr<RequestMemory> request_memory, int workers,
                                        int max_threads, bool serve_inference, bool model_id_headers) {
  if (!routes || !forward) throw py::value_error("routes and forward are required");
  GrpcServerOptions o;
  o.addresses = std::move(addresses);
  o.forwarded_methods = std::move(forwarded_methods);
  o.kserve_route = kserve_route;
  o.tfs_route = tfs_route;
  o.report_failures = report_failures;
  o.max_message_bytes = max_message_bytes;
  o.memory_quota = memory_quota;
  o.int_args = std::move(int_args);
  o.string_args = std::move(string_args);
  if (tls_cert.empty() != tls_key.empty()) throw py::value_error("tls_cert and tls_key go together");
  if (!tls_ca.empty() && tls_cert.empty()) throw py::value_error("tls_ca needs tls_cert and tls_key");
  o.tls_cert_pem = std::move(tls_cert);
  o.tls_key_pem = std::move(tls_key);
  o.tls_ca_pem = std::move(tls_ca);
  o.api_key = std::move(api_key);
  o.request_memory = std::move(request_memory);
  o.workers = workers;
  o.max_threads = max_threads;
  o.serve_inference = serve_inference;
  o.model_id_headers = model_id_headers;
  return std::make_unique<GrpcServer>(std::move(o), std::move(routes), std::move(forward));
}

}  // namespace

void register_transport(py::module_& m) {
  py::class_<RouteTable, std::shared_ptr<RouteTable>>(
      m, "RouteTable", "Which servable the native gRPC front-end runs (model, version) on; published by Python.")
      .def(py::init<>())
      .def("publish", &publish, py::arg("name"), py::arg("needs_control_plane"), py::arg("default_version"),
           py::arg("versions"),
           "Replaces the model's routes: versions = [(version, Servable)], AVAILABLE ones; default_version 0 = "
           "none. Raises InvalidArgumentError for an inconsistent route. Releases the GIL.")
      .def("remove", [](RouteTable& t, const std::string& name) {
             py::gil_scoped_release release;
             t.remove(name);
           }, py::arg("name"), "Drops the model's routes. Releases the GIL.")
      .def("find", [](RouteTable& t, const std::string& name, int64_t version) -> std::optional<int64_t> {
             std::shared_ptr<const RouteSnapshot> snap = t.snapshot();
             const VersionRoute* r = snap->find(name, version);
             if (!r) return std::nullopt;
             return r->version;
           }, py::arg("name"), py::arg("version"),
           "The version a native request for (name, version) runs on (0 = default); None: forwarded to Python.")
      .def_property_readonly("size", [](RouteTable& t) { return t.snapshot()->size(); });

  py::class_<ForwardQueue, std::shared_ptr<ForwardQueue>>(
      m, "ForwardQueue", "Calls the native gRPC front-end hands to the Python handlers, and their answers.")
      .def(py::init<>())
      .def("fileno", &ForwardQueue::fd)
      .def("drain", &drain_forwarded,
           "Takes everything queued: ([(call_id, method path, request bytes)], [(model, version, message)] of "
           "the requests the native front-end failed, [call_id] of pending calls their clients cancelled or "
           "whose deadline passed).")
      .def("respond", [](ForwardQueue& q, uint64_t id, int code, const std::string& message, py::bytes response) {
             ForwardReply reply{code, message, std::string(response)};
             py::gil_scoped_release release;
             return q.respond(id, std::move(reply));
           }, py::arg("call_id"), py::arg("code"), py::arg("message"), py::arg("response"),
           "Answers a call: gRPC status code (0 = OK, with `response`), message. False when it is no longer "
           "pending. Releases the GIL.")
      .def("close", [](ForwardQueue& q, int code, const std::string& message) {
             py::gil_scoped_release release;
             q.close({code, message, {}});
           }, py::arg("code"), py::arg("message"),
           "Refuses new calls and answers the pending ones with this status. Releases the GIL.")
      .def_property_readonly("pending", &ForwardQueue::pending)
      .def_property_readonly("forwarded", &ForwardQueue::forwarded);

  py::class_<RequestMemory, std::shared_ptr<RequestMemory>>(
      m, "RequestMemory", "The server-wide bound on bytes held by requests in flight (--max_request_memory).")
      .def(py::init<int64_t>(), py::arg("limit_bytes"), "limit_bytes 0: no bound (still counted).")
      .def("try_reserve", &RequestMemory::try_reserve, py::arg("bytes"),
           "Takes `bytes` if the total stays within the limit; False (counted as refused) otherwise.")
      .def("release", &RequestMemory::release, py::arg("bytes"))
      .def_property_readonly("limit", &RequestMemory::limit)
      .def_property_readonly("in_use", &RequestMemory::in_use)
      .def_property_readonly("refused", &RequestMemory::refused);

  py::class_<GrpcServer>(m, "GrpcServer", "The gRPC port (grpc++ callback API).")
      .def(py::init(&make_server), py::arg("addresses"), py::arg("routes"), py::arg("forward"),
           py::arg("forwarded_methods"), py::arg("kserve_route") = kNoRoute, py::arg("tfs_route") = kNoRoute,
           py::arg("report_failures") = false, py::arg("max_message_bytes") = 1 << 30, py::arg("memory_quota") = 0,
           py::arg("int_args") = std::map<std::string, int>{},
           py::arg("string_args") = std::map<std::string, std::string>{}, py::arg("tls_cert") = "",
           py::arg("tls_key") = "", py::arg("tls_ca") = "", py::arg("api_key") = "",
           py::arg("request_memory") = std::shared_ptr<RequestMemory>(), py::arg("workers") = 1,
           py::arg("max_threads") = 0, py::arg("serve_inference") = true, py::arg("model_id_headers") = false,
           "tls_cert/tls_key: PEM texts that turn TLS on; tls_ca: PEM CA bundle that makes client certificates "
           "required and verified; api_key: every call but ServerLive/ServerReady needs the "
           "metadata 'authorization: Bearer <api_key>'. workers: server instances sharing the port (SO_REUSEPORT); "
           "max_threads: gRPC's resource-quota thread bound (0: gRPC's default); serve_inference: ModelInfer/Predict "
           "run natively here (False: a server of forwarded methods only); model_id_headers: a call whose metadata "
           "names a model (mm-model-id, mm-vmodel-id) runs on it. An address is host:port or unix:/path.")
      .def("start", [](GrpcServer& s) {
             std::vector<int> ports;
             Status st;
             {
               py::gil_scoped_release release;
               st = s.start(&ports);
             }
             throw_if_error(st);
             return ports;
           }, "Binds and serves; returns the port bound for each address. Raises UnavailableError when an "
              "address cannot be bound. Releases the GIL.")
      .def("shutdown", [](GrpcServer& s, double grace_s) {
             py::gil_scoped_release release;
             s.shutdown(grace_s);
           }, py::arg("grace_s"),
           "Stops accepting, lets calls finish for up to grace_s, then cancels the rest; returns when every call "
           "is finished. Blocking (forwarded calls still need the event loop: run it in an executor). Releases "
           "the GIL.")
      .def("stats", [](GrpcServer& s) {
             GrpcServerStats st = s.stats();
             return py::dict(py::arg("native_calls") = st.native_calls,
                             py::arg("forwarded_calls") = st.forwarded_calls,
                             py::arg("joined_messages") = st.joined_messages,
                             py::arg("joined_bytes") = st.joined_bytes);
           }, "{native_calls, forwarded_calls, joined_messages, joined_bytes} since start.");

  m.def("grpc_status_code", [](int code) { return grpc_status_code(static_cast<StatusCode>(code)); },
        py::arg("code"), "The gRPC status code the native front-end sends for a native status code.");
  m.def("inject_model_id", [](const std::string& method, const std::string& id) -> py::bytes {
        const std::vector<uint32_t>* path = model_name_path(method);
        if (!path) throw py::value_error("method names no model: " + method);
        return py::bytes(inject_model_id(*path, id));
      }, py::arg("method"), py::arg("model_id"),
        "The bytes header routing appends to a forwarded request of `method` so that it names `model_id`.");
  m.def("printable_message", [](py::bytes message) { return printable_message(std::string(message)); },
        py::arg("message"), "A status message as the native front-end sends it (invalid UTF-8 as \\xNN).");
}

}  // namespace ovfast::bindings
