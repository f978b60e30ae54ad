"""gust.lithops: Lithops' API on a gust engine. Code written for Lithops runs
with one changed line, `import lithops` -> `from gust import lithops`.

    from gust import lithops

    def double(x):
        return 2 * x

    fexec = lithops.FunctionExecutor()
    fexec.map(double, [1, 2, 3])
    print(fexec.get_result())           # [2, 4, 6]

The modules Lithops code imports are here: executors (FunctionExecutor),
retries (RetryingFunctionExecutor), wait (wait, get_result and the
return_when constants), future (ResponseFuture), config (default_config,
load_yaml_config, extract_storage_config), storage (Storage, over the
engine's object store: gust.storage), storage.utils (CloudObject,
StorageNoSuchKeyError), objects (obj/storage/id parameters of functions,
obj:// inputs in chunks) and utils. What gust has, has differently and lacks of Lithops' API:
docs/COMPAT.md. Built on gust.FunctionExecutor, whose own API is unchanged.
"""

from __future__ import annotations

from . import config, objects, storage, utils
from .executors import (FunctionExecutor, LocalhostExecutor, ServerlessExecutor,
                        StandaloneExecutor)
from .future import ResponseFuture
from .retries import RetryingFunctionExecutor
from .storage import Storage
from .wait import ALL_COMPLETED, ALWAYS, ANY_COMPLETED, get_result, wait

__version__ = "3.6.0+gust"

__all__ = [
    "ALL_COMPLETED", "ALWAYS", "ANY_COMPLETED", "FunctionExecutor", "LocalhostExecutor",
    "ResponseFuture", "RetryingFunctionExecutor", "ServerlessExecutor", "StandaloneExecutor",
    "Storage", "config", "get_result", "objects", "storage", "utils", "wait",
]
