"""One module per report section: ``ANCHOR``, ``TITLE``, ``render(db) -> str | None``."""
