"""The node's local REST API (mounted under ``/api``): thin controllers, one module per domain."""
