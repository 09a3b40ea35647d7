"""Static checks of the Google Cloud deployment (infra/) and the trainer image (trainer/Dockerfile).

No cloud, no provider plugins and no Docker engine are reachable here, so these checks are what
can be verified: `terraform fmt`, checkov and hadolint (from .venv-infra, installed by
scripts/install-infra-tools.sh), the Terraform <-> detectflow.topology consistency (local and
cloud cannot drift), and the Dockerfile's contract (the function packaging is checked in
test_function_staging.py). Under CI=true a missing checker is a failure, never a skip.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from support.paths import REPO_ROOT

from detectflow import topology as topo
from detectflow.cli import build_parser
from detectflow.settings import Settings

TF_DIR = REPO_ROOT / "infra" / "terraform"
TOOLS_BIN = REPO_ROOT / ".venv-infra" / "bin"
DOCKERFILE = REPO_ROOT / "trainer" / "Dockerfile"
WEB_DOCKERFILE = REPO_ROOT / "infra" / "web.Dockerfile"
DOCKERFILES = [DOCKERFILE, WEB_DOCKERFILE]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def tool(name: str, venv_only: bool = False) -> Path:
    """A checker from .venv-infra (or PATH); a missing one skips locally and fails in CI."""
    candidate = TOOLS_BIN / name
    if candidate.is_file():
        return candidate
    found = None if venv_only else shutil.which(name)
    if found:
        return Path(found)
    message = f"{name} is not installed: run `bash scripts/install-infra-tools.sh`"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def run(cmd: list[str | Path], **kwargs: typing.Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=300, env=env, **kwargs
    )


def tf_text() -> str:
    return "\n".join(p.read_text() for p in sorted(TF_DIR.glob("*.tf")))


def load_tfvars_module() -> ModuleType:
    path = REPO_ROOT / "infra" / "topology_tfvars.py"
    spec = importlib.util.spec_from_file_location("topology_tfvars", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- topology: one description drives local and cloud ------------------------------------------


def test_generated_tfvars_match_the_topology() -> None:
    """The committed topology.auto.tfvars.json is exactly what detectflow.topology generates."""
    module = load_tfvars_module()
    committed = (TF_DIR / "topology.auto.tfvars.json").read_text()
    assert committed == module.render(), (
        "infra/terraform/topology.auto.tfvars.json is stale: run `python infra/topology_tfvars.py`"
    )
    data = json.loads(committed)["topology"]
    assert data == json.loads(topo.default_topology("cloud").to_json())
    # The cloud and local profiles differ only in retry backoff (the documented difference).
    local = json.loads(topo.default_topology("local").to_json())
    for sub in (*data["subscriptions"], *local["subscriptions"]):
        sub.pop("retry")
    local["profile"] = "cloud"
    assert local == data


def test_tfvars_check_mode_detects_staleness(tmp_path: Path) -> None:
    """`python infra/topology_tfvars.py --check` fails on a stale file, passes on a fresh one."""
    module = load_tfvars_module()
    stale = tmp_path / "topology.auto.tfvars.json"
    stale.write_text('{"topology": {}}\n')
    module.TFVARS_PATH = stale
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0
    assert stale.read_text() == module.render()


def _dataclass_fields(cls: type) -> set[str]:
    names: set[str] = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        names.add(f.name)
        for arg in (hints[f.name], *typing.get_args(hints[f.name])):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                names |= _dataclass_fields(arg)
    return names


TOPOLOGY_FIELDS = _dataclass_fields(topo.Topology) | _dataclass_fields(topo.BucketSpec) | (
    _dataclass_fields(topo.TopicSpec) | _dataclass_fields(topo.SubscriptionSpec)
    | _dataclass_fields(topo.FunctionSpec)
)


def _topology_variable_block() -> str:
    text = (TF_DIR / "variables.tf").read_text()
    start = text.index('variable "topology"')
    end = text.index("\n}\n", start)
    return text[start:end]


def test_terraform_declares_every_topology_field() -> None:
    """The `topology` variable's type names exactly the fields detectflow.topology has, so a
    new field cannot be silently dropped by Terraform's type conversion."""
    block = _topology_variable_block()
    type_expr = block[block.index("type = object({"): block.index("validation")]
    declared = set(re.findall(r"^\s*(\w+)\s*=", type_expr, flags=re.M)) - {"type"}
    assert declared == TOPOLOGY_FIELDS


