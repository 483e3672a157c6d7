"""The domain controllers built on the store's repositories (projects, nodes, tasks, ...)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from vk_hive.api.activity import activity_page
from vk_hive.api.executions import ExecutionProcessController
from vk_hive.api.labels import LabelController
from vk_hive.api.nodes import ApiKeyController, NodeController
from vk_hive.api.projects import ProjectController
from vk_hive.api.tasks import TaskController
from vk_hive.api.templates import TemplateController
from vk_hive.api.webhooks import OrganizationWebhookController

__all__ = ["domain_handlers"]


def domain_handlers() -> list[ControllerRouterHandler]:
    return [
        ProjectController,
        NodeController,
        ApiKeyController,
        TaskController,
        ExecutionProcessController,
        LabelController,
        TemplateController,
        OrganizationWebhookController,
        activity_page,
    ]
