"""Wire round-trips of ovfast's generated stubs against tritonclient's (KServe v2 / Triton) and
ovmsclient's (TF-Serving) classes: messages serialized by one side parse with the other's, field for field
(the descriptors themselves are compared in test_protos.py)."""

from __future__ import annotations

import inspect
import json

from proto_kit import (  # noqa: F401,F811 - gen is a fixture
    check_reverse_roundtrip, check_roundtrip, dict_of, gen, json_format, om_classification, om_management,
    om_metadata, om_predict, om_status, om_tensor, om_types, same_bytes, tr_config, tr_service,
)


# ------------------------------------------------- KServe wire round-trips


def _fill_params(params, base):
    params["b"].bool_param = True
    params["i"].int64_param = -(base + 2**40)
    params["s"].string_param = f"value-{base}"
    params["d"].double_param = 0.25 + base
    params["u"].uint64_param = 2**63 + base


def test_model_infer_request_roundtrip(gen):
    pb = gen.grpc_predict_v2_pb2
    req = pb.ModelInferRequest(model_name="resnet", model_version="2", id="req-1")
    _fill_params(req.parameters, 0)
    typed = req.inputs.add(name="x", datatype="FP32", shape=[2, 2])
    typed.contents.fp32_contents.extend([1.0, -2.5, 3.25, 0.0])
    _fill_params(typed.parameters, 1)
    for dtype, field, values in [
        ("BOOL", "bool_contents", [True, False]),
        ("INT32", "int_contents", [-1, 7]),
        ("INT64", "int64_contents", [-(2**40), 3]),
        ("UINT32", "uint_contents", [2**32 - 1, 0]),
        ("UINT64", "uint64_contents", [2**64 - 1, 1]),
        ("FP64", "fp64_contents", [1e300, -0.5]),
        ("BYTES", "bytes_contents", [b"\x00\xff", b"abc"]),
    ]:
        t = req.inputs.add(name=f"in_{dtype}", datatype=dtype, shape=[2])
        getattr(t.contents, field).extend(values)
    out = req.outputs.add(name="probs")
    out.parameters["classification"].int64_param = 3
    req.outputs.add(name="logits")

    theirs = check_roundtrip(req, tr_service.ModelInferRequest)
    assert theirs.inputs[0].contents.fp32_contents == [1.0, -2.5, 3.25, 0.0]
    assert theirs.parameters["u"].uint64_param == 2**63
    assert theirs.parameters["d"].WhichOneof("parameter_choice") == "double_param"
    assert theirs.outputs[0].parameters["classification"].int64_param == 3

    # Raw form, built by Triton's classes.
    raw = tr_service.ModelInferRequest(model_name="m", id="7")
    raw.inputs.add(name="a", datatype="FP16", shape=[1, 3])
    raw.inputs.add(name="b", datatype="BYTES", shape=[1])
    raw.raw_input_contents.extend([b"\x00<\x00@\x00B", b"\x03\x00\x00\x00abc"])
    ours = check_reverse_roundtrip(raw, pb.ModelInferRequest)
    assert ours.raw_input_contents[1] == b"\x03\x00\x00\x00abc"
    assert not ours.inputs[0].HasField("contents")


def test_model_infer_response_roundtrip(gen):
    pb = gen.grpc_predict_v2_pb2
    resp = pb.ModelInferResponse(model_name="resnet", model_version="1", id="req-1")
    resp.parameters["sequence_end"].bool_param = True
    o = resp.outputs.add(name="probs", datatype="FP32", shape=[1, 3])
    o.parameters["binary_data_size"].int64_param = 12
    resp.outputs.add(name="label", datatype="BYTES", shape=[1, 1])
    resp.raw_output_contents.extend([b"\x00" * 12, b"\x03\x00\x00\x00cat"])
    theirs = check_roundtrip(resp, tr_service.ModelInferResponse)
    assert list(theirs.outputs[0].shape) == [1, 3]

    typed = tr_service.ModelInferResponse(model_name="m", id="x")
    t = typed.outputs.add(name="y", datatype="INT64", shape=[2])
    t.contents.int64_contents.extend([-1, 2**62])
    check_reverse_roundtrip(typed, pb.ModelInferResponse)

    stream = pb.ModelStreamInferResponse(error_message="")
    stream.infer_response.CopyFrom(resp)
    check_roundtrip(stream, tr_service.ModelStreamInferResponse)
    check_roundtrip(pb.ModelStreamInferResponse(error_message="boom"),
                    tr_service.ModelStreamInferResponse)


