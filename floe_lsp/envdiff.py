"""`floe.diffEnvironments`: the engine's environment comparison as markdown in the editor.

The command compares two environments of a pipeline (the editor's text of open
files, as validate would read them saved), writes the markdown beside the other
build output (`target/floe/diff-<a>-<b>.md`), opens it with window/showDocument
and returns it. A code action on floe.yaml offers each pair of environments.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from lsprotocol import types

from floe_lsp.convert import path_of
from floe_lsp.server import FloeLanguageServer

log = logging.getLogger(__name__)

COMMAND = "floe.diffEnvironments"
#: Pairs offered as code actions at most (a pipeline with many environments).
MAX_ACTIONS = 6


def _message(ls: FloeLanguageServer, kind: types.MessageType, text: str) -> None:
    ls.window_show_message(types.ShowMessageParams(type=kind, message=text))


async def diff_command(ls: FloeLanguageServer, args: tuple[Any, ...]) -> dict[str, Any]:
    """Compare environments args[1] and args[2] of the pipeline args[0] (a floe.yaml URI).

    With no environments given, a pipeline with exactly two is compared.
    """
    from floe_runtime.analysis import ProjectError
    from floe_runtime.analysis.envdiff import diff_environments, markdown
    from floe_runtime.analysis.project import PIPELINE_FILE

    target = path_of(str(args[0])) if args else None
    if target is None:
        _message(ls, types.MessageType.Error, f"{COMMAND}: no pipeline given")
        return {"error": "no pipeline given"}
    projects = ls.state.ensure(target if target.name == PIPELINE_FILE else target / PIPELINE_FILE)
    if not projects:
        _message(ls, types.MessageType.Error, f"{COMMAND}: no floe.yaml at {target}")
        return {"error": "no pipeline"}
    project = projects[0]
    names = [e.name for e in project.environments]
    wanted = [str(a) for a in args[1:3] if a]
    if len(wanted) < 2:
        if len(names) != 2:
            text = f"name two environments to compare (this pipeline has: {', '.join(names)})"
            _message(ls, types.MessageType.Error, f"{COMMAND}: {text}")
            return {"error": text}
        wanted = names
    try:
        diff = diff_environments(project, wanted[0], wanted[1], read=ls.state.read)
    except ProjectError as exc:
        _message(ls, types.MessageType.Error, f"{COMMAND}: {exc}")
        return {"error": str(exc)}
    text = markdown(diff)
    out = project.root / "target" / "floe" / f"diff-{wanted[0]}-{wanted[1]}.md"
    result: dict[str, Any] = {"markdown": text, "same": diff.same}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        result["file"] = str(out)
    except OSError as exc:  # the reply still carries the markdown
        log.warning("could not write %s: %s", out, exc)
        return result
    window = ls.client_capabilities.window
    if window is not None and window.show_document is not None and window.show_document.support:
        try:
            await ls.window_show_document_async(
                types.ShowDocumentParams(uri=ls.uri(out), take_focus=True)
            )
        except Exception as exc:
            log.warning("could not show %s: %s", out, exc)
    return result


def code_actions(ls: FloeLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """On a floe.yaml: "Compare environments A ↔ B" for each pair of its environments.

    Source actions (`source.floe.diffEnvironments`), so they are offered only when
    the client asks for source actions or for every kind.
    """
    from floe_lsp.state import file_kind

    only = [str(getattr(k, "value", k)) for k in params.context.only or []]
    kind = f"{types.CodeActionKind.Source.value}.floe.diffEnvironments"
    if only and not any(kind == k or kind.startswith(f"{k}.") for k in only):
        return []
    path = path_of(params.text_document.uri)
    if path is None or file_kind(path) != "pipeline":
        return []
    projects = ls.state.ensure(path)
    if not projects:
        return []
    names = [e.name for e in projects[0].environments]
    return [
        types.CodeAction(
            title=f"Compare environments {a} ↔ {b}",
            kind=kind,
            command=types.Command(
                title=f"Compare environments {a} ↔ {b}",
                command=COMMAND,
                arguments=[params.text_document.uri, a, b],
            ),
        )
        for a, b in itertools.islice(itertools.combinations(names, 2), MAX_ACTIONS)
    ]
