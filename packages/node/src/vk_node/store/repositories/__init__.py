"""Repositories of the node store: one module per model (spec/node-store.md §4).

Every function takes an aiosqlite connection first (from ``Store.transaction()`` for writes,
``Store.read()`` or a transaction for reads), uses ``?`` placeholders only and returns msgspec
Structs from :mod:`vk_node.store.models`. Writes the hive must learn append their outbox op on the
same connection (:mod:`vk_node.store.outbox`), so they must run inside a transaction.

Catalogue functions deliberately NOT built:

* ``hive_synced_at`` bookkeeping of attempts, execution processes and log entries
  (``find_unsynced``, ``count_unsynced``, ``mark_hive_synced(_batch)``, ``clear_hive_sync_*``) and
  the task sync helpers of the legacy ``task_sync`` path (``find_needing_sync``,
  ``find_needing_resync``, ``mark_for_resync_by_project``, ``find_synced_tasks_for_project``,
  ``find_archived_needing_hive_sync``, ``count_unsynced``, ``find_missing_shared_task_id``,
  ``sync_from_shared_task``): the durable outbox replaces them (DESIGN.md §3).
* The ``is_remote`` project cache of other nodes' projects (``find_remote_projects``,
  ``find_remote_by_path_and_node``, ``upsert_remote_project``, ``update_remote_sync_status``,
  ``update_remote_project_link``, ``update_node_status_by_source_node_id``,
  ``get_remote_source_node_ids``, ``delete_stale_remote_projects``): such rows were purged in the
  reference; project data of other nodes comes from the hive (DESIGN.md §8).
* Legacy hard deletes ``delete_by_shared_task_id`` / ``delete_stale_shared_tasks``: a hive delete
  only unlinks the local task (DESIGN.md §4) — see ``tasks.unlink_by_shared_task_id``.
* ``find_by_rowid`` variants: rowids are an SQLite detail the API never exposes.
* Label sync bookkeeping (``mark_synced``, ``find_unsynced``, ``find_modified_since_sync``,
  ``increment_version``, ``find_global_by_name``): hive labels arrive by
  ``labels.upsert_from_hive`` and a local edit bumps the version in ``labels.update``.
* The ``before_head_commit`` startup backfill (``update_before_head_commit``,
  ``list_missing_before_context``): a known gap of the executor (docs/roadmap.md).
"""
