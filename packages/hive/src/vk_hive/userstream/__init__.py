"""The user activity stream ``/v1/ws`` (browsers and API clients): one session per connection,
fed by the node gateway's activity fan-out, node status broadcasts and log notifications through
its :class:`~vk_hive.gateway.watchers.WatcherRegistry` (:mod:`.session`, :mod:`.follows`; the
route and its handshake are :mod:`vk_hive.api.userws`)."""