def test_health_and_metadata_roundtrip(gen):
    pb = gen.grpc_predict_v2_pb2
    check_roundtrip(pb.ServerLiveResponse(live=True), tr_service.ServerLiveResponse)
    check_roundtrip(pb.ServerReadyResponse(ready=True), tr_service.ServerReadyResponse)
    check_roundtrip(pb.ModelReadyRequest(name="m", version="3"), tr_service.ModelReadyRequest)
    check_roundtrip(pb.ModelReadyResponse(ready=True), tr_service.ModelReadyResponse)
    check_roundtrip(
        pb.ServerMetadataResponse(name="OpenVINO Model Server", version="2026.2",
                                  extensions=["binary_tensor_data", "classification"]),
        tr_service.ServerMetadataResponse)
    meta = pb.ModelMetadataResponse(name="resnet", versions=["1", "2"], platform="OpenVINO")
    meta.inputs.add(name="0", datatype="FP32", shape=[-1, 224, 224, 3])
    meta.outputs.add(name="1463", datatype="FP32", shape=[1, 1000])
    theirs = check_roundtrip(meta, tr_service.ModelMetadataResponse)
    assert list(theirs.inputs[0].shape) == [-1, 224, 224, 3]


def test_model_config_response_roundtrip(gen):
    mc = gen.model_config_pb2
    cfg = mc.ModelConfig(name="resnet", platform="openvino_ir", backend="openvino",
                         runtime="ov", max_batch_size=8,
                         default_model_filename="model.xml")
    cfg.version_policy.specific.versions.extend([1, 3])
    i = cfg.input.add(name="x", data_type=mc.TYPE_FP32, format=mc.ModelInput.FORMAT_NCHW,
                      dims=[3, -1, -1], is_shape_tensor=False, allow_ragged_batch=True,
                      optional=True, is_non_linear_format_io=False)
    i.reshape.shape.extend([1, 3, 224, 224])
    o = cfg.output.add(name="y", data_type=mc.TYPE_BF16, dims=[1000],
                       label_filename="labels.txt", is_shape_tensor=True)
    o.reshape.shape.extend([1000])
    g = cfg.instance_group.add(name="g0", kind=mc.ModelInstanceGroup.KIND_CPU, count=2,
                               gpus=[0], profile=["p"], passive=False, host_policy="numa0")
    g.rate_limiter.priority = 1
    g.rate_limiter.resources.add(name="r", count=4, **{"global": True})
    g.secondary_devices.add(kind=mc.ModelInstanceGroup.SecondaryDevice.KIND_NVDLA,
                            device_id=1)
    db = cfg.dynamic_batching
    db.preferred_batch_size.extend([4, 8])
    db.max_queue_delay_microseconds = 100
    db.preserve_ordering = True
    db.priority_levels = 2
    db.default_priority_level = 1
    db.default_queue_policy.timeout_action = mc.ModelQueuePolicy.DELAY
    db.priority_queue_policy[1].max_queue_size = 16
    cfg.parameters["NUM_STREAMS"].string_value = "4"
    cfg.metric_tags["team"] = "vision"
    cfg.cc_model_filenames["7.5"] = "a.plan"
    cfg.optimization.priority = mc.ModelOptimizationPolicy.PRIORITY_MAX
    cfg.optimization.input_pinned_memory.enable = True
    cfg.optimization.cuda.graph_spec.add(batch_size=2).input["x"].dim.extend([1, 2])
    acc = cfg.optimization.execution_accelerators.cpu_execution_accelerator.add(
        name="openvino")
    acc.parameters["precision"] = "FP16"
    w = cfg.model_warmup.add(name="w", batch_size=1, count=2)
    w.inputs["x"].random_data = True
    w.inputs["x"].data_type = mc.TYPE_FP32
    cfg.batch_input.add(kind=mc.BatchInput.BATCH_ITEM_SHAPE, target_name=["t"],
                        data_type=mc.TYPE_INT32, source_input=["x"])
    cfg.batch_output.add(target_name=["y"], source_input=["x"])
    cfg.model_transaction_policy.decoupled = True
    cfg.response_cache.enable = True
    cfg.model_operations.op_library_filename.append("libops.so")
    cfg.model_repository_agents.agents.add(name="checksum").parameters["k"] = "v"

    resp = gen.grpc_predict_v2_pb2.ModelConfigResponse()
    resp.config.CopyFrom(cfg)
    theirs = check_roundtrip(resp, tr_service.ModelConfigResponse)
    assert theirs.config.input[0].data_type == tr_config.TYPE_FP32
    assert theirs.config.output[0].data_type == tr_config.TYPE_BF16
    assert theirs.config.WhichOneof("scheduling_choice") == "dynamic_batching"

    seq = tr_config.ModelConfig(name="stateful", max_batch_size=1)
    sb = seq.sequence_batching
    sb.max_sequence_idle_microseconds = 10**6
    sb.oldest.max_candidate_sequences = 4
    ci = sb.control_input.add(name="START")
    ci.control.add(kind=tr_config.ModelSequenceBatching.Control.CONTROL_SEQUENCE_START,
                   int32_false_true=[0, 1], data_type=tr_config.TYPE_INT32)
    st = sb.state.add(input_name="in", output_name="out", data_type=tr_config.TYPE_FP32,
                      dims=[1, 4], use_same_buffer_for_input_output=True)
    st.initial_state.add(name="zero", data_type=tr_config.TYPE_FP32, dims=[1, 4],
                         zero_data=True)
    seq.version_policy.latest.num_versions = 2
    ours = check_reverse_roundtrip(seq, mc.ModelConfig)
    assert ours.sequence_batching.state[0].initial_state[0].zero_data is True

    ens = tr_config.ModelConfig(name="ens", platform="ensemble")
    step = ens.ensemble_scheduling.step.add(model_name="a", model_version=-1)
    step.input_map["x"] = "IN"
    step.output_map["y"] = "OUT"
    check_reverse_roundtrip(ens, mc.ModelConfig)


