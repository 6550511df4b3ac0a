"""Secrets at run time: where they are read from, what counts as one, and redaction."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from floe_runtime.runtime.secrets import MissingSecretError, Secrets, dbt_environ, resolve_secrets
from tests.runtime.conftest import copy_project, floe
from tests.runtime.test_secret_leaks import PLATFORM

# ---------------------------------------------------------------- redaction

VALUE = "c@t/alog+Se cret&x=1-44f0"


@pytest.mark.parametrize(
    ("form", "text"),
    [
        ("exact", VALUE),
        ("upper()", VALUE.upper()),
        ("lower()", VALUE.lower()),
        ("URL-encoded", quote(VALUE, safe="")),
        ("URL-encoded, lower-case hex", quote(VALUE, safe="").lower()),
        ("path-encoded", quote(VALUE)),
        ("form-encoded (+ for a space)", quote_plus(VALUE)),
        ("JSON-escaped", json.dumps(VALUE)),
        ("JSON-escaped with \\/", json.dumps(VALUE).replace("/", "\\/")),
        ("base64", base64.b64encode(VALUE.encode()).decode()),
        ("base64url", base64.urlsafe_b64encode(VALUE.encode()).decode()),
        ("substr() of 8", VALUE[5:13]),
        ("substr() of 15, upper()", VALUE[3:18].upper()),
        ("its end", VALUE[-9:]),
    ],
)
def test_every_form_of_a_secret_is_redacted(form: str, text: str) -> None:
    secrets = Secrets({"catalog-secret": VALUE})
    redacted = secrets.redact(f"error: got <{text}> from the catalog")
    assert redacted.startswith("error: got <") and redacted.endswith("> from the catalog")
    assert "***" in redacted, form
    # What is left of the encoded value is too little to rebuild it from.
    left = redacted.removeprefix("error: got <").removesuffix("> from the catalog")
    assert len(left.replace("***", "")) <= 3, (form, redacted)


@pytest.mark.parametrize("client_id", ["floe-client", "floe-clien", "floe-clie"])
def test_a_basic_authorization_header_loses_the_secret(client_id: str) -> None:
    """`base64(id:secret)`: the secret starts at any of the three offsets of a base64 group."""
    header = base64.b64encode(f"{client_id}:{VALUE}".encode()).decode()
    redacted = Secrets({"catalog-secret": VALUE}).redact(f"Authorization: Basic {header}")
    kept = redacted.removeprefix("Authorization: Basic ")
    assert "***" in kept
    # Left: the client id's characters, one group mixing its end with the secret's start
    # and the last partial group: at most 7 characters that depend on the secret.
    assert len(kept.replace("***", "")) <= len(client_id + ":") * 4 // 3 + 7


def test_redaction_leaves_what_is_no_secret() -> None:
    secrets = Secrets({"long": VALUE, "short": "hunter2", "tiny": "abc"})
    # Pieces shorter than 8 of a long value, and a value under 4 characters, stay.
    assert secrets.redact("c@t/alo and abc and 44f0") == "c@t/alo and abc and 44f0"
    # A short value (under 12) is redacted whole, in any case, never by pieces.
    assert secrets.redact("HUNTER2 hunter hunte") == "*** hunter hunte"
    assert secrets.redact("") == ""
    # A secret that is a URL does not blank out the scheme of every other URL.
    webhook = Secrets({"hook": "https://hooks.example/T0/B1/abcdefgh"})
    assert webhook.redact("see https://docs.acme.org/x") == "see https://docs.acme.org/x"
    assert webhook.redact("posted to HTTPS://HOOKS.EXAMPLE/T0") == "posted to HTTPS://***"
    assert Secrets({}).redact("anything at all") == "anything at all"


def test_credentials_inside_urls_are_redacted_by_the_engines_rule() -> None:
    """Not resolved secrets, but literals in a model's SQL or an error: masked all the same."""
    text = "read postgresql://etl:pw-1@db/wh and https://h/x.csv?token=t-2&v=1, not a://b"
    masked = "read postgresql://etl:***@db/wh and https://h/x.csv?token=***&v=1, not a://b"
    assert Secrets({}).redact(text) == masked
    # A secret that is part of such a URL: the URL rule first, then the secret's own forms.
    assert Secrets({"pw": "pw-1-longer-value"}).redact("x://u:pw-1-longer-value@h PW-1-LONGER") == (
        "x://u:***@h ***"
    )


def test_redaction_of_a_large_text_is_fast() -> None:
    secrets = Secrets({"a": VALUE, "b": "weed-sentinel-51d0c8e4", "c": "İstanbul-Secret-9"})
    text = "select order_id, customer_id from orders where total > 10;\n" * 20_000  # 1.2 MB
    started = time.perf_counter()
    assert secrets.redact(text + VALUE.upper()) == text + "***"
    assert time.perf_counter() - started < 1.0
    assert secrets.redact("İSTANBUL-SECRET-9") == "***"


