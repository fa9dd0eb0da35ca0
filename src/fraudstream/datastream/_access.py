"""Plain-access lambdas as the equivalent C callables of :mod:`operator`.

A key selector runs once per record, and at parallelism N twice (to route the record,
then to set the key where it is processed). Most are ``lambda t: t[0]``,
``lambda t: t.account_id`` or ``lambda t: t.get_account_id()``: each call builds a
Python frame for one subscript, attribute or method call. ``operator.itemgetter``,
``attrgetter`` and ``methodcaller`` do the same operation with no frame: same result,
same exceptions (only the traceback lacks the lambda's line).

Only a function whose bytecode is exactly one of those shapes is replaced: one
positional parameter, no closure, nothing else in its body. Any other function (or a
Python version that compiles these shapes otherwise) is kept as it is.
"""

from __future__ import annotations

import dis
import inspect
import operator
import types
from collections.abc import Callable
from typing import Any

__all__ = ["plain_access_equivalent"]

#: Bookkeeping instructions that do nothing to the result.
_IGNORED = frozenset({"RESUME", "NOP", "CACHE", "PRECALL"})
_ONE_ARG_FLAGS = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS


def plain_access_equivalent(function: Any) -> Callable[[Any], Any] | None:
    """``operator``'s callable doing what ``function`` does, or ``None``."""
    if type(function) is not types.FunctionType:
        return None
    code = function.__code__
    if (
        code.co_argcount != 1
        or code.co_kwonlyargcount
        or code.co_flags & _ONE_ARG_FLAGS
        or code.co_freevars
        or code.co_cellvars
    ):
        return None
    steps = [(i.opname, i.arg, i.argval) for i in dis.get_instructions(code)]
    steps = [step for step in steps if step[0] not in _IGNORED]
    if not steps or steps[0][:2] != ("LOAD_FAST", 0) or steps[-1][0] != "RETURN_VALUE":
        return None
    body = [(name, value) for name, _, value in steps[1:-1]]
    if len(body) == 2 and body[0][0] == "LOAD_CONST" and body[1][0] == "BINARY_SUBSCR":
        return operator.itemgetter(body[0][1])
    if len(body) == 1 and body[0][0] == "LOAD_ATTR" and _is_name(body[0][1]):
        return operator.attrgetter(body[0][1])
    if (
        len(body) == 2
        and body[0][0] == "LOAD_METHOD"
        and _is_name(body[0][1])
        and body[1] == ("CALL", 0)
    ):
        return operator.methodcaller(body[0][1])
    return None


def _is_name(value: Any) -> bool:
    """An attribute name as compiled code holds it (``attrgetter`` would split a dot)."""
    return isinstance(value, str) and value.isidentifier()
