"""The docs show what the code does.

* Every `detectflow ...` command in the fenced shell blocks of README.md (the quick start and
  everything else) and of the deployment docs exists: the subcommand is listed by
  `detectflow --help`, `detectflow <sub> --help` runs and names every flag used, and the whole
  line parses with detectflow's own argument parser (types, choices, required arguments).
* Every payload example in docs/architecture.md marked `<!-- example: KIND -->` is read by the
  code that reads such payloads in production, and round-trips without losing a field.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import REPO_ROOT

from detectflow.cli import build_parser
from detectflow.layout import image_id_for_upload
from detectflow.pipeline.events import (
    PreparedNotice,
    ResultNotice,
    StorageObject,
    storage_object_from_cloud_event,
)
from detectflow.records import ResultRecord

README = REPO_ROOT / "README.md"
DOCS = [REPO_ROOT / "docs" / "deploy-gcp.md", REPO_ROOT / "docs" / "architecture.md"]
SHELL_LANGS = {"", "bash", "sh", "shell", "console", "zsh", "terminal"}
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<lang>[\w+-]*)[^\n]*$")


def shell_blocks(markdown: str) -> list[str]:
    """The text of each fenced code block whose language is a shell (or unspecified)."""
    blocks, current, fence, lang = [], [], None, ""
    for line in markdown.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence, lang, current = match.group("fence"), match.group("lang").lower(), []
        elif fence is not None and re.fullmatch(
            rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*", line
        ):
            if lang in SHELL_LANGS:
                blocks.append("\n".join(current))
            fence = None
        elif fence is not None:
            current.append(line)
    return blocks


def shell_commands(block: str, program: str) -> list[list[str]]:
    """argv lists (without the program) of every `program` invocation in a shell block:
    continuation lines joined, prompts, comments, `VAR=x` prefixes, redirections, pipes,
    `&&`/`;` chains and `$(...)` substitutions taken apart."""
    text = re.sub(r"\\\n", " ", block)
    commands = []
    for raw in text.splitlines():
        line = raw.lstrip()
        line = line[2:] if line.startswith("$ ") else line  # a console prompt
        line = re.sub(r"<([A-Za-z0-9_.-]+)>", r"PLACEHOLDER_\1", line)
        line = line.replace("$(", "; ")  # a command substitution is a command of its own
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:  # unbalanced quotes: not a command line
            continue
        segment: list[str] = []
        segments = [segment]
        skip_next = False
        for i, token in enumerate(tokens):
            if skip_next:
                skip_next = False
            elif token in (";", "&&", "||", "|", "&"):
                segment = []
                segments.append(segment)
            elif set(token) <= set("<>&"):
                skip_next = True  # a redirection and its target
            elif token.isdigit() and i + 1 < len(tokens) and tokens[i + 1].startswith(">"):
                continue  # the fd of `2>file`
            else:
                segment.append(token)
        for seg in segments:
            while seg and (seg[0] in SHELL_WORDS or re.match(r"^[A-Za-z_]\w*=", seg[0])):
                seg.pop(0)  # VAR=value prefixes, `do`, `then`, ...
            if seg and seg[0] == program:
                commands.append(seg[1:])
    return commands


SHELL_WORDS = {"do", "then", "else", "time", "!", "sudo", "exec"}


def detectflow_commands(block: str) -> list[list[str]]:
    return shell_commands(block, "detectflow")


@functools.cache
def help_text(*words: str) -> tuple[int, str]:
    exe = Path(sys.executable).parent / "detectflow"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "detectflow.cli"]
    result = subprocess.run(
        [*cmd, *words, "--help"], capture_output=True, text=True, timeout=120
    )
    return result.returncode, result.stdout + result.stderr


def problems_with(argv: list[str]) -> list[str]:
    """Why `detectflow <argv>` would not run as shown; empty when it would parse."""
    found: list[str] = []
    subcommand = next((a for a in argv if not a.startswith("-")), None)
    rc, top_help = help_text()
    if rc != 0:
        return [f"`detectflow --help` failed: {top_help[-500:]}"]
    if subcommand is not None:
        listed = set(re.findall(r"^ {4}([a-z][\w-]*)(?:\s|$)", top_help, flags=re.M))
        if subcommand not in listed:
            return [f"unknown subcommand {subcommand!r} (not in `detectflow --help`)"]
        rc, sub_help = help_text(subcommand)
        if rc != 0:
            return [f"`detectflow {subcommand} --help` failed: {sub_help[-500:]}"]
        for flag in (a.split("=", 1)[0] for a in argv if a.startswith("--")):
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", sub_help + top_help):
                found.append(f"{flag} is not in `detectflow {subcommand} --help`")
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            found.append(f"does not parse: {stderr.getvalue().strip().splitlines()[-1:]}")
    return found


ANSI = re.compile(r"\x1b\[[0-9;]*m")


@functools.cache
def gcloud_help(*words: str) -> tuple[int, str]:
    env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    result = subprocess.run(["gcloud", *words, "--help"], capture_output=True, text=True,
                            timeout=120, env=env)
    return result.returncode, ANSI.sub("", result.stdout + result.stderr)


def gcloud_problems(argv: list[str]) -> list[str]:
    """Why `gcloud <argv>` is not a gcloud command with those flags; empty when it is."""
    path = []
    for token in argv:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", token):
            break
        path.append(token)
    while path and gcloud_help(*path)[0] != 0:
        path.pop()  # a positional argument that looked like a word
    if not path:
        return ["not a gcloud command"]
    text = gcloud_help(*path)[1]
    synopsis = text.split("SYNOPSIS", 1)[-1].split("DESCRIPTION", 1)[0]
    if re.search(rf"gcloud {' '.join(path)}\s+(GROUP \| )?COMMAND\b", synopsis):
        return [f"`gcloud {' '.join(path)}` is a command group, not a command"]
    flags = [a.split("=", 1)[0] for a in argv if a.startswith("--")]
    return [f"{flag} is not in `gcloud {' '.join(path)} --help`" for flag in flags
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]


def documented_commands(path: Path) -> list[tuple[str, list[str]]]:
    return [
        (f"{path.name}: detectflow {shlex.join(argv)}", argv)
        for block in shell_blocks(path.read_text())
        for argv in detectflow_commands(block)
    ]


def _readme_or_skip() -> Path:
    if not README.is_file():
        message = "README.md does not exist yet"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return README


# --- the extractor and the checker themselves ---------------------------------------------------

SAMPLE = """\
Intro `detectflow inline` is prose, not a command.

