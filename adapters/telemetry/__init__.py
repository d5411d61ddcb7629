"""Telemetry adapters: the Metrics port on prometheus-client, the Tracer port on OpenTelemetry."""