def test_model_statistics_response_roundtrip(gen):
    pb = gen.grpc_predict_v2_pb2
    resp = pb.ModelStatisticsResponse()
    s = resp.model_stats.add(name="resnet", version="1", last_inference=1700000000000,
                             inference_count=10, execution_count=4)
    for i, field in enumerate(["success", "fail", "queue", "compute_input",
                               "compute_infer", "compute_output", "cache_hit",
                               "cache_miss"]):
        getattr(s.inference_stats, field).count = i + 1
        getattr(s.inference_stats, field).ns = (i + 1) * 1000
    b = s.batch_stats.add(batch_size=4)
    b.compute_infer.count = 2
    b.compute_infer.ns = 500
    s.memory_usage.add(type="CPU", id=0, byte_size=2**33)
    rs = s.response_stats["0"]
    rs.success.count = 1
    rs.empty_response.ns = 7
    rs.cancel.count = 1
    theirs = check_roundtrip(resp, tr_service.ModelStatisticsResponse)
    assert theirs.model_stats[0].inference_stats.cache_miss.ns == 8000
    assert theirs.model_stats[0].memory_usage[0].byte_size == 2**33
    check_roundtrip(pb.ModelStatisticsRequest(name="resnet", version="1"),
                    tr_service.ModelStatisticsRequest)


