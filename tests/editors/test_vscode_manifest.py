"""What the VS Code extension declares: the problem matcher reads the real validate output,
the packaged .vsix holds the schemas its yamlValidation names, every setting is documented."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path

from tests.runtime.conftest import REPO, copy_example, floe

EXT = REPO / "editors" / "vscode"
MANIFEST = json.loads((EXT / "package.json").read_text())


def _js_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)  # the matcher uses no JS-only syntax


def test_problem_matcher_reads_validate_output(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "customer-analytics")
    floe_yaml = project / "floe.yaml"
    floe_yaml.write_text(floe_yaml.read_text().replace("catalog: default", "catalog: defualt"))
    result = floe("validate", str(project))
    assert result.code == 1, result.output
    (matcher,) = MANIFEST["contributes"]["problemMatchers"]
    pattern = matcher["pattern"]
    regex = _js_regex(pattern["regexp"])
    found = [m for m in (regex.match(line) for line in result.output.splitlines()) if m]
    assert len(found) == 2, result.output
    m = found[0]
    assert Path(m.group(pattern["file"])) == floe_yaml
    assert (m.group(pattern["line"]), m.group(pattern["column"])) == ("7", "10")
    assert m.group(pattern["severity"]) == "error" and m.group(pattern["code"]) == "FLOE010"
    assert "defualt" in m.group(pattern["message"])
    task = MANIFEST["contributes"]["taskDefinitions"][0]
    assert task["type"] == "floe" and set(task["properties"]["command"]["enum"]) == {
        "validate",
        "compile",
        "run",
        "lineage",
    }


def test_settings_are_documented_and_activation_covers_platform_files() -> None:
    props = MANIFEST["contributes"]["configuration"]["properties"]
    assert {
        "floe.server.command",
        "floe.environment",
        "floe.trace.server",
        "floe.yamlValidation.deduplicate",
    } <= set(props)
    for name, prop in props.items():
        assert prop.get("description") or prop.get("markdownDescription"), name
    events = MANIFEST["activationEvents"]
    assert (
        "workspaceContains:**/floe.yaml" in events
        and "workspaceContains:platform/*/platform.yaml" in events
    )
    titles = {c["title"] for c in MANIFEST["contributes"]["commands"]}
    assert {
        "Run",
        "Compile",
        "Open Lineage",
        "Select Environment",
        "Validate Workspace",
        "Restart Server",
        "Show Output",
    } <= titles


def test_vsix_packages_the_schemas_yaml_validation_names() -> None:
    done = subprocess.run(
        ["make", "-s", "vsix"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(EXT / "floe.vsix") as vsix:
        names = set(vsix.namelist())
        for entry in MANIFEST["contributes"]["yamlValidation"]:
            packaged = "extension/" + entry["url"].removeprefix("./")
            assert packaged in names, (packaged, sorted(names))
            assert json.loads(vsix.read(packaged)) == json.loads(
                (REPO / entry["url"].removeprefix("./")).read_text()
            )
        assert "extension/dist/extension.js" in names
        assert not any("node_modules" in n or n.endswith(".ts") for n in names)