def test_terraform_uses_every_topology_field() -> None:
    """Every field of the topology is read somewhere in the .tf files (`.field`), so a setting
    changed in detectflow/topology.py changes the cloud deployment too."""
    text = tf_text()
    unused = sorted(f for f in TOPOLOGY_FIELDS if not re.search(rf"\.{f}\b", text))
    assert unused == [], f"topology fields Terraform ignores: {unused}"


def test_no_pipeline_name_is_hard_coded_in_terraform() -> None:
    """Bucket, topic, subscription and function names come from the variable only."""
    t = topo.default_topology("cloud")
    names = {b.name for b in t.buckets} | {x.name for x in t.topics} | {
        s.name for s in t.subscriptions
    } | {f.target for f in t.functions} | {f.source for f in t.functions}
    text = tf_text()
    hard_coded = sorted(n for n in names if f'"{n}"' in text or f"{n}/" in text)
    assert hard_coded == []


@pytest.fixture(scope="module")
def hcl() -> dict[str, typing.Any]:
    """All .tf files parsed with the HCL2 parser checkov uses (bc-python-hcl2, in .venv-infra)."""
    python = tool("python", venv_only=True)
    script = (
        "import glob, json, sys, hcl2\n"
        "out = {}\n"
        "for path in sorted(glob.glob(sys.argv[1] + '/*.tf')):\n"
        "    with open(path) as handle:\n"
        "        out[path] = hcl2.load(handle)\n"
        "print(json.dumps(out))\n"
    )
    result = run([python, "-c", script, TF_DIR])
    assert result.returncode == 0, result.stderr
    return typing.cast(dict[str, typing.Any], json.loads(result.stdout))


Block = tuple[str, str, dict[str, typing.Any]]


