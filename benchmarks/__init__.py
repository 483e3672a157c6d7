"""``make bench``: performance benchmarks of vk-swarm (see ``benchmarks/run.py`` and
``docs/performance.md``)."""
