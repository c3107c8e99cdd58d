"""Tests of edge/tracing/: OpenTelemetry traces at a real OTLP/HTTP receiver."""
