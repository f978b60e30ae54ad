"""The `context` argument of a handler: Lambda's LambdaContext, with its
ClientContext and CognitoIdentity (awslambdaric's field names and reprs).

Per-sandbox fields are class attributes set once by LambdaContext.configure;
the per-invocation ones live in the instance (__slots__: one is built per
invocation).
"""

from __future__ import annotations

import sys
import time

# typing only for the type checker: the runtime does not import it (import
# time in every sandbox that does not preload it).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, d=None):
        d = d or {}
        self.cognito_identity_id = d.get("cognitoIdentityId")
        self.cognito_identity_pool_id = d.get("cognitoIdentityPoolId")

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id, self.cognito_identity_pool_id)


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code",
                 "app_package_name")

    def __init__(self, d):
        for field in self.__slots__:
            setattr(self, field, d.get(field))


class ClientContext:
    __slots__ = ("custom", "env", "client")

    def __init__(self, d):
        self.custom = d.get("custom")
        self.env = d.get("env")
        client = d.get("client")
        self.client = Client(client) if isinstance(client, dict) else client


class LambdaContext:
    """The `context` argument of a handler (Lambda's LambdaContext).

    Per-sandbox fields are class attributes, set once by `configure`; only the
    per-invocation fields are stored on the (slotted) instance.
    """

    # gust_yield: set only in streaming invocations (map jobs; invoke.Runtime.exchange).
    __slots__ = ("aws_request_id", "invoked_function_arn", "client_context", "_identity",
                 "_deadline_ms", "gust_yield")
    gust_yield: Callable[[bytes], Any]

    function_name = None
    function_version = None
    memory_limit_in_mb = None
    log_group_name = None
    log_stream_name = None

    @classmethod
    def configure(cls, function_name, function_version, memory_mb, log_group_name,
                  log_stream_name):
        cls.function_name = function_name
        cls.function_version = function_version
        cls.memory_limit_in_mb = int(memory_mb)
        cls.log_group_name = log_group_name
        cls.log_stream_name = log_stream_name

    def __init__(self, request_id, deadline_ms, invoked_function_arn, client_context):
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms
        self.invoked_function_arn = invoked_function_arn
        self.client_context = (ClientContext(client_context)
                               if isinstance(client_context, dict) else None)
        self._identity = None

    @property
    def identity(self):
        # Built on first use: most handlers never look at it.
        if self._identity is None:
            self._identity = CognitoIdentity()
        return self._identity

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return ("LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,"
                "function_name=%s,memory_limit_in_mb=%s,function_version=%s,"
                "invoked_function_arn=%s,client_context=%s,identity=%s])" % (
                    self.aws_request_id, self.log_group_name, self.log_stream_name,
                    self.function_name, self.memory_limit_in_mb, self.function_version,
                    self.invoked_function_arn, self.client_context, self.identity))