def test_repository_messages_roundtrip(gen):
    pb = gen.grpc_predict_v2_pb2
    check_roundtrip(pb.RepositoryIndexRequest(repository_name="", ready=True),
                    tr_service.RepositoryIndexRequest)
    idx = pb.RepositoryIndexResponse()
    idx.models.add(name="resnet", version="1", state="READY", reason="")
    idx.models.add(name="broken", version="2", state="UNAVAILABLE", reason="load failed")
    theirs = check_roundtrip(idx, tr_service.RepositoryIndexResponse)
    assert theirs.models[1].reason == "load failed"

    load = pb.RepositoryModelLoadRequest(repository_name="", model_name="resnet")
    load.parameters["config"].string_param = '{"max_batch_size": 4}'
    load.parameters["file:1/model.xml"].bytes_param = b"<net/>"
    load.parameters["poll"].bool_param = True
    load.parameters["n"].int64_param = 5
    check_roundtrip(load, tr_service.RepositoryModelLoadRequest)
    unload = tr_service.RepositoryModelUnloadRequest(model_name="resnet")
    unload.parameters["unload_dependents"].bool_param = True
    check_reverse_roundtrip(unload, pb.RepositoryModelUnloadRequest)
    check_roundtrip(pb.ModelConfigRequest(name="m", version="1"),
                    tr_service.ModelConfigRequest)


# --------------------------------------------- TF-Serving wire round-trips


def _tensor(gen, dtype, dims, **values):
    t = gen.tensor_pb2.TensorProto(dtype=dtype)
    for d in dims:
        t.tensor_shape.dim.add(size=d)
    for key, val in values.items():
        if isinstance(val, bytes):
            setattr(t, key, val)
        else:
            getattr(t, key).extend(val)
    return t


def test_predict_request_roundtrip(gen):
    ty = gen.types_pb2
    req = gen.predict_pb2.PredictRequest(output_filter=["prob"])
    req.model_spec.name = "resnet"
    req.model_spec.version.value = 3
    req.model_spec.signature_name = "serving_default"
    req.inputs["raw"].CopyFrom(_tensor(gen, ty.DT_FLOAT, [1, 2],
                                       tensor_content=b"\x00\x00\x80?\x00\x00\x00@"))
    req.inputs["img"].CopyFrom(_tensor(gen, ty.DT_STRING, [2], string_val=[b"\xff\xd8", b"x"]))
    req.inputs["half"].CopyFrom(_tensor(gen, ty.DT_HALF, [2], half_val=[15360, 16384]))
    req.inputs["u16"].CopyFrom(_tensor(gen, ty.DT_UINT16, [1], int_val=[65535]))
    req.inputs["i64"].CopyFrom(_tensor(gen, ty.DT_INT64, [1], int64_val=[-(2**60)]))
    req.inputs["u64"].CopyFrom(_tensor(gen, ty.DT_UINT64, [1], uint64_val=[2**64 - 1]))
    req.inputs["u32"].CopyFrom(_tensor(gen, ty.DT_UINT32, [1], uint32_val=[2**32 - 1]))
    req.inputs["b"].CopyFrom(_tensor(gen, ty.DT_BOOL, [2], bool_val=[True, False]))
    req.inputs["f"].CopyFrom(_tensor(gen, ty.DT_FLOAT, [1], float_val=[0.5]))
    req.inputs["d"].CopyFrom(_tensor(gen, ty.DT_DOUBLE, [1], double_val=[0.25]))
    req.inputs["unknown"].tensor_shape.unknown_rank = True
    req.inputs["named"].tensor_shape.dim.add(size=-1, name="batch")

    theirs = check_roundtrip(req, om_predict.PredictRequest)
    assert theirs.model_spec.version.value == 3
    assert theirs.model_spec.WhichOneof("version_choice") == "version"
    assert theirs.inputs["half"].dtype == om_types.DT_HALF
    assert theirs.inputs["raw"].tensor_content == b"\x00\x00\x80?\x00\x00\x00@"

    labelled = om_predict.PredictRequest()
    labelled.model_spec.name = "m"
    labelled.model_spec.version_label = "stable"
    labelled.inputs["x"].CopyFrom(om_tensor.TensorProto(dtype=om_types.DT_INT8,
                                                        tensor_content=b"\x01\xff"))
    ours = check_reverse_roundtrip(labelled, gen.predict_pb2.PredictRequest)
    assert ours.model_spec.WhichOneof("version_choice") == "version_label"


