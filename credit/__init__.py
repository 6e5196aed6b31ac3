"""Turn-level credit assignment: pure tensor functions over a padded :class:`TurnBatch`."""

__all__: list[str] = []
