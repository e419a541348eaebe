"""Running asyncio code in tests so that leaks fail the test instead of scrolling past.

asyncio reports an unclosed transport, a task destroyed while pending or an exception nobody
retrieved through the loop's exception handler or a ``ResourceWarning``: both only print by
default. :func:`run_clean` turns them into a failed assertion.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def run_clean(main: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(main())``, failing on anything the loop reports, ResourceWarnings
    included (checked again after a garbage collection, where unclosed transports show)."""
    problems: list[str] = []

    async def wrapper() -> T:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, ctx: problems.append(str(ctx.get("message")))
        )
        return await main()

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        result = asyncio.run(wrapper())
        gc.collect()
    assert problems == [], problems
    return result