def test_predict_response_roundtrip(gen):
    resp = gen.predict_pb2.PredictResponse()
    resp.outputs["prob"].CopyFrom(_tensor(gen, gen.types_pb2.DT_FLOAT, [1, 2],
                                          tensor_content=b"\x00" * 8))
    resp.outputs["label"].CopyFrom(_tensor(gen, gen.types_pb2.DT_STRING, [1],
                                           string_val=[b"cat"]))
    theirs = check_roundtrip(resp, om_predict.PredictResponse)
    assert [d.size for d in theirs.outputs["prob"].tensor_shape.dim] == [1, 2]
    resp.model_spec.name = "resnet"
    resp.model_spec.version.value = 1
    check_roundtrip(resp, om_predict.PredictResponse)


def _signature_map(gen):
    ty = gen.types_pb2
    sig_map = gen.get_model_metadata_pb2.SignatureDefMap()
    sig = sig_map.signature_def["serving_default"]
    sig.method_name = "tensorflow/serving/predict"
    x = sig.inputs["x"]
    x.name = "x"
    x.dtype = ty.DT_FLOAT
    for d in (-1, 224, 224, 3):
        x.tensor_shape.dim.add(size=d)
    y = sig.outputs["y"]
    y.name = "y"
    y.dtype = ty.DT_FLOAT
    y.tensor_shape.dim.add(size=1)
    y.tensor_shape.dim.add(size=1000)
    return sig_map


def test_get_model_metadata_roundtrip(gen):
    md = gen.get_model_metadata_pb2
    req = md.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = "resnet"
    req.model_spec.version.value = 1
    check_roundtrip(req, om_metadata.GetModelMetadataRequest)

    sig_map = _signature_map(gen)
    resp = md.GetModelMetadataResponse()
    resp.model_spec.name = "resnet"
    resp.model_spec.version.value = 1
    resp.metadata["signature_def"].Pack(sig_map)
    assert resp.metadata["signature_def"].type_url == \
        "type.googleapis.com/tensorflow.serving.SignatureDefMap"

    theirs = om_metadata.GetModelMetadataResponse.FromString(resp.SerializeToString())
    assert dict_of(theirs.model_spec) == dict_of(resp.model_spec)
    their_any = theirs.metadata["signature_def"]
    assert their_any.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    # ovmsclient renamed the package, so its Unpack() would refuse the URL:
    # parse the payload directly.
    their_map = om_metadata.SignatureDefMap.FromString(their_any.value)
    assert dict_of(their_map) == dict_of(sig_map)
    assert their_map.signature_def["serving_default"].inputs["x"].dtype == om_types.DT_FLOAT

    back = md.GetModelMetadataResponse.FromString(theirs.SerializeToString())
    assert same_bytes(back, resp)
    unpacked = md.SignatureDefMap()
    assert back.metadata["signature_def"].Unpack(unpacked)
    assert unpacked == sig_map


def test_get_model_metadata_json_uses_private_pool(gen):
    """The REST metadata body (OVMS spec 3.3) needs Any resolved from POOL."""
    md = gen.get_model_metadata_pb2
    resp = md.GetModelMetadataResponse()
    resp.model_spec.name = "resnet"
    resp.model_spec.version.value = 1
    resp.metadata["signature_def"].Pack(_signature_map(gen))
    body = json.loads(json_format.MessageToJson(resp, descriptor_pool=gen.pool))
    assert body["modelSpec"] == {"name": "resnet", "version": "1"}
    sd = body["metadata"]["signature_def"]
    assert sd["@type"] == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    x = sd["signatureDef"]["serving_default"]["inputs"]["x"]
    assert x == {"dtype": "DT_FLOAT", "name": "x",
                 "tensorShape": {"dim": [{"size": "-1"}, {"size": "224"},
                                         {"size": "224"}, {"size": "3"}]}}
    assert sd["signatureDef"]["serving_default"]["methodName"] == \
        "tensorflow/serving/predict"
    parsed = json_format.Parse(json.dumps(body), md.GetModelMetadataResponse(),
                               descriptor_pool=gen.pool)
    assert same_bytes(parsed, resp)


