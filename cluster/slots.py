"""Building frozen slotted dataclasses on hot paths without their `__init__`.

A frozen dataclass's `__init__` costs one `object.__setattr__` call per field
(frozen classes forbid plain assignment). The codecs build several such objects
per request, reply and applied entry, so they use `slot_constructor(cls)`: a
function taking every field positionally, in declaration order, that creates the
object with `object.__new__` and sets each slot through its descriptor -- about
half the CPU per object. It does no checking and applies no defaults: callers
pass values already validated. Generated from `dataclasses.fields`, so it always
matches the class's shape (the way `dataclasses` itself generates `__init__`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def slot_constructor(cls: type[T]) -> Callable[..., T]:
    """A function `build(field_1, ..., field_n) -> cls` setting the slots directly."""
    if not is_dataclass(cls) or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    names = [f.name for f in fields(cls)]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    body = "".join(f"    _set_{name}(obj, {name})\n" for name in names)
    source = f"def build({', '.join(names)}):\n    obj = _new(_cls)\n{body}    return obj\n"
    exec(source, namespace)  # noqa: S102 -- generated from the class's own field names
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    return build
