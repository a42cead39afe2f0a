"""`ovfast`: OVMS-compatible command line.

    ovfast --model_name NAME --model_path PATH --port 9000 --rest_port 8000
    ovfast --config_path config.json --port 9000 --rest_port 8000
    ovfast                      # serves the built-in demo model on 9000 / 8000
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

EX_USAGE = 64
DEMO_GRPC_PORT = 9000
DEMO_REST_PORT = 8000


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse -> OVMS-style usage error
        if "unrecognized arguments" in message:
            message = "error parsing options - unmatched arguments: " + message.split(":", 1)[1].strip()
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ovfast", description="ovfast: OVMS-compatible OpenVINO model server", allow_abbrev=False)
    s = p.add_argument_group("server options")
    s.add_argument("--version", action="store_true", help="print the version and exit")
    s.add_argument("--port", type=int, default=None, help="gRPC port (0 = gRPC disabled)")
    s.add_argument("--grpc_bind_address", default="0.0.0.0", help="comma-separated gRPC bind addresses")
    s.add_argument("--rest_port", type=int, default=None, help="REST port (0 = REST disabled)")
    s.add_argument("--rest_bind_address", default="0.0.0.0", help="comma-separated REST bind addresses")
    s.add_argument("--grpc_workers", type=int, default=1,
                   help="gRPC server instances sharing the port (SO_REUSEPORT), as OVMS; 1..CPU cores")
    s.add_argument("--grpc_max_threads", type=int, default=None,
                   help="gRPC resource-quota thread bound, as OVMS (grpc++ applies it to synchronous-server "
                        "threads; the callback server's reactions run on gRPC's own pollers)")
    s.add_argument("--grpc_memory_quota", type=int, default=None, help="gRPC server buffer memory quota, bytes")
    s.add_argument("--grpc_channel_arguments", default=None, help="k=v,k=v gRPC server channel arguments")
    s.add_argument("--max_request_memory", default=None,
                   help="bound on bytes held by requests in flight, all ports (e.g. 2GiB); the excess is refused "
                        "RESOURCE_EXHAUSTED / 503")
    s.add_argument("--grpc_certificate_path", default=None,
                   help="PEM certificate chain of the gRPC port; with --grpc_key_path it serves TLS only")
    s.add_argument("--grpc_key_path", default=None, help="PEM private key of --grpc_certificate_path")
    s.add_argument("--grpc_ca_path", default=None,
                   help="PEM CA bundle: gRPC clients must present a certificate it signed (mutual TLS)")
    s.add_argument("--rest_workers", type=int, default=None)
    s.add_argument("--log_level", default="INFO", choices=["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"])
    s.add_argument("--log_path", default=None)
    s.add_argument("--file_system_poll_wait_seconds", type=int, default=1)
    s.add_argument("--sequence_cleaner_poll_wait_minutes", type=float, default=5,
                   help="minutes between two passes of the idle-sequence cleaner (0 = off); a fraction is accepted")
    s.add_argument("--custom_node_resources_cleaner_interval_seconds", type=int, default=300)
    s.add_argument("--cache_dir", default=None, help="OpenVINO compiled-model cache directory")
    s.add_argument("--metrics_enable", action="store_true")
    s.add_argument("--metrics_list", default=None)
    s.add_argument("--cpu_extension", default=None)
    s.add_argument("--config_path", default=None)
    s.add_argument("--allowed_origins", default=None)
    s.add_argument("--allowed_methods", default=None)
    s.add_argument("--allowed_headers", default=None)
    s.add_argument("--allow_credentials", action="store_true")
    m = p.add_argument_group("single model options")
    m.add_argument("--model_name", default=None)
    m.add_argument("--model_path", default=None)
    m.add_argument("--batch_size", default=None)
    m.add_argument("--shape", default=None)
    m.add_argument("--layout", default=None)
    m.add_argument("--mean", default=None)
    m.add_argument("--scale", default=None)
    m.add_argument("--color_format", default=None)
    m.add_argument("--precision", default=None)
    m.add_argument("--model_version_policy", default=None)
    m.add_argument("--nireq", type=int, default=None)
    m.add_argument("--target_device", default=None)
    m.add_argument("--plugin_config", default=None, help='JSON, e.g. {"PERFORMANCE_HINT":"LATENCY"}')
    m.add_argument("--stateful", action="store_true")
    m.add_argument("--idle_sequence_cleanup", default=None)
    m.add_argument("--low_latency_transformation", action="store_true")
    m.add_argument("--max_sequence_number", type=int, default=None)
    m.add_argument("--allow_cache", action="store_true")
    x = p.add_argument_group("ovfast options")
    x.add_argument("--max_batch_size", type=int, default=None,
                   help="dynamic batching: most rows the server gathers into one inference (docs/config.md)")
    x.add_argument("--max_queue_delay_us", type=int, default=None,
                   help="dynamic batching: longest a request waits for others to join its batch (default 0)")
    x.add_argument("--preferred_batch_sizes", default=None,
                   help="dynamic batching: comma-separated sizes dispatched at once when reached, e.g. 4,8")
    r = p.add_argument_group("residency options (many models under a memory budget)")
    r.add_argument("--memory_budget", default=None,
                   help="memory for loaded models: bytes with a unit (6GiB, 512MiB, 2GB) or a percentage of RAM "
                        "(60%%); versions then load on their first request and the least recently used idle ones "
                        "are unloaded to make room (overrides config.json's memory_budget)")
    r.add_argument("--idle_unload_seconds", type=float, default=None,
                   help="unload versions unused for this many seconds; they load again on their next request "
                        "(0 = never; overrides config.json's idle_unload_seconds)")
    r.add_argument("--model_control_mode", default="none", choices=["none", "explicit"],
                   help="explicit (Triton's name): serve only the models loaded through the repository API "
                        "or --load_model")
    r.add_argument("--load_model", action="append", default=None, metavar="NAME",
                   help="with --model_control_mode explicit: a model to load at start (repeatable; '*' = all)")
    x.add_argument("--echo", action="store_true",
                   help="benchmarking only: serve every model in echo mode (outputs = inputs, no inference); "
                        "measures the transport floor")
    _add_limit_flags(p)
    _add_access_flags(p)
    from ovfast.config import modelmesh
    modelmesh.add_flags(p)
    st = p.add_argument_group("object storage (s3:// gs:// az:// base paths; docs/storage.md)")
    st.add_argument("--storage_cache_dir", default=None,
                    help="local folder remote model versions are downloaded into "
                         "(default: ovfast-model-cache in the system temp folder)")
    st.add_argument("--storage_config_dir", default=None,
                    help="ModelMesh storage-config folder: one JSON file per storage key "
                         "(type s3/gcs/azure, endpoint, bucket, credentials)")
    return p


def _add_limit_flags(p: argparse.ArgumentParser) -> None:
    from ovfast.config.request_limits import LIMITS

    g = p.add_argument_group("request limits (a request over one is refused with INVALID_ARGUMENT / 400)")
    for flag, (_, default, text) in LIMITS.items():
        g.add_argument(f"--{flag}", type=int, default=None,
                       help=f"{text} (default {default}; overrides config.json's request_limits.{flag})")


def request_limits(args: argparse.Namespace, repository=None) -> tuple[dict[str, int], dict[str, int]]:
    """(the limits to apply as `_native.set_decode_limits` keywords, the flags given on the command line):
    a flag over config.json's request_limits over the default. UsageError unless each flag is in range."""
    from ovfast.config.request_limits import LIMITS, check_limit, effective_limits

    flags = {}
    for flag in LIMITS:
        v = getattr(args, flag)
        if v is not None:
            try:
                flags[flag] = check_limit(flag, v)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
    from_file = repository.request_limits if repository is not None else None
    return effective_limits(from_file, flags), flags

