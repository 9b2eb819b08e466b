"""The UI's pages, one module each, each with a `router` (paths relative to `/ui`) listed in
`aiops.web.app.PAGE_ROUTERS`."""
