"""`aiops test`: golden tests over recorded cassettes (thin: parse -> commands -> render)."""

from __future__ import annotations

from pathlib import Path

import click

from aiops.cli import emit_json, json_option, output_format, project_dir_option, say
from aiops.cli.params import Format, OutputFile


@click.command(epilog="""\b
Examples:
  aiops test                          every test, replayed (offline)
  aiops test summarize -v             one function, every assertion listed
  aiops test --record                 record what is missing (needs keys)
  aiops test --junit-xml out.xml --markdown-out summary.md
""")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@project_dir_option("root")
@click.option("--provider", metavar="P", help="Only this provider of each function's matrix.")
@click.option("--record", is_flag=True,
              help="Call the providers for requests the cassettes lack (new or changed) and "
                   "write them; needs the providers' keys. Default: replay, no network.")
@click.option("--junit-xml", "junit_xml", type=OutputFile(make_parents=True),
              metavar="FILE", help="Also write JUnit XML results to FILE.")
@click.option("--markdown-out", "markdown_out", type=OutputFile(make_parents=True),
              metavar="FILE", help="Also write the markdown summary to FILE (a PR comment, "
                                   "$GITHUB_STEP_SUMMARY).")
@json_option("Print the results as JSON.")
@click.option("--format", "fmt", type=Format("text", "markdown"), default="text",
              show_default=True, help="text for a terminal, markdown for a pull request.")
@click.option("-v", "--verbose", is_flag=True, help="List the assertions of passing tests too.")
def test(names: tuple[str, ...], root: Path, provider: str | None, record: bool,
         junit_xml: Path | None, markdown_out: Path | None, as_json: bool, fmt: str,
         verbose: bool) -> None:
    """Run golden tests: every test of every function (or NAME...) on each provider of its
    matrix, replaying recorded provider HTTP.

    A request missing from a cassette fails with the diff against the nearest recording and
    the command that records it. Exit 0 when all pass, 1 otherwise.
    """
    from aiops import commands, render_golden

    fmt = output_format(as_json, fmt)

    report = commands.golden_tests(commands.open_workspace(root), names=names,
                                   provider=provider, record=record)
    if junit_xml is not None:
        junit_xml.parent.mkdir(parents=True, exist_ok=True)
        junit_xml.write_text(render_golden.render_junit(report), encoding="utf-8")
    if markdown_out is not None:
        markdown_out.parent.mkdir(parents=True, exist_ok=True)
        markdown_out.write_text(render_golden.render_markdown(report), encoding="utf-8")
    if fmt == "text":
        say(render_golden.render_text(report, verbose=verbose), nl=False)
    elif fmt == "json":
        emit_json(render_golden.RENDERERS[fmt](report), nl=False)
    else:
        say(render_golden.RENDERERS[fmt](report), nl=False)
    raise SystemExit(0 if report.ok else 1)
