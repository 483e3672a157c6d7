"""Background jobs of the hive: one owner starts them in the lifespan and cancels+awaits them."""

from vk_hive.jobs.runner import JobRunner, PeriodicJob

__all__ = ["JobRunner", "PeriodicJob"]
