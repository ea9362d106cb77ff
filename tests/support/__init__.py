"""Helpers shared by the end-to-end tests, the multi-replica tests and the benchmarks: real
processes (gateway, Rasa server, action server) on free ports, and an event loop in a thread for
the fake platform servers."""
from tests.support.loop import BackgroundLoop
from tests.support.processes import (
    LOG_ROOT,
    ManagedProcess,
    ProcessError,
    Stack,
    command,
    ensure_model,
    free_port,
    wait_http,
)

__all__ = ["BackgroundLoop", "LOG_ROOT", "ManagedProcess", "ProcessError", "Stack", "command", "ensure_model", "free_port",
           "wait_http"]
