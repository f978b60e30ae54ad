"""lithops.storage on gust: not there yet. gust has no object storage (the
storage issue); Storage() raises NotImplementedError saying so, so that code
importing it loads and fails only where it uses storage."""

from __future__ import annotations

from typing import Any

from .utils import CloudObject


class Storage:
    """Lithops' Storage: NotImplementedError until gust has a storage."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("lithops.Storage: gust has no object storage yet "
                                  "(docs/COMPAT.md); read and write your data with boto3 "
                                  "or files")


__all__ = ["CloudObject", "Storage"]
