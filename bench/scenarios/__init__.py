"""One module per benchmark scenario; each `run(ctx)` returns table rows."""
