"""Pure pieces: line framing, classification, redaction, the public surface."""

from __future__ import annotations

import importlib
import inspect
import json
import logging

import pytest
from claude_code_sdk import CLIJSONDecodeError, CLINotFoundError, ProcessError

import migration
import orchestrator
import orchestrator.temporal
import sdk_wrapper
import sdk_wrapper.standin
import sdk_wrapper.testing
import sdk_wrapper.v3
from sdk_wrapper import FailureKind, LineTooLongError, get_logger, redact
from sdk_wrapper._classify import classify_exception, classify_result
from sdk_wrapper._framing import LineFramer


def test_framer_keeps_bytes_exactly_across_chunks() -> None:
    framer = LineFramer(1024)
    line = b'{"text": "a' + b" " * 300 + b'b"}'
    chunks = [line[:5], line[5:200], line[200:] + b"\n" + b'{"x": 1}\n{"y"', b": 2}\n"]
    out = [got for chunk in chunks for got in framer.feed(chunk)]
    assert out == [line, b'{"x": 1}', b'{"y": 2}']
    assert framer.tail() == b""


def test_framer_rejects_an_overlong_line_before_buffering_it_all() -> None:
    framer = LineFramer(100)
    framer.feed(b"x" * 60)
    with pytest.raises(LineTooLongError) as info:
        framer.feed(b"x" * 60)  # no newline yet: already over the limit
    assert info.value.limit == 100 and info.value.excerpt.startswith("xxx")


def test_classify_by_type_and_cause_chain() -> None:
    assert classify_exception(CLINotFoundError("x"), side_effects=False).kind is FailureKind.CLI_NOT_FOUND
    process = classify_exception(ProcessError("boom", exit_code=7), side_effects=False)
    assert (process.kind, process.exit_code, process.retryable) == (FailureKind.PROCESS_EXIT, 7, True)
    assert not classify_exception(ProcessError("boom", exit_code=7), side_effects=True).retryable
    # The SDK re-raises as a bare Exception "from" the real error: the chain is followed, not the text.
    try:
        try:
            raise TimeoutError
        except TimeoutError as inner:
            raise Exception("Control request timeout: initialize") from inner
    except Exception as outer:
        assert classify_exception(outer, side_effects=False).kind is FailureKind.TIMEOUT
    # A message that *says* cancel scope is not classified by its words.
    text_only = RuntimeError("Attempted to exit cancel scope in a different task than it was entered in")
    assert classify_exception(text_only, side_effects=False).kind is FailureKind.UNEXPECTED


def test_exception_groups_keep_every_leaf() -> None:
    group = BaseExceptionGroup("unhandled errors in a TaskGroup", [
        RuntimeError("cancel scope"),
        ExceptionGroup("inner", [CLIJSONDecodeError("{bad", ValueError("x")), ProcessError("p", exit_code=1)]),
    ])
    failure = classify_exception(group, side_effects=False)
    assert [leaf.kind for leaf in failure.leaves] == [
        FailureKind.UNEXPECTED, FailureKind.INVALID_OUTPUT, FailureKind.PROCESS_EXIT,
    ]
    assert failure.kind is FailureKind.INVALID_OUTPUT and failure.cause is group


@pytest.mark.parametrize(("raw", "kind"), [
    ({"subtype": "success", "is_error": False}, None),
    ({"subtype": "success", "is_error": True}, FailureKind.EXECUTION_ERROR),
    ({"subtype": "error_max_turns", "is_error": False}, FailureKind.MAX_TURNS),
    ({"subtype": "success", "is_error": True, "api_error_status": 403}, FailureKind.AUTH),
    ({"subtype": "success", "is_error": True, "terminal_reason": "api_error"}, FailureKind.API_ERROR),
])
def test_classify_result_fields(raw: dict[str, object], kind: FailureKind | None) -> None:
    failure = classify_result(raw, side_effects=False)
    assert (failure.kind if failure else None) is kind


@pytest.mark.parametrize("secret", [
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
    "Bearer abcdefghijklmnop123456",
    "ANTHROPIC_API_KEY=abcd1234efgh",
    '"token": "abcdef123456"',
])
def test_redact(secret: str) -> None:
    out = redact(f"error: {secret} end")
    assert "[REDACTED]" in out and "abcd" not in out.replace("[REDACTED]", "")


class _Unrenderable:
    def __repr__(self) -> str:
        raise AssertionError("rendered")


def test_events_below_the_loggers_level_are_dropped_before_rendering(caplog: pytest.LogCaptureFixture) -> None:
    """Unconfigured structlog: an event the ``claude_scope`` logger would drop is never stamped, redacted or
    rendered (a query logs 4-5 such events); one it keeps arrives as redacted JSON."""
    log = get_logger(query_id="q1")
    caplog.set_level(logging.WARNING, logger="claude_scope")
    log.info("query.start", value=_Unrenderable())  # rendering it would raise
    assert not [r for r in caplog.records if r.name == "claude_scope"]
    caplog.set_level(logging.INFO, logger="claude_scope")
    with pytest.raises(AssertionError, match="rendered"):
        log.info("query.start", value=_Unrenderable())
    log.info("query.end", detail="ANTHROPIC_API_KEY=abcd1234efgh")
    event = json.loads(caplog.records[-1].getMessage())
    assert event["event"] == "query.end" and event["query_id"] == "q1" and event["level"] == "info"
    assert "abcd1234efgh" not in caplog.records[-1].getMessage()


@pytest.mark.parametrize("module", [sdk_wrapper, sdk_wrapper.testing, sdk_wrapper.standin, orchestrator,
                                    orchestrator.temporal, migration])
def test_all_lists_exactly_the_public_names(module: object) -> None:
    mod = importlib.import_module(module.__name__)  # type: ignore[attr-defined]
    # Submodules (e.g. sdk_wrapper.testing) become attributes once imported; they are not re-exports. A
    # module that imports its names when first used (orchestrator) says them in dir() and in its map.
    public = {name for name in dir(mod)
              if not name.startswith("_") and not inspect.ismodule(getattr(mod, name))} - {"annotations"}
    assert sorted(mod.__all__) == sorted(public)
    loaded = {name for name, value in vars(mod).items() if not name.startswith("_") and not inspect.ismodule(value)}
    assert loaded - {"annotations"} <= set(mod.__all__)
    if hasattr(mod, "_WHERE"):
        assert set(mod._WHERE) == set(mod.__all__)
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_v3_module_offers_v3_names_and_the_sdk_names() -> None:
    import claude_code_sdk

    for name in [*claude_code_sdk.__all__, "query_v3", "get_v3_wrapper", "V3QueryWrapper"]:
        assert name in sdk_wrapper.v3.__all__ and getattr(sdk_wrapper.v3, name) is not None
