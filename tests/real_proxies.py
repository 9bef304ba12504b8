"""The real LiteLLM proxies the tests run against, each named by an environment variable.

A proxy is one process, and every full read lists every user its database holds: a test that
writes thousands of users slows down every full read of every test beside it on the same proxy
(a many-run seed took 31 s on a proxy of its own and 309 s beside the 2,000-person bulk test).
So the tests are spread over lanes, each a proxy of its own in CI (`.ci/run` starts them all):

- ``contract``: ``LITELLM_CONTRACT_URL``, LiteLLM 1.108.7: the contract suite and most tests;
- ``older``: ``LITELLM_OLDER_URL``, LiteLLM 1.80.0, without the bulk routes: the fallbacks;
- ``volume``: ``LITELLM_VOLUME_URL``, 1.108.7: the tests that write hundreds or thousands of
  users (the bulk queue, the calibration, the full sync);
- ``runs``: ``LITELLM_RUNS_URL``, 1.108.7: the randomized many-run access test, and the full
  sync by per-call routes (one request after another: the other lanes' load would be its pace).

``volume`` and ``runs`` fall back to ``LITELLM_CONTRACT_URL`` when unset: one proxy serves every
lane, only slower. ``LITELLM_CONTRACT_KEY`` is the master key of every one. Unset, a real-proxy test
is skipped with the reason; under CI (env ``CI``) that is a failure instead.
"""

from __future__ import annotations

import os

import pytest

KEY_VAR = "LITELLM_CONTRACT_KEY"
LANES = {"contract": "LITELLM_CONTRACT_URL", "older": "LITELLM_OLDER_URL",
         "volume": "LITELLM_VOLUME_URL", "runs": "LITELLM_RUNS_URL"}
_FALLBACK = {"volume": "contract", "runs": "contract"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def lane_url(lane: str) -> str | None:
    """The base URL of ``lane``'s proxy (that of the lane it falls back to when unset), or None."""
    url = os.environ.get(LANES[lane])
    if url:
        return url.rstrip("/")
    return lane_url(_FALLBACK[lane]) if lane in _FALLBACK else None


def real_proxy(lane: str = "contract") -> tuple[str, str]:
    """(base URL, master key) of ``lane``'s proxy; skips the test when it is not configured, and
    fails it under CI."""
    url, key = lane_url(lane), os.environ.get(KEY_VAR)
    if url and key:
        return url, key
    reason = f"real LiteLLM proxy not configured: set {LANES[lane]} and {KEY_VAR}"
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so a real-proxy test may not be skipped)")
    pytest.skip(reason)