def _add_access_flags(p: argparse.ArgumentParser) -> None:
    """TLS, authentication and the REST port's limits (issue 14); validated by access_from_args."""
    from ovfast.api.rest.limits import RestLimits

    d = RestLimits()
    a = p.add_argument_group("security and limits")
    a.add_argument("--api_key_file", default=None,
                   help="file holding the API key (default: the API_KEY environment variable, as OVMS): every "
                        "REST endpoint but health (/v2/health/live, /v2/health/ready) then requires "
                        "'Authorization: Bearer <key>', else 401")
    a.add_argument("--disable_model_control", action="store_true",
                   help="refuse the state-changing endpoints (config reload: POST /v1/config/reload, gRPC "
                        "HandleReloadConfigRequest; repository load/unload: POST /v2/repository/models/{m}/load "
                        "and /unload, gRPC RepositoryModelLoad/Unload): 403 / PERMISSION_DENIED")
    a.add_argument("--rest_certificate_path", default=None, help="REST over TLS: the server certificate (PEM)")
    a.add_argument("--rest_key_path", default=None, help="REST over TLS: the server certificate's private key (PEM)")
    a.add_argument("--rest_ca_path", default=None,
                   help="REST mutual TLS: CA certificates (PEM) that client certificates must chain to; "
                        "clients without one are refused")
    a.add_argument("--rest_max_input_size", type=int, default=d.max_input_size,
                   help=f"largest REST request body in bytes, after decompression (default {d.max_input_size}, "
                        "the gRPC message limit); larger bodies are refused with 413, by Content-Length before "
                        "they are read")
    a.add_argument("--rest_header_timeout_seconds", type=float, default=d.header_timeout_s,
                   help=f"a REST connection must deliver a request's headers within this many seconds of opening "
                        f"or of its previous response, else it is closed (default {d.header_timeout_s:g})")
    a.add_argument("--rest_body_timeout_seconds", type=float, default=d.body_timeout_s,
                   help=f"a REST request body must arrive within this many seconds of its headers, else 408 "
                        f"(default {d.body_timeout_s:g})")
    a.add_argument("--rest_max_connections", type=int, default=None,
                   help="most open REST connections; more are answered 503 and closed (default: what the "
                        "descriptor limit leaves after a reserve for gRPC, models and the config watcher)")


