"""The access settings (pure): API key file and Bearer matching, the model-control switch, REST TLS
contexts, the REST limits and connection budget, and the paths kept out of client messages."""
from __future__ import annotations

import ssl
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from certs import make_certs  # noqa: E402

from ovfast.api.access import AccessConfig, AccessError, api_key, bearer_matches, read_api_key  # noqa: E402
from ovfast.api.rest.limits import FD_RESERVE_MIN, RestLimits, max_connections  # noqa: E402
from ovfast.errors import PermissionDeniedError, hide_paths  # noqa: E402


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def test_key_file_is_stripped(tmp_path):
    p = tmp_path / "k"
    p.write_bytes(b"  abc-DEF_123\r\n")
    assert read_api_key(str(p)) == b"abc-DEF_123"


@pytest.mark.parametrize("content", [b"", b"\n \n", b"two words", b"tab\there", b"caf\xc3\xa9", b"x" * (65 * 1024)])
def test_unusable_keys(tmp_path, content):
    p = tmp_path / "k"
    p.write_bytes(content)
    with pytest.raises(AccessError, match="--api_key_file"):
        read_api_key(str(p))


def test_missing_key_file(tmp_path):
    with pytest.raises(AccessError, match="Cannot read"):
        read_api_key(str(tmp_path / "absent"))


def test_key_from_the_environment_as_ovms(tmp_path):
    p = tmp_path / "k"
    p.write_text("from-file\n")
    assert api_key(str(p), {"API_KEY": "from-env"}) == b"from-file"  # the flag wins
    assert api_key(None, {"API_KEY": " from-env \n"}) == b"from-env"
    assert api_key("", {"API_KEY": "from-env"}) == b"from-env"  # OVMS's default is ""
    assert api_key(None, {}) is None and api_key(None, {"API_KEY": ""}) is None
    with pytest.raises(AccessError, match="API_KEY"):
        api_key(None, {"API_KEY": "two words"})


@pytest.mark.parametrize("header,ok", [("Bearer k3y", True), ("bearer k3y", True), ("BEARER  k3y ", True),
                                       ("Bearer k3y2", False), ("Bearer k3", False), ("Basic k3y", False),
                                       ("k3y", False), ("Bearer", False), ("", False), (None, False),
                                       ("Bearer kéy", False)])
def test_bearer_matches(header, ok):
    assert bearer_matches(header, b"k3y") is ok


def test_model_control_switch():
    AccessConfig().refuse_model_control()
    with pytest.raises(PermissionDeniedError, match="disable_model_control"):
        AccessConfig(model_control_disabled=True).refuse_model_control()


def test_tls_context(certs):
    ctx = AccessConfig.from_flags(certificate=str(certs.server_cert), key=str(certs.server_key), rest_port=1).rest_ssl
    assert ctx is not None and ctx.verify_mode == ssl.CERT_NONE
    ctx = AccessConfig.from_flags(certificate=str(certs.server_cert), key=str(certs.server_key),
                                  ca=str(certs.ca_cert), rest_port=1).rest_ssl
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert AccessConfig.from_flags(rest_port=1).rest_ssl is None


def test_tls_flags_need_the_rest_port(certs):
    with pytest.raises(AccessError, match="require --rest_port"):
        AccessConfig.from_flags(certificate=str(certs.server_cert), key=str(certs.server_key), rest_port=0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(max_input_size=0), "rest_max_input_size"), (dict(max_input_size=(1 << 40) + 1), "rest_max_input_size"),
    (dict(header_timeout_s=0), "timeout"), (dict(body_timeout_s=-1), "timeout"),
    (dict(max_connections=0), "rest_max_connections")])
def test_limits_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RestLimits(**kwargs)


def test_connection_budget_keeps_a_reserve():
    assert max_connections(RestLimits(), 1024) == 1024 - FD_RESERVE_MIN
    assert max_connections(RestLimits(), 1 << 20) == (1 << 20) - (1 << 18)
    assert max_connections(RestLimits(max_connections=100), 1024) == 100
    assert max_connections(RestLimits(max_connections=5000), 1024) == 1024 - FD_RESERVE_MIN  # lowered


@pytest.mark.parametrize("text,expected", [
    ("Cannot open /srv/models/resnet/1/model.xml: denied", "Cannot open .../model.xml: denied"),
    ("in path: /tmp/x/broken/1", "in path: .../1"),
    ("base_path '/models/a'", "base_path '.../a'"),
    ("s3://bucket/a/b/c and gs://b/k/x stay", "s3://bucket/a/b/c and gs://b/k/x stay"),
    ("shape [1,2] and 3/4 stay", "shape [1,2] and 3/4 stay"),
    ("relative models/a/1 stays", "relative models/a/1 stays"),
])
def test_hide_paths(text, expected):
    assert hide_paths(text) == expected
