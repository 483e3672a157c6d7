"""Parse a Prometheus text exposition (``GET /metrics``, ``GET /api/metrics``) for assertions."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Samples"]


class Samples:
    """The samples of one scrape, parsed with ``prometheus_client``'s own parser."""

    def __init__(self, text: str) -> None:
        self.types: dict[str, str] = {}
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for s in family.samples:
                self.samples.append((s.name, dict(s.labels), float(s.value)))

    def _matching(self, name: str, labels: dict[str, str]) -> list[float]:
        return [
            value
            for sample, have, value in self.samples
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The value of the one sample with that name and (at least) those labels."""
        found = self._matching(name, labels)
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
        return found[0]

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample with that name and those labels (0 when none)."""
        return sum(self._matching(name, labels))