_BATCHING_FLAGS = ("max_batch_size", "max_queue_delay_us", "preferred_batch_sizes")
_MODEL_FLAGS = ("batch_size", "shape", "layout", "mean", "scale", "color_format", "precision",
                "model_version_policy", "nireq", "target_device", "plugin_config", *_BATCHING_FLAGS)


def _json_arg(name: str, text: str | None):
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{name} is not valid JSON: {exc}") from None


def _json_or_text(name: str, text: str | None):
    """--shape / --layout: JSON object for the per-input form, else the plain string."""
    if text is None:
        return None
    return _json_arg(name, text) if text.strip().startswith("{") else text


def _batching_arg(args: argparse.Namespace) -> dict | None:
    """--max_batch_size / --max_queue_delay_us / --preferred_batch_sizes as a ``dynamic_batching`` object
    (its values are checked by config.load, as in config.json)."""
    if args.max_batch_size is None:
        extra = [f for f in _BATCHING_FLAGS if getattr(args, f) is not None]
        if extra:
            raise UsageError(f"--{extra[0]} requires --max_batch_size")
        return None
    b: dict = {"max_batch_size": args.max_batch_size}
    if args.max_queue_delay_us is not None:
        b["max_queue_delay_us"] = args.max_queue_delay_us
    if args.preferred_batch_sizes is not None:
        try:
            b["preferred_batch_sizes"] = [int(x) for x in args.preferred_batch_sizes.split(",")]
        except ValueError:
            raise UsageError(f"--preferred_batch_sizes must be comma-separated integers such as 4,8, "
                             f"got '{args.preferred_batch_sizes}'") from None
    return b


