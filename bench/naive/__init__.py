"""Naive versions of the service's hot path, written as a newcomer would: the same-run baselines
that `POST /tasks` and the end-to-end path are read against."""