def _blocks(hcl: dict[str, typing.Any], kind: str) -> Iterator[Block]:
    for parsed in hcl.values():
        for entry in parsed.get(kind, []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    yield rtype, name, body


def _first(value: typing.Any) -> typing.Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_pipeline_resources_iterate_over_the_topology(hcl: dict[str, typing.Any]) -> None:
    resources = {(t, n): body for t, n, body in _blocks(hcl, "resource")}
    expected_for_each = {
        ("google_storage_bucket", "pipeline"): "${local.buckets}",
        ("google_pubsub_topic", "topic"): "${local.topics}",
        ("google_pubsub_subscription", "push"): "${local.subscriptions}",
        ("google_cloudfunctions2_function", "function"): "${local.functions}",
        ("google_service_account", "function"): "${local.functions}",
        ("google_storage_bucket_iam_member", "function"): "${local.function_bucket_grants}",
        ("google_pubsub_topic_iam_member", "function_publishes"):
            "${local.function_publish_grants}",
        ("google_storage_notification", "finalize"): "${local.notifying_buckets}",
    }
    for key, for_each in expected_for_each.items():
        assert key in resources, f"missing resource {key}"
        assert _first(resources[key]["for_each"]) == for_each, key
    locals_ = {}
    for parsed in hcl.values():
        for entry in parsed.get("locals", []):
            locals_.update({k: _first(v) for k, v in entry.items()})
    for name in ("buckets", "topics", "subscriptions", "functions"):
        assert f"var.topology.{name}" in str(locals_[name]), name


def test_subscriptions_carry_retry_and_dead_letter_policies(hcl: dict[str, typing.Any]) -> None:
    subs = {n: b for t, n, b in _blocks(hcl, "resource") if t == "google_pubsub_subscription"}
    push = subs["push"]
    retry = _first(push["retry_policy"])
    assert "each.value.retry.minimum_backoff_seconds" in str(retry["minimum_backoff"])
    assert "each.value.retry.maximum_backoff_seconds" in str(retry["maximum_backoff"])
    dead_letter = _first(push["dynamic"])["dead_letter_policy"]
    assert "max_delivery_attempts" in str(dead_letter)
    assert "oidc_token" in str(push["push_config"])
    # At least the two pipeline subscriptions dead-letter in the topology itself.
    t = topo.default_topology("cloud")
    assert {s.push_function for s in t.subscriptions if s.dead_letter_topic} >= {
        "preprocess", "infer"
    }
    # ... and the Pub/Sub service agent gets the two roles dead-lettering needs.
    members = {(t_, n) for t_, n, _ in _blocks(hcl, "resource")}
    assert ("google_pubsub_topic_iam_member", "pubsub_agent_publishes_dead_letters") in members
    assert (
        "google_pubsub_subscription_iam_member", "pubsub_agent_forwards_dead_letters"
    ) in members


def test_deployed_environment_names_are_real_settings() -> None:
    """Every DETECTFLOW_* variable Terraform sets is read by detectflow's Settings (or the web
    app's), and the per-role names it builds match the Settings fields."""
    from frontend.config import FrontendSettings

    known = {f"DETECTFLOW_{name.upper()}" for name in Settings.model_fields} | {
        f"DETECTFLOW_{name.upper()}" for name in FrontendSettings.model_fields
    } | {"DETECTFLOW_LOG_LEVEL"}  # read by the functions' main.py and the CLI
    text = tf_text()
    literal = set(re.findall(r"\bDETECTFLOW_[A-Z_]+[A-Z]\b", text))
    assert literal - known == set()
    assert '"DETECTFLOW_${upper(role)}_BUCKET"' in text
    assert '"DETECTFLOW_${upper(role)}_TOPIC"' in text
    t = topo.default_topology("cloud")
    for role in (b.role for b in t.buckets):
        assert f"{role}_bucket" in Settings.model_fields
    for role in (x.role for x in t.topics):
        assert f"{role}_topic" in Settings.model_fields


# --- Terraform itself evaluates the topology-driven locals (no provider needed) ------------------

PURE_TF_FILES = ("variables.tf", "locals.tf", "trainer_job.tf")


def terraform_eval(tmp_path: Path, expression: str, **variables: str) -> typing.Any:
    """The value of `expression`, by `terraform console` over the files that hold only
    variables and locals (as JSON: the console prints jsonencode()'s string, quoted)."""
    terraform = tool("terraform")
    for name in (*PURE_TF_FILES, "topology.auto.tfvars.json"):
        shutil.copy(TF_DIR / name, tmp_path / name)
    args = [f"-var={k}={v}" for k, v in {"project_id": "demo-project", **variables}.items()]
    result = run([terraform, "console", "-no-color", *args], cwd=tmp_path,
                 input=f"jsonencode({expression})\n")
    # `terraform console` exits 0 even when the expression fails: look at stderr too.
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    return json.loads(json.loads(result.stdout.strip()))


def test_terraform_derives_iam_from_the_topology(tmp_path: Path) -> None:
    """Each function gets exactly the bucket and topic roles its reads/writes/publishes say:
    objectViewer to read, objectUser to write, objectCreator (append-only) on results."""
    got = terraform_eval(tmp_path, "{grants = local.function_bucket_grants,"
                         " publish = local.function_publish_grants,"
                         " dead_letters = local.dead_letter_topic_roles,"
                         " notify = keys(local.notifying_buckets)}")
    t = topo.default_topology("cloud")
    expected = set()
    for f in t.functions:
        expected |= {(f.name, b, "roles/storage.objectViewer") for b in f.reads}
        expected |= {(f.name, b, "roles/storage.objectCreator" if b == "results"
                      else "roles/storage.objectUser") for b in f.writes}
    assert {(g["function"], g["bucket"], g["role"]) for g in got["grants"].values()} == expected
    assert {(g["function"], g["topic"]) for g in got["publish"].values()} == {
        (f.name, topic) for f in t.functions for topic in f.publishes}
    assert set(got["dead_letters"]) == {
        t_.role for t_ in t.topics
        if any(s.dead_letter_topic == t_.name for s in t.subscriptions)}
    assert set(got["notify"]) == {b.role for b in t.buckets if b.notify_topic}


def test_terraform_environment_configures_the_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment Terraform gives the functions makes detectflow's own settings loader
    find the deployed buckets and topics."""
    from detectflow.settings import load_function_settings

    got = terraform_eval(tmp_path, "{env = local.pipeline_env, names = local.bucket_names}")
    stale = [k for k in os.environ if k.startswith("DETECTFLOW_") or k.endswith("_EMULATOR_HOST")]
    for key in stale:
        monkeypatch.delenv(key)
    for key, value in got["env"].items():
        monkeypatch.setenv(key, value)
    settings = load_function_settings()
    assert (settings.storage, settings.bus, settings.project) == ("gcs", "pubsub", "demo-project")
    assert settings.bucket_names() == got["names"] == {
        b.role: f"demo-project-{b.name}" for b in topo.default_topology("cloud").buckets}
    t = topo.default_topology("cloud")
    assert settings.uploads_topic == t.topic("uploads").name
    assert settings.prepared_topic == t.topic("prepared").name
    assert settings.results_topic == t.topic("results").name
    assert settings.dead_letter_topic == t.topic("dead_letter").name


@pytest.mark.parametrize(("replicas", "gpus"), [(1, 1), (1, 4), (3, 2)])
def test_trainer_job_spec_renders_a_valid_job(tmp_path: Path, replicas: int, gpus: int) -> None:
    """The Vertex AI spec: one chief pool (+ one pool of N-1 workers), GPUs per machine, the
    trainer image, and arguments `detectflow train` itself accepts."""
    import yaml

    extra = '["--epochs","3","--img-size","384x288"]'
    variables = {"trainer_replicas": str(replicas), "trainer_gpus_per_replica": str(gpus),
                 "trainer_args": extra}
    spec = terraform_eval(tmp_path, "local.trainer_job_spec", **variables)
    rendered = yaml.safe_load(terraform_eval(tmp_path, "yamlencode(local.trainer_job_spec)",
                                             **variables))
    assert rendered == spec  # what the file holds is what we check
    pools = spec["workerPoolSpecs"]
    assert [p["replicaCount"] for p in pools] == ([1] if replicas == 1 else [1, replicas - 1])
    for pool in pools:
        assert pool["machineSpec"]["acceleratorCount"] == gpus
        assert pool["machineSpec"]["acceleratorType"].startswith("NVIDIA_")
        container = pool["containerSpec"]
        assert container["imageUri"].endswith("/detectflow/trainer:latest")
        args = container["args"]
        assert args[:2] == ["--data", "/gcs/demo-project-detectflow-training/datasets/bccd"]
        build_parser().parse_args(["train", *args])  # SystemExit on anything train rejects
    assert spec["serviceAccount"] == "detectflow-trainer@demo-project.iam.gserviceaccount.com"


def test_terraform_validations_reject_bad_values(tmp_path: Path) -> None:
    terraform = tool("terraform")
    for name in (*PURE_TF_FILES, "topology.auto.tfvars.json"):
        shutil.copy(TF_DIR / name, tmp_path / name)
    for bad in ("-var=trainer_gpus_per_replica=3", "-var=name_prefix=Detect_Flow"):
        result = run([terraform, "console", "-var=project_id=p", bad], cwd=tmp_path,
                     input="local.bucket_names\n")
        assert "Invalid value for variable" in result.stderr, bad


# --- terraform fmt and checkov ------------------------------------------------------------------


def test_terraform_fmt_is_clean() -> None:
    terraform = tool("terraform")
    result = run([terraform, "fmt", "-check", "-diff", "-recursive", TF_DIR])
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


def test_terraform_fmt_catches_bad_formatting(tmp_path: Path) -> None:
    """The fmt check is live: a misformatted copy fails it."""
    terraform = tool("terraform")
    bad = tmp_path / "bad.tf"
    bad.write_text('variable "x" {\n    type = string\n  default="a"\n}\n')
    assert run([terraform, "fmt", "-check", tmp_path]).returncode != 0


def checkov_json(target: list[str | Path]) -> dict[str, typing.Any]:
    checkov = tool("checkov")
    # --skip-download: no network here (and none needed): checks and skips are all local.
    result = run([checkov, *target, "--skip-download", "--output", "json"])
    assert result.stdout.strip(), result.stderr[-2000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    merged: dict[str, typing.Any] = {"passed": [], "failed": [], "skipped": []}
    for r in reports:
        results = r.get("results", {})
        merged["passed"] += results.get("passed_checks", [])
        merged["failed"] += results.get("failed_checks", [])
        merged["skipped"] += results.get("skipped_checks", [])
    merged["returncode"] = result.returncode
    return merged


def _assert_checkov_clean(report: dict[str, typing.Any]) -> None:
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["failed"]]
    assert failed == [], "checkov failures:\n" + "\n".join(failed)
    assert report["returncode"] == 0
    assert report["passed"], "checkov ran no check"
    for skipped in report["skipped"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 30, f"{skipped['check_id']} on {skipped['resource']}: say why"


def test_checkov_terraform_passes_with_justified_skips() -> None:
    report = checkov_json(["-d", TF_DIR, "--framework", "terraform"])
    _assert_checkov_clean(report)


def test_checkov_catches_a_regression(tmp_path: Path) -> None:
    """checkov is live: the same code without public access prevention fails CKV_GCP_114."""
    copy = tmp_path / "terraform"
    shutil.copytree(TF_DIR, copy)
    storage = copy / "storage.tf"
    without = re.sub(r'\n\s*public_access_prevention\s*=\s*"enforced"', "", storage.read_text())
    assert without != storage.read_text()
    storage.write_text(without)
    report = checkov_json(["-d", copy, "--framework", "terraform"])
    assert "CKV_GCP_114" in {c["check_id"] for c in report["failed"]}


# --- the images: trainer (GPU, Vertex AI) and web app (Cloud Run) --------------------------------

docker_ids = {"ids": lambda p: p.relative_to(REPO_ROOT).as_posix()}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, **docker_ids)
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = tool("hadolint")
    result = run([hadolint, dockerfile])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_regression(tmp_path: Path) -> None:
    """hadolint is live: the same Dockerfile ending as root fails DL3002."""
    hadolint = tool("hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root"))
    result = run([hadolint, bad])
    assert result.returncode != 0 and "DL3002" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, **docker_ids)
def test_checkov_dockerfile_passes(dockerfile: Path) -> None:
    report = checkov_json(["-f", dockerfile, "--framework", "dockerfile"])
    _assert_checkov_clean(report)


def _instructions(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    text = dockerfile.read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip()[0] != "#"]
    pairs = [[*ln.split(None, 1), ""][:2] for ln in lines]
    return [(kind.upper(), value) for kind, value in pairs]


def test_trainer_dockerfile_contract() -> None:
    """GPU TensorFlow base at the version the `train` extra pins; entrypoint `detectflow train`;
    the project installed with the train and cloud extras; a non-root user; no secrets."""
    instructions = _instructions()
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    tf_pin = next(r for r in pyproject["project"]["optional-dependencies"]["train"]
                  if r.startswith("tensorflow=="))
    tf_version = tf_pin.split("==")[1]
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), flags=re.M))
    assert args["TENSORFLOW_VERSION"] == tf_version
    froms = [v for k, v in instructions if k == "FROM"]
    assert froms == ["tensorflow/tensorflow:${TENSORFLOW_VERSION}-gpu"]
    run_lines = " ".join(v for k, v in instructions if k == "RUN")
    assert '".[train,cloud]"' in run_lines
    assert [v for k, v in instructions if k == "ENTRYPOINT"] == ['["detectflow", "train"]']
    user = [v for k, v in instructions if k == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")
    secretish = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL)", re.I)
    for kind, value in instructions:
        if kind in ("ENV", "ARG"):
            assert not secretish.search(value), f"{kind} {value}"
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in DOCKERFILE.read_text()


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore semantics for the patterns used here (last match wins)."""
    import fnmatch

    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatch(p, pat[3:]) for p in parts)
        else:
            hit = any(fnmatch.fnmatch(p, pat) for p in prefixes)
        if hit:
            ignored = not negate
    return ignored


