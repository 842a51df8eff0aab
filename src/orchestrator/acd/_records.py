"""A faster ``__init__`` for the ACD's frozen record classes (events and effects).

The generated ``__init__`` of a frozen dataclass stores each field with
``object.__setattr__(self, name, value)`` - a global lookup, an attribute
lookup and a generic setattr per field, about 2 us for a ten-field record -
and the routing policy builds four or five records per decision.
:func:`fast_init` gives a slotted frozen dataclass an ``__init__`` with the
same keyword-only signature, defaults and ``TypeError`` messages that stores
each field through its slot descriptor instead, about 2.5 times faster. The
class stays the same frozen dataclass: ``fields``, ``replace``, equality,
hashing, ``repr``, pickling and ``FrozenInstanceError`` are unchanged.
"""

from __future__ import annotations

import dataclasses
import inspect

__all__ = ["fast_init"]


def fast_init(cls: type) -> type:
    """Replace the dataclass ``__init__`` of ``cls`` (frozen, slots, keyword-only fields) by a faster one."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__ or not cls.__dataclass_params__.frozen:
        raise TypeError(f"{cls.__name__}: fast_init is for frozen dataclasses with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: fast_init does not run __post_init__")
    names: list[str] = []
    signature: list[str] = []
    env: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if not f.init or not f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: fast_init needs init=True, kw_only, no default_factory")
        names.append(f.name)
        env[f"_set_{f.name}"] = getattr(cls, f.name).__set__  # the slot's member descriptor
        if f.default is dataclasses.MISSING:
            signature.append(f.name)
        else:
            env[f"_default_{f.name}"] = f.default
            signature.append(f"{f.name}=_default_{f.name}")
    if list(inspect.signature(cls.__init__).parameters)[1:] != names:
        raise TypeError(f"{cls.__name__}: fast_init needs __init__ to take exactly the fields (no InitVar)")
    if not names:
        return cls
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names)
    exec(f"def __init__(self, *, {', '.join(signature)}):\n{body}", env)  # as dataclasses builds __init__
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    cls.__init__ = init
    return cls
