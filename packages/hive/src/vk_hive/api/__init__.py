"""The hive's REST API (prefix ``/v1``): thin controllers, one module per domain."""