def single_model_dict(args: argparse.Namespace, name: str, path: str) -> dict:
    """The single-model flags as a ``model_config_list`` entry, validated by the same code as config.json."""
    c: dict = {"name": name, "base_path": path}
    if args.batch_size is not None:
        c["batch_size"] = args.batch_size
    shape = _json_or_text("shape", args.shape)
    if shape is not None:
        c["shape"] = shape
    layout = _json_or_text("layout", args.layout)
    if layout is not None:
        c["layout"] = layout
    if args.model_version_policy is not None:
        c["model_version_policy"] = _json_arg("model_version_policy", args.model_version_policy)
    if args.nireq is not None:
        c["nireq"] = args.nireq
    if args.target_device is not None:
        c["target_device"] = args.target_device
    if args.plugin_config is not None:
        c["plugin_config"] = _json_arg("plugin_config", args.plugin_config)
    if args.allow_cache:
        c["allow_cache"] = True
    if args.color_format is not None:
        c["color_format"] = args.color_format
    if args.stateful:
        c["stateful"] = True
    if args.max_sequence_number is not None:
        c["max_sequence_number"] = args.max_sequence_number
    if args.low_latency_transformation:
        c["low_latency_transformation"] = True
    if args.idle_sequence_cleanup is not None:
        flag = args.idle_sequence_cleanup.strip().lower()
        if flag not in ("true", "false", "1", "0"):
            raise UsageError(f"--idle_sequence_cleanup must be true or false, got '{args.idle_sequence_cleanup}'")
        c["idle_sequence_cleanup"] = flag in ("true", "1")
    batching = _batching_arg(args)
    if batching is not None:
        c["dynamic_batching"] = batching
    return c