@pytest.mark.parametrize("dockerfile", DOCKERFILES, **docker_ids)
def test_dockerignore_sends_what_the_image_copies_and_nothing_else(dockerfile: Path) -> None:
    """BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile (the context is the
    repository root): every COPY source gets through, data, models and secrets do not."""
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    patterns = [ln.strip() for ln in ignore_file.read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    copies = [v.split()[:-1] for k, v in _instructions(dockerfile) if k == "COPY"]
    sources = [s.rstrip("/") for srcs in copies for s in srcs if not s.startswith("--")]
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not _ignored(source, patterns), f"COPY {source} is excluded by the dockerignore"
    for private in (".venv/bin/python", "runs/x/best.weights.h5", "var/detectflow/uploads/a",
                    ".git/config", "models/bccd/model.tflite", "detectflow/__pycache__/x.pyc",
                    ".env", "build/functions/infer/main.py"):
        assert _ignored(private, patterns), f"{private} would be sent to the Docker daemon"


@pytest.mark.parametrize(
    ("command", "absent", "expected"),
    [
        ("train", ["frontend", "functions"], "--data"),  # trainer image: detectflow + trainer
        ("up", ["trainer", "functions", "tensorflow"], "--gcp"),  # web image: + frontend
    ],
)
def test_image_command_starts_with_only_what_the_image_copies(
    command: str, absent: list[str], expected: str
) -> None:
    """Each image copies only some top-level packages: its command must start without the
    others (and the web app without TensorFlow)."""
    probe = (
        "import sys\n"
        f"for name in {absent!r}: sys.modules[name] = None\n"
        "from detectflow.cli import main\n"
        f"sys.exit(main([{command!r}, '--help']))\n"
    )
    result = run([sys.executable, "-c", probe], cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout


def test_web_dockerfile_contract() -> None:
    """Slim Python base, the `cloud` extra, `detectflow up --gcp` on $PORT, non-root."""
    instructions = _instructions(WEB_DOCKERFILE)
    froms = [v for k, v in instructions if k == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.1[1-9]-slim-\w+", froms[0])
    assert '".[cloud]"' in " ".join(v for k, v in instructions if k == "RUN")
    cmd = json.loads([v for k, v in instructions if k == "CMD"][-1])
    assert "up --gcp" in cmd[-1] and "${PORT}" in cmd[-1] and cmd[-1].startswith("exec ")
    user = [v for k, v in instructions if k == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")


def test_terraform_readme_documents_every_input_and_output() -> None:
    readme = (TF_DIR / "README.md").read_text()
    text = tf_text()
    names = re.findall(r'^(?:variable|output) "(\w+)"', text, flags=re.M)
    assert len(names) > 20
    undocumented = [n for n in names if f"| `{n}` |" not in readme]
    assert undocumented == []
