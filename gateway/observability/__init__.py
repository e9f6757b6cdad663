"""What the gateway tells its operators: Prometheus metrics, one log line per request, masking."""
