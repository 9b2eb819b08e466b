"""Prompt files -> aiops functions: Dotprompt (`.prompt`) and Prompty (`.prompty`).

`import_prompt(text, source, ...)` is pure: the text of one prompt file in, the data of a
`function.yaml` and located diagnostics out. `prepare_import` adds the project's side (which
providers exist, where the file goes) and proves the result loads and checks before anything
is written; the CLI only reads and writes files.

One module a source format, over what they share:

- `draft`: the file split into front matter and body, the draft function a format fills in,
  model settings, `metadata` and Picoschema schemas (`picoschema`);
- `dotprompt`: Dotprompt front matter; its Handlebars body is translated by `handlebars`;
- `prompty`: Prompty front matter, v1 and v2; its body is Jinja already;
- `translate`: the dispatch by extension, then the name, provider and model;
- `project`: the `function.yaml` text, loaded and checked as the project will load it.

A construct with a faithful aiops translation is translated; one without (media parts,
conversation history, partials, tools, custom helpers) is an error naming the file, the line
and the construct, or, when it can be left out and the rest still says what it said (a tool
list, an unused image input, a role attribute), a warning. docs/import.md lists each decision.
"""

from __future__ import annotations

from aiops.importers.picoschema import picoschema
from aiops.importers.project import SCHEMA_URL, ImportOutcome, prepare_import, to_yaml
from aiops.importers.translate import (
    FORMATS,
    ImportResult,
    function_name,
    import_prompt,
    model_family,
    pick_provider,
)

__all__ = ["FORMATS", "SCHEMA_URL", "ImportOutcome", "ImportResult", "function_name",
           "import_prompt", "model_family", "pick_provider", "picoschema", "prepare_import",
           "to_yaml"]
