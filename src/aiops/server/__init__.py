"""The server of `aiops serve`: the REST API (and, to come, the web UI), built on the verbs.

    app.py          create_app (one per worker process), ServerConfig, serve (uvicorn)
    api/guard.py    every operation's permission, and the one gate that checks tokens
    api/problems.py RFC 9457 problem documents; aiops errors -> statuses, in one table
    api/bodies.py   the bound on request bodies (413)
    api/health.py   /healthz, /readyz, /openapi.json, /docs (the offline API reference)
    api/functions.py  the contributor API's reads
    api/writes.py   the contributor API's writes (through git)
    api/admin.py    the admin API: tokens
    api/metrics.py  /metrics: Prometheus (aiops.commands.metrics, aiops.metrics)

Imports point one way: the server calls `aiops.commands` (and the pure `aiops.access`,
`aiops.catalog`); it never reaches the store's SQL, the runner or the CLI.

Adding an operation: declare it on a module's `Operations` with its permission and the
problem codes it can answer beyond the common ones (`guard.problems_of`), e.g.

    @ops.operation("PUT", BASE + "/{id}", permission=Permission.EDIT,
                   problems=["precondition-required", "precondition-failed", "invalid-spec"])
    def put_function(request: Request, caller: CallerDep, id: FunctionRef) -> ...:

then add the module's `ops` to `create_app`'s list, its section to docs/api.md (a test checks),
and call a verb of `aiops.commands` with `caller` (the verb applies the access lists).
"""