def test_the_dbt_process_gets_secrets_under_dbt_secret_names_only() -> None:
    secrets = Secrets(
        {
            "pg-password": "pw-sentinel-1",
            "bq-key": '{"type": "service_account", "private_key": "k\\nk", "n": 1}',
        }
    )
    env = secrets.env()
    assert env == {
        "DBT_ENV_SECRET_PG_PASSWORD": "pw-sentinel-1",
        "DBT_ENV_SECRET_BQ_KEY": secrets.get("bq-key"),
        "DBT_ENV_SECRET_BQ_KEY__TYPE": "service_account",  # a JSON key's text fields
        "DBT_ENV_SECRET_BQ_KEY__PRIVATE_KEY": "k\nk",
    }
    base = {"PATH": "/bin", "PG_PASSWORD": "pw-sentinel-1", "BQ_KEY": "{}", "HOME": "/root"}
    # The variables the user set the secrets in do not reach dbt under their own names.
    assert dbt_environ(base, env) == {"PATH": "/bin", "HOME": "/root", **env}


# ---------------------------------------------------------------- secret files


@pytest.fixture
def secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    monkeypatch.setenv("FLOE_SECRETS_DIR", str(folder))
    monkeypatch.delenv("EXT_REPO", raising=False)
    return folder


def _error(names: list[str]) -> str:
    with pytest.raises(MissingSecretError) as caught:
        resolve_secrets(names)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_symlink_loop_is_named(secrets_dir: Path) -> None:
    (secrets_dir / "ext-repo").symlink_to(secrets_dir / "other")
    (secrets_dir / "other").symlink_to(secrets_dir / "ext-repo")
    message = _error(["ext-repo"])
    assert message.startswith(f"secret 'ext-repo': {secrets_dir / 'ext-repo'}")
    assert "symbolic link" in message and "loop" in message


def test_a_secrets_dir_that_is_a_file_is_named(
    tmp_path: Path, secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_folder = tmp_path / "secrets.txt"
    not_a_folder.write_text("ext-repo=x\n")
    monkeypatch.setenv("FLOE_SECRETS_DIR", str(not_a_folder))
    message = _error(["ext-repo"])
    assert message == f"secret 'ext-repo': FLOE_SECRETS_DIR ({not_a_folder}) is not a folder"


def test_a_binary_secret_file_is_named(secrets_dir: Path) -> None:
    (secrets_dir / "ext-repo").write_bytes(b"\xff\xfe\x00binary\x80")
    assert _error(["ext-repo"]) == (
        f"secret 'ext-repo': {secrets_dir / 'ext-repo'} is not UTF-8 text"
    )


def test_an_empty_value_is_missing(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXT_REPO", "")
    message = _error(["ext-repo"])
    assert message.startswith("secret 'ext-repo' not found: set environment variable EXT_REPO")
    assert message.endswith("(EXT_REPO is set but empty)")
    # An empty variable does not hide the file; an empty (or blank) file is missing too.
    (secrets_dir / "ext-repo").write_text("from-file\n")
    assert resolve_secrets(["ext-repo"]).get("ext-repo") == "from-file"
    monkeypatch.delenv("EXT_REPO")
    (secrets_dir / "ext-repo").write_text("\n")
    assert _error(["ext-repo"]).endswith(f"({secrets_dir / 'ext-repo'} is empty)")
    (secrets_dir / "ext-repo").write_text("  \n")
    assert "not found" in _error(["ext-repo"])


def test_every_bad_secret_is_in_the_one_line(secrets_dir: Path) -> None:
    (secrets_dir / "a").write_bytes(b"\xff")
    message = _error(["a", "b"])
    assert message.startswith(f"secret 'a': {secrets_dir / 'a'} is not UTF-8 text; ")
    assert "secret 'b' not found" in message


@pytest.mark.parametrize("case", ["symlink loop", "not a folder", "binary", "empty"])
def test_run_with_a_bad_secret_file_exits_2_with_one_line(case: str, tmp_path: Path) -> None:
    project = copy_project("shop", tmp_path / "shop")
    (project / "platform.yaml").write_text(PLATFORM)
    folder = tmp_path / "secrets"
    folder.mkdir()
    if case == "symlink loop":
        (folder / "ext-repo").symlink_to("ext-repo")
    elif case == "not a folder":
        folder = tmp_path / "secrets.env"
        folder.write_text("EXT_REPO=x\n")
    elif case == "binary":
        (folder / "ext-repo").write_bytes(bytes(range(256)))
    else:
        (folder / "ext-repo").write_text("\n")
    result = floe("run", str(project), env={"FLOE_SECRETS_DIR": str(folder)})
    assert result.code == 2, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: secret 'ext-repo'"), line
    assert not (project / ".floe").exists()  # nothing ran
