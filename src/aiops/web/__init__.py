"""The web UI: server-rendered pages on the same port as the API, with the same tokens.

`aiops.web.app.mount(app, state)` adds it to the app of `aiops serve` under `/ui` as its own
sub-application (the API's gate and problem documents stay the API's). A page module exposes
`router: fastapi.APIRouter` whose paths are relative to `/ui`, and is listed once in
`aiops.web.app.PAGE_ROUTERS`.

What a page module uses:
- `caller: UiCaller` (`aiops.web.session`): the signed-in caller, the same `aiops.access.Caller`
  the API builds from the token, so roles and `access` lists apply exactly as in the API;
  without a session a GET is redirected to the sign-in page. `Depends(require(Permission.X))`
  refuses (403 page) a caller whose role is below X.
- writes: every POST, PUT, PATCH and DELETE to `/ui` must carry the session's CSRF token, as
  the form field `csrf` (templates: `{{ csrf_input() }}`) or the header `X-CSRF-Token`
  (scripts: `<meta name="csrf-token">`); the sub-app checks it before any route runs.
  `await form_data(request)` reads a urlencoded form.
- `render(request, "page.html", title=..., **context)` (`aiops.web.render`): the page in
  `base.html`'s frame; `store(request)` and `workspace(request)` give what the API's routes use.
- errors: raise `aiops.errors` as the verbs do; NotFoundError is a 404 page, a UserError a 400
  page with its message, anything else a 500 page without details.

Pages: sign-in (`session`), functions and function detail (`pages.functions`), logs
(`pages.logs`), tokens (`pages.tokens`, admin).
"""

PREFIX = "/ui"