def config_from_args(args: argparse.Namespace):
    from dataclasses import replace

    from ovfast.config.load import ConfigError, load_config_file, model_config_from_dict, parse_floats
    from ovfast.config.schema import ServerConfig
    from ovfast.demo import ensure_demo_model, DEMO_NAME
    from ovfast.observability.metrics import select_families
    from ovfast.config.budget import parse_size
    from ovfast.security import TlsConfigError, load_tls

    from ovfast.config import modelmesh as mmc

    try:  # under ModelMesh, it loads every model: no config file, no demo model
        mm_on = mmc.prepare_args(args, os.environ)
    except mmc.ModelMeshConfigError as exc:
        raise UsageError(str(exc)) from None
    demo = False
    if args.model_name is not None or args.model_path is not None:
        if args.config_path:
            raise UsageError("Model parameters in CLI are exclusive with the config file")
        if not args.model_name or not args.model_path:
            raise UsageError("Use either config_path or model_path with model_name")
    elif args.config_path is None and not mm_on:
        used = [f for f in _MODEL_FLAGS if getattr(args, f) is not None]
        if used:
            raise UsageError(f"--{used[0]} requires --model_name and --model_path")
        demo = True
    elif any(getattr(args, f) is not None for f in _MODEL_FLAGS):
        raise UsageError("Model parameters in CLI are exclusive with the config file")

    port, rest_port = args.port, args.rest_port
    if demo and port is None and rest_port is None:
        port, rest_port = DEMO_GRPC_PORT, DEMO_REST_PORT
    port, rest_port = port or 0, rest_port or 0
    for name, v in (("port", port), ("rest_port", rest_port)):
        if not 0 <= v <= 65535:
            raise UsageError(f"{name} number out of range: {v}")
    if port == 0 and rest_port == 0:
        raise UsageError("port and rest_port cannot both be unset")
    if port == rest_port:
        raise UsageError("port and rest_port cannot share the same value")
    if args.metrics_enable and not rest_port:
        raise UsageError("rest_port setting is missing, metrics are enabled on rest port")
    if args.metrics_list and not args.metrics_enable:
        raise UsageError("metrics_enable setting is missing, required when metrics_list is provided")
    metrics_enable = args.metrics_enable
    metrics_list = tuple(x.strip() for x in (args.metrics_list or "").split(",") if x.strip())
    if not 1 <= args.grpc_workers <= (os.cpu_count() or 1):
        raise UsageError(f"grpc_workers count should be from 1 to CPU core count : {os.cpu_count()}")
    if args.grpc_max_threads is not None and not 1 <= args.grpc_max_threads <= 100000:
        raise UsageError("grpc_max_threads must be from 1 to 100000")
    if args.grpc_memory_quota is not None and not 0 <= args.grpc_memory_quota <= 2**63 - 1:
        raise UsageError("grpc_memory_quota must be a non-negative number of bytes")
    if args.rest_workers is not None and not 2 <= args.rest_workers <= 10000:
        raise UsageError("rest_workers count should be from 2 to 10000")
    if args.nireq is not None and not 0 <= args.nireq <= 100000:
        raise UsageError("nireq must be from 0 to 100000")
    if args.cpu_extension is not None and not os.path.isfile(args.cpu_extension):
        raise UsageError(f"File path provided as an --cpu_extension parameter does not exist in the filesystem: "
                         f"{args.cpu_extension}")
    if args.file_system_poll_wait_seconds < 0:
        raise UsageError("file_system_poll_wait_seconds must be >= 0")
    if not 0 <= args.sequence_cleaner_poll_wait_minutes <= 2**32 - 1:
        raise UsageError("sequence_cleaner_poll_wait_minutes must be >= 0")

    try:
        grpc_tls = load_tls("grpc", args.grpc_certificate_path, args.grpc_key_path, args.grpc_ca_path)
    except TlsConfigError as exc:
        raise UsageError(str(exc)) from None
    try:
        max_request_memory = parse_size(args.max_request_memory or 0, "--max_request_memory")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if grpc_tls is not None and not port:
        raise UsageError("--grpc_certificate_path is set but the gRPC port is disabled (--port 0)")

    models: list = []
    repository = None
    if args.config_path:
        try:
            repository = load_config_file(args.config_path)
        except ConfigError as exc:
            raise UsageError(f"Couldn't start model manager: {exc}") from None
        models = list(repository.models)
        metrics_enable, metrics_list = _config_metrics(repository.monitoring, metrics_enable, metrics_list,
                                                       rest_port)
        for e in repository.errors:
            logging.getLogger("ovfast.config").error("Configuration entry skipped: %s", e)
    elif not mm_on:
        if demo:
            try:
                name, path = DEMO_NAME, str(ensure_demo_model())
            except OSError as exc:  # read-only everywhere: no cache and no temporary directory
                raise UsageError(str(exc)) from None
            logging.getLogger("ovfast.cli").info(
                "No model given: serving the built-in demo model '%s' (input b FP32 [1,10] -> output a = b + 1)",
                DEMO_NAME)
        else:
            name = args.model_name
            path = args.model_path if "://" in args.model_path else os.path.abspath(args.model_path)
        try:
            # --mean / --scale are CLI-only (as in OVMS): not config.json keys
            models = [replace(model_config_from_dict(single_model_dict(args, name, path)),
                              mean=parse_floats(args.mean, "mean"), scale=parse_floats(args.scale, "scale"))]
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
    try:
        select_families(metrics_list)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.echo:
        models = [replace(m, echo=True) for m in models]
    residency = _residency_from_args(args, repository)
    limits, limit_flags = request_limits(args, repository)
    try:
        modelmesh = mmc.from_args(args, residency.memory_budget or None, os.environ)
    except mmc.ModelMeshConfigError as exc:
        raise UsageError(str(exc)) from None
    return ServerConfig(
        residency=mmc.residency(modelmesh) if modelmesh is not None else residency, modelmesh=modelmesh,
        port=port, rest_port=rest_port, grpc_bind_address=args.grpc_bind_address,
        rest_bind_address=args.rest_bind_address, models=tuple(models), config_path=args.config_path,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        sequence_cleaner_poll_wait_minutes=args.sequence_cleaner_poll_wait_minutes, log_level=args.log_level,
        log_path=args.log_path, cache_dir=args.cache_dir, grpc_workers=args.grpc_workers,
        grpc_memory_quota=args.grpc_memory_quota, grpc_max_threads=args.grpc_max_threads or 0, grpc_tls=grpc_tls,
        max_request_memory=max_request_memory,
        repository=repository, echo=args.echo, rest_workers=args.rest_workers, metrics_enable=metrics_enable,
        metrics_list=metrics_list,
        demo=demo, extra={"grpc_channel_arguments": args.grpc_channel_arguments, "cpu_extension": args.cpu_extension,
                          "request_limits": limits, "request_limit_flags": limit_flags,
                          "access": access_from_args(args, rest_port),
                          "storage": {"cache_dir": args.storage_cache_dir, "config_dir": args.storage_config_dir},
                          "cors": {"origins": args.allowed_origins or "*", "methods": args.allowed_methods or "*",
                                   "headers": args.allowed_headers or "*", "credentials": args.allow_credentials}})