```bash
pip install -e .            # not ours
$ detectflow up --port 8000
DETECTFLOW_STORAGE=gcs detectflow up --gcp \\
    --host 0.0.0.0   # comment
detectflow predict --model models/bccd img.jpg --json | jq . > out.json 2>/dev/null
cd x && detectflow evaluate --model m --data d
```

```python
detectflow("not shell")
```

~~~
detectflow predict --model <bundle> a.jpg
~~~
"""


def test_extractor_finds_commands_in_shell_blocks_only() -> None:
    blocks = shell_blocks(SAMPLE)
    assert len(blocks) == 2
    commands = [argv for block in blocks for argv in detectflow_commands(block)]
    assert commands == [
        ["up", "--port", "8000"],
        ["up", "--gcp", "--host", "0.0.0.0"],
        ["predict", "--model", "models/bccd", "img.jpg", "--json"],
        ["evaluate", "--model", "m", "--data", "d"],
        ["predict", "--model", "PLACEHOLDER_bundle", "a.jpg"],
    ]


def test_checker_rejects_unknown_subcommands_flags_and_bad_values() -> None:
    assert problems_with(["frobnicate"]) != []
    assert problems_with(["train", "--no-such-flag"]) != []
    assert problems_with(["train", "--data", "d", "--epochs", "many"]) != []
    assert problems_with(["--help"]) == []
    assert problems_with(["train", "--data", "d", "--epochs", "3"]) == []


# --- the docs -----------------------------------------------------------------------------------


def test_readme_shows_detectflow_commands() -> None:
    commands = documented_commands(_readme_or_skip())
    assert len(commands) >= 2, "the README's quick start shows no `detectflow` command"
    assert any(argv[:1] == ["up"] for _, argv in commands), "no `detectflow up` in the README"


def test_every_readme_command_exists() -> None:
    failures = {
        where: problems
        for where, argv in documented_commands(_readme_or_skip())
        if (problems := problems_with(argv))
    }
    assert failures == {}


HELP_PAGES = [(), ("train",), ("evaluate",), ("export",), ("predict",), ("data",), ("up",)]


@pytest.mark.parametrize("words", HELP_PAGES, ids=lambda w: " ".join(w) or "detectflow")
def test_help_examples_parse_and_name_real_bundles(words: tuple[str, ...]) -> None:
    """The examples a user copies from `--help` must run: they parse, and a `--model models/X`
    names a bundle that ships in the repository."""
    code, text = help_text(*words)
    assert code == 0, text
    examples = text.partition("examples:")[2]
    commands = detectflow_commands(examples)
    assert commands, f"`detectflow {' '.join(words)} --help` shows no example"
    problems = {" ".join(argv): found for argv in commands if (found := problems_with(argv))}
    assert problems == {}
    for argv in commands:
        for flag, value in itertools.pairwise(argv):
            if flag == "--model" and value.startswith("models/"):
                assert (REPO_ROOT / value / "manifest.json").is_file(), f"no bundle at {value}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_deploy_doc_command_exists(doc: Path) -> None:
    assert doc.is_file(), f"{doc.relative_to(REPO_ROOT)} is missing"
    failures = {where: problems for where, argv in documented_commands(doc)
                if (problems := problems_with(argv))}
    assert failures == {}


# --- payload examples in the architecture doc ---------------------------------------------------

ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
EXAMPLE = re.compile(r"<!-- example: (?P<kind>[\w-]+) -->\s*\n```json\n(?P<body>.*?)\n```", re.S)
MODELS = {"ResultRecord": ResultRecord, "PreparedNotice": PreparedNotice,
          "ResultNotice": ResultNotice}


def payload_examples() -> list[tuple[str, str]]:
    if not ARCHITECTURE.is_file():
        return []
    return [(m.group("kind"), m.group("body")) for m in EXAMPLE.finditer(ARCHITECTURE.read_text())]


def check_example(kind: str, body: str) -> None:
    """Raises when the example is not what the code reads (or writes)."""
    document = json.loads(body)
    if kind in MODELS:
        parsed = MODELS[kind].model_validate_json(body)
        assert parsed.model_dump(mode="json") == document, "fields differ from the model"
    elif kind == "object-resource":
        obj = StorageObject.from_resource(document)
        assert obj.bucket and obj.name and obj.generation
    elif kind == "cloudevent":
        obj = storage_object_from_cloud_event(document["type"], document["data"])
        assert obj is not None, "the handler would ignore this event"
        message = document["data"].get("message")
        if message is not None:  # Pub/Sub: the attributes and the payload agree
            resource = json.loads(base64.b64decode(message["data"]))
            assert message["attributes"]["objectId"] == resource["name"] == obj.name
            assert message["attributes"]["bucketId"] == resource["bucket"] == obj.bucket
        assert len(image_id_for_upload(obj.name, obj.generation)) == 32
    else:
        raise AssertionError(f"unknown example kind {kind!r}")


def test_architecture_doc_has_payload_examples() -> None:
    kinds = {kind for kind, _ in payload_examples()}
    assert kinds >= {"cloudevent", "PreparedNotice", "ResultRecord", "ResultNotice"}


@pytest.mark.parametrize(("kind", "body"), payload_examples(),
                         ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "")
def test_payload_example_is_what_the_code_reads(kind: str, body: str) -> None:
    check_example(kind, body)


def test_example_checker_rejects_wrong_payloads() -> None:
    good = next(body for kind, body in payload_examples() if kind == "ResultRecord")
    with pytest.raises(AssertionError):
        check_example("ResultRecord", good.replace('"detections"', '"boxes"', 1))
    with pytest.raises(ValueError):
        check_example("ResultRecord", good.replace('"done"', '"finished"', 1))
    with pytest.raises((AssertionError, ValueError, KeyError)):
        check_example("cloudevent", json.dumps({"type": "google.cloud.pubsub.topic.v1."
                                                "messagePublished", "data": {"x": 1}}))


# --- gcloud commands in the deployment guide ------------------------------------------------------


def _gcloud_or_skip() -> None:
    if shutil.which("gcloud") is None:
        message = "gcloud is not installed (the Google Cloud CLI, a Debian package here)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def test_gcloud_checker_rejects_wrong_commands() -> None:
    _gcloud_or_skip()
    assert gcloud_problems(["storage", "cp", "a", "gs://b/"]) == []
    assert gcloud_problems(["storage", "copy-everything", "a"]) != []
    assert gcloud_problems(["storage", "cp", "--no-such-flag", "a", "b"]) != []
    assert gcloud_problems(["storage", "--project", "p"]) != []  # a group, not a command


def test_every_gcloud_command_in_the_deploy_guide_exists() -> None:
    """The Google Cloud CLI installed here knows every command and flag the guide uses."""
    _gcloud_or_skip()
    doc = REPO_ROOT / "docs" / "deploy-gcp.md"
    commands = [argv for block in shell_blocks(doc.read_text())
                for argv in shell_commands(block, "gcloud")]
    assert len(commands) >= 10
    failures = {shlex.join(argv): problems for argv in commands
                if (problems := gcloud_problems(argv))}
    assert failures == {}
