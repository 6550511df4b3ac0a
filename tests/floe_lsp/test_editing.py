"""Completion and hover in whole, half-typed and flow-style documents, per client profile."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from lsp_helpers import apply_edits, change_doc, find, open_doc, pos, uri
from lsprotocol import types
from pytest_lsp import LanguageClient

from floe_runtime.analysis import analyze, discover, read_disk

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]


async def complete(
    client: LanguageClient, path: Path, position: types.Position
) -> list[types.CompletionItem]:
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri(path)), position=position
        )
    )
    assert result is not None
    return list(result.items) if isinstance(result, types.CompletionList) else list(result)


def labels(items: list[types.CompletionItem]) -> list[str]:
    return sorted(i.label for i in items)


async def test_profile_names_from_the_platform_tier(client: LanguageClient, project: Path) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    prod.write_text(
        prod.read_text().replace(
            "compute:\n  default:", "compute:\n  default:\n    type: duckdb\n  warehouse:", 1
        )
    )
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    items = await complete(client, floe, find(client, text, "compute: default", len("compute: ")))
    assert labels(items) == ["default", "warehouse"]
    default = next(i for i in items if i.label == "default")
    assert default.detail == "duckdb (dev) · duckdb (prod)"
    warehouse = next(i for i in items if i.label == "warehouse")
    assert warehouse.detail == "postgres (prod)"
    assert warehouse.documentation is not None and "not defined in: dev" in str(
        warehouse.documentation
    )
    # The edit replaces the whole name under the cursor.
    assert warehouse.text_edit is not None and isinstance(warehouse.text_edit, types.TextEdit)
    assert warehouse.text_edit.range.start == find(
        client, text, "compute: default", len("compute: ")
    )
    assert warehouse.text_edit.range.end == find(
        client, text, "compute: default", len("compute: default")
    )


async def test_top_level_keys_in_a_half_typed_document(
    client: LanguageClient, project: Path
) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    half = text.replace("schedule:\n", "sch\n#schedule:\n").replace(
        'version: "1.0.0"', 'version: "1.0.0'
    )
    change_doc(client, floe, half, 2)
    line = half.split("\n").index("sch")
    items = await complete(client, floe, pos(client, half, line, 3))
    names = labels(items)
    # Keys already present are not offered again; valid ones are.
    assert "schedule" in names and "transforms" not in names and "name" not in names
    assert "description" not in names and "storage" not in names
    schedule = next(i for i in items if i.label == "schedule")
    assert schedule.insert_text_format == types.InsertTextFormat.Snippet
    assert isinstance(schedule.text_edit, types.TextEdit)
    assert schedule.text_edit.new_text.startswith("schedule:\n")
    assert schedule.documentation is not None and "When the pipeline runs" in str(
        schedule.documentation
    )


async def test_keys_inside_a_transform_item(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    half = text.replace("    namespace: analytics\n", "    namespace: analytics\n    se\n")
    change_doc(client, floe, half, 2)
    line = half.split("\n").index("    se")
    items = await complete(client, floe, pos(client, half, line, 6))
    assert labels(items) == ["exclude", "select", "vars"]


async def test_tag_values_and_member_keys(client: LanguageClient, project: Path) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    text = open_doc(client, prod)
    half = text.replace("compute:\n", "compute:\n  fast:\n    type: \n")
    change_doc(client, prod, half, 2)
    line = half.split("\n").index("    type: ")
    items = await complete(client, prod, pos(client, half, line, 10))
    assert labels(items) == sorted(
        ["duckdb", "postgres", "snowflake", "trino", "spark", "bigquery", "databricks"]
    )
    # With the tag chosen, the keys of that member.
    half2 = half.replace("  fast:\n    type: \n", "  fast:\n    type: snowflake\n    \n")
    change_doc(client, prod, half2, 3)
    line = half2.split("\n").index("    type: snowflake") + 1
    keys = labels(await complete(client, prod, pos(client, half2, line, 4)))
    assert {"account", "warehouse", "database", "role", "private_key"} <= set(keys)
    assert "type" not in keys and "host" not in keys
    storage_tags = text.replace("    type: s3\n", "    type: \n", 1)
    change_doc(client, prod, storage_tags, 4)
    line = storage_tags.split("\n").index("    type: ")
    assert labels(await complete(client, prod, pos(client, storage_tags, line, 10))) == [
        "adls",
        "gcs",
        "local",
        "s3",
    ]


async def test_a_new_profile_offers_its_tag_with_every_kind(
    client: LanguageClient, project: Path
) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    text = open_doc(client, prod)
    half = text.replace("catalogs:\n", "catalogs:\n  fresh:\n    \n")
    change_doc(client, prod, half, 2)
    line = half.split("\n").index("  fresh:") + 1
    items = await complete(client, prod, pos(client, half, line, 4))
    assert labels(items) == ["type"]
    assert items[0].detail == "required · sql | polaris | rest | glue"
    assert isinstance(items[0].text_edit, types.TextEdit)
    assert items[0].text_edit.new_text == "type: ${1|sql,polaris,rest,glue|}"


async def test_enum_values_and_secret_refs(client: LanguageClient, project: Path) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    text = open_doc(client, prod)
    half = text.replace(
        "    threads: 8\n", "    threads: 8\n    sslmode: \n    password: \n", 1
    ).replace("    password: {secret_ref: pg-password}\n", "")
    change_doc(client, prod, half, 2)
    line = half.split("\n").index("    sslmode: ")
    assert "verify-full" in labels(await complete(client, prod, pos(client, half, line, 13)))
    # A string that YAML would read as a number is inserted quoted.
    quoted = half.replace('version: "1"', "version: ")
    change_doc(client, prod, quoted, 5)
    items = await complete(
        client, prod, pos(client, quoted, quoted.split("\n").index("version: "), 9)
    )
    assert [
        (i.label, i.text_edit.new_text) for i in items if isinstance(i.text_edit, types.TextEdit)
    ] == [("1", '"1"')]
    change_doc(client, prod, half, 6)
    line = half.split("\n").index("    password: ")
    items = await complete(client, prod, pos(client, half, line, 14))
    assert len(items) == 1 and isinstance(items[0].text_edit, types.TextEdit)
    assert items[0].text_edit.new_text.startswith("{secret_ref: ")
    # Inside the flow mapping: the key, then secret names used elsewhere in the project.
    flow = half.replace("    password: \n", "    password: {sec\n")
    change_doc(client, prod, flow, 3)
    line = flow.split("\n").index("    password: {sec")
    assert labels(await complete(client, prod, pos(client, flow, line, 18))) == ["secret_ref"]
    flow2 = half.replace("    password: \n", "    password: {secret_ref: \n")
    change_doc(client, prod, flow2, 4)
    line = flow2.split("\n").index("    password: {secret_ref: ")
    names = labels(await complete(client, prod, pos(client, flow2, line, 27)))
    assert "lake-secret" in names and "polaris-oauth-secret" in names


async def test_transform_paths(client: LanguageClient, project: Path) -> None:
    (project / "more" / "second").mkdir(parents=True)
    (project / "more" / "second" / "dbt_project.yml").write_text("name: second\n")
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    items = await complete(client, floe, find(client, text, "path: ./dbt", len("path: ")))
    assert labels(items) == ["./dbt", "./more/second"]


async def test_plain_text_keys_without_snippet_support(
    plain_client: LanguageClient, project: Path
) -> None:
    client = plain_client
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    half = text.replace("schedule:\n", "sch\n#schedule:\n")
    change_doc(client, floe, half, 2)
    line = half.split("\n").index("sch")
    items = await complete(client, floe, pos(client, half, line, 3))
    assert items and all(i.insert_text_format != types.InsertTextFormat.Snippet for i in items)
    schedule = next(i for i in items if i.label == "schedule")
    assert (
        isinstance(schedule.text_edit, types.TextEdit)
        and schedule.text_edit.new_text == "schedule: "
    )
    assert all(
        "$" not in i.text_edit.new_text for i in items if isinstance(i.text_edit, types.TextEdit)
    )


async def hover(client: LanguageClient, path: Path, position: types.Position) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri(path)), position=position
        )
    )
    assert result is not None and isinstance(result.contents, types.MarkupContent)
    return result.contents.value


async def test_hover_field_docs(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    assert "IANA time zone" in await hover(client, floe, find(client, text, "timezone", 2))
    assert "Iceberg namespace" in await hover(client, floe, find(client, text, "namespace", 1))
    prod = project / "platform" / "prod" / "platform.yaml"
    ptext = open_doc(client, prod)
    # The same key means different things per member of a tagged union.
    assert "Bucket name" in await hover(client, prod, find(client, ptext, "bucket", 1))
    assert "OAuth2 client secret" in await hover(
        client, prod, find(client, ptext, "client_secret", 1)
    )
    assert "Apache Polaris" in await hover(client, prod, find(client, ptext, "type: polaris", 8))


async def test_hover_on_a_reference_resolves_each_environment(
    client: LanguageClient, project: Path
) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    body = await hover(client, floe, find(client, text, "compute: default", 10))
    assert "**dev**: `duckdb`" in body and "**prod**: `postgres`" in body
    assert "warehouse.acme.internal" in body
    # Secrets are shown as references only.
    assert "secret_ref pg-password" in body
    catalog = await hover(client, floe, find(client, text, "catalog: default", 10))
    assert (
        "secret_ref polaris-oauth-secret" in catalog
        and "`polaris`" in catalog
        and "`sql`" in catalog
    )


async def test_hover_on_a_platform_profile_names_its_users(
    client: LanguageClient, project: Path
) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    text = open_doc(client, prod)
    body = await hover(
        client, prod, find(client, text, "compute:\n  default:", len("compute:\n  ") + 1)
    )
    assert "**compute** profile `default`" in body
    assert "Used by: `customer-analytics/floe.yaml`" in body


#: A prod compute profile written as one flow mapping, beside the block-style one.
LOCAL = "  local: {type: duckdb, path: ./.floe/local.duckdb, threads: 2}\n"


def chosen(client: LanguageClient, text: str, item: types.CompletionItem) -> str:
    """The text once `item` is accepted (a snippet with its tab stops left empty)."""
    assert isinstance(item.text_edit, types.TextEdit)
    new = item.text_edit.new_text
    for stop in ("$0", "$1"):
        new = new.replace(stop, "")
    edit = types.TextEdit(range=item.text_edit.range, new_text=new)
    return apply_edits(client, text, [edit])


def by_label(items: list[types.CompletionItem], label: str) -> types.CompletionItem:
    return next(i for i in items if i.label == label)


async def test_keys_inside_a_flow_mapping_go_in_flow_style(
    client: LanguageClient, project: Path
) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    text = open_doc(client, prod)
    half = text.replace("compute:\n", "compute:\n" + LOCAL.replace("threads: 2}", "}"), 1)
    change_doc(client, prod, half, 2)
    items = await complete(
        client, prod, find(client, half, "local.duckdb, ", len("local.duckdb, "))
    )
    labels = {i.label for i in items}
    # The keys of the DuckDB member (picked by `type` on the same line), less those present.
    assert {"threads", "extensions", "settings"} <= labels
    assert not labels & {"type", "path", "host", "account"}
    for item in items:
        assert isinstance(item.text_edit, types.TextEdit)
        assert "\n" not in item.text_edit.new_text  # on the line, no block indentation
        after = chosen(client, half, item)
        yaml.safe_load(after)  # still YAML
    threads = chosen(client, half, by_label(items, "threads"))
    assert "  local: {type: duckdb, path: ./.floe/local.duckdb, threads: }\n" in threads
    settings = chosen(client, half, by_label(items, "settings"))
    assert "path: ./.floe/local.duckdb, settings: {}}\n" in settings
    # A key half typed is replaced whole; one that has its `:` keeps it.
    typed = half.replace("local.duckdb, }", "local.duckdb, thr}")
    change_doc(client, prod, typed, 3)
    items = await complete(client, prod, find(client, typed, "thr}", 3))
    assert "local.duckdb, threads: }" in chosen(client, typed, by_label(items, "threads"))
    full = text.replace("compute:\n", "compute:\n" + LOCAL, 1)
    change_doc(client, prod, full, 4)
    items = await complete(client, prod, find(client, full, "threads: 2", 3))
    renamed = chosen(client, full, by_label(items, "settings"))
    assert "local.duckdb, settings: 2}" in renamed


async def test_values_inside_flow_collections(client: LanguageClient, project: Path) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    text = open_doc(client, prod)
    half = text.replace("compute:\n", "compute:\n  local: {type: , threads: 2}\n", 1)
    change_doc(client, prod, half, 2)
    items = await complete(client, prod, find(client, half, "{type: ", len("{type: ")))
    assert {i.label for i in items} >= {"duckdb", "postgres", "snowflake"}
    done = chosen(client, half, by_label(items, "duckdb"))
    assert "  local: {type: duckdb, threads: 2}\n" in done
    prod.write_text(done)
    assert analyze(discover(project)).diagnostics == []
    # Right after a bare `:` the value gets its space.
    tight = half.replace("{type: ,", "{type:,")
    change_doc(client, prod, tight, 3)
    items = await complete(client, prod, find(client, tight, "{type:", len("{type:")))
    assert "  local: {type: duckdb, threads: 2}\n" in chosen(
        client, tight, by_label(items, "duckdb")
    )
    # A transform written as a flow mapping in a flow sequence.
    floe = project / "floe.yaml"
    ftext = open_doc(client, floe)
    flow = ftext.replace(
        "transforms:\n  - type: dbt\n    path: ./dbt\n    namespace: analytics\n",
        "transforms: [{type: dbt, path: , namespace: analytics}]\n",
    )
    change_doc(client, floe, flow, 2)
    items = await complete(client, floe, find(client, flow, "path: ,", len("path: ")))
    assert [i.label for i in items] == ["./dbt"]
    keys = await complete(client, floe, find(client, flow, "{type", 1))
    assert {"type", "select", "exclude", "vars"} <= {i.label for i in keys}
    assert "path" not in {i.label for i in keys} and "namespace" not in {i.label for i in keys}
    assert "transforms: [{select: dbt, path: " in chosen(client, flow, by_label(keys, "select"))


async def test_hover_inside_flow_collections(client: LanguageClient, project: Path) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    text = open_doc(client, prod)
    full = text.replace("compute:\n", "compute:\n" + LOCAL, 1)
    change_doc(client, prod, full, 2)
    threads = await hover(client, prod, find(client, full, "threads: 2", 2))
    assert "Number of models dbt builds at once" in threads
    # `path` means the DuckDB database file here: the member `type: duckdb` picks.
    path = await hover(client, prod, find(client, full, "path: ./.floe/local", 1))
    assert "Database file" in path
    tag = await hover(client, prod, find(client, full, "{type: duckdb", 9))
    assert "DuckDB" in tag
    secret = await hover(client, prod, find(client, full, "{secret_ref: pg-password}", 3))
    assert "secret" in secret.lower()
    # A profile named in a flow mapping: its users.
    nested = text.replace("compute:\n  default:", "compute: {spare: {type: duckdb}}\nunused:", 1)
    change_doc(client, prod, nested, 3)
    users = await hover(client, prod, find(client, nested, "{spare", 2))
    assert "**compute** profile `spare`" in users


async def test_a_flow_pipeline_file_completes_and_hovers_profile_references(
    client: LanguageClient, project: Path
) -> None:
    floe = project / "floe.yaml"
    data = yaml.safe_load(read_disk(floe) or "")
    flow = (
        "{name: customer-analytics, version: '1.0.0', storage: default, catalog: default, "
        "compute: default, transforms: [{type: dbt, path: ./dbt, namespace: analytics}]}\n"
    )
    assert yaml.safe_load(flow)["transforms"] == data["transforms"]
    floe.write_text(flow)
    open_doc(client, floe)
    body = await hover(client, floe, find(client, flow, "compute: default", 10))
    assert "**dev**: `duckdb`" in body and "**prod**: `postgres`" in body
    items = await complete(client, floe, find(client, flow, "catalog: default", 9))
    assert [i.label for i in items] == ["default"]
    assert isinstance(items[0].text_edit, types.TextEdit)
    assert items[0].text_edit.range.start == find(client, flow, "catalog: default", 9)
    assert items[0].text_edit.range.end == find(client, flow, "catalog: default", 16)
    keys = await complete(client, floe, find(client, flow, "{name", 1))
    assert {"schedule", "observability", "description"} <= {i.label for i in keys}
    assert "compute" not in {i.label for i in keys}


async def test_lines_inside_a_multi_line_flow_mapping_offer_nothing(
    client: LanguageClient, project: Path
) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    text = open_doc(client, prod)
    wrapped = text.replace("compute:\n", "compute:\n  local: {type: duckdb,\n    threads: 2}\n", 1)
    change_doc(client, prod, wrapped, 2)
    assert await complete(client, prod, find(client, wrapped, "    threads: 2}", 4)) == []
    assert await complete(client, prod, find(client, wrapped, "    threads: 2}", 13)) == []