def access_from_args(args: argparse.Namespace, rest_port: int):
    """The security and limits flags as one AccessConfig (unreadable files are usage errors)."""
    from ovfast.api.access import AccessConfig, AccessError

    try:
        return AccessConfig.from_flags(
            api_key_file=args.api_key_file, environ=os.environ, disable_model_control=args.disable_model_control,
            certificate=args.rest_certificate_path, key=args.rest_key_path, ca=args.rest_ca_path,
            max_input_size=args.rest_max_input_size, header_timeout_s=args.rest_header_timeout_seconds,
            body_timeout_s=args.rest_body_timeout_seconds, max_connections=args.rest_max_connections,
            rest_port=rest_port)
    except AccessError as exc:
        raise UsageError(str(exc)) from None


def _residency_from_args(args: argparse.Namespace, repository):
    """--memory_budget / --idle_unload_seconds (over config.json's), --model_control_mode, --load_model."""
    from ovfast.config.budget import ResidencyConfig, parse_idle_unload_seconds, parse_memory_budget

    budget = repository.memory_budget if repository is not None else None
    idle = repository.idle_unload_seconds if repository is not None else None
    try:
        if args.memory_budget is not None:
            budget = parse_memory_budget(args.memory_budget.strip())
        if args.idle_unload_seconds is not None:
            idle = parse_idle_unload_seconds(args.idle_unload_seconds)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.load_model and args.model_control_mode != "explicit":
        raise UsageError("--load_model requires --model_control_mode explicit")
    return ResidencyConfig(memory_budget=budget or 0, idle_unload_seconds=idle or 0.0,
                           explicit=args.model_control_mode == "explicit", load_models=tuple(args.load_model or ()))


def _config_metrics(monitoring, enable: bool, names: tuple[str, ...], rest_port: int) -> tuple[bool, tuple[str, ...]]:
    """Merges config.json `monitoring.metrics` (already validated by config.load) into the CLI metrics
    flags; CLI values win."""
    metrics = monitoring.metrics if monitoring is not None else None
    if metrics is None:
        return enable, names
    if metrics.enable and not rest_port:
        raise UsageError("Missing rest_port parameter in server CLI")
    return enable or metrics.enable, names or metrics.metrics_list


# OVMS flags ovfast accepts so existing command lines keep working, but that change nothing here.
_INERT_FLAGS = ("rest_workers",
                "precision", "idle_sequence_cleanup")
_PARSER_DEFAULTS = {a.dest: a.default for a in build_parser()._actions}


def _warn_inert_flags(args: argparse.Namespace) -> None:
    log = logging.getLogger("ovfast.cli")
    for name in _INERT_FLAGS:
        if getattr(args, name) != _PARSER_DEFAULTS.get(name):
            log.warning("--%s is accepted for OVMS compatibility but has no effect in ovfast", name)


def main(argv: list[str] | None = None) -> int:
    from ovfast.observability.logging import setup_logging

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            import ovfast
            from ovfast import _native
            print(f"ovfast {ovfast.__version__}")
            print(f"OpenVINO backend {_native.openvino_runtime_version()}")
            return 0
        setup_logging(args.log_level, args.log_path)
        config = config_from_args(args)
        _warn_inert_flags(args)
    except UsageError as exc:
        print(f"ovfast: {exc}", file=sys.stderr)
        print("Run 'ovfast --help' for usage.", file=sys.stderr)
        return EX_USAGE
    from ovfast.server import run_server

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(run_server(config))
    except KeyboardInterrupt:
        return 0


def _loop_factory():
    """uvloop when installed (a faster event loop for both transports); the stdlib loop otherwise,
    or when OVFAST_EVENT_LOOP=asyncio (for A/B measurements)."""
    if os.environ.get("OVFAST_EVENT_LOOP", "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
