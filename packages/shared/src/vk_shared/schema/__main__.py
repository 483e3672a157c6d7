"""Print the wire JSON Schema (``make docs`` writes it to ``wire.schema.json``)."""

import sys

from vk_shared.schema import render_schema

sys.stdout.write(render_schema())