def test_get_model_status_roundtrip(gen):
    st = gen.get_model_status_pb2
    codes = gen.error_codes_pb2
    req = st.GetModelStatusRequest()
    req.model_spec.name = "resnet"
    check_roundtrip(req, om_status.GetModelStatusRequest)

    resp = st.GetModelStatusResponse()
    ok = resp.model_version_status.add(version=1, state=st.ModelVersionStatus.AVAILABLE)
    ok.status.error_code = codes.OK
    ok.status.error_message = "OK"
    bad = resp.model_version_status.add(version=2, state=st.ModelVersionStatus.LOADING)
    bad.status.error_code = codes.UNKNOWN
    bad.status.error_message = "UNKNOWN"
    gone = resp.model_version_status.add(version=3, state=st.ModelVersionStatus.END)
    gone.status.error_code = codes.FAILED_PRECONDITION
    theirs = check_roundtrip(resp, om_status.GetModelStatusResponse)
    assert theirs.model_version_status[1].state == om_status.ModelVersionStatus.LOADING
    assert theirs.model_version_status[2].status.error_code == 9

    # Explicit snake_case JSON names (TF-Serving REST status format); OVMS
    # prints zero values too ("error_code": "OK"), which needs the
    # print-defaults option (renamed in protobuf 5.26).
    params = inspect.signature(json_format.MessageToDict).parameters
    defaults_kw = ("always_print_fields_with_no_presence"
                   if "always_print_fields_with_no_presence" in params
                   else "including_default_value_fields")
    body = json_format.MessageToDict(resp, **{defaults_kw: True})
    assert body["model_version_status"][0] == {
        "version": "1", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": "OK"}}


def test_reload_config_roundtrip(gen):
    mm = gen.model_management_pb2
    cfg = gen.model_server_config_pb2
    req = mm.ReloadConfigRequest()
    c = req.config.model_config_list.config.add(
        name="resnet", base_path="/models/resnet", model_platform="openvino",
        model_type=cfg.TENSORFLOW)
    c.model_version_policy.specific.versions.extend([1, 2])
    c.version_labels["stable"] = 1
    req.config.model_config_list.config.add(name="b").model_version_policy.latest.num_versions = 2
    req.config.model_config_list.config.add(name="c").model_version_policy.all.SetInParent()
    theirs = check_roundtrip(req, om_management.ReloadConfigRequest)
    assert list(theirs.config.model_config_list.config[0].model_version_policy
                .specific.versions) == [1, 2]

    resp = mm.ReloadConfigResponse()
    resp.status.error_code = gen.error_codes_pb2.INVALID_ARGUMENT
    resp.status.error_message = "bad config"
    check_roundtrip(resp, om_management.ReloadConfigResponse)


def test_classification_request_roundtrip(gen):
    req = gen.classification_pb2.ClassificationRequest()
    req.model_spec.name = "iris"
    ex = req.input.example_list.examples.add()
    ex.features.feature["petal"].float_list.value.extend([1.5, 0.25])
    ex.features.feature["id"].int64_list.value.append(7)
    ex.features.feature["tag"].bytes_list.value.append(b"a")
    check_roundtrip(req, om_classification.ClassificationRequest)
    resp = gen.classification_pb2.ClassificationResponse()
    resp.result.classifications.add().classes.add(label="setosa", score=0.9)
    resp.model_spec.name = "iris"
    check_roundtrip(resp, om_classification.ClassificationResponse)
