"""The one redaction: every userinfo shape, token parameters, and every place the tool writes (issue 14, case 5)."""

from __future__ import annotations

import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.util.redact import REDACTED, is_secret_key, redact, redact_text

# What an operator can type in a password: anything printable but whitespace (which ends a URI in text).
_PASSWORD_CHARS = "".join(c for c in string.printable if not c.isspace() and c not in "\"'<>`")
passwords = st.text(_PASSWORD_CHARS, min_size=1, max_size=40)
users = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=12)
hosts = st.sampled_from(["host", "10.0.0.1", "milvus.example.com", "[::1]"])
schemes = st.sampled_from(["http", "https", "tcp", "grpc", "nats", "etcd+http"])
ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
tails = st.sampled_from(["", "/", "/db", "/path/x?db=default", "?timeout=3"])
surroundings = st.sampled_from(["{}", "connect to {} failed", "uri={}", '"uri": "{}"', "({})", "a {} b {}"])


@given(schemes, users, passwords, hosts, ports, tails, surroundings)
@settings(max_examples=400, deadline=None)
def test_userinfo_of_any_shape_is_removed(scheme, user, password, host, port, tail, around):
    uri = f"{scheme}://{user}:{password}@{host}{port}{tail}"
    shown = redact_text(around.format(uri, uri))
    assert around.format(*[f"{scheme}://{REDACTED}@{host}{port}{tail}"] * 2) == shown


@given(schemes, passwords, hosts, tails)
@settings(max_examples=200, deadline=None)
def test_userinfo_without_a_password_or_user_is_removed(scheme, secret, host, tail):
    assert redact_text(f"{scheme}://{secret}@{host}{tail}") == f"{scheme}://{REDACTED}@{host}{tail}"


@given(st.sampled_from(["token", "access_token", "password", "api_key", "apikey", "secret", "passwd"]),
       st.text(string.ascii_letters + string.digits + "-._~+/=%:@!$", min_size=1, max_size=40),
       st.sampled_from(["?", "&"]))
@settings(max_examples=300, deadline=None)
def test_secret_query_parameters_are_removed(name, value, separator):
    text = f"https://host:19530/v2{'?db=default' if separator == '&' else ''}{separator}{name}={value}&next=1 failed"
    shown = redact_text(text)
    # An `@` in the value makes the URI rule take more than the value: over-redaction, no leak.
    assert shown.endswith("&next=1 failed") and f"{name}={value}&" not in shown
    if "@" not in value:
        assert f"{name}={REDACTED}&next=1 failed" in shown


def test_the_issue_reports_shapes():
    for text, secret in [
        ("http://root:Ab/Cd+Secret9@host:19530", "Ab/Cd+Secret9"),
        ("http://root:Pa@ss@word@host:19530", "ss@word"),
        ("https://host/?token=abc123xyz", "abc123xyz"),
        ("grpc://host?password=hunter22&x=1", "hunter22"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi"),
        ('{"password": "with space"}', "with space"),
    ]:
        assert secret not in redact_text(text), text


def test_variable_names_and_ordinary_config_are_not_redacted():
    for text in ("milvus.token_env: MILVUS_TOKEN", "mq.type: natsmq", "etcd.auth.enabled: true",
                 "http://127.0.0.1:19530", "natsmq.server.port=4222"):
        assert redact_text(text) == text


@given(st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=20))
@settings(max_examples=200, deadline=None)
def test_redact_keeps_the_shape_of_any_document(document):
    redacted = redact(document)
    json.dumps(redacted)  # still serializable
    assert_same_shape(document, redacted)


def assert_same_shape(before, after, key: str = "") -> None:
    """`after` is `before` with only strings changed: every mapping keeps its keys (each redacted like
    text, in order) and every list its length; None, booleans and numbers stay as they were, unless
    a secret-named key holds them (then `***`)."""
    if isinstance(before, dict):
        assert isinstance(after, dict), (before, after)
        # Two keys may redact to the same text: like a dict display, the first place and the last value.
        by_redacted = {redact_text(k): (k, v) for k, v in before.items()}
        assert list(after) == list(by_redacted), (before, after)
        for shown, (original, value) in by_redacted.items():
            assert_same_shape(value, after[shown], original)
    elif isinstance(before, list):
        assert isinstance(after, list) and len(after) == len(before), (before, after)
        for value, shown in zip(before, after, strict=True):
            assert_same_shape(value, shown)
    elif is_secret_key(key) and before not in (None, ""):
        assert after == REDACTED, (key, before, after)
    elif isinstance(before, str):
        assert isinstance(after, str) and after == redact_text(before), (before, after)
    else:
        assert after == before and type(after) is type(before), (before, after)


@given(passwords)
@settings(max_examples=100, deadline=None)
def test_a_secret_under_a_secret_key_never_survives(generated):
    secret = f"S3cr3t{generated}"
    document = {"milvus": {"password": secret, "token": secret, "uri": f"http://u:{secret}@h"},
                "list": [{"api_key": secret}], "text": f"failed: password={secret}"}
    dumped = json.dumps(redact(document))
    assert "S3cr3t" not in dumped


_TEXT_PARTS = st.sampled_from(["http://", "u:", "p@ss", "@", "host", "/", "?", "token", "password", "=", ":", " ",
                               '"', "'", "&", "Bearer ", "x", "***", "api_key", "_env", ",", "\n", "#"])


@given(st.lists(_TEXT_PARTS, max_size=25).map("".join))
@settings(max_examples=500, deadline=None)
def test_redaction_is_idempotent(text):
    # A saved plan is redacted, then redacted again inside the journal: its digest must survive that.
    once = redact_text(text)
    assert redact_text(once) == once


def test_keys_that_only_look_like_secrets_keep_their_values():
    document = {"common.security.authorizationEnabled": True, "author": "me", "minio.secretAccessKey": "k",
                "etcd.auth.password": "p", "tokens_env": "VAR"}
    assert redact(document) == {"common.security.authorizationEnabled": True, "author": "me",
                                "minio.secretAccessKey": REDACTED, "etcd.auth.password": REDACTED, "tokens_env": "VAR"}
