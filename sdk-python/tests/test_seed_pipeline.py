"""The seed pipeline (examples/pipeline.py) against the engine and registries."""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import gantry
from conftest import (
    AUTH_PASSWORD,
    AUTH_REGISTRY,
    AUTH_USER,
    FIXTURES,
    REGISTRY,
    SDK,
    Engine,
    run,
)


def load_pipeline() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "seed_pipeline", SDK / "examples" / "pipeline.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pipeline = load_pipeline()
TAG = "t" + uuid.uuid4().hex[:12]
PLAIN_REPO = f"{REGISTRY}/gantry-sdk-python/seed"
AUTH_REPO = f"{AUTH_REGISTRY}/gantry-sdk-python/seed"


@dataclass
class Outcome:
    test_output: str
    plain_ref: str
    auth_ref: str
    seconds: float
    started: float
    finished: float


async def full_run(src_path: Path) -> Outcome:
    started = time.time()
    start = time.monotonic()
    async with gantry.Connection() as client:
        src = client.host().directory(str(src_path))
        test_output: str = await pipeline.test(client, src)
        token = client.set_secret("registry-token", AUTH_PASSWORD)
        auth_ref: str = await pipeline.publish(
            client, src, AUTH_REPO, TAG, AUTH_USER, token
        )
        unused = client.set_secret("unused-token", "unused")
        plain_ref = await pipeline.publish(
            client, src, PLAIN_REPO, TAG, "nobody", unused
        )
    seconds = time.monotonic() - start
    return Outcome(test_output, plain_ref, auth_ref, seconds, started, time.time())


@pytest.fixture(scope="module")
def app_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("src") / "goapp"
    shutil.copytree(FIXTURES / "goapp", target)
    return target


@pytest.fixture(scope="module")
def first_run(engine: Engine, app_src: Path) -> Outcome:
    return run(full_run(app_src))


def test_go_tests_run(first_run: Outcome) -> None:
    assert "ok  \texample.com/seedapp/greet" in first_run.test_output


def test_published_image_runs(first_run: Outcome) -> None:
    ref = first_run.plain_ref
    assert ref.startswith(f"{PLAIN_REPO}:{TAG}@sha256:")
    result = subprocess.run(
        ["docker", "run", "--rm", ref],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello, world, from the gantry seed app\n"
    user = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "-f",
            "{{.Config.User}} {{json .Config.Entrypoint}}",
            ref,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert user == '65532 ["/server"]'
    # The pulled copy is only needed for this check.
    subprocess.run(["docker", "image", "rm", ref], capture_output=True, check=False)


def registry_manifest_digest(repo_ref: str, tag: str, user: str, password: str) -> str:
    host, _, repo = repo_ref.partition("/")
    request = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json",
            "Authorization": "Basic "
            + base64.b64encode(f"{user}:{password}".encode()).decode(),
        },
        method="HEAD",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.headers["Docker-Content-Digest"])


def registry_config_blob(repo_ref: str, tag: str, user: str, password: str) -> bytes:
    """The published image's config (env, labels, history) as the registry has it."""
    host, _, repo = repo_ref.partition("/")
    headers = {
        "Accept": "application/vnd.oci.image.manifest.v1+json, "
        "application/vnd.docker.distribution.manifest.v2+json",
    }
    if user:
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = "Basic " + credentials
    manifest_url = f"http://{host}/v2/{repo}/manifests/{tag}"
    request = urllib.request.Request(manifest_url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        config_digest = json.load(response)["config"]["digest"]
    blob_url = f"http://{host}/v2/{repo}/blobs/{config_digest}"
    request = urllib.request.Request(blob_url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


def test_publish_authenticates_with_the_secret(first_run: Outcome) -> None:
    digest = first_run.auth_ref.rpartition("@")[2]
    assert first_run.auth_ref.startswith(f"{AUTH_REPO}:{TAG}@sha256:")
    assert registry_manifest_digest(AUTH_REPO, TAG, AUTH_USER, AUTH_PASSWORD) == digest


def test_publish_with_a_wrong_token_fails_without_leaking_it(
    first_run: Outcome, app_src: Path
) -> None:
    wrong = "wrong-" + uuid.uuid4().hex

    async def main() -> str:
        async with gantry.Connection() as client:
            src = client.host().directory(str(app_src))
            token = client.set_secret("registry-token", wrong)
            ref: str = await pipeline.publish(
                client, src, AUTH_REPO, TAG + "-x", AUTH_USER, token
            )
            return ref

    with pytest.raises(gantry.QueryError) as caught:
        run(main())
    assert wrong not in str(caught.value)
    assert wrong not in json.dumps(caught.value.errors)


def test_failing_go_tests_stop_the_publish(engine: Engine, app_src: Path) -> None:
    async def main() -> str:
        async with gantry.Connection() as client:
            src = (
                client.host()
                .directory(str(app_src))
                .with_new_file(
                    "greet/fail_test.go",
                    'package greet\n\nimport "testing"\n\n'
                    'func TestFails(t *testing.T) { t.Fatal("deliberate failure") }\n',
                )
            )
            token = client.set_secret("registry-token", "unused")
            ref: str = await pipeline.publish(
                client, src, PLAIN_REPO, TAG + "-fail", "x", token
            )
            return ref

    with pytest.raises(pipeline.PipelineError) as caught:
        run(main())
    assert str(caught.value).startswith("tests failed: ")
    assert "deliberate failure" in str(caught.value)


# The native runtime's per-engine run directories (server/native/src/run.rs): each
# holds `created`, a line `<unix nanos> <container id>` per container it created.
NATIVE_RUN_ROOT = Path("/dev/shm/gantry-native/engines")


def containers_created(engine: Engine, since: float, until: float) -> list[str]:
    """Containers the engine created in [since, until]: from the native runtime's
    counter when the engine runs natively, else from Docker's events."""
    native_runs = list(NATIVE_RUN_ROOT.glob(f"{engine.pid}-*/created"))
    if native_runs:
        created = []
        for counter in native_runs:
            for line in counter.read_text().splitlines():
                nanos, _, name = line.partition(" ")
                if since <= int(nanos) / 1e9 <= until:
                    created.append(name)
        return created
    result = subprocess.run(
        [
            "docker",
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{until:.3f}",
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--filter",
            f"label=dev.gantry.engine-pid={engine.pid}",
            "--format",
            "{{.Actor.Attributes.name}}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.split()


def test_second_run_hits_the_cache(
    engine: Engine, first_run: Outcome, app_src: Path
) -> None:
    # The probe itself works: the first run did create containers.
    assert containers_created(engine, first_run.started, first_run.finished + 1)
    second = run(full_run(app_src))
    assert second.test_output == first_run.test_output
    assert second.plain_ref == first_run.plain_ref, "same inputs, same image"
    created = containers_created(engine, second.started, second.finished + 1)
    # Speed is bench/'s business (no timed assertions); zero containers is the proof.
    assert created == [], "no container work on a re-run"


def test_secrets_never_reach_the_engine_state_or_log(
    engine: Engine, first_run: Outcome
) -> None:
    needle = AUTH_PASSWORD.encode()
    assert needle not in engine.log.read_bytes()
    for path in engine.state_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert needle not in path.read_bytes(), f"secret found in {path}"
    for repo, user, password in (
        (PLAIN_REPO, "", ""),
        (AUTH_REPO, AUTH_USER, AUTH_PASSWORD),
    ):
        assert needle not in registry_config_blob(repo, TAG, user, password)
